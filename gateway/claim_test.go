package gateway

import (
	"context"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/internal/testkit"
	"github.com/agoranet/agora/node"
)

// claimWorld is a real in-process chain with a subnet, a payer and a payee
// (the gateway).
type claimWorld struct {
	chain     *testkit.Chain
	c         *client.Client
	nd        *node.Node
	chainID   string
	payer, gw ed25519.PrivateKey
	gwAddr    address.Address
	nextID    uint64 // the next channel id the chain will assign
}

func newClaimWorld(t *testing.T) *claimWorld {
	t.Helper()
	payer, payerAddr := testkit.Key(1)
	gw, gwAddr := testkit.Key(2)
	ownerHot, _ := testkit.Key(3)
	g := chain.Genesis{Params: chain.DefaultParams(100), Devnet: true, Accounts: []chain.GenesisAccount{
		{Address: payerAddr, Balance: 10_000 * agr.Unit}, {Address: gwAddr, Balance: 10 * agr.Unit}}}
	ch := testkit.StartChain(t, testkit.NodeOptions{ChainID: "agora-claim-test", Genesis: g, BlockTime: 100 * time.Millisecond})
	ch.RegisterSubnet(t, payer, ownerHot, "")
	return &claimWorld{chain: ch, c: ch.Client, nd: ch.Node, chainID: ch.ID, payer: payer, gw: gw, gwAddr: gwAddr, nextID: 1}
}

func (w *claimWorld) height(t *testing.T) uint64 {
	t.Helper()
	h, err := w.c.Height(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return uint64(h)
}

// open opens n channels from the payer to the gateway, expiring after
// `blocks` more blocks, and returns their ids.
func (w *claimWorld) open(t *testing.T, n int, deposit, blocks uint64) []uint64 {
	t.Helper()
	var ids []uint64
	for n > 0 {
		batch := min(n, 64) // the chain's MaxMsgsPerTx
		expiry := w.height(t) + blocks
		msgs := make([]*tx.Msg, batch)
		for i := range msgs {
			msgs[i] = tx.ChannelOpen(w.gwAddr, 1, deposit, expiry)
			ids = append(ids, w.nextID)
			w.nextID++
		}
		w.chain.Send(t, w.payer, msgs...)
		n -= batch
	}
	return ids
}

// charge records a voucher for cum on channel and a request charged amount.
func (w *claimWorld) charge(t *testing.T, l *Ledger, channel, cum, amount uint64) {
	t.Helper()
	if err := accept(l, tx.SignVoucher(w.payer, w.chainID, channel, cum), amount); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Settle(channel, amount, amount); err != nil {
		t.Fatal(err)
	}
}

func (w *claimWorld) claimed(t *testing.T, channel uint64) uint64 {
	t.Helper()
	ch, err := w.c.Channel(context.Background(), channel, false)
	if err != nil {
		t.Fatalf("channel %d: %v", channel, err)
	}
	return ch.Claimed
}

func (w *claimWorld) balance(t *testing.T, a address.Address) uint64 {
	t.Helper()
	acc, _, err := w.c.Account(context.Background(), a, false)
	if err != nil {
		t.Fatal(err)
	}
	return acc.Balance
}

// TestClaimSeventyChannels is hole 3's first half: more channels than fit
// in one transaction (MaxMsgsPerTx is 64) are all claimed.
func TestClaimSeventyChannels(t *testing.T) {
	w := newClaimWorld(t)
	ids := w.open(t, 70, agr.Unit, 100_000)
	l, _ := openLedger(t)
	want := map[uint64]uint64{}
	for i, id := range ids {
		want[id] = 1000 + uint64(i)
		w.charge(t, l, id, 10_000, want[id])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := ClaimOnce(ctx, w.c, w.gw, l); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if got := w.claimed(t, id); got != want[id] {
			t.Fatalf("channel %d: claimed %d on chain, settled %d", id, got, want[id])
		}
	}
	if rest := unclaimed(t, l); len(rest) != 0 {
		t.Fatalf("%d claims left", len(rest))
	}
}

// TestClaimBadChannelDoesNotStopOthers is hole 3's second half: a channel
// the payer closed first, and a claim the chain refuses (a voucher that does
// not verify), are dropped and reported while the other channels are
// claimed; and the refused claim is not retried (each try burns a fee).
func TestClaimBadChannelDoesNotStopOthers(t *testing.T) {
	w := newClaimWorld(t)
	good := w.open(t, 1, agr.Unit, 100_000)[0]
	closed := w.open(t, 1, agr.Unit, 3)[0]
	forged := w.open(t, 1, agr.Unit, 100_000)[0]
	good2 := w.open(t, 1, agr.Unit, 100_000)[0]
	// The payer closes its channel once it expires, before the gateway claims.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ch, err := w.c.Channel(ctx, closed, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.nd.WaitForHeight(ctx, int64(ch.ExpiryHeight)+1); err != nil {
		t.Fatal(err)
	}
	w.chain.Send(t, w.payer, tx.ChannelClose(closed))

	l, _ := openLedger(t)
	w.charge(t, l, good, 500, 300)
	w.charge(t, l, closed, 500, 300)
	// A voucher the chain does not accept (in the ledger the gateway's own
	// checks would have refused it, but the claimer must not rely on that).
	if err := accept(l, &tx.Voucher{ChannelId: forged, Cumulative: 500, Signature: make([]byte, 64)}, 500); err != nil {
		t.Fatal(err)
	}
	l.Settle(forged, 500, 300)
	w.charge(t, l, good2, 500, 200)

	cl, err := NewClaimer(ctx, ClaimConfig{Chain: w.c, Key: w.gw, Ledger: l, ExpiryMargin: 8})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := cl.Once(ctx, true)
	if !errors.Is(err, ErrClaimFailed) {
		t.Fatalf("a refused claim is not reported: %v", err)
	}
	failed := map[uint64]bool{}
	for _, f := range rep.Failed {
		failed[f.Channel] = true
	}
	if len(rep.Failed) != 2 || !failed[closed] || !failed[forged] || len(rep.Claimed) != 2 {
		t.Fatalf("report: claimed %d, failed %+v", len(rep.Claimed), rep.Failed)
	}
	if w.claimed(t, good) != 300 || w.claimed(t, good2) != 200 {
		t.Fatalf("good channels claimed %d and %d", w.claimed(t, good), w.claimed(t, good2))
	}
	// Nothing is left to try: another round sends nothing and burns no fee.
	before := w.balance(t, w.gwAddr)
	rep, err = cl.Once(ctx, true)
	if err != nil || len(rep.Claimed)+len(rep.Failed) != 0 {
		t.Fatalf("second round: %+v %v", rep, err)
	}
	if after := w.balance(t, w.gwAddr); after != before {
		t.Fatalf("second round burned %d", before-after)
	}
	// New charges on a good channel are claimed as usual.
	w.charge(t, l, good, 1000, 100)
	if _, err := cl.Once(ctx, true); err != nil || w.claimed(t, good) != 400 {
		t.Fatalf("third round: claimed %d, %v", w.claimed(t, good), err)
	}
}

// TestClaimBeforeExpiry: a channel nearing its expiry is claimed at once,
// even when the regular claim interval is far away; others wait.
func TestClaimBeforeExpiry(t *testing.T) {
	w := newClaimWorld(t)
	const margin = 12
	soon := w.open(t, 1, agr.Unit, margin+20)[0]
	later := w.open(t, 1, agr.Unit, 100_000)[0]
	l, _ := openLedger(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := NewClaimer(ctx, ClaimConfig{Chain: w.c, Key: w.gw, Ledger: l, ExpiryMargin: margin, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if cl.CheckEvery() != margin/4*100*time.Millisecond {
		t.Fatalf("checks every %v", cl.CheckEvery())
	}
	rounds := make(chan struct{}, 1)
	cl.afterRound = func() {
		select {
		case rounds <- struct{}{}:
		default:
		}
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); cl.Run(runCtx) }()
	defer func() { stop(); <-done }()
	// Charged after Run's first round (which claims everything), so only
	// the expiry check can claim it before the hour is up.
	<-rounds
	w.charge(t, l, soon, 500, 321)
	w.charge(t, l, later, 500, 123)
	ch, err := w.c.Channel(ctx, soon, false)
	if err != nil {
		t.Fatal(err)
	}
	for w.claimed(t, soon) != 321 {
		if w.height(t) >= ch.ExpiryHeight {
			t.Fatalf("channel %d reached its expiry %d unclaimed", soon, ch.ExpiryHeight)
		}
		select {
		case <-ctx.Done():
			t.Fatal("never claimed")
		case <-time.After(50 * time.Millisecond):
		}
	}
	if w.claimed(t, later) != 0 {
		t.Fatal("a channel far from expiry was claimed before the interval")
	}
}

// noChain is a ClaimChain that must not be called.
type noChain struct{ ClaimChain }

func TestNewClaimerSchedule(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cfg      ClaimConfig
		err      error
		interval time.Duration // CheckEvery when accepted
	}{
		{"no margin", ClaimConfig{ExpiryMargin: 0}, ErrClaimSchedule, 0},
		{"margin too small to claim in", ClaimConfig{ExpiryMargin: MinExpiryMargin - 1}, ErrClaimSchedule, 0},
		{"negative interval", ClaimConfig{ExpiryMargin: 10, Interval: -time.Second}, ErrClaimSchedule, 0},
		{"checks derived from the margin", ClaimConfig{ExpiryMargin: 40, Interval: time.Hour}, nil, 10 * time.Second},
		{"interval shorter than the margin", ClaimConfig{ExpiryMargin: 40, Interval: 3 * time.Second}, nil, 3 * time.Second},
		{"minimum margin", ClaimConfig{ExpiryMargin: MinExpiryMargin}, nil, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, _ := openLedger(t)
			cfg := tc.cfg
			k, _ := testkit.Key(9)
			cfg.Chain, cfg.Key, cfg.Ledger, cfg.BlockTime, cfg.MaxMsgsPerTx = noChain{}, k, l, time.Second, 64
			cl, err := NewClaimer(context.Background(), cfg)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if err == nil && cl.CheckEvery() != tc.interval {
				t.Fatalf("checks every %v, want %v", cl.CheckEvery(), tc.interval)
			}
		})
	}
}

func TestFailedMessage(t *testing.T) {
	for _, tc := range []struct {
		log string
		i   int
		ok  bool
	}{
		{"message 3: voucher signature does not verify", 3, true},
		{"tx rejected: message 12: channel 9: not found", 12, true},
		{"nonce 4, account expects 5", 0, false},
		{"message x: what", 0, false},
	} {
		if i, ok := failedMessage(tc.log); i != tc.i || ok != tc.ok {
			t.Errorf("%q: %d %v", tc.log, i, ok)
		}
	}
}
