package miner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/internal/testkit"
	"github.com/agoranet/agora/openai"
	"github.com/agoranet/agora/wire"
)

func tinyBackend(t *testing.T) *Builtin {
	t.Helper()
	b, err := NewBuiltin(testkit.LoadModel(t, "tiny", 5))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func startMiner(t *testing.T, b Backend, mut func(*Config)) (*httptest.Server, address.Address) {
	t.Helper()
	key, addr := testkit.Key(1)
	cfg := Config{Hotkey: key, Backend: b, MaxConcurrent: 2, MaxQueue: 4, PricePer1K: 1000}
	if mut != nil {
		mut(&cfg)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	return srv, addr
}

// askPlain posts body to the miner at url through c and reads its signed
// plain answer.
func askPlain(t *testing.T, c *wire.Client, url string, miner address.Address, body []byte) ([]byte, *wire.Receipt) {
	t.Helper()
	resp, err := c.Post(context.Background(), url+"/v1/chat/completions", miner, body)
	if err != nil {
		t.Fatal(err)
	}
	raw, rc, err := wire.ReadPlain(resp, miner, body, 1<<20)
	if err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	return raw, rc
}

func TestBuiltinPlainAndStream(t *testing.T) {
	b := tinyBackend(t)
	srv, miner := startMiner(t, b, nil)
	valKey, _ := testkit.Key(2)
	c := wire.NewClient(valKey, srv.Client())
	body := []byte(`{"model":"m","messages":[{"role":"user","content":"hello there"}],"max_tokens":6,"temperature":0,"logprobs":true,"top_logprobs":2}`)
	raw, rc := askPlain(t, c, srv.URL, miner, body)
	var out openai.Response
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	if out.Object != "chat.completion" || out.Usage == nil || out.Usage.CompletionTokens != len(out.AgoraTokenIDs) || len(out.AgoraTokenIDs) == 0 {
		t.Fatalf("response %s", raw)
	}
	if rc.ModelID != b.ModelID() || rc.CompletionTokens != out.Usage.CompletionTokens || rc.Price == 0 {
		t.Fatalf("receipt %+v", rc)
	}
	lp := out.Choices[0].Logprobs
	if lp == nil || len(lp.Content) != len(out.AgoraTokenIDs) || len(lp.Content[0].TopLogprobs) != 2 {
		t.Fatalf("logprobs %+v", lp)
	}

	// The same request streamed yields the same tokens, and a receipt over the stream.
	sbody := []byte(strings.Replace(string(body), `"max_tokens":6`, `"max_tokens":6,"stream":true`, 1))
	resp, err := c.Post(context.Background(), srv.URL+"/v1/chat/completions", miner, sbody)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ids []int
	var text strings.Builder
	rc, sum, err := wire.ReadStream(resp.Body, func(e wire.Event) error {
		if string(e.Data) == "[DONE]" {
			return nil
		}
		var ch openai.Response
		if err := json.Unmarshal(e.Data, &ch); err != nil {
			return err
		}
		ids = append(ids, ch.AgoraTokenIDs...)
		if ch.Choices[0].Delta != nil {
			text.WriteString(ch.Choices[0].Delta.Content)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Verify(miner, sbody, sum); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(ids) != fmt.Sprint(out.AgoraTokenIDs) || text.String() != out.Choices[0].Message.Content {
		t.Fatalf("stream %v %q, plain %v %q", ids, text.String(), out.AgoraTokenIDs, out.Choices[0].Message.Content)
	}

	// Bad requests get OpenAI-shaped 400s.
	for _, bad := range []string{`{"messages":[]}`, `{"messages":[{"role":"wizard","content":"x"}]}`, `not json`, `{"messages":[{"role":"user","content":"x"}],"temperature":5}`} {
		resp, err := c.Post(context.Background(), srv.URL+"/v1/chat/completions", miner, []byte(bad))
		if err != nil {
			t.Fatal(err)
		}
		var e wire.ErrorBody
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != 400 || e.Error.Message == "" {
			t.Errorf("%s: status %d %+v", bad, resp.StatusCode, e)
		}
	}
	// Health and metrics answer without a signature.
	for _, path := range []string{"/health", "/metrics"} {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || (path == "/metrics" && !strings.Contains(string(b), "agora_miner_completion_tokens_total")) {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
		}
	}
}

func TestPinnedModelRefused(t *testing.T) {
	key, _ := testkit.Key(1)
	_, err := New(Config{Hotkey: key, Backend: tinyBackend(t), PinnedModel: strings.Repeat("ab", 32)})
	if !errors.Is(err, ErrWrongModel) {
		t.Fatalf("err %v, want ErrWrongModel", err)
	}
}

// fakeUpstream speaks the OpenAI streaming protocol, and fails on demand.
func fakeUpstream(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req openai.ChatRequest
		json.NewDecoder(r.Body).Decode(&req)
		switch {
		case strings.Contains(fmt.Sprint(req.Messages), "busy"):
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(429)
			io.WriteString(w, `{"error":{"message":"slow down"}}`)
			return
		case strings.Contains(fmt.Sprint(req.Messages), "crash"):
			w.WriteHeader(500)
			io.WriteString(w, `boom`)
			return
		}
		if !req.Stream || req.Model != "upstream-model" {
			t.Errorf("upstream got stream=%v model=%q", req.Stream, req.Model)
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for i, tok := range []string{"Hel", "lo", "!"} {
			fmt.Fprintf(w, `data: {"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":%q},"logprobs":{"content":[{"token":%q,"logprob":-0.%d,"bytes":[],"top_logprobs":[]}]},"finish_reason":null}]}`+"\n\n", tok, tok, i+1)
			w.(http.Flusher).Flush()
		}
		io.WriteString(w, `data: {"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}`+"\n\ndata: [DONE]\n\n")
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestUpstreamBackend(t *testing.T) {
	up := fakeUpstream(t)
	srv, miner := startMiner(t, &Upstream{URL: up.URL + "/v1", Model: "upstream-model", ID: strings.Repeat("cd", 32)}, nil)
	valKey, _ := testkit.Key(2)
	c := wire.NewClient(valKey, srv.Client())
	body := []byte(`{"model":"m","messages":[{"role":"user","content":"hi"}],"logprobs":true}`)
	raw, rc := askPlain(t, c, srv.URL, miner, body)
	var out openai.Response
	json.Unmarshal(raw, &out)
	if out.Choices[0].Message.Content != "Hello!" || rc.PromptTokens != 5 || rc.CompletionTokens != 3 || len(out.Choices[0].Logprobs.Content) != 3 {
		t.Fatalf("upstream answer %s, receipt %+v", raw, rc)
	}
	// Streamed passthrough.
	sbody := []byte(`{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}`)
	resp, _ := c.Post(context.Background(), srv.URL+"/v1/chat/completions", miner, sbody)
	var pieces []string
	rc, sum, err := wire.ReadStream(resp.Body, func(e wire.Event) error {
		var ch openai.Response
		if json.Unmarshal(e.Data, &ch) == nil && len(ch.Choices) > 0 && ch.Choices[0].Delta != nil && ch.Choices[0].Delta.Content != "" {
			pieces = append(pieces, ch.Choices[0].Delta.Content)
		}
		return nil
	})
	resp.Body.Close()
	if err != nil || rc.Verify(miner, sbody, sum) != nil || strings.Join(pieces, "|") != "Hel|lo|!" {
		t.Fatalf("stream %v %v %v", pieces, err, rc)
	}
	// Upstream errors keep their meaning.
	for _, tc := range []struct {
		content    string
		status     int
		retryAfter string
	}{{"busy", 429, "7"}, {"crash", 502, ""}} {
		b := []byte(fmt.Sprintf(`{"model":"m","messages":[{"role":"user","content":%q}]}`, tc.content))
		resp, err := c.Post(context.Background(), srv.URL+"/v1/chat/completions", miner, b)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status || resp.Header.Get("Retry-After") != tc.retryAfter {
			t.Errorf("%s: status %d retry-after %q", tc.content, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
}

// slowBackend blocks until released, to fill the miner's slots; started,
// if set, is signalled as each request begins.
type slowBackend struct {
	release chan struct{}
	started chan struct{}
}

func (s *slowBackend) ModelID() string { return "" }
func (s *slowBackend) Complete(ctx context.Context, _ *openai.ChatRequest, _ bool, emit func(Piece) error) (*Result, error) {
	if s.started != nil {
		s.started <- struct{}{}
	}
	select {
	case <-s.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &Result{FinishReason: "stop"}, emit(Piece{Text: "ok"})
}

func TestOverloadAnswers503(t *testing.T) {
	sb := &slowBackend{release: make(chan struct{}), started: make(chan struct{}, 1)}
	srv, miner := startMiner(t, sb, func(c *Config) { c.MaxConcurrent, c.MaxQueue = 1, 0 })
	valKey, _ := testkit.Key(2)
	c := wire.NewClient(valKey, srv.Client())
	body := []byte(`{"model":"m","messages":[{"role":"user","content":"x"}]}`)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		resp, err := c.Post(context.Background(), srv.URL+"/v1/chat/completions", miner, body)
		if err == nil {
			resp.Body.Close()
		}
	}()
	<-sb.started // the first request holds the only slot
	resp, err := c.Post(context.Background(), srv.URL+"/v1/chat/completions", miner, body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	close(sb.release)
	wg.Wait()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("second request: %d (Retry-After %q), want 503", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

func TestH2C(t *testing.T) {
	_, miner := testkit.Key(1)
	l := testkit.Listen(t)
	key, _ := testkit.Key(1)
	m, _ := New(Config{Hotkey: key, Backend: tinyBackend(t)})
	hs := NewHTTPServer(m.Handler())
	served := make(chan struct{})
	go func() { defer close(served); hs.Serve(l) }()
	defer func() { hs.Close(); <-served }()
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	hc := &http.Client{Transport: &http.Transport{Protocols: &p}}
	valKey, _ := testkit.Key(2)
	body := []byte(`{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":2}`)
	resp, err := wire.NewClient(valKey, hc).Post(context.Background(), "http://"+l.Addr().String()+"/v1/chat/completions", miner, body)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := wire.ReadPlain(resp, miner, body, 1<<20); err != nil || resp.ProtoMajor != 2 {
		t.Fatalf("h2c: proto %s err %v", resp.Proto, err)
	}
}
