package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/internal/testkit"
	"github.com/agoranet/agora/miner"
	"github.com/agoranet/agora/route"
	"github.com/agoranet/agora/x402"
)

// serviceWorld is a paid gateway service on a real chain, in front of one
// real miner on the built-in engine.
type serviceWorld struct {
	*claimWorld
	svc     *Service
	url     string
	channel uint64
	miner   string // the miner's hotkey, to exclude it
	owed    uint64 // the channel's owed total as the gateway last reported it
	signed  uint64 // the last voucher's cumulative amount
}

func newServiceWorld(t *testing.T, limits *Limits) *serviceWorld {
	t.Helper()
	w := &serviceWorld{claimWorld: newClaimWorld(t)}
	w.channel = w.open(t, 1, agr.Unit, 100_000)[0]
	mk, _ := testkit.Key(20)
	mc := builtinMiner(t, miner.Config{Hotkey: mk, MaxConcurrent: 2, PricePer1K: 1000})
	w.miner = mc.Hotkey.String()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	w.svc, err = NewService(ctx, ServiceConfig{
		Gateway: Config{Key: w.gw, Model: "agora-test", Candidates: func(context.Context) ([]route.Candidate, error) {
			return []route.Candidate{mc}, nil
		}},
		Chain: w.c, Netuid: 1, LedgerPath: filepath.Join(t.TempDir(), "ledger.jsonl"), PricePer1K: 1000,
		ExpiryMargin: 8, ClaimInterval: time.Hour, Limits: limits})
	if err != nil {
		t.Fatal(err)
	}
	l := testkit.Listen(t)
	served := make(chan error, 1)
	go func() { served <- w.svc.Serve(l) }()
	t.Cleanup(func() {
		w.svc.Close(context.Background())
		if err := <-served; !errors.Is(err, ErrServiceClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	w.url = "http://" + l.Addr().String() + "/v1/chat/completions"
	return w
}

func (w *serviceWorld) post(t *testing.T, body, payment string, header ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, w.url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if payment != "" {
		req.Header.Set(x402.HeaderPaymentSignature, payment)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// quote asks for body's price: the 402 the gateway answers without payment.
func (w *serviceWorld) quote(t *testing.T, body string) x402.Requirements {
	t.Helper()
	resp := w.post(t, body, "")
	resp.Body.Close()
	if resp.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("unpaid request: status %d, want 402", resp.StatusCode)
	}
	req, _, err := x402.ParseRequired(resp.Header.Get(x402.HeaderPaymentRequired), w.chainID)
	if err != nil {
		t.Fatal(err)
	}
	return *req
}

// pay signs what an honest payer signs for body: the owed total plus the
// quote, and above its last voucher.
func (w *serviceWorld) pay(t *testing.T, body string) string {
	t.Helper()
	req := w.quote(t, body)
	amount, err := x402.ParseAmount(req.Amount)
	if err != nil {
		t.Fatal(err)
	}
	w.signed = max(w.signed+1, w.owed+amount)
	return PaymentSignature(req, tx.SignVoucher(w.payer, w.chainID, w.channel, w.signed))
}

// settled reads a PAYMENT-RESPONSE (header or stream event) and tracks owed.
func (w *serviceWorld) settled(t *testing.T, h string, decode func(string, any) error) uint64 {
	t.Helper()
	var sr x402.SettleResponse
	if err := decode(h, &sr); err != nil {
		t.Fatalf("payment response %q: %v", h, err)
	}
	charged, err1 := x402.ParseAmount(sr.Extra.Charged)
	owed, err2 := x402.ParseAmount(sr.Extra.Owed)
	if err1 != nil || err2 != nil || !sr.Success {
		t.Fatalf("payment response %+v", sr)
	}
	w.owed = owed
	return charged
}

func jsonDecode(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// paidPost pays for body and posts it; a voucher short of what the channel
// owes (the payer's owed total is stale after a stream it abandoned) gets a
// 402 saying what is owed now, and is signed again.
func (w *serviceWorld) paidPost(t *testing.T, body string) *http.Response {
	t.Helper()
	resp := w.post(t, body, w.pay(t, body))
	if resp.StatusCode != http.StatusPaymentRequired {
		return resp
	}
	resp.Body.Close()
	var pr x402.PaymentRequired
	if err := x402.Decode(resp.Header.Get(x402.HeaderPaymentRequired), &pr); err != nil || len(pr.Accepts) != 1 {
		t.Fatalf("402: %v", err)
	}
	owed, err := x402.ParseAmount(pr.Accepts[0].Extra.Owed)
	if err != nil {
		t.Fatalf("402 owed %q: %v", pr.Accepts[0].Extra.Owed, err)
	}
	w.owed = owed
	return w.post(t, body, w.pay(t, body))
}

// TestServiceChargesWhatItReports is hole 12 (the one constructor for a paid
// gateway charges: 402 without a voucher, 200 with one) and hole 14 end to
// end: after a mix of completed, failed and abandoned requests, with a claim
// made while a stream is in flight, the chain's claimed amount equals the
// sum of the charges the gateway reported, to the unit.
func TestServiceChargesWhatItReports(t *testing.T) {
	// Limits well above this test's pace (the default would refuse it).
	w := newServiceWorld(t, &Limits{Concurrent: 4, PerSecond: 100, Burst: 100})
	const plain = `{"model":"agora-test","messages":[{"role":"user","content":"hi"}],"max_tokens":6}`
	const long = `{"model":"agora-test","messages":[{"role":"user","content":"tell me more"}],"max_tokens":200,"stream":true}`
	var reported uint64
	for range 2 {
		resp := w.paidPost(t, plain)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("paid request: status %d", resp.StatusCode)
		}
		reported += w.settled(t, resp.Header.Get(x402.HeaderPaymentResponse), x402.Decode)
	}
	// A failed request (no miner the client accepts) costs nothing.
	resp := w.post(t, plain, w.pay(t, plain), HeaderExclude, w.miner)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusPaymentRequired {
		t.Fatalf("request with every miner excluded: status %d", resp.StatusCode)
	}
	// A stream its client abandons after the first tokens: no
	// PAYMENT-RESPONSE reaches the client, but the next one's owed total
	// includes what the abandoned stream was charged (hole 2), and that
	// too must reach the chain.
	resp = w.paidPost(t, long)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("paid stream: status %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "data:") {
	}
	resp.Body.Close()
	deadline := time.After(30 * time.Second)
	for w.svc.Ledger().Reserved(w.channel) != 0 {
		select {
		case <-deadline:
			t.Fatal("the abandoned stream never settled")
		case <-time.After(10 * time.Millisecond): // poll the ledger until the deadline
		}
	}
	before := reported
	resp = w.paidPost(t, plain)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("paid request after the abandoned stream: status %d", resp.StatusCode)
	}
	charged := w.settled(t, resp.Header.Get(x402.HeaderPaymentResponse), x402.Decode)
	if w.owed <= before+charged {
		t.Fatalf("an abandoned stream was free: owed %d after charges of %d and %d", w.owed, before, charged)
	}
	reported = w.owed // what the payer was told it owes, abandoned stream included
	// Traffic ends with a stream, and the claim loop runs while it is in
	// flight: its reservation must not reach the chain.
	resp = w.paidPost(t, long)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("paid stream: status %d", resp.StatusCode)
	}
	sc = bufio.NewScanner(resp.Body)
	claimedMidStream := false
	var event string
	for sc.Scan() {
		line := sc.Text()
		if !claimedMidStream && strings.HasPrefix(line, "data:") {
			if w.svc.Ledger().Reserved(w.channel) == 0 {
				t.Fatal("the stream is not in flight when its first event arrives")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if _, err := w.svc.Claimer().Once(ctx, true); err != nil {
				t.Fatal(err)
			}
			cancel()
			claimedMidStream = true
		}
		if ev, ok := strings.CutPrefix(line, "event: "); ok {
			event = ev
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok && event == x402.PaymentEvent {
			reported += w.settled(t, data, jsonDecode)
		}
	}
	resp.Body.Close()
	if !claimedMidStream || w.owed != reported {
		t.Fatalf("stream: claimed mid-stream %v; the gateway reports owing %d after charges summing to %d", claimedMidStream, w.owed, reported)
	}
	// Close claims what is settled one last time.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.svc.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := w.claimed(t, w.channel); got != reported {
		t.Fatalf("chain claimed %d; the gateway reported charges of %d", got, reported)
	}
}

// TestServiceLimits is hole 9's part here: the paid gateway limits each
// payer by default, and the limits it is given reach the gateway.
func TestServiceLimits(t *testing.T) {
	if DefaultLimits.Concurrent <= 0 || DefaultLimits.PerSecond <= 0 {
		t.Fatalf("default limits are off: %+v", DefaultLimits)
	}
	w := newServiceWorld(t, nil)
	if w.svc.gw.cfg.Limits != DefaultLimits {
		t.Fatalf("a service without limits runs with %+v", w.svc.gw.cfg.Limits)
	}
	// One request per payer, then nothing for a long while.
	w = newServiceWorld(t, &Limits{PerSecond: 0.001, Burst: 1})
	const plain = `{"model":"agora-test","messages":[{"role":"user","content":"hi"}],"max_tokens":1}`
	statuses := map[int]int{}
	for range 3 {
		h := tx.SignVoucher(w.payer, w.chainID, w.channel, w.owed+agr.Unit/100)
		resp := w.post(t, plain, PaymentSignature(x402.Requirements{Scheme: x402.SchemeChannel, Network: x402.Network(w.chainID)}, h))
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		statuses[resp.StatusCode]++
		if resp.StatusCode == http.StatusOK {
			w.settled(t, resp.Header.Get(x402.HeaderPaymentResponse), x402.Decode)
		}
	}
	if statuses[http.StatusOK] != 1 || statuses[http.StatusTooManyRequests] != 2 {
		t.Fatalf("statuses %v, want one 200 and two 429", statuses)
	}
}
