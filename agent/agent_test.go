package agent_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agent"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/e2e"
	"github.com/agoranet/agora/internal/testkit"
	"github.com/agoranet/agora/openai"
	"github.com/agoranet/agora/wire"
	"github.com/agoranet/agora/x402"
)

const (
	chainID = "agora-agent-test"
	netuid  = 1
	price   = 1000 // nagr per 1k tokens: one nagr a token
	chanID  = 7
)

// fakeChain is the chain as the agent's own (trusted) node reports it.
type fakeChain struct {
	mu       sync.Mutex
	channels map[uint64]*tx.Channel
	graphs   map[uint32]*tx.Metagraph
}

func (c *fakeChain) Channel(_ context.Context, id uint64, _ bool) (*tx.Channel, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch, ok := c.channels[id]
	if !ok {
		return nil, fmt.Errorf("channel %d: %w", id, client.ErrNoChannel)
	}
	return proto.Clone(ch).(*tx.Channel), nil
}

func (c *fakeChain) Subnet(_ context.Context, n uint32, _ bool) (*tx.Subnet, error) {
	mg, err := c.graph(n)
	if err != nil {
		return nil, err
	}
	return mg.Subnet, nil
}

func (c *fakeChain) Metagraph(_ context.Context, n uint32, _ int64) (*tx.Metagraph, error) {
	return c.graph(n)
}

// graph is a copy of subnet n's metagraph, as a node's answer would be.
func (c *fakeChain) graph(n uint32) (*tx.Metagraph, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	mg, ok := c.graphs[n]
	if !ok {
		return nil, fmt.Errorf("subnet %d: %w", n, client.ErrNoSubnet)
	}
	return proto.Clone(mg).(*tx.Metagraph), nil
}

// world is one payer, a validator running a gateway, a registered neuron
// without a permit, and a miner with a published X25519 key.
type world struct {
	payer               ed25519.PrivateKey
	validator, stranger address.Address
	miner               address.Address
	minerKey            *e2e.PrivateKey
	chain               *fakeChain
}

func newWorld(t *testing.T, deposit uint64) *world {
	t.Helper()
	payer, payerAddr := testkit.Key(1)
	_, validator := testkit.Key(2)
	_, stranger := testkit.Key(3)
	minerPriv, miner := testkit.Key(4)
	mk, err := e2e.DeriveKey(minerPriv)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{payer: payer, validator: validator, stranger: stranger, miner: miner, minerKey: mk}
	w.chain = &fakeChain{
		channels: map[uint64]*tx.Channel{chanID: {Id: chanID, Payer: payerAddr[:], PayerPubKey: payer.Public().(ed25519.PublicKey),
			Payee: validator[:], Netuid: netuid, Deposit: deposit, ExpiryHeight: 1_000_000}},
		graphs: map[uint32]*tx.Metagraph{netuid: {
			Subnet: &tx.Subnet{Netuid: netuid, Params: &tx.SubnetParams{PricePer_1K: price}},
			Neurons: []*tx.Neuron{
				{Hotkey: validator[:], ValidatorPermit: true},
				{Hotkey: stranger[:]},
				{Hotkey: miner[:], X25519PubKey: mk.PublicKey()},
			},
		}},
	}
	return w
}

func (w *world) agent(url string) *agent.Agent {
	a := agent.New(url, w.payer, chainID, chanID, 0)
	a.Chain = w.chain
	return a
}

// testGateway speaks the gateway's 402 flow over a real socket, honestly
// unless told otherwise, and records every request as a tap would: what
// the agent sent, not what it meant to send.
type testGateway struct {
	t          *testing.T
	w          *world
	payee      address.Address
	netuid     uint32
	price      uint64
	extra      uint64 // added to every quote
	owedLie    uint64 // added to the owed it reports in 402s and payment responses
	quoteOwe   bool   // report owed in the 402 too
	overcharge uint64 // added to each request's charge

	mu       sync.Mutex
	requests []tapped
	vouchers []uint64 // cumulative of every PAYMENT-SIGNATURE received
	owed     uint64   // its ledger: honest total plus any lies
	last     uint64
}

type tapped struct {
	method, url string
	header      http.Header
	body        []byte
}

func newGateway(t *testing.T, w *world) *testGateway {
	return &testGateway{t: t, w: w, payee: w.validator, netuid: netuid, price: price}
}

func (g *testGateway) start() string {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/agora/miners", func(rw http.ResponseWriter, r *http.Request) {
		g.tap(r, nil)
		fmt.Fprintf(rw, `{"data":[{"uid":2,"hotkey":%q,"score":1}]}`, g.w.miner)
	})
	mux.HandleFunc("POST /v1/chat/completions", g.complete)
	srv := httptest.NewServer(mux) // bound to 127.0.0.1:0 and handed over
	g.t.Cleanup(srv.Close)
	return srv.URL + "/v1"
}

func (g *testGateway) tap(r *http.Request, body []byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.requests = append(g.requests, tapped{method: r.Method, url: r.URL.String(), header: r.Header.Clone(), body: body})
}

func (g *testGateway) signed() []uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]uint64(nil), g.vouchers...)
}

func (g *testGateway) complete(rw http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	g.tap(r, body)
	env, err := e2e.Detect(body)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	maxTokens := 0
	if env != nil {
		maxTokens = env.MaxTokens
	} else {
		req, err := openai.Decode(body)
		if err != nil || req.MaxTokens == nil {
			http.Error(rw, "bad request", http.StatusBadRequest)
			return
		}
		maxTokens = *req.MaxTokens
	}
	honest, err := x402.MaxCharge(g.price, len(body), maxTokens)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	quote := honest + g.extra

	g.mu.Lock()
	defer g.mu.Unlock()
	h := r.Header.Get(x402.HeaderPaymentSignature)
	if h == "" {
		g.paymentRequired(rw, quote)
		return
	}
	var pp x402.PaymentPayload
	if err := x402.Decode(h, &pp); err != nil {
		g.t.Errorf("agent sent a malformed %s: %v", x402.HeaderPaymentSignature, err)
		g.paymentRequired(rw, quote)
		return
	}
	cum, _ := strconv.ParseUint(pp.Payload.Cumulative, 10, 64)
	id, _ := strconv.ParseUint(pp.Payload.ChannelID, 10, 64)
	sig, _ := hex.DecodeString(pp.Payload.Signature)
	g.vouchers = append(g.vouchers, cum)
	v := &tx.Voucher{ChannelId: id, Cumulative: cum, Signature: sig}
	if pp.X402Version != x402.Version || pp.Accepted.Scheme != x402.SchemeChannel || !v.Verify(chainID, g.w.payer.Public().(ed25519.PublicKey)) {
		g.t.Errorf("agent sent a voucher that does not verify: %+v", pp)
		g.paymentRequired(rw, quote)
		return
	}
	if cum <= g.last || cum < g.owed+quote {
		g.paymentRequired(rw, quote) // what a gateway's ledger does
		return
	}
	g.last = cum
	charged := quote/2 + g.overcharge
	g.owed += charged

	rw.Header().Set("Content-Type", "text/event-stream")
	rw.WriteHeader(http.StatusOK)
	chunks := []string{"Hel", "lo"}
	var reply *e2e.Reply
	if env != nil {
		if _, reply, err = g.w.minerKey.Open(g.w.miner, env); err != nil {
			g.t.Errorf("open sealed request: %v", err)
			return
		}
	}
	for i, c := range chunks {
		data, _ := json.Marshal(map[string]any{"choices": []map[string]any{{"index": 0, "delta": map[string]string{"content": c}}}})
		if reply != nil {
			data = reply.Seal(data, i == len(chunks)-1)
		}
		fmt.Fprintf(rw, "data: %s\n\n", data)
	}
	if reply == nil {
		fmt.Fprint(rw, "data: [DONE]\n\n")
	}
	wire.WriteReceiptEvent(rw, &wire.Receipt{Miner: hex.EncodeToString(make([]byte, 32)), ModelID: "m", CompletionTokens: len(chunks)})
	sr, _ := json.Marshal(x402.SettleResponse{Success: true, Network: x402.Network(chainID), Extra: x402.SettleExtra{
		ChannelID: pp.Payload.ChannelID, Charged: x402.Amount(charged), Owed: x402.Amount(g.owed + g.owedLie)}})
	fmt.Fprintf(rw, "event: %s\ndata: %s\n\n", x402.PaymentEvent, sr)
}

// paymentRequired answers 402; call with g.mu held.
func (g *testGateway) paymentRequired(rw http.ResponseWriter, quote uint64) {
	extra := x402.ChannelExtra{ChainID: chainID, Netuid: g.netuid, PricePer1K: x402.Amount(g.price)}
	if g.quoteOwe {
		extra.ChannelID, extra.Owed = strconv.Itoa(chanID), x402.Amount(g.owed+g.owedLie)
	}
	rw.Header().Set(x402.HeaderPaymentRequired, x402.Encode(x402.PaymentRequired{X402Version: x402.Version,
		Resource: x402.Resource{URL: "/v1/chat/completions"},
		Accepts: []x402.Requirements{{Scheme: x402.SchemeChannel, Network: x402.Network(chainID), Amount: x402.Amount(quote),
			Asset: x402.Asset, PayTo: g.payee.String(), MaxTimeoutSeconds: 60, Extra: extra}}}))
	wire.WriteError(rw, http.StatusPaymentRequired, "payment_required", "pay")
}

// bound is what the agent may authorize for one clear chat of prompt.
func bound(t *testing.T, prompt string, maxTokens int) uint64 {
	t.Helper()
	body, _ := json.Marshal(openai.ChatRequest{Model: agent.Model, Messages: []openai.Message{{Role: "user", Content: prompt}},
		MaxTokens: &maxTokens, Stream: true})
	b, err := x402.MaxCharge(price, len(body), maxTokens)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestAgentPaysHonestGateway(t *testing.T) {
	w := newWorld(t, 1_000_000)
	g := newGateway(t, w)
	g.quoteOwe = true
	a := w.agent(g.start())
	var owed uint64
	for i := range 3 {
		text, err := a.Chat(ctx(t), "hello", 16, nil)
		if err != nil || text != "Hello" {
			t.Fatalf("chat %d: %q %v", i, text, err)
		}
		b := bound(t, "hello", 16)
		if v := g.signed(); v[len(v)-1] != owed+b {
			t.Fatalf("chat %d: voucher %d, want owed %d + bound %d", i, v[len(v)-1], owed, b)
		}
		owed += b / 2
		if a.Owed != owed || a.Signed != g.last {
			t.Fatalf("chat %d: agent owed %d signed %d, gateway owed %d last %d", i, a.Owed, a.Signed, owed, g.last)
		}
	}
}

// Hole 7: the agent signs nothing the gateway asks beyond the agent's own
// price bound, its budget, the channel's deposit, or what it agreed it owes.
func TestAgentRefusesMaliciousGateway(t *testing.T) {
	b := bound(t, "hello", 16)
	for _, tc := range []struct {
		name    string
		deposit uint64
		budget  uint64
		gateway func(*testGateway)
		want    error
	}{
		{name: "quote above the on-chain price", gateway: func(g *testGateway) { g.extra = 1 }, want: agent.ErrOverpriced},
		{name: "quote at a made-up price", gateway: func(g *testGateway) { g.price = 10 * price }, want: agent.ErrOverpriced},
		{name: "quote above the budget", budget: b - 1, want: agent.ErrOverBudget},
		{name: "quote beyond the deposit", deposit: b - 1, want: agent.ErrDeposit},
		{name: "claims it is owed more", gateway: func(g *testGateway) { g.quoteOwe, g.owedLie = true, 1 }, want: agent.ErrOwed},
		{name: "names another payee", gateway: func(g *testGateway) { g.payee = g.w.stranger }, want: agent.ErrTerms},
		{name: "names another subnet", gateway: func(g *testGateway) { g.netuid = 2 }, want: agent.ErrTerms},
	} {
		t.Run(tc.name, func(t *testing.T) {
			deposit := tc.deposit
			if deposit == 0 {
				deposit = 1_000_000
			}
			w := newWorld(t, deposit)
			g := newGateway(t, w)
			if tc.gateway != nil {
				tc.gateway(g)
			}
			a := w.agent(g.start())
			a.Budget = tc.budget
			_, err := a.Chat(ctx(t), "hello", 16, nil)
			if !errors.Is(err, tc.want) || !errors.Is(err, agent.ErrRefused) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if v := g.signed(); len(v) != 0 {
				t.Fatalf("the agent signed vouchers %v for a gateway it refused", v)
			}
			if a.Signed != 0 || a.Owed != 0 {
				t.Fatalf("refused, yet signed %d owed %d", a.Signed, a.Owed)
			}
		})
	}
}

// Hole 7: a gateway that reports, after serving, a larger total than the
// agent agreed to (or a charge above the request's authorization) is
// refused, and the agent's next voucher follows its own books.
func TestAgentKeepsItsOwnBooks(t *testing.T) {
	b := bound(t, "hello", 16)
	for _, tc := range []struct {
		name     string
		gateway  func(*testGateway)
		want     error
		wantOwed uint64 // the agent's books after the first chat
	}{
		{name: "inflated owed", gateway: func(g *testGateway) { g.owedLie = 5_000 }, want: agent.ErrOwed, wantOwed: b / 2},
		{name: "overcharged request", gateway: func(g *testGateway) { g.overcharge = b }, want: agent.ErrOvercharged, wantOwed: b},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, 1_000_000)
			g := newGateway(t, w)
			tc.gateway(g)
			a := w.agent(g.start())
			text, err := a.Chat(ctx(t), "hello", 16, nil)
			if !errors.Is(err, tc.want) || text != "Hello" {
				t.Fatalf("first chat: %q %v, want the answer and %v", text, err, tc.want)
			}
			if a.Owed != tc.wantOwed {
				t.Fatalf("agent owes %d by its books, want %d", a.Owed, tc.wantOwed)
			}
			// The gateway now insists on its own total; the agent signs
			// only its own, which the gateway refuses.
			g.mu.Lock()
			g.quoteOwe = false
			g.mu.Unlock()
			a.Chat(ctx(t), "hello", 16, nil)
			for _, v := range g.signed() {
				if v > tc.wantOwed+b {
					t.Fatalf("voucher %d above the agent's own owed %d + bound %d (all: %v)", v, tc.wantOwed, b, g.signed())
				}
			}
		})
	}
}

// Hole 7: before a channel is opened, the payee a gateway names must be a
// validator with a permit on a subnet that exists.
func TestDiscoverChecksPayeeOnChain(t *testing.T) {
	for _, tc := range []struct {
		name    string
		gateway func(*testGateway)
		want    error
	}{
		{name: "permitted validator"},
		{name: "payee without a permit", gateway: func(g *testGateway) { g.payee = g.w.stranger }, want: agent.ErrPayee},
		{name: "payee not registered", gateway: func(g *testGateway) { _, g.payee = testkit.Key(9) }, want: agent.ErrPayee},
		{name: "subnet that does not exist", gateway: func(g *testGateway) { g.netuid = 42 }, want: client.ErrNoSubnet},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, 1_000_000)
			g := newGateway(t, w)
			if tc.gateway != nil {
				tc.gateway(g)
			}
			a := agent.New(g.start(), w.payer, chainID, 0, 0)
			a.Chain = w.chain
			terms, err := a.Discover(ctx(t), 16)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if tc.want == nil && (terms.Payee != w.validator || terms.Netuid != netuid) {
				t.Fatalf("terms %+v", terms)
			}
			if v := g.signed(); len(v) != 0 {
				t.Fatalf("discovery signed vouchers %v", v)
			}
		})
	}
}

// Hole 6: a sealed chat, run as `agora chat --e2e` runs it (discover,
// pick a miner, seal, pay), shows the gateway no prompt in any request.
func TestSealedChatSendsNoClearPrompt(t *testing.T) {
	const canary = "CANARY-7f3a91 my secret question"
	w := newWorld(t, 1_000_000)
	g := newGateway(t, w)
	url := g.start()
	a := agent.New(url, w.payer, chainID, 0, 0)
	a.Chain = w.chain
	terms, err := a.Discover(ctx(t), 16)
	if err != nil {
		t.Fatal(err)
	}
	a.Channel = chanID // opened to terms.Payee on terms.Netuid
	if a.Sealed, err = agent.PickMiner(ctx(t), url, w.chain, terms.Netuid); err != nil {
		t.Fatal(err)
	}
	text, err := a.Chat(ctx(t), canary, 16, nil)
	if err != nil || text != "Hello" {
		t.Fatalf("sealed chat: %q %v", text, err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.requests) < 4 || len(g.vouchers) != 1 {
		t.Fatalf("tap saw %d requests and %d vouchers; want discovery, miners, probe and the paid request", len(g.requests), len(g.vouchers))
	}
	for _, r := range g.requests {
		var hdr bytes.Buffer
		r.header.Write(&hdr)
		for _, part := range []string{r.url, hdr.String(), string(r.body)} {
			if strings.Contains(part, "CANARY") || strings.Contains(part, "secret question") {
				t.Fatalf("the gateway saw the prompt in %s %s: %q", r.method, r.url, part)
			}
		}
	}
}

// Many goroutines share one agent: Chat serializes them, so vouchers still
// rise and the books add up (the race detector checks the rest).
func TestAgentConcurrentChats(t *testing.T) {
	w := newWorld(t, 1_000_000)
	g := newGateway(t, w)
	a := w.agent(g.start())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if _, err := a.Chat(ctx(t), "hello", 16, nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if b := bound(t, "hello", 16); a.Owed != 4*(b/2) {
		t.Fatalf("owed %d after 4 chats, want %d", a.Owed, 4*(b/2))
	}
}
