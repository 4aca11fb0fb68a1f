package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"math"
	gobig "math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/e2e"
	"github.com/agoranet/agora/internal/testkit"
	"github.com/agoranet/agora/miner"
	"github.com/agoranet/agora/node"
	"github.com/agoranet/agora/openai"
	"github.com/agoranet/agora/route"
	"github.com/agoranet/agora/wire"
	"github.com/agoranet/agora/x402"
)

type payWorld struct {
	c                      *client.Client
	nd                     *node.Node
	chainID                string
	payer, gw, other       ed25519.PrivateKey
	gwAddr                 address.Address
	srv                    *httptest.Server
	ledgerPath             string
	ledger                 *Ledger
	good, wrongPayee, soon uint64 // channel ids
}

func newPayWorld(t *testing.T) *payWorld {
	payer, _ := testkit.Key(10)
	gw, _ := testkit.Key(11)
	other, _ := testkit.Key(12)
	ownerHot, _ := testkit.Key(13)
	g := chain.Genesis{Params: chain.DefaultParams(200), Devnet: true, Accounts: []chain.GenesisAccount{
		{Address: testkit.Addr(payer), Balance: 1_000 * agr.Unit}, {Address: testkit.Addr(gw), Balance: 10 * agr.Unit}}}
	ch := testkit.StartChain(t, testkit.NodeOptions{ChainID: "agora-pay-test", Genesis: g})
	ctx := context.Background()
	c := ch.Client
	w := &payWorld{c: c, nd: ch.Node, chainID: ch.ID, payer: payer, gw: gw, other: other, gwAddr: testkit.Addr(gw)}
	ch.RegisterSubnet(t, payer, ownerHot, "")
	h, _ := c.Height(ctx)
	ch.Send(t, payer, tx.ChannelOpen(w.gwAddr, 1, agr.Unit, uint64(h)+10_000), tx.ChannelOpen(testkit.Addr(other), 1, agr.Unit, uint64(h)+10_000),
		tx.ChannelOpen(w.gwAddr, 1, agr.Unit, uint64(h)+25))
	w.good, w.wrongPayee, w.soon = 1, 2, 3

	mk, _ := testkit.Key(1)
	mc := builtinMiner(t, miner.Config{Hotkey: mk, MaxConcurrent: 2, PricePer1K: 1000})

	var err error
	w.ledgerPath = filepath.Join(t.TempDir(), "ledger.jsonl")
	if w.ledger, err = OpenLedger(w.ledgerPath); err != nil {
		t.Fatal(err)
	}
	gwy := New(Config{Key: gw, Model: "agora-test", Candidates: func(context.Context) ([]route.Candidate, error) {
		return []route.Candidate{mc}, nil
	}, Payments: &Payments{Chain: c, ChainID: w.chainID, Payee: w.gwAddr, Netuid: 1, PricePer1K: 1000, Ledger: w.ledger, ExpiryMargin: 5}})
	w.srv = httptest.NewServer(gwy.Handler())
	t.Cleanup(w.srv.Close)
	return w
}

func (w *payWorld) voucher(k ed25519.PrivateKey, ch, cum uint64) string {
	accepts := x402.Requirements{Scheme: x402.SchemeChannel, Network: x402.Network(w.chainID), PayTo: w.gwAddr.String()}
	return PaymentSignature(accepts, tx.SignVoucher(k, w.chainID, ch, cum))
}

func (w *payWorld) post(t *testing.T, body, payment string) *http.Response {
	req, _ := http.NewRequest(http.MethodPost, w.srv.URL+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if payment != "" {
		req.Header.Set(x402.HeaderPaymentSignature, payment)
	}
	resp, err := w.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// quoteOf reads a 402's agora-channel requirements and their amount.
func quoteOf(t *testing.T, resp *http.Response, chainID string) (*x402.PaymentRequired, *x402.Requirements, uint64) {
	t.Helper()
	if resp.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("status %d, want 402", resp.StatusCode)
	}
	var pr x402.PaymentRequired
	if err := x402.Decode(resp.Header.Get(x402.HeaderPaymentRequired), &pr); err != nil {
		t.Fatal(err)
	}
	req, err := pr.Channel(x402.Network(chainID))
	if err != nil {
		t.Fatal(err)
	}
	amount, err := x402.ParseAmount(req.Amount)
	if err != nil {
		t.Fatal(err)
	}
	return &pr, req, amount
}

// settleOf decodes a PAYMENT-RESPONSE (header or payment event data).
func settleOf(t *testing.T, raw []byte, header bool) (sr x402.SettleResponse, charged, owed uint64) {
	t.Helper()
	var err error
	if header {
		err = x402.Decode(string(raw), &sr)
	} else {
		err = json.Unmarshal(raw, &sr)
	}
	if err != nil {
		t.Fatalf("payment response %q: %v", raw, err)
	}
	charged, err1 := x402.ParseAmount(sr.Extra.Charged)
	owed, err2 := x402.ParseAmount(sr.Extra.Owed)
	if err1 != nil || err2 != nil || !sr.Success {
		t.Fatalf("payment response %+v", sr)
	}
	return sr, charged, owed
}

// paymentEvent is the data of a stream's payment event, or nil.
func paymentEvent(stream []byte) []byte {
	_, rest, ok := bytes.Cut(stream, []byte("event: "+x402.PaymentEvent+"\ndata: "))
	if !ok {
		return nil
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	return line
}

func TestPaymentFlow(t *testing.T) {
	w := newPayWorld(t)
	body := `{"model":"agora-test","messages":[{"role":"user","content":"hi"}],"max_tokens":4,"temperature":0}`

	// No payment: 402 with x402 v2 requirements a generic client can read.
	resp := w.post(t, body, "")
	resp.Body.Close()
	pr, reqs, maxCharge := quoteOf(t, resp, w.chainID)
	wantMax, err := x402.MaxCharge(1000, len(body), 4)
	if err != nil {
		t.Fatal(err)
	}
	if pr.X402Version != x402.Version || pr.Resource.URL == "" || len(pr.Accepts) != 1 || reqs.Scheme != x402.SchemeChannel ||
		reqs.PayTo != w.gwAddr.String() || reqs.Asset != x402.Asset || reqs.MaxTimeoutSeconds <= 0 || maxCharge != wantMax ||
		reqs.Extra.ChainID != w.chainID || reqs.Extra.Netuid != 1 || reqs.Extra.PricePer1K != "1000" {
		t.Fatalf("402: %+v", pr)
	}
	// Paid: served, charged the gateway's price of the receipt's tokens (≤ the maximum).
	resp = w.post(t, body, w.voucher(w.payer, w.good, maxCharge))
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	sr, charged, owed := settleOf(t, []byte(resp.Header.Get(x402.HeaderPaymentResponse)), true)
	rc, _ := wire.ParseReceiptHeader(resp.Header.Get(wire.HeaderReceipt))
	if resp.StatusCode != 200 || charged != rc.Price || charged > maxCharge || owed != charged ||
		sr.Network != x402.Network(w.chainID) || sr.Payer != testkit.Addr(w.payer).String() || sr.Extra.ChannelID != "1" {
		t.Fatalf("paid request: %d %+v receipt price %d", resp.StatusCode, sr, rc.Price)
	}

	// Bad vouchers: 402 with a reason, and nothing charged.
	forgedV := tx.SignVoucher(w.payer, w.chainID, w.good, 2*maxCharge+owed)
	forgedV.Signature[3] ^= 1
	wrongNet := x402.Requirements{Scheme: x402.SchemeChannel, Network: x402.Network("elsewhere")}
	for name, pay := range map[string]string{
		"replay":        w.voucher(w.payer, w.good, maxCharge),
		"overspend":     w.voucher(w.payer, w.good, agr.Unit+1),
		"wrong payee":   w.voucher(w.payer, w.wrongPayee, 10*maxCharge),
		"unknown":       w.voucher(w.payer, 99, 10*maxCharge),
		"not the payer": w.voucher(w.other, w.good, 10*maxCharge),
		"forged":        PaymentSignature(*reqs, forgedV),
		"too little":    w.voucher(w.payer, w.good, owed+maxCharge-1),
		"other network": PaymentSignature(wrongNet, tx.SignVoucher(w.payer, w.chainID, w.good, 10*maxCharge)),
		"not x402":      "e30=",
	} {
		resp := w.post(t, body, pay)
		var e wire.ErrorBody
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != 402 || e.Error.Message == "" {
			t.Errorf("%s: status %d %+v", name, resp.StatusCode, e)
		}
	}
	if w.ledger.Owed(w.good) != owed {
		t.Fatalf("bad vouchers changed what is owed: %d → %d", owed, w.ledger.Owed(w.good))
	}
	// A voucher that verifies but falls short learns what its channel owes;
	// one that does not verify learns nothing about the channel.
	for _, tc := range []struct {
		pay      string
		channel  string
		owedSeen string
	}{
		{w.voucher(w.payer, w.good, owed+maxCharge-1), "1", x402.Amount(owed)},
		{w.voucher(w.other, w.good, 10*maxCharge), "", ""},
	} {
		resp := w.post(t, body, tc.pay)
		resp.Body.Close()
		if _, req, _ := quoteOf(t, resp, w.chainID); req.Extra.ChannelID != tc.channel || req.Extra.Owed != tc.owedSeen {
			t.Errorf("402 extra %+v, want channel %q owed %q", req.Extra, tc.channel, tc.owedSeen)
		}
	}

	// A paid stream ends with its payment response.
	stream := strings.Replace(body, `"max_tokens":4`, `"max_tokens":4,"stream":true`, 1)
	resp = w.post(t, stream, w.voucher(w.payer, w.good, owed+maxCharge+100)) // the longer body may cost a little more
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	ev := paymentEvent(raw)
	if resp.StatusCode != 200 || ev == nil {
		t.Fatalf("paid stream: %d %s", resp.StatusCode, raw)
	}
	if _, _, streamOwed := settleOf(t, ev, false); streamOwed != w.ledger.Owed(w.good) {
		t.Fatalf("the payment event says %d owed, the ledger %d", streamOwed, w.ledger.Owed(w.good))
	}
	owed = w.ledger.Owed(w.good)

	// An expired channel is refused.
	soon, err := w.c.Channel(context.Background(), w.soon, false)
	if err != nil {
		t.Fatal(err)
	}
	waitCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := w.nd.WaitForHeight(waitCtx, int64(soon.ExpiryHeight)-5); err != nil {
		t.Fatal(err)
	}
	resp = w.post(t, body, w.voucher(w.payer, w.soon, 10*maxCharge))
	resp.Body.Close()
	if resp.StatusCode != 402 {
		t.Fatalf("expired channel: status %d", resp.StatusCode)
	}

	var restarted *Ledger
	// Crash safety: a gateway restarted from its ledger file (never closed)
	// claims everything owed, exactly, and claiming again changes nothing.
	restarted, err = OpenLedger(w.ledgerPath)
	if err != nil {
		t.Fatal(err)
	}
	if restarted.Owed(w.good) != owed {
		t.Fatalf("restarted ledger owes %d, want %d", restarted.Owed(w.good), owed)
	}
	ctx := context.Background()
	if err := ClaimOnce(ctx, w.c, w.gw, restarted); err != nil {
		t.Fatal(err)
	}
	if err := ClaimOnce(ctx, w.c, w.gw, restarted); err != nil {
		t.Fatal(err)
	}
	ch, err := w.c.Channel(ctx, w.good, true)
	if err != nil || ch.Claimed != owed {
		t.Fatalf("claimed on chain %v, owed %d (%v)", ch, owed, err)
	}
}

func TestSessionKeyPays(t *testing.T) {
	w := newPayWorld(t)
	ctx := context.Background()
	body := `{"model":"agora-test","messages":[{"role":"user","content":"hi"}],"max_tokens":4,"temperature":0}`
	resp := w.post(t, body, "")
	resp.Body.Close()
	_, _, maxCharge := quoteOf(t, resp, w.chainID)

	h, _ := w.c.Height(ctx)
	seed := make([]byte, 32)
	seed[0] = 77
	session := ed25519.NewKeyFromSeed(seed)
	token := func(capAmount, expiry uint64, netuids []uint32) string {
		d := tx.Delegate(w.payer, w.chainID, w.good, session.Public().(ed25519.PublicKey), capAmount, expiry, netuids)
		tok, err := NewSessionToken(seed, d)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	withBearer := func(tok string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, w.srv.URL+"/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := w.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	// A cap of three maximum charges pays for about three requests, then stops.
	good := token(3*maxCharge, uint64(h)+1000, []uint32{1})
	served := 0
	for range 6 {
		resp := withBearer(good)
		if resp.StatusCode == 200 {
			served++
			continue
		}
		if resp.StatusCode != 402 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		break
	}
	if served < 2 || served > 6 {
		t.Fatalf("session key with a cap of 3 maximum charges served %d requests", served)
	}
	if owed := w.ledger.Owed(w.good); owed > 3*maxCharge {
		t.Fatalf("owed %d beyond the session cap %d", owed, 3*maxCharge)
	}
	for name, tok := range map[string]string{
		"expired": token(agr.Unit, uint64(h), nil),
		// The chain refuses claims from the delegation's expiry on, so a
		// key that expires inside the claim margin could not be claimed.
		"expires inside the claim margin": token(agr.Unit, uint64(h)+3, nil),
		"other subnet":                    token(agr.Unit, uint64(h)+1000, []uint32{7}),
		"not a session":                   "sk-openai-style-key",
	} {
		if resp := withBearer(tok); resp.StatusCode != 402 {
			t.Errorf("%s: status %d, want 402", name, resp.StatusCode)
		}
	}
	// Vouchers the gateway signed with the session key settle on chain.
	if err := ClaimOnce(ctx, w.c, w.gw, w.ledger); err != nil {
		t.Fatal(err)
	}
	ch, err := w.c.Channel(ctx, w.good, false)
	if err != nil || ch.Claimed != w.ledger.Owed(w.good) || ch.Claimed == 0 {
		t.Fatalf("claimed %v, owed %d (%v)", ch, w.ledger.Owed(w.good), err)
	}
}

// fakeChain is a channel table standing in for the chain, counting reads.
type fakeChain struct {
	mu              sync.Mutex
	channels        map[uint64]*tx.Channel
	reads, heightRd int
}

func (f *fakeChain) Channel(_ context.Context, id uint64, _ bool) (*tx.Channel, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	ch, ok := f.channels[id]
	if !ok {
		return nil, client.ErrNoChannel
	}
	return proto.Clone(ch).(*tx.Channel), nil
}

func (f *fakeChain) Height(context.Context) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.heightRd++
	return 100, nil
}

func (f *fakeChain) channelReads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

// paidGateway is a paying gateway over a fakeChain with one funded channel.
type paidGateway struct {
	g       *Gateway
	srv     *httptest.Server
	ledger  *Ledger
	chain   *fakeChain
	payer   ed25519.PrivateKey
	channel uint64
	price   uint64
	signed  uint64 // the last cumulative amount signed
}

const paidChainID = "agora-paid-test"

func newPaidGateway(t *testing.T, cfg Config, price uint64, cacheTTL time.Duration) *paidGateway {
	t.Helper()
	payer, _ := testkit.Key(40)
	gk, gwAddr := testkit.Key(41)
	pg := &paidGateway{payer: payer, channel: 7, price: price, chain: &fakeChain{channels: map[uint64]*tx.Channel{
		7: {Id: 7, PayerPubKey: payer.Public().(ed25519.PublicKey), Payee: gwAddr[:], Netuid: 1, Deposit: 1 << 62, ExpiryHeight: 1 << 40},
	}}}
	var err error
	if pg.ledger, err = OpenLedger(filepath.Join(t.TempDir(), "ledger.jsonl")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.ledger.Close() })
	cfg.Key, cfg.Model = gk, "agora-test"
	cfg.Payments = &Payments{Chain: pg.chain, ChainID: paidChainID, Payee: gwAddr, Netuid: 1, PricePer1K: price,
		Ledger: pg.ledger, ExpiryMargin: 5, CacheTTL: cacheTTL}
	pg.g = New(cfg)
	pg.srv = httptest.NewServer(pg.g.Handler())
	t.Cleanup(pg.srv.Close)
	return pg
}

// pay signs the next voucher for a request of body with maxTokens: enough
// for everything before it plus this request's maximum.
func (pg *paidGateway) pay(t *testing.T, body string, maxTokens int) string {
	t.Helper()
	m, err := x402.MaxCharge(pg.price, len(body), maxTokens)
	if err != nil {
		t.Fatal(err)
	}
	pg.signed += m
	accepts := x402.Requirements{Scheme: x402.SchemeChannel, Network: x402.Network(paidChainID)}
	return PaymentSignature(accepts, tx.SignVoucher(pg.payer, paidChainID, pg.channel, pg.signed))
}

func (pg *paidGateway) post(t *testing.T, ctx context.Context, path, body, payment string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, pg.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if payment != "" {
		req.Header.Set(x402.HeaderPaymentSignature, payment)
	}
	resp, err := pg.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// settledWithin waits until the channel has nothing in flight.
func (pg *paidGateway) settledWithin(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for pg.ledger.Reserved(pg.channel) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("channel %d still has %d reserved after %v", pg.channel, pg.ledger.Reserved(pg.channel), d)
		}
		<-tick.C
	}
}

// minerScript is what a wireMiner serves and what its receipt claims.
type minerScript struct {
	tokens int  // completion tokens served, one id per stream chunk
	hold   bool // after the tokens, keep the stream open until the gateway hangs up
	cut    bool // after the tokens, drop the stream: no receipt
	// The receipt's claims; a negative completion claims what was served.
	prompt, completion int
	price              uint64
}

// wireMiner is a miner double on a real socket speaking the real wire
// protocol: it verifies the gateway's signed request and signs a receipt
// over exactly what it sent, but serves and claims whatever its script says.
func wireMiner(t *testing.T, seed byte, s minerScript) route.Candidate {
	t.Helper()
	k, a := testkit.Key(seed)
	v := wire.NewVerifier(a, nil, 1<<20)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _, err := v.Verify(r)
		if err != nil {
			wire.WriteError(w, http.StatusUnauthorized, "authentication_error", err.Error())
			return
		}
		req, err := openai.Decode(body)
		if err != nil {
			wire.WriteError(w, http.StatusBadRequest, "invalid_request_error", err.Error())
			return
		}
		rc := &wire.Receipt{RequestHash: wire.Hash(body), ModelID: "scripted", PromptTokens: s.prompt, CompletionTokens: s.completion, Price: s.price}
		if rc.CompletionTokens < 0 {
			rc.CompletionTokens = s.tokens
		}
		ids := make([]int, s.tokens)
		stop := "stop"
		if !req.Stream {
			out, _ := json.Marshal(openai.Response{Object: "chat.completion", AgoraTokenIDs: ids,
				Choices: []openai.Choice{{Message: &openai.Message{Role: "assistant", Content: strings.Repeat("t", s.tokens)}, FinishReason: &stop}}})
			rc.ResponseHash = wire.Hash(out)
			wire.SignReceipt(k, rc)
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set(wire.HeaderReceipt, rc.EncodeHeader())
			w.Write(out)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		var h wire.StreamHasher
		send := func(raw []byte) {
			h.Add(raw)
			fmt.Fprintf(w, "data: %s\n\n", raw)
			w.(http.Flusher).Flush()
		}
		for i := range s.tokens {
			raw, _ := json.Marshal(openai.Response{Object: "chat.completion.chunk", AgoraTokenIDs: []int{i},
				Choices: []openai.Choice{{Delta: &openai.Message{Content: "t"}}}})
			send(raw)
		}
		switch {
		case s.hold:
			select {
			case <-r.Context().Done():
			case <-time.After(30 * time.Second): // a safety net so a broken gateway fails the test instead of hanging it
			}
			return
		case s.cut:
			return
		}
		final, _ := json.Marshal(openai.Response{Object: "chat.completion.chunk",
			Choices: []openai.Choice{{Delta: &openai.Message{}, FinishReason: &stop}}})
		send(final)
		send([]byte("[DONE]"))
		rc.ResponseHash = h.Sum()
		wire.SignReceipt(k, rc)
		wire.WriteReceiptEvent(w, rc)
	}))
	t.Cleanup(srv.Close)
	return route.Candidate{Hotkey: a, Endpoint: srv.URL, Score: 1}
}

func chatRequest(maxTokens int, stream bool) string {
	return fmt.Sprintf(`{"model":"agora-test","messages":[{"role":"user","content":"hi"}],"max_tokens":%d,"stream":%v}`, maxTokens, stream)
}

// TestOverflowingPriceIs400 is hole 1: a max_tokens beyond the model's
// context, clear or sealed, and a maximum price that does not fit in an
// amount are refused with a 400 before any payment, never priced by a
// wrapped product; a large but legal request is quoted exactly.
func TestOverflowingPriceIs400(t *testing.T) {
	target := wireMiner(t, 1, minerScript{tokens: 1, completion: -1})
	minerKey, _ := testkit.Key(1)
	ek, err := e2e.DeriveKey(minerKey)
	if err != nil {
		t.Fatal(err)
	}
	sealed := func(maxTokens string) string {
		body, _, err := e2e.Seal(ek.PublicKey(), target.Hotkey, "agora-test", 8, false, []byte(chatRequest(8, false)))
		if err != nil {
			t.Fatal(err)
		}
		// The attack: the clear envelope's max_tokens, which prices the request.
		return strings.Replace(string(body), `"max_tokens":8`, `"max_tokens":`+maxTokens, 1)
	}
	const modelContext = 2048
	cands := func(context.Context) ([]route.Candidate, error) { return []route.Candidate{target}, nil }
	pg := newPaidGateway(t, Config{Candidates: cands, MaxTokens: modelContext}, 1000, 0)
	for _, tc := range []struct{ name, body string }{
		{"sealed, huge", sealed("4611686018427387904")}, // 2^62: 1000 × it wraps uint64
		{"sealed, over the context", sealed("4096")},    // legal for the protocol, not for this model
		{"clear, huge", chatRequest(1<<62, false)},      // the same in the clear
		{"clear, over the context", chatRequest(4096, false)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := pg.post(t, t.Context(), "/v1/chat/completions", tc.body, "")
			var e wire.ErrorBody
			json.NewDecoder(resp.Body).Decode(&e)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || e.Error.Type != "invalid_request_error" || resp.Header.Get(x402.HeaderPaymentRequired) != "" {
				t.Fatalf("status %d %+v, want a 400 and no quote", resp.StatusCode, e)
			}
		})
	}
	// A price whose product with a legal request overflows: a 400, not a wrap.
	steep := newPaidGateway(t, Config{Candidates: cands, MaxTokens: modelContext}, math.MaxUint64, 0)
	resp := steep.post(t, t.Context(), "/v1/chat/completions", chatRequest(modelContext, false), "")
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("overflowing maximum price: status %d, want 400", resp.StatusCode)
	}
	// Large but legal: half a megabyte at a price where price × tokens
	// exceeds 2^64 though the quotient fits. The quote is exact.
	const price = 100_000_000_000_000
	big := newPaidGateway(t, Config{Candidates: cands, MaxTokens: modelContext}, price, 0)
	body := strings.Replace(chatRequest(modelContext, false), `"hi"`, `"`+strings.Repeat("a", 512<<10)+`"`, 1)
	resp = big.post(t, t.Context(), "/v1/chat/completions", body, "")
	resp.Body.Close()
	_, _, amount := quoteOf(t, resp, paidChainID)
	want := new(gobig.Int).Mul(bigU(price), bigU(uint64(len(body)+modelContext)))
	want.Add(want, bigU(999)).Div(want, bigU(1000))
	if !want.IsUint64() || amount != want.Uint64() {
		t.Fatalf("quoted %d for %d bytes and %d tokens, want %s", amount, len(body), modelContext, want)
	}
}

func bigU(v uint64) *gobig.Int { return new(gobig.Int).SetUint64(v) }

// TestAbandonedStreamIsCharged is hole 2: a client that walks away from a
// paid stream after the tokens it wanted pays for the tokens it was sent.
func TestAbandonedStreamIsCharged(t *testing.T) {
	const served = 3
	m := wireMiner(t, 1, minerScript{tokens: served, hold: true})
	pg := newPaidGateway(t, Config{Candidates: func(context.Context) ([]route.Candidate, error) { return []route.Candidate{m}, nil }}, 1000, 0)
	body := chatRequest(64, true)
	resp := pg.post(t, t.Context(), "/v1/chat/completions", body, pg.pay(t, body, 64))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	for got := 0; got < served && sc.Scan(); {
		if strings.HasPrefix(sc.Text(), "data: ") {
			got++
		}
	}
	resp.Body.Close() // walk away: no receipt was ever sent
	pg.settledWithin(t, 10*time.Second)
	want, err := agr.Price(pg.price, served)
	if err != nil {
		t.Fatal(err)
	}
	if got := pg.ledger.Owed(pg.channel); got != want {
		t.Fatalf("an abandoned stream of %d tokens was charged %d, want %d", served, got, want)
	}
}

// TestMidStreamFailureCharged is hole 2's other half: a miner that fails
// part-way (no receipt) is not trusted for anything, but the client pays
// for the tokens it received and is told so at the end of the stream.
func TestMidStreamFailureCharged(t *testing.T) {
	const served = 2
	m := wireMiner(t, 1, minerScript{tokens: served, cut: true})
	pg := newPaidGateway(t, Config{Candidates: func(context.Context) ([]route.Candidate, error) { return []route.Candidate{m}, nil }}, 1000, 0)
	body := chatRequest(16, true)
	resp := pg.post(t, t.Context(), "/v1/chat/completions", body, pg.pay(t, body, 16))
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	ev := paymentEvent(raw)
	if resp.StatusCode != http.StatusOK || !bytes.Contains(raw, []byte(`"error"`)) || ev == nil {
		t.Fatalf("failed stream: %d %s", resp.StatusCode, raw)
	}
	_, charged, owed := settleOf(t, ev, false)
	want, _ := agr.Price(pg.price, served)
	if charged != want || owed != want || pg.ledger.Owed(pg.channel) != want {
		t.Fatalf("charged %d (owed %d, ledger %d), want %d for the %d tokens delivered", charged, owed, pg.ledger.Owed(pg.channel), want, served)
	}
}

// TestLyingMinerReceiptPrice is hole 8: a miner whose signed receipt claims
// more tokens and a higher price than it served does not set the charge; the
// gateway charges its own price of what it can check and counts the lie.
func TestLyingMinerReceiptPrice(t *testing.T) {
	const served, maxTokens = 2, 8
	for _, tc := range []struct {
		name   string
		script func(body string) minerScript
		liar   bool
	}{
		{"honest", func(body string) minerScript {
			p, _ := agr.Price(1000, 5+served)
			return minerScript{tokens: served, prompt: 5, completion: served, price: p}
		}, false},
		{"liar", func(string) minerScript {
			return minerScript{tokens: served, prompt: 1 << 20, completion: 4096, price: 1 << 40}
		}, true},
	} {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/stream=%v", tc.name, stream), func(t *testing.T) {
				body := chatRequest(maxTokens, stream)
				m := wireMiner(t, 1, tc.script(body))
				pg := newPaidGateway(t, Config{Candidates: func(context.Context) ([]route.Candidate, error) { return []route.Candidate{m}, nil }}, 1000, 0)
				resp := pg.post(t, t.Context(), "/v1/chat/completions", body, pg.pay(t, body, maxTokens))
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d: %s", resp.StatusCode, raw)
				}
				var charged uint64
				if stream {
					_, charged, _ = settleOf(t, paymentEvent(raw), false)
				} else {
					_, charged, _ = settleOf(t, []byte(resp.Header.Get(x402.HeaderPaymentResponse)), true)
				}
				// Honest: the receipt's own counts. Liar: prompt bounded
				// by the body's bytes, completion by what was relayed.
				prompt := 5
				if tc.liar {
					prompt = len(body)
				}
				want, _ := agr.Price(1000, uint64(prompt+served))
				if charged != want || pg.ledger.Owed(pg.channel) != want {
					t.Fatalf("charged %d (ledger %d), want %d", charged, pg.ledger.Owed(pg.channel), want)
				}
				if got := pg.g.PriceMismatches(); (got != 0) != tc.liar {
					t.Fatalf("%d price mismatches flagged for the %s miner", got, tc.name)
				}
			})
		}
	}
}

// TestForgedChannelIDsAreLimited is hole 9: vouchers naming made-up
// channels, each a chain read, run out of their client address's budget
// (429) after a bounded number of reads; forged vouchers naming a real
// channel cannot spend its payer's limits; the real payer is still served.
func TestForgedChannelIDsAreLimited(t *testing.T) {
	m := wireMiner(t, 1, minerScript{tokens: 1, prompt: 1, completion: -1})
	const burst = 5
	pg := newPaidGateway(t, Config{Limits: Limits{PerSecond: 0.001, Burst: burst},
		Candidates: func(context.Context) ([]route.Candidate, error) { return []route.Candidate{m}, nil }}, 1000, time.Hour)
	body := chatRequest(4, false)
	honest := func() int {
		resp := pg.post(t, t.Context(), "/v1/chat/completions", body, pg.pay(t, body, 4))
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := honest(); code != http.StatusOK { // warms the channel cache: one chain read
		t.Fatalf("honest payer: %d", code)
	}
	attacker, _ := testkit.Key(66)
	accepts := x402.Requirements{Scheme: x402.SchemeChannel, Network: x402.Network(paidChainID)}
	codes := map[int]int{}
	// Forgeries of the real channel: they fail verification, so they never
	// touch the payer's bucket (old code: they emptied it).
	for range 2 * burst {
		resp := pg.post(t, t.Context(), "/v1/chat/completions", body, PaymentSignature(accepts, tx.SignVoucher(attacker, paidChainID, pg.channel, 1<<30)))
		resp.Body.Close()
		codes[resp.StatusCode]++
	}
	if codes[http.StatusPaymentRequired] != 2*burst {
		t.Fatalf("forged vouchers on a cached channel: %v, want all 402", codes)
	}
	before := pg.chain.channelReads()
	clear(codes)
	const forged = 50
	for i := range forged {
		resp := pg.post(t, t.Context(), "/v1/chat/completions", body, PaymentSignature(accepts, tx.SignVoucher(attacker, paidChainID, uint64(1000+i), 1<<30)))
		resp.Body.Close()
		codes[resp.StatusCode]++
		if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
	}
	reads := pg.chain.channelReads() - before
	if reads > burst || codes[http.StatusTooManyRequests] < forged-burst {
		t.Fatalf("%d forged channel ids: %d chain reads, statuses %v (budget %d)", forged, reads, codes, burst)
	}
	if code := honest(); code != http.StatusOK {
		t.Fatalf("the honest payer after the flood: %d", code)
	}
}
