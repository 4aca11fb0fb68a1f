package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/e2e"
	"github.com/agoranet/agora/internal/testkit"
	"github.com/agoranet/agora/openai"
	"github.com/agoranet/agora/route"
	"github.com/agoranet/agora/wire"
)

// tap records every byte the gateway sends to miners and reads back.
type tap struct {
	mu   sync.Mutex
	seen bytes.Buffer
	rt   http.RoundTripper
}

func (t *tap) RoundTrip(r *http.Request) (*http.Response, error) {
	body, _ := io.ReadAll(r.Body)
	t.mu.Lock()
	t.seen.Write(body)
	t.mu.Unlock()
	r.Body = io.NopCloser(bytes.NewReader(body))
	resp, err := t.rt.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	t.mu.Lock()
	t.seen.Write(raw)
	t.mu.Unlock()
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	return resp, nil
}

func (t *tap) bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return bytes.Clone(t.seen.Bytes())
}

// TestSealedRoundTripGatewayCannotRead sends a request sealed to one miner
// through the gateway: the client gets a decryptable, receipted answer, and
// nothing the gateway handled or logged holds the prompt or the answer.
func TestSealedRoundTripGatewayCannotRead(t *testing.T) {
	const canary = "canary-prompt-5e2b91"
	target, other := realMiner(t, 1), realMiner(t, 2)
	minerKey, _ := testkit.Key(1)
	ek, err := e2e.DeriveKey(minerKey)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	tp := &tap{rt: http.DefaultTransport}
	gk, _ := testkit.Key(99)
	g := New(Config{Key: gk, Model: "agora-test", HTTP: &http.Client{Transport: tp},
		Logger:     slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Candidates: func(context.Context) ([]route.Candidate, error) { return []route.Candidate{other, target}, nil }})
	srv := httptest.NewServer(g.Handler())
	defer srv.Close()

	inner := `{"model":"agora-test","messages":[{"role":"user","content":"` + canary + `"}],"max_tokens":4096,"temperature":0}`
	for _, stream := range []bool{false, true} {
		body, reply, err := e2e.Seal(ek.PublicKey(), target.Hotkey, "agora-test", 12, stream, []byte(inner))
		if err != nil {
			t.Fatal(err)
		}
		resp := post(t, srv, "/v1/chat/completions", string(body), nil)
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get(HeaderMiner) != target.Hotkey.String() {
			t.Fatalf("stream=%v: status %d miner %q: %s", stream, resp.StatusCode, resp.Header.Get(HeaderMiner), raw)
		}
		var answer strings.Builder
		var usage *openai.Usage
		open := func(msg []byte) {
			pt, _, err := reply.Open(msg)
			if err != nil {
				t.Fatalf("stream=%v: %v", stream, err)
			}
			var r openai.Response
			if err := json.Unmarshal(pt, &r); err != nil {
				t.Fatalf("opened answer %q: %v", pt, err)
			}
			for _, c := range r.Choices {
				if c.Message != nil {
					answer.WriteString(c.Message.Content)
				}
				if c.Delta != nil {
					answer.WriteString(c.Delta.Content)
				}
			}
			if r.Usage != nil {
				usage = r.Usage
			}
		}
		if stream {
			rc, sum, err := wire.ReadStream(bytes.NewReader(raw), func(e wire.Event) error {
				if string(e.Data) != "[DONE]" {
					open(e.Data)
				}
				return nil
			})
			if err != nil || rc.Verify(target.Hotkey, body, sum) != nil {
				t.Fatalf("stream receipt: %v", err)
			}
		} else {
			rc, err := wire.ParseReceiptHeader(resp.Header.Get(wire.HeaderReceipt))
			if err != nil || rc.Verify(target.Hotkey, body, wire.Hash(raw)) != nil {
				t.Fatalf("receipt %v %v", rc, err)
			}
			open(raw)
		}
		if !reply.Done() || usage == nil || usage.CompletionTokens == 0 || usage.CompletionTokens > 12 {
			t.Fatalf("stream=%v: done=%v usage=%+v (the clear max_tokens of 12 must bind the miner)", stream, reply.Done(), usage)
		}
		if answer.Len() == 0 {
			t.Fatalf("stream=%v: empty answer", stream)
		}
	}
	seen := append(tp.bytes(), logs.Bytes()...)
	if len(tp.bytes()) == 0 {
		t.Fatal("the tap saw nothing")
	}
	for _, secret := range []string{canary, `"messages"`, `"choices"`, `"content"`} {
		if bytes.Contains(seen, []byte(secret)) {
			t.Errorf("the gateway handled %s in the clear", secret)
		}
	}
}

func TestSealedRequestRouting(t *testing.T) {
	target := realMiner(t, 1)
	other := realMiner(t, 2)
	minerKey, _ := testkit.Key(1)
	ek, _ := e2e.DeriveKey(minerKey)
	body, _, _ := e2e.Seal(ek.PublicKey(), target.Hotkey, "agora-test", 4, false, []byte(chatBody))

	// Sealed to a miner the gateway does not route to: a clear 503, no
	// attempt on another miner (which could not open it anyway).
	srv := gatewayFor(t, other)
	resp := post(t, srv, "/v1/chat/completions", string(body), nil)
	var e wire.ErrorBody
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(e.Error.Message, target.Hotkey.String()) {
		t.Fatalf("unroutable sealed request: %d %+v", resp.StatusCode, e)
	}
	// Sealed to miner 1 but delivered to miner 2 (a gateway lying about the
	// target): miner 2 refuses it.
	lying := other
	lying.Hotkey = target.Hotkey
	srv = gatewayFor(t, lying)
	resp = post(t, srv, "/v1/chat/completions", string(body), nil)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Fatal("a miner answered a request sealed to another miner")
	}
	// A malformed envelope is the client's error.
	resp = post(t, gatewayFor(t, target), "/v1/chat/completions", `{"model":"agora-test","max_tokens":4,"agora_sealed":{"miner":"x"}}`, nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad envelope: %d", resp.StatusCode)
	}
	// The miner list a sealing client picks from.
	r, err := http.Get(gatewayFor(t, target, other).URL + "/v1/agora/miners")
	if err != nil {
		t.Fatal(err)
	}
	var list struct{ Data []MinerInfo }
	json.NewDecoder(r.Body).Decode(&list)
	r.Body.Close()
	if len(list.Data) != 2 {
		t.Fatalf("miners %+v", list)
	}
	for _, m := range list.Data {
		if _, err := address.Parse(m.Hotkey); err != nil || m.Score <= 0 {
			t.Fatalf("miner %+v", m)
		}
	}
}
