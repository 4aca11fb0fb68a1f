package wire

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/internal/testkit"
)

// minerServer verifies requests and answers with a signed receipt, plain or streamed.
func minerServer(t *testing.T, minerKey ed25519.PrivateKey, allowed ...address.Address) *httptest.Server {
	return minerServerWith(t, minerKey, nil, allowed...)
}

func allowOnly(allowed ...address.Address) Allow {
	return func(_ context.Context, a address.Address) error {
		for _, x := range allowed {
			if a == x {
				return nil
			}
		}
		return fmt.Errorf("%w: %s", ErrNotAllowed, a)
	}
}

// minerServerWith is minerServer with a verifier adjusted by mut.
func minerServerWith(t *testing.T, minerKey ed25519.PrivateKey, mut func(*Verifier), allowed ...address.Address) *httptest.Server {
	self := address.FromPubKey(minerKey.Public().(ed25519.PublicKey))
	v := NewVerifier(self, allowOnly(allowed...), 1024)
	if mut != nil {
		mut(v)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		signer, ok := SignerFrom(r.Context())
		if !ok || allowOnly(allowed...)(r.Context(), signer.Address) != nil {
			t.Errorf("handler saw signer %v %v", signer.Address, ok)
		}
		if r.URL.Path == "/v1/stream" {
			w.Header().Set("Content-Type", "text/event-stream")
			var hs StreamHasher
			for _, chunk := range []string{`{"c":"a"}`, `{"c":"b"}`, "[DONE]"} {
				fmt.Fprintf(w, "data: %s\n\n", chunk)
				hs.Add([]byte(chunk))
			}
			rc := &Receipt{RequestHash: Hash(body), ResponseHash: hs.Sum(), ModelID: "m", CompletionTokens: 2}
			SignReceipt(minerKey, rc)
			WriteReceiptEvent(w, rc)
			return
		}
		resp := []byte(`{"ok":true}`)
		rc := &Receipt{RequestHash: Hash(body), ResponseHash: Hash(resp), ModelID: "m", PromptTokens: 3, CompletionTokens: 1, Price: 7}
		SignReceipt(minerKey, rc)
		w.Header().Set(HeaderReceipt, rc.EncodeHeader())
		w.Write(resp)
	})
	srv := httptest.NewServer(v.Middleware(nil, h))
	t.Cleanup(srv.Close)
	return srv
}

func TestSignedRequestAndReceipt(t *testing.T) {
	minerKey, miner := testkit.Key(1)
	valKey, val := testkit.Key(2)
	srv := minerServer(t, minerKey, val)
	c := NewClient(valKey, srv.Client())
	body := []byte(`{"model":"m","messages":[]}`)
	resp, err := c.Post(context.Background(), srv.URL+"/v1/chat/completions", miner, body)
	if err != nil {
		t.Fatal(err)
	}
	out, rc, err := ReadPlain(resp, miner, body, 1<<20)
	if err != nil {
		t.Fatalf("%v (%s)", err, out)
	}
	if rc.PromptTokens != 3 || rc.Price != 7 || string(out) != `{"ok":true}` {
		t.Fatalf("receipt %+v body %s", rc, out)
	}
	// The receipt binds this request: checking it against another fails.
	if err := rc.Verify(miner, []byte("other"), Hash(out)); !errors.Is(err, ErrBadReceipt) {
		t.Fatalf("receipt verified for another request: %v", err)
	}
	_, other := testkit.Key(9)
	if err := rc.Verify(other, body, Hash(out)); !errors.Is(err, ErrBadReceipt) {
		t.Fatalf("receipt verified for another miner: %v", err)
	}
	forged := *rc
	forged.Price = 1
	if err := forged.Verify(miner, body, Hash(out)); !errors.Is(err, ErrBadReceipt) {
		t.Fatalf("edited receipt verified: %v", err)
	}
}

func TestStreamReceipt(t *testing.T) {
	minerKey, miner := testkit.Key(1)
	valKey, val := testkit.Key(2)
	srv := minerServer(t, minerKey, val)
	body := []byte(`{"stream":true}`)
	resp, err := NewClient(valKey, srv.Client()).Post(context.Background(), srv.URL+"/v1/stream", miner, body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got []string
	rc, sum, err := ReadStream(resp.Body, func(e Event) error { got = append(got, string(e.Data)); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[2] != "[DONE]" {
		t.Fatalf("events %q", got)
	}
	if err := rc.Verify(miner, body, sum); err != nil {
		t.Fatal(err)
	}
	// A stream whose content was altered no longer matches its receipt.
	altered := strings.NewReader("data: {\"c\":\"x\"}\n\ndata: [DONE]\n\nevent: " + ReceiptEvent + "\ndata: " + string(mustJSON(rc)) + "\n\n")
	rc2, sum2, err := ReadStream(altered, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := rc2.Verify(miner, body, sum2); !errors.Is(err, ErrBadReceipt) {
		t.Fatalf("altered stream verified: %v", err)
	}
	if _, _, err := ReadStream(strings.NewReader("data: x\n\n"), nil); !errors.Is(err, ErrBadReceipt) {
		t.Fatalf("stream without receipt: %v", err)
	}
}

func TestRejections(t *testing.T) {
	minerKey, miner := testkit.Key(1)
	valKey, val := testkit.Key(2)
	strangerKey, _ := testkit.Key(3)
	srv := minerServer(t, minerKey, val)
	url := srv.URL + "/v1/chat/completions"
	body := []byte(`{"x":1}`)
	post := func(mut func(req *http.Request)) int {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		Sign(req, valKey, miner, body, time.Now())
		mut(req)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	cases := []struct {
		name string
		mut  func(req *http.Request)
		want int
	}{
		{"unsigned", func(r *http.Request) { r.Header.Del(HeaderSignature) }, 401},
		{"tampered body", func(r *http.Request) { r.Body = io.NopCloser(strings.NewReader(`{"x":2}`)) }, 401},
		{"other path", func(r *http.Request) { r.URL.Path = "/v1/completions" }, 401},
		{"stale", func(r *http.Request) { Sign(r, valKey, miner, body, time.Now().Add(-20*time.Second)) }, 401},
		{"future", func(r *http.Request) { Sign(r, valKey, miner, body, time.Now().Add(20*time.Second)) }, 401},
		{"wrong receiver", func(r *http.Request) { _, other := testkit.Key(8); Sign(r, valKey, other, body, time.Now()) }, 421},
		{"unregistered sender", func(r *http.Request) { Sign(r, strangerKey, miner, body, time.Now()) }, 403},
		{"oversized", func(r *http.Request) {
			big := bytes.Repeat([]byte("a"), 4096)
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(big)), int64(len(big))
			Sign(r, valKey, miner, big, time.Now())
		}, 413},
	}
	for _, c := range cases {
		if got := post(c.mut); got != c.want {
			t.Errorf("%s: status %d, want %d", c.name, got, c.want)
		}
	}
	// Replay: the same signed request twice.
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	Sign(req, valKey, miner, body, time.Now())
	hdr := req.Header.Clone()
	for i, want := range []int{200, 401} {
		r2, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		r2.Header = hdr.Clone()
		resp, err := srv.Client().Do(r2)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("attempt %d: status %d, want %d", i, resp.StatusCode, want)
		}
	}
}

func TestReplayCacheBoundedPerOwnerAndExpiring(t *testing.T) {
	c := NewReplayCache(time.Second, 2, 3)
	t0 := time.Unix(1000, 0)
	for _, tc := range []struct {
		owner, key string
		at         time.Duration
		want       error
	}{
		{"a", "a1", 0, nil},
		{"a", "a2", 1, nil},
		{"a", "a3", 2, ErrBusy},   // a's share is full
		{"b", "a1", 3, ErrReplay}, // a key is live whoever recorded it
		{"b", "b1", 4, nil},
		{"c", "c1", 5, ErrBusy}, // the whole cache is full
		{"a", "a1", 6, ErrReplay},
		{"c", "c1", 2 * time.Second, nil}, // expired entries free room
	} {
		if err := c.Add(tc.owner, tc.key, t0.Add(tc.at)); !errors.Is(err, tc.want) && (err != nil || tc.want != nil) {
			t.Fatalf("add %s/%s at %s: %v, want %v", tc.owner, tc.key, tc.at, err, tc.want)
		}
	}
	if c.Len() != 1 {
		t.Fatalf("%d live keys after expiry, want 1", c.Len())
	}
}

// TestReplayCacheFloodDoesNotRefuseHonest is hole 10: throwaway keys the
// receiver would refuse, and one admitted signer sending as fast as it can,
// must not fill the nonce cache until an honest signer's request fails.
func TestReplayCacheFloodDoesNotRefuseHonest(t *testing.T) {
	minerKey, miner := testkit.Key(1)
	honestKey, honest := testkit.Key(2)
	flooderKey, flooder := testkit.Key(3)
	srv := minerServerWith(t, minerKey, func(v *Verifier) { v.Nonces = NewReplayCache(2*MaxSkew, 4, 8) }, honest, flooder)
	url := srv.URL + "/v1/chat/completions"
	body := []byte(`{"x":1}`)
	post := func(k ed25519.PrivateKey) int {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		Sign(req, k, miner, body, time.Now())
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range 64 {
		stranger, _ := testkit.Key(byte(100 + i))
		if got := post(stranger); got != http.StatusForbidden {
			t.Fatalf("unregistered signer %d: status %d, want 403", i, got)
		}
	}
	busy := 0
	for range 64 {
		switch got := post(flooderKey); got {
		case http.StatusOK:
		case http.StatusServiceUnavailable:
			busy++
		default:
			t.Fatalf("flooding signer: status %d", got)
		}
	}
	if busy == 0 {
		t.Fatal("one signer filled more than its share of the cache")
	}
	for i := range 4 {
		if got := post(honestKey); got != http.StatusOK {
			t.Fatalf("honest request %d after the flood: status %d, want 200", i, got)
		}
	}
}

func mustJSON(r *Receipt) []byte {
	raw, err := json.Marshal(r)
	if err != nil {
		panic(err)
	}
	return raw
}

func FuzzParseHeaders(f *testing.F) {
	k, a := testkit.Key(1)
	req, _ := http.NewRequest(http.MethodPost, "http://x/v1", nil)
	Sign(req, k, a, []byte("b"), time.Now())
	f.Add(req.Header.Get(HeaderSigner), req.Header.Get(HeaderReceiver), req.Header.Get(HeaderTimestamp), req.Header.Get(HeaderNonce), req.Header.Get(HeaderSignature))
	f.Fuzz(func(t *testing.T, signer, receiver, ts, nonce, sig string) {
		h := http.Header{}
		h.Set(HeaderSigner, signer)
		h.Set(HeaderReceiver, receiver)
		h.Set(HeaderTimestamp, ts)
		h.Set(HeaderNonce, nonce)
		h.Set(HeaderSignature, sig)
		_, _, _, _, _, _ = parseHeaders(h)
	})
}

func FuzzReceipt(f *testing.F) {
	k, _ := testkit.Key(1)
	rc := &Receipt{RequestHash: Hash([]byte("a")), ResponseHash: Hash([]byte("b")), ModelID: "m"}
	SignReceipt(k, rc)
	f.Add(rc.EncodeHeader(), "data: x\n\nevent: "+ReceiptEvent+"\ndata: "+string(mustJSON(rc))+"\n\n")
	f.Fuzz(func(t *testing.T, header, stream string) {
		if r, err := ParseReceiptHeader(header); err == nil {
			_ = r.Verify(address.Address{}, nil, "")
		}
		_, _, _ = ReadStream(strings.NewReader(stream), nil)
	})
}
