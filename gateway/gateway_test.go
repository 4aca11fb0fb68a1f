package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/internal/testkit"
	"github.com/agoranet/agora/miner"
	"github.com/agoranet/agora/openai"
	"github.com/agoranet/agora/route"
	"github.com/agoranet/agora/wire"
)

// realMiner runs a miner on the built-in engine with a tiny model.
func realMiner(t *testing.T, seed byte) route.Candidate {
	t.Helper()
	k, _ := testkit.Key(seed)
	return builtinMiner(t, miner.Config{Hotkey: k, MaxConcurrent: 2, MaxQueue: 4})
}

// builtinMiner serves a miner configured by cfg, its backend the built-in
// engine with a generated tiny model, and returns it as a candidate.
func builtinMiner(t *testing.T, cfg miner.Config) route.Candidate {
	t.Helper()
	b, err := miner.NewBuiltin(testkit.LoadModel(t, "tiny", 1))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Backend = b
	mn, err := miner.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mn.Handler())
	t.Cleanup(srv.Close)
	return route.Candidate{Hotkey: testkit.Addr(cfg.Hotkey), Endpoint: srv.URL, Score: 1}
}

// fakeMiner answers every request with handler, whatever it says.
func fakeMiner(t *testing.T, seed byte, h http.HandlerFunc) route.Candidate {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	_, a := testkit.Key(seed)
	return route.Candidate{Hotkey: a, Endpoint: srv.URL, Score: 1}
}

func gatewayFor(t *testing.T, cands ...route.Candidate) *httptest.Server {
	gk, _ := testkit.Key(99)
	g := New(Config{Key: gk, Model: "agora-test", Candidates: func(context.Context) ([]route.Candidate, error) { return cands, nil }})
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(srv.Close)
	return srv
}

func post(t *testing.T, srv *httptest.Server, path, body string, hdr map[string]string) *http.Response {
	req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

const chatBody = `{"model":"agora-test","messages":[{"role":"user","content":"hello"}],"max_tokens":5,"temperature":0}`

func TestRoutesAndReturnsVerifiedReceipt(t *testing.T) {
	good := realMiner(t, 1)
	srv := gatewayFor(t, good)
	resp := post(t, srv, "/v1/chat/completions", chatBody, nil)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get(HeaderMiner) != good.Hotkey.String() {
		t.Fatalf("status %d miner %q: %s", resp.StatusCode, resp.Header.Get(HeaderMiner), body)
	}
	rc, err := wire.ParseReceiptHeader(resp.Header.Get(wire.HeaderReceipt))
	if err != nil || rc.Verify(good.Hotkey, []byte(chatBody), wire.Hash(body)) != nil {
		t.Fatalf("receipt %v %v", rc, err)
	}
	var out openai.Response
	if err := json.Unmarshal(body, &out); err != nil || out.Object != "chat.completion" || out.Usage == nil {
		t.Fatalf("answer %s", body)
	}
	// /v1/models and bad requests speak OpenAI.
	r2, _ := srv.Client().Get(srv.URL + "/v1/models")
	var models struct {
		Data []struct{ ID string } `json:"data"`
	}
	json.NewDecoder(r2.Body).Decode(&models)
	r2.Body.Close()
	if len(models.Data) != 1 || models.Data[0].ID != "agora-test" {
		t.Fatalf("models %+v", models)
	}
	bad := post(t, srv, "/v1/chat/completions", `{"messages":[]}`, nil)
	var e wire.ErrorBody
	json.NewDecoder(bad.Body).Decode(&e)
	bad.Body.Close()
	if bad.StatusCode != 400 || e.Error.Type != "invalid_request_error" {
		t.Fatalf("bad request: %d %+v", bad.StatusCode, e)
	}
}

func TestFailoverBeforeFirstByte(t *testing.T) {
	good := realMiner(t, 1)
	broken := fakeMiner(t, 2, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) })
	liar := fakeMiner(t, 3, func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, `{"choices":[]}`) }) // no receipt
	dead := route.Candidate{Hotkey: address.Address{7}, Endpoint: "http://127.0.0.1:1", Score: 1}
	srv := gatewayFor(t, broken, liar, dead, good)
	for range 5 {
		resp := post(t, srv, "/v1/chat/completions", chatBody, nil)
		resp.Body.Close()
		if resp.StatusCode == 200 && resp.Header.Get(HeaderMiner) != good.Hotkey.String() {
			t.Fatalf("answer from %s, only the good miner can answer", resp.Header.Get(HeaderMiner))
		}
	}
	// With every retry allowed, the good miner is always reached.
	gk, _ := testkit.Key(99)
	g := New(Config{Key: gk, Model: "agora-test", Attempts: 4, Candidates: func(context.Context) ([]route.Candidate, error) {
		return []route.Candidate{broken, liar, dead, good}, nil
	}})
	s2 := httptest.NewServer(g.Handler())
	defer s2.Close()
	for range 5 {
		resp := post(t, s2, "/v1/chat/completions", chatBody, nil)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d with a good miner among four attempts", resp.StatusCode)
		}
	}
}

func TestBusyMinersPassRetryAfter(t *testing.T) {
	busy := func(seed byte) route.Candidate {
		return fakeMiner(t, seed, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "9")
			w.WriteHeader(503)
			io.WriteString(w, `{"error":{"message":"busy","type":"overloaded_error"}}`)
		})
	}
	srv := gatewayFor(t, busy(1), busy(2))
	resp := post(t, srv, "/v1/chat/completions", chatBody, nil)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "9" {
		t.Fatalf("status %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

func TestExcludeMiners(t *testing.T) {
	good := realMiner(t, 1)
	srv := gatewayFor(t, good)
	resp := post(t, srv, "/v1/chat/completions", chatBody, map[string]string{HeaderExclude: good.Hotkey.String()})
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("excluded the only miner: status %d", resp.StatusCode)
	}
	resp = post(t, srv, "/v1/chat/completions", chatBody, map[string]string{HeaderExclude: "not-an-address"})
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("bad exclusion header: status %d", resp.StatusCode)
	}
}

func TestStreamRelayWithReceipt(t *testing.T) {
	good := realMiner(t, 1)
	srv := gatewayFor(t, good)
	body := strings.Replace(chatBody, `"max_tokens":5`, `"max_tokens":5,"stream":true`, 1)
	resp := post(t, srv, "/v1/chat/completions", body, nil)
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get(HeaderMiner) != good.Hotkey.String() {
		t.Fatalf("headers %v", resp.Header)
	}
	var chunks int
	var sawDone bool
	rc, sum, err := wire.ReadStream(resp.Body, func(e wire.Event) error {
		if string(e.Data) == "[DONE]" {
			sawDone = true
		} else {
			chunks++
		}
		return nil
	})
	if err != nil || !sawDone || chunks == 0 {
		t.Fatalf("stream: %v done=%v chunks=%d", err, sawDone, chunks)
	}
	if err := rc.Verify(good.Hotkey, []byte(body), sum); err != nil {
		t.Fatalf("relayed receipt: %v", err)
	}
}

func TestMidStreamFailureEndsWithErrorEvent(t *testing.T) {
	cut := fakeMiner(t, 4, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n")
		w.(http.Flusher).Flush()
		// then the connection drops: no [DONE], no receipt
	})
	srv := gatewayFor(t, cut)
	resp := post(t, srv, "/v1/chat/completions", strings.Replace(chatBody, `"max_tokens":5`, `"max_tokens":5,"stream":true`, 1), nil)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(b, []byte(`"Hel"`)) || !bytes.Contains(b, []byte(`"error"`)) {
		t.Fatalf("stream after a mid-stream failure: %d %s", resp.StatusCode, b)
	}
}

// TestMidStreamFailoverContinues cuts a completions stream after two chunks;
// the gateway continues it on another miner from the text already sent, so
// the client sees one completion ending in the second miner's receipt.
func TestMidStreamFailoverContinues(t *testing.T) {
	cut := fakeMiner(t, 4, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, piece := range []string{"Once", " upon"} {
			fmt.Fprintf(w, "data: {\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":%q}]}\n\n", piece)
		}
		w.(http.Flusher).Flush()
	})
	cut.Score = 1e12 // tried first
	next := realMiner(t, 1)
	var mu sync.Mutex
	var got []byte
	rec := httptest.NewServer(httputil.NewSingleHostReverseProxy(mustURL(t, next.Endpoint)))
	t.Cleanup(rec.Close)
	recorded := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = b
		mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b))
		rec.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(recorded.Close)
	next.Endpoint, next.Score = recorded.URL, 1e-12
	srv := gatewayFor(t, cut, next)
	resp := post(t, srv, "/v1/completions", `{"model":"agora-test","prompt":"Tell me a story.","max_tokens":6,"stream":true,"temperature":0}`, nil)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var text strings.Builder
	var continuation wire.StreamHasher // what the second miner's receipt covers
	failedOver := false
	rc, _, err := wire.ReadStream(bytes.NewReader(b), func(e wire.Event) error {
		if e.Name == FailoverEvent {
			failedOver = true
			return nil
		}
		if failedOver {
			continuation.Add(e.Data)
		}
		var chunk openai.Response
		if json.Unmarshal(e.Data, &chunk) == nil {
			for _, c := range chunk.Choices {
				if c.Text != nil {
					text.WriteString(*c.Text)
				}
			}
		}
		return nil
	})
	if resp.StatusCode != 200 || err != nil || bytes.Contains(b, []byte(`"error"`)) {
		t.Fatalf("continued stream: %d %v %s", resp.StatusCode, err, b)
	}
	mu.Lock()
	defer mu.Unlock()
	var cont openai.ChatRequest
	if err := json.Unmarshal(got, &cont); err != nil {
		t.Fatal(err)
	}
	if cont.Prompt != "Tell me a story.Once upon" || cont.MaxTokens == nil || *cont.MaxTokens != 4 {
		t.Fatalf("continuation asked for %q with max_tokens %v", cont.Prompt, cont.MaxTokens)
	}
	if err := rc.Verify(next.Hotkey, got, continuation.Sum()); err != nil {
		t.Fatalf("the receipt does not cover the continuation: %v", err)
	}
	if !strings.HasPrefix(text.String(), "Once upon") || text.Len() <= len("Once upon") {
		t.Fatalf("client saw %q", text.String())
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestMeterCountsDeliveredTokens: what a stream's client is billed for
// when no receipt verifies.
func TestMeterCountsDeliveredTokens(t *testing.T) {
	chunk := func(ids int, text string, finish bool) string {
		c := openai.Choice{Delta: &openai.Message{Content: text}}
		if finish {
			stop := "stop"
			c.FinishReason = &stop
		}
		raw, _ := json.Marshal(openai.Response{Choices: []openai.Choice{c}, AgoraTokenIDs: make([]int, ids)})
		return string(raw)
	}
	for _, tc := range []struct {
		name   string
		sealed bool
		max    int
		events []string
		want   int
	}{
		{"clear ids", false, 100, []string{chunk(1, "a", false), chunk(2, "bc", false)}, 3},
		{"clear without ids: one per chunk with text", false, 100, []string{chunk(0, "a", false), chunk(0, "", false), chunk(0, "b", false)}, 2},
		{"clear closing chunk is free", false, 100, []string{chunk(1, "a", false), chunk(0, "é", true), "[DONE]"}, 1},
		{"clear capped by max_tokens", false, 4, []string{chunk(1000, "x", false)}, 4},
		{"clear error event", false, 100, []string{chunk(1, "a", false), `{"error":{"message":"boom"}}`}, 1},
		{"sealed, cut mid-stream", true, 100, []string{"s1", "s2", "s3"}, 3},
		{"sealed, complete: the closing event is free", true, 100, []string{"s1", "s2", "s3", "[DONE]"}, 2},
		{"sealed capped by max_tokens", true, 2, []string{"s1", "s2", "s3", "s4"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := meter{sealed: tc.sealed, max: tc.max}
			for _, e := range tc.events {
				m.add([]byte(e))
			}
			if got := m.delivered(); got != tc.want {
				t.Fatalf("delivered %d, want %d", got, tc.want)
			}
		})
	}
}

// TestMinerListReportsChecksAndTokens: GET /v1/agora/miners carries the
// validator's check counts and the completion tokens each miner served
// through the gateway with a verified receipt, streamed or not.
func TestMinerListReportsChecksAndTokens(t *testing.T) {
	good := realMiner(t, 1)
	good.Checks, good.FailedChecks = 7, 2
	srv := gatewayFor(t, good)
	list := func() MinerInfo {
		t.Helper()
		r, err := http.Get(srv.URL + "/v1/agora/miners")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		var l struct{ Data []MinerInfo }
		if err := json.NewDecoder(r.Body).Decode(&l); err != nil || len(l.Data) != 1 {
			t.Fatalf("miners: %+v %v", l, err)
		}
		return l.Data[0]
	}
	if m := list(); m.Checks != 7 || m.FailedChecks != 2 || m.TokensServed != 0 {
		t.Fatalf("before any request: %+v", m)
	}
	var want uint64
	for _, body := range []string{chatBody, strings.Replace(chatBody, `"max_tokens":5`, `"max_tokens":5,"stream":true`, 1)} {
		resp := post(t, srv, "/v1/chat/completions", body, nil)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		want += 5 // at most max_tokens per answer
		if got := list().TokensServed; got == 0 || got > want {
			t.Fatalf("tokens served %d after %d requested", got, want)
		}
	}
}
