package validator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/agoranet/agora/engine"
	"github.com/agoranet/agora/wire"
)

// ErrVerifierUnavailable marks a verification that could not be done: the
// verifier (an upstream server) was down, answered an error or something
// malformed. It says nothing about the miner, whose score stays as it was.
var ErrVerifierUnavailable = errors.New("verifier unavailable")

// TokenScore is how the verifying model rates one given token.
type TokenScore struct {
	ID         int
	Logprob    float32
	Rank       int // 1 = the model's top choice
	TopLogprob float32
	// Bound is set when the token was outside the alternatives the verifier
	// reported: Logprob is then an upper bound and Rank a lower bound.
	Bound bool
}

// Scorer teacher-forces completion after prompt and rates each completion
// token: the built-in engine (EngineScorer) or an upstream server
// (UpstreamScorer).
type Scorer interface {
	Score(ctx context.Context, prompt, completion []int) ([]TokenScore, error)
}

// EngineScorer scores with the built-in engine.
type EngineScorer struct{ Model *engine.Model }

// Score implements Scorer.
func (e EngineScorer) Score(ctx context.Context, prompt, completion []int) ([]TokenScore, error) {
	s, err := e.Model.Score(ctx, prompt, completion)
	if err != nil {
		return nil, err
	}
	out := make([]TokenScore, len(s))
	for i, t := range s {
		out[i] = TokenScore{ID: t.ID, Logprob: t.Logprob, Rank: t.Rank, TopLogprob: t.TopLogprob}
	}
	return out, nil
}

// Protocol is how an UpstreamScorer asks for logprobs.
type Protocol string

// Protocols.
const (
	// ProtocolVLLM is vLLM's /v1/completions with a token-id prompt, echo and
	// prompt_logprobs: one request scores the whole sequence. Servers that
	// instead answer the legacy OpenAI echo+logprobs form are read too.
	ProtocolVLLM Protocol = "vllm"
	// ProtocolLlamaCpp is llama.cpp server's /completion. llama-server
	// returns probabilities for generated tokens only (n_probs; its
	// /v1/completions refuses echo), so each completion position is one
	// request predicting one token after the prefix, served from the
	// prompt cache. Tokens outside the top n_probs get bounds, not values.
	ProtocolLlamaCpp Protocol = "llamacpp"
)

// DefaultTopN is how many alternatives an UpstreamScorer asks for per position.
const DefaultTopN = 5

// UpstreamScorer scores through an OpenAI-compatible server holding the
// subnet's model, e.g. on a GPU, so a validator can verify models far too
// large for the CPU engine.
type UpstreamScorer struct {
	URL      string // base, e.g. http://127.0.0.1:8000/v1
	Model    string // the model name the server knows
	APIKey   string
	Protocol Protocol // default ProtocolVLLM
	TopN     int      // alternatives per position (default DefaultTopN)
	Client   *http.Client
}

// Score implements Scorer. Every failure is ErrVerifierUnavailable.
func (u *UpstreamScorer) Score(ctx context.Context, prompt, completion []int) ([]TokenScore, error) {
	if len(prompt) == 0 {
		return nil, errors.New("empty prompt")
	}
	if len(completion) == 0 {
		return []TokenScore{}, nil
	}
	var out []TokenScore
	var err error
	switch u.Protocol {
	case ProtocolVLLM, "":
		out, err = u.scoreVLLM(ctx, prompt, completion)
	case ProtocolLlamaCpp:
		out, err = u.scoreLlamaCpp(ctx, prompt, completion)
	default:
		return nil, fmt.Errorf("%w: protocol %q (vllm or llamacpp)", ErrVerifierUnavailable, u.Protocol)
	}
	if err != nil && !errors.Is(err, ErrVerifierUnavailable) {
		err = fmt.Errorf("%w: %w", ErrVerifierUnavailable, err)
	}
	return out, err
}

func (u *UpstreamScorer) topN() int {
	if u.TopN > 0 {
		return u.TopN
	}
	return DefaultTopN
}

// post sends body as JSON and decodes the answer into out.
func (u *UpstreamScorer) post(ctx context.Context, url string, body, out any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if u.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+u.APIKey)
	}
	client := u.Client
	if client == nil {
		client = wire.NewHTTPClient(5 * time.Minute)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrVerifierUnavailable, err)
	}
	defer resp.Body.Close()
	// Answers are a few entries per token; 64 MiB is far beyond any honest one.
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%w: read answer: %w", ErrVerifierUnavailable, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: %s answered %s: %.200s", ErrVerifierUnavailable, url, resp.Status, bytes.TrimSpace(data))
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%w: malformed answer from %s: %w", ErrVerifierUnavailable, url, err)
	}
	return nil
}

type vllmEntry struct {
	Logprob float32 `json:"logprob"`
	Rank    *int    `json:"rank"`
}

func (u *UpstreamScorer) scoreVLLM(ctx context.Context, prompt, completion []int) ([]TokenScore, error) {
	seq := append(append(make([]int, 0, len(prompt)+len(completion)), prompt...), completion...)
	n := u.topN()
	body := map[string]any{
		"model": u.Model, "prompt": seq, "max_tokens": 1, "temperature": 0,
		"echo": true, "prompt_logprobs": n, "logprobs": n, "return_tokens_as_token_ids": true,
	}
	var resp struct {
		Choices []struct {
			PromptLogprobs []map[string]vllmEntry `json:"prompt_logprobs"`
			Logprobs       *struct {
				Tokens        []string             `json:"tokens"`
				TokenLogprobs []*float32           `json:"token_logprobs"`
				TopLogprobs   []map[string]float32 `json:"top_logprobs"`
			} `json:"logprobs"`
		} `json:"choices"`
	}
	if err := u.post(ctx, strings.TrimRight(u.URL, "/")+"/completions", body, &resp); err != nil {
		return nil, err
	}
	if len(resp.Choices) != 1 {
		return nil, fmt.Errorf("%d choices, want 1", len(resp.Choices))
	}
	c := resp.Choices[0]
	out := make([]TokenScore, len(completion))
	switch {
	case c.PromptLogprobs != nil:
		if len(c.PromptLogprobs) != len(seq) {
			return nil, fmt.Errorf("prompt_logprobs has %d positions for %d tokens", len(c.PromptLogprobs), len(seq))
		}
		for i, id := range completion {
			pos := c.PromptLogprobs[len(prompt)+i]
			alts := make(map[int]float32, len(pos))
			var rank *int
			for k, e := range pos {
				tid, err := strconv.Atoi(k)
				if err != nil {
					return nil, fmt.Errorf("prompt_logprobs key %q is not a token id", k)
				}
				alts[tid] = e.Logprob
				if tid == id {
					rank = e.Rank
				}
			}
			if _, ok := alts[id]; !ok {
				return nil, fmt.Errorf("prompt_logprobs position %d lacks its token %d", len(prompt)+i, id)
			}
			out[i] = fromAlternatives(id, alts)
			if rank != nil && *rank >= 1 {
				// vLLM knows the rank over the whole vocabulary.
				out[i].Rank = *rank
			}
		}
	case c.Logprobs != nil:
		lp := c.Logprobs
		if len(lp.TokenLogprobs) != len(seq) || len(lp.TopLogprobs) != len(seq) {
			return nil, fmt.Errorf("echoed logprobs cover %d/%d positions for %d tokens", len(lp.TokenLogprobs), len(lp.TopLogprobs), len(seq))
		}
		for i, id := range completion {
			p := len(prompt) + i
			if lp.TokenLogprobs[p] == nil {
				return nil, fmt.Errorf("no logprob at position %d", p)
			}
			alts := map[int]float32{}
			for k, v := range lp.TopLogprobs[p] {
				tid, err := tokenIDString(k)
				if err != nil {
					return nil, err
				}
				alts[tid] = v
			}
			alts[id] = *lp.TokenLogprobs[p]
			out[i] = fromAlternatives(id, alts)
		}
	default:
		return nil, errors.New("the answer has neither prompt_logprobs nor echoed logprobs (is the server vLLM?)")
	}
	return out, nil
}

// tokenIDString parses vLLM's return_tokens_as_token_ids form, "token_id:123".
func tokenIDString(s string) (int, error) {
	rest, ok := strings.CutPrefix(s, "token_id:")
	if !ok {
		return 0, fmt.Errorf("token %q is not in the token_id:N form (return_tokens_as_token_ids)", s)
	}
	return strconv.Atoi(rest)
}

// fromAlternatives scores id from the alternatives a server listed, which
// include id.
func fromAlternatives(id int, alts map[int]float32) TokenScore {
	s := TokenScore{ID: id, Logprob: alts[id], Rank: 1, TopLogprob: float32(math.Inf(-1))}
	for _, v := range alts {
		if v > s.Logprob {
			s.Rank++
		}
		s.TopLogprob = max(s.TopLogprob, v)
	}
	return s
}

type llamaProb struct {
	ID          int         `json:"id"`
	Logprob     *float32    `json:"logprob"`
	TopLogprobs []llamaProb `json:"top_logprobs"`
}

func (u *UpstreamScorer) scoreLlamaCpp(ctx context.Context, prompt, completion []int) ([]TokenScore, error) {
	base := strings.TrimSuffix(strings.TrimRight(u.URL, "/"), "/v1")
	seq := append(append(make([]int, 0, len(prompt)+len(completion)), prompt...), completion...)
	n := u.topN()
	out := make([]TokenScore, len(completion))
	for i, id := range completion {
		// temperature < 0: greedy, with probabilities a plain softmax of the
		// logits, not reshaped by any sampler.
		body := map[string]any{"prompt": seq[:len(prompt)+i], "n_predict": 1, "n_probs": n,
			"temperature": -1, "cache_prompt": true, "return_tokens": true}
		var resp struct {
			Probs []llamaProb `json:"completion_probabilities"`
		}
		if err := u.post(ctx, base+"/completion", body, &resp); err != nil {
			return nil, err
		}
		if len(resp.Probs) != 1 {
			return nil, fmt.Errorf("completion_probabilities has %d entries for one predicted token", len(resp.Probs))
		}
		p := resp.Probs[0]
		alts := map[int]float32{}
		for _, a := range append(p.TopLogprobs, llamaProb{ID: p.ID, Logprob: p.Logprob}) {
			if a.Logprob == nil {
				return nil, fmt.Errorf("position %d: an alternative without a logprob (post_sampling_probs on?)", len(prompt)+i)
			}
			alts[a.ID] = *a.Logprob
		}
		if _, ok := alts[id]; ok {
			out[i] = fromAlternatives(id, alts)
			continue
		}
		// Outside the listed alternatives: no more likely than the least of them.
		s := TokenScore{ID: id, Logprob: float32(math.Inf(1)), Rank: len(alts) + 1, TopLogprob: float32(math.Inf(-1)), Bound: true}
		for _, v := range alts {
			s.Logprob = min(s.Logprob, v)
			s.TopLogprob = max(s.TopLogprob, v)
		}
		out[i] = s
	}
	return out, nil
}
