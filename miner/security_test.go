package miner

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hpke"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/e2e"
	"github.com/agoranet/agora/internal/testkit"
	"github.com/agoranet/agora/openai"
	"github.com/agoranet/agora/wire"
)

// fakeChain serves a fixed metagraph; with gate set, each read blocks until
// a value is sent on it.
type fakeChain struct {
	mg      *tx.Metagraph
	gate    chan struct{}
	reading chan struct{} // receives when a read starts, if set
	reads   atomic.Int64
}

func (f *fakeChain) Metagraph(ctx context.Context, _ uint32, _ int64) (*tx.Metagraph, error) {
	f.reads.Add(1)
	if f.reading != nil {
		f.reading <- struct{}{}
	}
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return f.mg, nil
}

// metagraph has a permitted validator, a staked neuron without a permit, and
// an unstaked one.
func metagraph(validator, staked, idle address.Address) *tx.Metagraph {
	return &tx.Metagraph{
		Neurons: []*tx.Neuron{
			{Hotkey: validator[:], ValidatorPermit: true},
			{Hotkey: staked[:]},
			{Hotkey: idle[:]},
		},
		Stake: []uint64{1000, 1, 0},
	}
}

func post(t *testing.T, c *wire.Client, url string, miner address.Address, body []byte) (int, []byte) {
	t.Helper()
	resp, err := c.Post(context.Background(), url, miner, body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// TestOnlyPermittedValidatorsServed is hole 4: a neuron that registered and
// staked (1 nagr is enough) but holds no validator permit must not use the
// miner directly, skipping the gateway and its payments.
func TestOnlyPermittedValidatorsServed(t *testing.T) {
	b := &slowBackend{release: closedChan()}
	valKey, val := testkit.Key(2)
	stakedKey, staked := testkit.Key(3)
	idleKey, idle := testkit.Key(4)
	toolKey, tool := testkit.Key(5)
	chain := &fakeChain{mg: metagraph(val, staked, idle)}
	body := []byte(`{"model":"m","messages":[{"role":"user","content":"x"}]}`)
	for _, tc := range []struct {
		name string
		opts []AllowOption
		want map[string]int
	}{
		{"default", nil, map[string]int{"validator": 200, "staked": 403, "idle": 403, "tool": 403}},
		{"any staked", []AllowOption{AllowAnyStaked()}, map[string]int{"validator": 200, "staked": 200, "idle": 403, "tool": 403}},
		{"extra hotkey", []AllowOption{AllowHotkeys(tool)}, map[string]int{"validator": 200, "staked": 403, "idle": 403, "tool": 200}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, miner := startMiner(t, b, func(c *Config) { c.Allow = ChainAllow(chain, 1, time.Minute, tc.opts...) })
			for name, k := range map[string]ed25519.PrivateKey{"validator": valKey, "staked": stakedKey, "idle": idleKey, "tool": toolKey} {
				status, raw := post(t, wire.NewClient(k, srv.Client()), srv.URL+"/v1/chat/completions", miner, body)
				if status != tc.want[name] {
					t.Errorf("%s: status %d, want %d (%s)", name, status, tc.want[name], raw)
				}
				if status == 403 {
					var e wire.ErrorBody
					json.Unmarshal(raw, &e)
					if !strings.Contains(e.Error.Message, "validator with a permit") {
						t.Errorf("%s: refusal does not say why: %q", name, e.Error.Message)
					}
				}
			}
		})
	}
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// TestChainAllowNotSerializedBehindSlowRead is hole 10: while one caller's
// metagraph read hangs, a signer the cached snapshot admits is answered at
// once instead of queueing behind a lock held across the read.
func TestChainAllowNotSerializedBehindSlowRead(t *testing.T) {
	_, val := testkit.Key(2)
	_, staked := testkit.Key(3)
	_, idle := testkit.Key(4)
	_, stranger := testkit.Key(9)
	chain := &fakeChain{mg: metagraph(val, staked, idle)}
	// refresh 0: every call wants a fresh read, so one is always in flight.
	allow := ChainAllow(chain, 1, 0)
	ctx := context.Background()
	if err := allow(ctx, val); err != nil {
		t.Fatalf("validator refused on the first read: %v", err)
	}
	chain.gate, chain.reading = make(chan struct{}), make(chan struct{}, 1)
	strangerDone := make(chan error, 1)
	go func() { strangerDone <- allow(ctx, stranger) }()
	select {
	case <-chain.reading:
	case <-time.After(10 * time.Second):
		t.Fatal("the stranger's call started no read")
	}
	// The read hangs; the validator is served from the snapshot meanwhile.
	valDone := make(chan error, 1)
	go func() { valDone <- allow(ctx, val) }()
	select {
	case err := <-valDone:
		if err != nil {
			t.Fatalf("validator refused: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a cached signer waited behind another caller's chain read")
	}
	select {
	case err := <-strangerDone:
		t.Fatalf("stranger answered before the read finished: %v", err)
	default:
	}
	close(chain.gate)
	if err := <-strangerDone; !errors.Is(err, wire.ErrNotAllowed) {
		t.Fatalf("stranger: %v, want ErrNotAllowed", err)
	}
	if n := chain.reads.Load(); n != 2 {
		t.Fatalf("%d reads, want 2 (concurrent callers share one)", n)
	}
}

// TestChainAllowCallerGivesUp: a caller whose context ends stops waiting
// for a hung read and is told the miner cannot decide (503), not refused.
func TestChainAllowCallerGivesUp(t *testing.T) {
	_, val := testkit.Key(2)
	chain := &fakeChain{mg: metagraph(val, val, val), gate: make(chan struct{})}
	defer close(chain.gate)
	allow := ChainAllow(chain, 1, time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := allow(ctx, val); !errors.Is(err, wire.ErrUnavailable) {
		t.Fatalf("err %v, want ErrUnavailable", err)
	}
}

// sealedRequest seals a chat request to the miner the way a client does.
func sealedRequest(t *testing.T, m *Miner, maxTokens int, stream bool) ([]byte, *e2e.Reply) {
	t.Helper()
	inner := `{"model":"m","messages":[{"role":"user","content":"hello"}],"temperature":0}`
	body, reply, err := e2e.Seal(m.E2EPublicKey(), m.Address(), "m", maxTokens, stream, []byte(inner))
	if err != nil {
		t.Fatal(err)
	}
	return body, reply
}

func newTinyMiner(t *testing.T, mut func(*Config)) (*Miner, string) {
	t.Helper()
	key, _ := testkit.Key(1)
	cfg := Config{Hotkey: key, Backend: tinyBackend(t), MaxConcurrent: 2, MaxQueue: 4, PricePer1K: 1000}
	if mut != nil {
		mut(&cfg)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httpTestServer(t, m.Handler())
	return m, srv
}

// TestSealedRoundTripAndReplay is hole 5 through the miner: sealed answers
// open, plain and streamed, and an envelope answered once is refused when
// replayed under a fresh wire signature.
func TestSealedRoundTripAndReplay(t *testing.T) {
	m, url := newTinyMiner(t, nil)
	valKey, _ := testkit.Key(2)
	c := wire.NewClient(valKey, nil)
	for _, stream := range []bool{false, true} {
		t.Run("stream="+strconv.FormatBool(stream), func(t *testing.T) {
			body, reply := sealedRequest(t, m, 4, stream)
			resp, err := c.Post(context.Background(), url+"/v1/chat/completions", m.Address(), body)
			if err != nil {
				t.Fatal(err)
			}
			var text string
			if stream {
				rc, sum, err := wire.ReadStream(resp.Body, func(e wire.Event) error {
					if string(e.Data) == "[DONE]" {
						return nil
					}
					pt, _, err := reply.Open(e.Data)
					if err != nil {
						return err
					}
					var ch openai.Response
					json.Unmarshal(pt, &ch)
					if len(ch.Choices) > 0 && ch.Choices[0].Delta != nil {
						text += ch.Choices[0].Delta.Content
					}
					return nil
				})
				resp.Body.Close()
				if err != nil || rc.Verify(m.Address(), body, sum) != nil {
					t.Fatalf("stream: %v", err)
				}
			} else {
				raw, _, err := wire.ReadPlain(resp, m.Address(), body, 1<<20)
				if err != nil {
					t.Fatalf("%v: %s", err, raw)
				}
				pt, _, err := reply.Open(raw)
				if err != nil {
					t.Fatal(err)
				}
				var out openai.Response
				json.Unmarshal(pt, &out)
				text = out.Choices[0].Message.Content
			}
			if !reply.Done() || text == "" {
				t.Fatalf("answer %q, done %v", text, reply.Done())
			}
			// The gateway replays the same envelope, freshly signed.
			status, raw := post(t, c, url+"/v1/chat/completions", m.Address(), body)
			if status != http.StatusConflict {
				t.Fatalf("replayed envelope: status %d (%s), want 409", status, raw)
			}
		})
	}
}

// hostileSeal seals like e2e.Seal but with any max_tokens: an attacker's own
// client, which need not respect the cap.
func hostileSeal(t *testing.T, m *Miner, maxTokens int64, inner string) []byte {
	t.Helper()
	const domain = "agora/e2e/v3\x00"
	pub, err := hpke.DHKEM(ecdh.X25519()).NewPublicKey(m.E2EPublicKey())
	if err != nil {
		t.Fatal(err)
	}
	self := m.Address()
	enc, s, err := hpke.NewSender(pub, hpke.HKDFSHA256(), hpke.AES256GCM(), append([]byte(domain), self[:]...))
	if err != nil {
		t.Fatal(err)
	}
	created := time.Now().Unix()
	aad := []byte(domain)
	aad = binary.BigEndian.AppendUint32(aad, 1)
	aad = append(aad, 'm')
	aad = binary.BigEndian.AppendUint64(aad, uint64(maxTokens))
	aad = binary.BigEndian.AppendUint64(aad, uint64(created))
	aad = strconv.AppendBool(aad, false)
	ct, err := s.Seal(aad, []byte(inner))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"model": "m", "max_tokens": maxTokens, "created": created,
		"agora_sealed": map[string]any{"miner": self.String(), "enc": enc, "ciphertext": ct}})
	return body
}

// TestMaxTokensBounded is hole 1 on the miner: a sealed envelope whose clear
// max_tokens is 1<<40 (so a gateway's price wraps) is refused even when the
// sealed request inside asks for few tokens, and a clear request beyond the
// model's context is refused rather than served.
func TestMaxTokensBounded(t *testing.T) {
	m, url := newTinyMiner(t, nil)
	valKey, _ := testkit.Key(2)
	c := wire.NewClient(valKey, nil)
	inner := `{"model":"m","messages":[{"role":"user","content":"hello"}],"max_tokens":2}`
	// The helper is faithful: the same sealing at a sane bound is served.
	if status, raw := post(t, c, url+"/v1/chat/completions", m.Address(), hostileSeal(t, m, 2, inner)); status != 200 {
		t.Fatalf("hostileSeal at max_tokens 2: status %d (%s)", status, raw)
	}
	context := m.cfg.Backend.(*Builtin).Model.Config().Context
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"sealed, max_tokens 1<<40", hostileSeal(t, m, 1<<40, inner)},
		{"sealed, max_tokens over the cap", hostileSeal(t, m, openai.MaxTokensCap+1, inner)},
		{"sealed, max_tokens over the context", hostileSeal(t, m, int64(context)+1, inner)},
		{"clear, max_tokens over the context", []byte(`{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":` + strconv.Itoa(context+1) + `}`)},
		{"clear, max_tokens 1<<40", []byte(`{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":1099511627776}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if status, raw := post(t, c, url+"/v1/chat/completions", m.Address(), tc.body); status != http.StatusBadRequest {
				t.Fatalf("status %d (%s), want 400", status, raw)
			}
		})
	}
}

// hugeBackend reports token counts whose price overflows uint64.
type hugeBackend struct{}

func (hugeBackend) ModelID() string { return "" }
func (hugeBackend) Complete(_ context.Context, _ *openai.ChatRequest, _ bool, emit func(Piece) error) (*Result, error) {
	return &Result{PromptTokens: 1 << 40, CompletionTokens: 1 << 40, FinishReason: "stop"}, emit(Piece{Text: "ok"})
}

// TestReceiptPriceChecked: a price that would wrap is an error, never a
// small signed price.
func TestReceiptPriceChecked(t *testing.T) {
	srv, miner := startMiner(t, hugeBackend{}, func(c *Config) { c.PricePer1K = 1 << 40 })
	valKey, _ := testkit.Key(2)
	c := wire.NewClient(valKey, srv.Client())
	for _, stream := range []string{"false", "true"} {
		body := []byte(`{"model":"m","messages":[{"role":"user","content":"x"}],"stream":` + stream + `}`)
		resp, err := c.Post(context.Background(), srv.URL+"/v1/chat/completions", miner, body)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if h := resp.Header.Get(wire.HeaderReceipt); h != "" || bytes.Contains(raw, []byte(wire.ReceiptEvent)) {
			t.Fatalf("stream=%s: a receipt was signed for an overflowing price: %s", stream, raw)
		}
	}
}

// httpTestServer serves h on a loopback listener with the production server
// settings.
func httpTestServer(t *testing.T, h http.Handler) string {
	t.Helper()
	l := testkit.Listen(t)
	srv := NewHTTPServer(h)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); srv.Serve(l) }()
	t.Cleanup(func() { srv.Close(); wg.Wait() })
	return "http://" + l.Addr().String()
}

// TestChainAllowStrangersCostFewReads: a flood of unregistered keys is
// answered from the snapshot; it triggers at most one early re-read per
// refresh/10, not one chain read each.
func TestChainAllowStrangersCostFewReads(t *testing.T) {
	_, val := testkit.Key(2)
	chain := &fakeChain{mg: metagraph(val, val, val)}
	allow := ChainAllow(chain, 1, time.Hour)
	for i := range 1000 {
		_, stranger := testkit.Key(byte(10 + i%200))
		if err := allow(context.Background(), stranger); !errors.Is(err, wire.ErrNotAllowed) {
			t.Fatalf("stranger %d: %v", i, err)
		}
	}
	if err := allow(context.Background(), val); err != nil {
		t.Fatal(err)
	}
	if n := chain.reads.Load(); n > 2 {
		t.Fatalf("%d chain reads for 1000 strangers", n)
	}
}

// TestUpstreamMaxTokensBound: the openai backend's configured bound holds.
func TestUpstreamMaxTokensBound(t *testing.T) {
	up := fakeUpstream(t)
	srv, miner := startMiner(t, &Upstream{URL: up.URL + "/v1", Model: "upstream-model", MaxTokens: 100}, nil)
	valKey, _ := testkit.Key(2)
	c := wire.NewClient(valKey, srv.Client())
	for _, tc := range []struct {
		max  int
		want int
	}{{100, 200}, {101, 400}} {
		body := []byte(`{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":` + strconv.Itoa(tc.max) + `}`)
		if status, raw := post(t, c, srv.URL+"/v1/chat/completions", miner, body); status != tc.want {
			t.Errorf("max_tokens %d: status %d (%s), want %d", tc.max, status, raw, tc.want)
		}
	}
}
