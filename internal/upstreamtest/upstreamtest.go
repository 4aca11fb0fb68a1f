// Package upstreamtest runs local stand-ins for the inference servers Agora
// talks to (vLLM and llama.cpp server), over a real socket on 127.0.0.1,
// answering with the built-in engine so that a verifier or a miner backend
// going through them must agree with the engine itself.
//
// They speak the parts of each protocol Agora uses:
//
//   - vLLM: POST /v1/completions with a token-id prompt, echo and
//     prompt_logprobs (and the legacy echo+logprobs form), and streamed
//     POST /v1/chat/completions with logprobs and return_tokens_as_token_ids
//     ("token_id:123" token strings).
//   - llama.cpp server: POST /completion with a token-id prompt, n_predict
//     and n_probs (probabilities of generated tokens only: it has no prompt
//     logprobs, and its /v1/completions refuses echo), and streamed
//     POST /v1/chat/completions whose logprobs entries carry the token "id".
package upstreamtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	"github.com/agoranet/agora/engine"
	"github.com/agoranet/agora/internal/testkit"
)

// Flavor is the server imitated.
type Flavor string

// Flavors.
const (
	VLLM     Flavor = "vllm"
	LlamaCpp Flavor = "llamacpp"
)

// Fault makes the server misbehave, to test its clients' error paths.
type Fault int

// Faults.
const (
	FaultNone      Fault = iota
	FaultMalformed       // answer 200 with a body that is not JSON
	FaultShort           // drop the last position's logprobs
	FaultStatus          // answer 503
)

// Server is a running stand-in.
type Server struct {
	// URL is the OpenAI-style base, http://127.0.0.1:PORT/v1. llama.cpp's
	// native /completion lives at the root, as on the real server.
	URL   string
	Model *engine.Model
	// LegacyEcho makes a vLLM stand-in ignore prompt_logprobs and answer
	// only in the legacy OpenAI echo+logprobs form, as other servers do.
	LegacyEcho bool
	srv        *httptest.Server

	mu       sync.Mutex
	fault    Fault
	requests int
}

// Start serves m as flavor f until the test ends.
func Start(t testing.TB, m *engine.Model, f Flavor) *Server {
	t.Helper()
	s := &Server{Model: m}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) { s.chat(w, r, f) })
	switch f {
	case VLLM:
		mux.HandleFunc("POST /v1/completions", s.vllmCompletions)
	case LlamaCpp:
		mux.HandleFunc("POST /completion", s.llamaCompletion)
		mux.HandleFunc("POST /v1/completions", func(w http.ResponseWriter, r *http.Request) {
			// What llama-server answers an echo request (it has no prompt logprobs).
			writeError(w, http.StatusBadRequest, "Only no echo is supported")
		})
	default:
		t.Fatalf("upstreamtest: flavor %q", f)
	}
	s.srv = httptest.NewUnstartedServer(mux)
	s.srv.Listener.Close()
	s.srv.Listener = testkit.Listen(t)
	s.srv.Start()
	t.Cleanup(s.srv.Close)
	s.URL = s.srv.URL + "/v1"
	return s
}

// SetFault makes every later answer misbehave as f.
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	s.fault = f
	s.mu.Unlock()
}

// Requests counts the requests served so far.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Close stops the server, so its clients see it down.
func (s *Server) Close() { s.srv.Close() }

func (s *Server) begin(w http.ResponseWriter) (Fault, bool) {
	s.mu.Lock()
	s.requests++
	f := s.fault
	s.mu.Unlock()
	switch f {
	case FaultMalformed:
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"choices": [ {"prompt_logprobs": [nul`)
		return f, false
	case FaultStatus:
		writeError(w, http.StatusServiceUnavailable, "overloaded")
		return f, false
	}
	return f, true
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": status, "message": msg}})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// vllmLogprob is an entry of vLLM's prompt_logprobs.
type vllmLogprob struct {
	Logprob      float32 `json:"logprob"`
	Rank         int     `json:"rank"`
	DecodedToken string  `json:"decoded_token"`
}

func (s *Server) vllmCompletions(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Prompt         json.RawMessage `json:"prompt"`
		MaxTokens      *int            `json:"max_tokens"`
		Echo           bool            `json:"echo"`
		PromptLogprobs *int            `json:"prompt_logprobs"`
		Logprobs       *int            `json:"logprobs"`
		TokenIDs       bool            `json:"return_tokens_as_token_ids"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var seq []int
	if err := json.Unmarshal(req.Prompt, &seq); err != nil || len(seq) == 0 {
		writeError(w, http.StatusBadRequest, "this stand-in takes token-id prompts only")
		return
	}
	fault, ok := s.begin(w)
	if !ok {
		return
	}
	tok := s.Model.Tokenizer()
	var scores []engine.TokenScore
	if len(seq) > 1 {
		var err error
		if scores, err = s.Model.Score(r.Context(), seq[:1], seq[1:]); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	name := func(id int) string {
		if req.TokenIDs {
			return "token_id:" + strconv.Itoa(id)
		}
		return tok.Piece(id)
	}
	choice := map[string]any{"index": 0, "text": "", "finish_reason": "length"}
	if req.Echo {
		choice["text"] = tok.Decode(seq)
	}
	if req.PromptLogprobs != nil && !s.LegacyEcho {
		// Position 0 has no logprob; each later one lists the prompt token and
		// the top alternatives (here the top one, all the engine reports).
		pl := []map[string]vllmLogprob{nil}
		for _, sc := range scores {
			e := map[string]vllmLogprob{strconv.Itoa(sc.ID): {Logprob: sc.Logprob, Rank: sc.Rank, DecodedToken: tok.Piece(sc.ID)}}
			if sc.TopID != sc.ID {
				e[strconv.Itoa(sc.TopID)] = vllmLogprob{Logprob: sc.TopLogprob, Rank: 1, DecodedToken: tok.Piece(sc.TopID)}
			}
			pl = append(pl, e)
		}
		if fault == FaultShort {
			pl = pl[:len(pl)-1]
		}
		choice["prompt_logprobs"] = pl
	}
	if req.Logprobs != nil && req.Echo {
		// The legacy OpenAI form: echoed prompt tokens with their logprobs.
		lp := struct {
			Tokens        []string             `json:"tokens"`
			TokenLogprobs []*float32           `json:"token_logprobs"`
			TopLogprobs   []map[string]float32 `json:"top_logprobs"`
		}{Tokens: []string{name(seq[0])}, TokenLogprobs: []*float32{nil}, TopLogprobs: []map[string]float32{nil}}
		for _, sc := range scores {
			v := sc.Logprob
			lp.Tokens = append(lp.Tokens, name(sc.ID))
			lp.TokenLogprobs = append(lp.TokenLogprobs, &v)
			lp.TopLogprobs = append(lp.TopLogprobs, map[string]float32{name(sc.TopID): sc.TopLogprob, name(sc.ID): sc.Logprob})
		}
		if fault == FaultShort {
			lp.TokenLogprobs = lp.TokenLogprobs[:len(lp.TokenLogprobs)-1]
		}
		choice["logprobs"] = lp
	}
	writeJSON(w, map[string]any{"id": "cmpl-test", "object": "text_completion", "model": "test",
		"choices": []any{choice}, "usage": map[string]int{"prompt_tokens": len(seq), "completion_tokens": 0, "total_tokens": len(seq)}})
}

// llamaProb is an entry of llama.cpp's completion_probabilities.
type llamaProb struct {
	ID          int         `json:"id"`
	Token       string      `json:"token"`
	Bytes       []int       `json:"bytes"`
	Logprob     float32     `json:"logprob"`
	TopLogprobs []llamaProb `json:"top_logprobs,omitempty"`
}

func (s *Server) llamaCompletion(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Prompt   json.RawMessage `json:"prompt"`
		NPredict int             `json:"n_predict"`
		NProbs   int             `json:"n_probs"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var seq []int
	if err := json.Unmarshal(req.Prompt, &seq); err != nil || len(seq) == 0 {
		writeError(w, http.StatusBadRequest, "this stand-in takes token-id prompts only")
		return
	}
	if req.NPredict != 1 {
		writeError(w, http.StatusBadRequest, "this stand-in predicts one token (n_predict 1)")
		return
	}
	fault, ok := s.begin(w)
	if !ok {
		return
	}
	tok := s.Model.Tokenizer()
	n := min(max(req.NProbs, 1), 20)
	res, err := s.Model.Generate(r.Context(), seq, engine.GenerateOptions{MaxTokens: 1, Temperature: 0, TopLogprobs: n}, nil)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var p llamaProb
	if len(res.Tokens) == 1 {
		t := res.Tokens[0]
		p = llamaProb{ID: t.ID, Token: t.Text, Bytes: bytesOf(t.Text), Logprob: t.Logprob}
		for _, a := range t.Top {
			p.TopLogprobs = append(p.TopLogprobs, llamaProb{ID: a.ID, Token: a.Text, Bytes: bytesOf(a.Text), Logprob: a.Logprob})
		}
	} else {
		// The engine stopped at an end token, which is then the top choice.
		sc, err := s.Model.Score(r.Context(), seq, []int{tok.EOS})
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		p = llamaProb{ID: tok.EOS, Token: tok.Piece(tok.EOS), Logprob: sc[0].Logprob}
		p.TopLogprobs = []llamaProb{{ID: sc[0].TopID, Token: tok.Piece(sc[0].TopID), Logprob: sc[0].TopLogprob}}
	}
	probs := []llamaProb{p}
	if fault == FaultShort {
		probs = nil
	}
	writeJSON(w, map[string]any{"content": p.Token, "tokens": []int{p.ID}, "stop": true, "stop_type": "limit",
		"tokens_evaluated": len(seq), "completion_probabilities": probs})
}

func bytesOf(s string) []int {
	out := make([]int, len(s))
	for i := range len(s) {
		out[i] = int(s[i])
	}
	return out
}

// chat streams a chat completion generated by the engine, with each token's
// id where the flavor would carry it.
func (s *Server) chat(w http.ResponseWriter, r *http.Request, f Flavor) {
	var req struct {
		Messages    []engine.Message `json:"messages"`
		MaxTokens   *int             `json:"max_tokens"`
		Temperature *float32         `json:"temperature"`
		Seed        *uint64          `json:"seed"`
		Logprobs    bool             `json:"logprobs"`
		TopLogprobs int              `json:"top_logprobs"`
		Stream      bool             `json:"stream"`
		TokenIDs    bool             `json:"return_tokens_as_token_ids"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !req.Stream {
		writeError(w, http.StatusBadRequest, "this stand-in streams only")
		return
	}
	fault, ok := s.begin(w)
	if !ok {
		return
	}
	prompt, err := s.Model.EncodeChat(req.Messages)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	o := engine.GenerateOptions{MaxTokens: 16, Temperature: 1, TopP: 1, TopLogprobs: req.TopLogprobs}
	if req.MaxTokens != nil {
		o.MaxTokens = *req.MaxTokens
	}
	if req.Temperature != nil {
		o.Temperature = *req.Temperature
	}
	if req.Seed != nil {
		o.Seed = *req.Seed
	}
	w.Header().Set("Content-Type", "text/event-stream")
	flusher, _ := w.(http.Flusher)
	send := func(v any) {
		raw, _ := json.Marshal(v)
		fmt.Fprintf(w, "data: %s\n\n", raw)
		if flusher != nil {
			flusher.Flush()
		}
	}
	name := func(id int, text string) string {
		if f == VLLM && req.TokenIDs {
			return "token_id:" + strconv.Itoa(id)
		}
		return text
	}
	res, err := s.Model.Generate(r.Context(), prompt, o, func(t engine.Token) error {
		c := map[string]any{"index": 0, "delta": map[string]string{"content": t.Text}, "finish_reason": nil}
		if req.Logprobs {
			e := map[string]any{"token": name(t.ID, t.Text), "logprob": t.Logprob, "bytes": bytesOf(t.Text)}
			top := []map[string]any{}
			for _, a := range t.Top {
				ta := map[string]any{"token": name(a.ID, a.Text), "logprob": a.Logprob, "bytes": bytesOf(a.Text)}
				if f == LlamaCpp {
					ta["id"] = a.ID
				}
				top = append(top, ta)
			}
			e["top_logprobs"] = top
			if f == LlamaCpp {
				e["id"] = t.ID
			}
			if fault != FaultShort {
				c["logprobs"] = map[string]any{"content": []any{e}}
			}
		}
		send(map[string]any{"id": "chatcmpl-test", "object": "chat.completion.chunk", "choices": []any{c}})
		return nil
	})
	if err != nil {
		send(map[string]any{"error": map[string]string{"message": err.Error()}})
		return
	}
	send(map[string]any{"id": "chatcmpl-test", "object": "chat.completion.chunk",
		"choices": []any{map[string]any{"index": 0, "delta": map[string]string{}, "finish_reason": res.FinishReason}},
		"usage":   map[string]int{"prompt_tokens": len(prompt), "completion_tokens": len(res.Tokens), "total_tokens": len(prompt) + len(res.Tokens)}})
	fmt.Fprint(w, "data: [DONE]\n\n")
}
