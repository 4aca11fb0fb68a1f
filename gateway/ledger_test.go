package gateway

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/x402"
)

// accept accepts a voucher and waits until it is durable.
func accept(l *Ledger, v *tx.Voucher, maxCharge uint64) error {
	d, err := l.Accept(v, maxCharge)
	if err != nil {
		return err
	}
	return d()
}

func openLedger(t testing.TB) (*Ledger, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	l, err := OpenLedger(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, path
}

func testVoucher(ch, cum uint64) *tx.Voucher {
	return &tx.Voucher{ChannelId: ch, Cumulative: cum, Signature: make([]byte, 64)}
}

func unclaimed(t *testing.T, l *Ledger) []*tx.MsgChannelClaim {
	t.Helper()
	claims, err := l.Unclaimed()
	if err != nil {
		t.Fatal(err)
	}
	return claims
}

func TestLedgerReplayAndTornTail(t *testing.T) {
	l, path := openLedger(t)
	if err := accept(l, testVoucher(4, 100), 60); err != nil {
		t.Fatal(err)
	}
	if owed, _ := l.Settle(4, 60, 25); owed != 25 {
		t.Fatalf("owed %d after settling at 25", owed)
	}
	if err := accept(l, testVoucher(4, 100), 10); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: %v", err)
	}
	if err := accept(l, testVoucher(4, 110), 90); !errors.Is(err, ErrInsufficient) {
		t.Fatalf("insufficient: %v", err)
	}
	// In flight when the process dies: its reservation is released at restart.
	if err := accept(l, testVoucher(4, 200), 90); err != nil {
		t.Fatal(err)
	}
	// A crash mid-write leaves half a line behind.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"t":"vouch`)
	f.Close()
	r, err := OpenLedger(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Settled(4) != 25 || r.Reserved(4) != 0 || r.Owed(4) != 25 {
		t.Fatalf("replayed settled %d reserved %d owed %d, want 25/0/25", r.Settled(4), r.Reserved(4), r.Owed(4))
	}
	claims := unclaimed(t, r)
	if len(claims) != 1 || claims[0].Amount != 25 || claims[0].Voucher.Cumulative != 200 {
		t.Fatalf("unclaimed %v", claims)
	}
	if err := r.MarkClaimed(4, 25); err != nil || len(unclaimed(t, r)) != 0 {
		t.Fatalf("after claim: %v %v", err, unclaimed(t, r))
	}
	// The released reservation no longer needs covering: a voucher above
	// the last one that covers settled + this request is enough.
	if err := accept(r, testVoucher(4, 201), 100); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	// Records written after the torn tail survive the next replay.
	r2, err := OpenLedger(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if len(unclaimed(t, r2)) != 0 || r2.Settled(4) != 25 || r2.Claimed(4) != 25 {
		t.Fatalf("second replay: settled %d claimed %d unclaimed %v", r2.Settled(4), r2.Claimed(4), unclaimed(t, r2))
	}
}

// TestLedgerClaimsOnlySettledCharges is hole 14 at the ledger: claims made
// while requests are in flight (as the claim loop does) must never include
// their provisional maximum, because the chain only takes claims upward and
// the later downward adjustment would never reach it. After traffic stops,
// what the chain holds equals the sum of the charges reported to the payer.
// The traffic mixes completed requests (charged in full), abandoned ones
// (charged for part), failed ones (charged 0) and requests reporting more
// than they reserved (capped).
func TestLedgerClaimsOnlySettledCharges(t *testing.T) {
	l, path := openLedger(t)
	const channels, requests, workers = 3, 200, 8
	var (
		mu       sync.Mutex
		reported = map[uint64]uint64{} // Σ charges the gateway reported per channel
		chainMax = map[uint64]uint64{} // the chain's claimed total: claims only go up
	)
	claim := func() {
		claims, err := l.Unclaimed()
		if err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, c := range claims {
			if c.Amount > c.Voucher.Cumulative {
				t.Errorf("claim %d above its voucher %d", c.Amount, c.Voucher.Cumulative)
			}
			chainMax[c.Voucher.ChannelId] = max(chainMax[c.Voucher.ChannelId], c.Amount)
			if err := l.MarkClaimed(c.Voucher.ChannelId, c.Amount); err != nil {
				t.Error(err)
			}
		}
	}
	var next [channels + 1]sync.Mutex // a payer signs one voucher at a time per channel
	var last [channels + 1]uint64     // guarded by next
	var wg sync.WaitGroup
	var done atomic.Int64
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range requests {
				ch := uint64(1 + (w+i)%channels)
				maxCharge := uint64(50 + rng.IntN(1000))
				next[ch].Lock()
				// What an honest payer signs: above its last voucher, and
				// covering what it owes plus this request.
				cum := max(last[ch]+1, l.Owed(ch)+maxCharge+uint64(rng.IntN(3)))
				err := accept(l, testVoucher(ch, cum), maxCharge)
				last[ch] = cum
				next[ch].Unlock()
				if err != nil {
					t.Error(err)
					return
				}
				var actual uint64
				switch i % 4 {
				case 0: // completed
					actual = maxCharge * 3 / 5
				case 1: // abandoned after a few tokens
					actual = maxCharge / 10
				case 2: // failed: nothing served
				case 3: // a receipt above the maximum: capped at what was reserved
					actual = maxCharge * 2
				}
				if i%17 == 0 {
					claim() // the claim loop runs while requests are in flight
				}
				if _, err := l.Settle(ch, maxCharge, actual); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				reported[ch] += min(actual, maxCharge)
				mu.Unlock()
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	// Traffic ends with a request in flight on every channel while the
	// claim loop runs: its maximum must not reach the chain.
	for ch := uint64(1); ch <= channels; ch++ {
		if err := accept(l, testVoucher(ch, max(last[ch]+1, l.Owed(ch)+500)), 500); err != nil {
			t.Fatal(err)
		}
	}
	claim()
	for ch := uint64(1); ch <= channels; ch++ {
		if _, err := l.Settle(ch, 500, 7); err != nil {
			t.Fatal(err)
		}
		reported[ch] += 7
	}
	claim()
	if done.Load() != workers*requests {
		t.Fatalf("only %d requests went through", done.Load())
	}
	for ch := uint64(1); ch <= channels; ch++ {
		if chainMax[ch] != reported[ch] || l.Settled(ch) != reported[ch] || l.Reserved(ch) != 0 {
			t.Errorf("channel %d: chain claimed %d, settled %d, reserved %d; the gateway reported %d", ch, chainMax[ch], l.Settled(ch), l.Reserved(ch), reported[ch])
		}
	}
	r, err := OpenLedger(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for ch := uint64(1); ch <= channels; ch++ {
		if r.Settled(ch) != reported[ch] || r.Claimed(ch) != reported[ch] {
			t.Errorf("channel %d after replay: settled %d claimed %d, want %d", ch, r.Settled(ch), r.Claimed(ch), reported[ch])
		}
	}
}

// TestLedgerVoucherCoversReservations: a request in flight still holds its
// reservation, so the next voucher must cover it too (else two concurrent
// requests could together spend more than the payer signed).
func TestLedgerVoucherCoversReservations(t *testing.T) {
	l, _ := openLedger(t)
	if err := accept(l, testVoucher(1, 100), 100); err != nil {
		t.Fatal(err)
	}
	if err := accept(l, testVoucher(1, 150), 100); !errors.Is(err, ErrInsufficient) {
		t.Fatalf("a voucher not covering the reservation in flight: %v", err)
	}
	if err := accept(l, testVoucher(1, 200), 100); err != nil {
		t.Fatal(err)
	}
	if l.Owed(1) != 200 || l.Settled(1) != 0 {
		t.Fatalf("owed %d settled %d", l.Owed(1), l.Settled(1))
	}
	if len(unclaimed(t, l)) != 0 {
		t.Fatal("reservations are claimable")
	}
	owed, err := l.Settle(1, 100, 30)
	if err != nil || owed != 130 {
		t.Fatalf("settle: owed %d %v, want 130", owed, err)
	}
	if _, err := l.Settle(1, 101, 1); !errors.Is(err, ErrNotReserved) {
		t.Fatalf("settling more than reserved: %v", err)
	}
	if _, err := l.Settle(9, 1, 1); !errors.Is(err, ErrNotReserved) {
		t.Fatalf("settling an unknown channel: %v", err)
	}
	// Session keys: the gateway signs what covers settled + reserved + max.
	sign := func(ch uint64, asked *uint64) func(uint64) (*tx.Voucher, error) {
		return func(cum uint64) (*tx.Voucher, error) { *asked = cum; return testVoucher(ch, cum), nil }
	}
	var first, second uint64
	if _, err := l.AcceptNext(2, 50, sign(2, &first)); err != nil {
		t.Fatal(err)
	}
	l.Settle(2, 50, 20)
	if _, err := l.AcceptNext(2, 10, sign(2, &second)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.AcceptNext(2, 100, sign(2, &second)); err != nil || first != 50 || second != 20+10+100 {
		t.Fatalf("AcceptNext asked to sign %d then %d (%v), want 50 then 130", first, second, err)
	}
}

// TestLedgerOverflowRefused: amounts that would wrap are refused, never wrapped.
func TestLedgerOverflowRefused(t *testing.T) {
	l, _ := openLedger(t)
	if err := accept(l, testVoucher(1, math.MaxUint64-1), math.MaxUint64-5); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		try  func() error
	}{
		{"accept", func() error { return accept(l, testVoucher(1, math.MaxUint64), 10) }},
		{"accept next", func() error {
			_, err := l.AcceptNext(1, 10, func(cum uint64) (*tx.Voucher, error) { return testVoucher(1, cum), nil })
			return err
		}},
	} {
		if err := tc.try(); !errors.Is(err, ErrInsufficient) || !errors.Is(err, agr.ErrOverflow) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// TestLedgerFailedClaimNotRetried: a claim the chain refused is not listed
// again (each attempt would burn a fee) until the channel is charged more.
func TestLedgerFailedClaimNotRetried(t *testing.T) {
	l, path := openLedger(t)
	for _, ch := range []uint64{1, 2} {
		if err := accept(l, testVoucher(ch, 100), 100); err != nil {
			t.Fatal(err)
		}
		l.Settle(ch, 100, 40)
	}
	if err := l.MarkFailed(1, 40, "channel closed"); err != nil {
		t.Fatal(err)
	}
	if c := unclaimed(t, l); len(c) != 1 || c[0].Voucher.ChannelId != 2 {
		t.Fatalf("unclaimed after a failure: %v", c)
	}
	r, err := OpenLedger(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if c := unclaimed(t, r); len(c) != 1 || c[0].Voucher.ChannelId != 2 {
		t.Fatalf("unclaimed after replay: %v", c)
	}
	if err := accept(r, testVoucher(1, 200), 100); err != nil {
		t.Fatal(err)
	}
	r.Settle(1, 100, 1)
	if c := unclaimed(t, r); len(c) != 2 || c[0].Amount != 41 {
		t.Fatalf("a channel charged again is claimed again: %v", c)
	}
}

// TestLedgerSyncsBeforeClaim: Settle does not fsync, so Unclaimed must
// before it hands out a charge to claim.
func TestLedgerSyncsBeforeClaim(t *testing.T) {
	l, _ := openLedger(t)
	if err := accept(l, testVoucher(1, 100), 100); err != nil {
		t.Fatal(err)
	}
	l.Settle(1, 100, 70)
	l.mu.Lock()
	written := l.written
	l.mu.Unlock()
	if len(unclaimed(t, l)) != 1 {
		t.Fatal("nothing to claim")
	}
	l.syncMu.Lock()
	synced := l.synced
	l.syncMu.Unlock()
	if synced < written {
		t.Fatalf("claimable records not on disk: %d of %d synced", synced, written)
	}
}

// TestLedgerOldFormat: a ledger written by the previous gateway (charges
// kept as voucher amounts with "adjust" records) opens; what was claimed
// stays settled and nothing unproven becomes claimable.
func TestLedgerOldFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	old := strings.Join([]string{
		`{"t":"voucher","ch":3,"cum":100,"sig":"` + strings.Repeat("00", 64) + `","amt":60}`,
		`{"t":"adjust","ch":3,"amt":35}`,
		`{"t":"claimed","ch":3,"amt":25}`,
		`{"t":"voucher","ch":3,"cum":200,"sig":"` + strings.Repeat("00", 64) + `","amt":90}`,
	}, "\n") + "\n"
	if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := OpenLedger(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Settled(3) != 25 || l.Reserved(3) != 0 || len(unclaimed(t, l)) != 0 {
		t.Fatalf("old ledger: settled %d reserved %d unclaimed %v", l.Settled(3), l.Reserved(3), unclaimed(t, l))
	}
}

func FuzzParsePaymentSignature(f *testing.F) {
	f.Add(PaymentSignature(x402.Requirements{Scheme: x402.SchemeChannel}, &tx.Voucher{ChannelId: 1, Cumulative: 5, Signature: make([]byte, 64)}))
	f.Add("not base64")
	f.Fuzz(func(t *testing.T, h string) {
		_, v, err := ParsePaymentSignature(h)
		if err == nil && (len(v.Signature) != 64 || v.ChannelId == 0) {
			t.Fatalf("accepted %+v", v)
		}
	})
}

// TestLedgerGroupCommit accepts vouchers from many goroutines at once (they
// share fsyncs) and checks every accepted one survives a reopen.
func TestLedgerGroupCommit(t *testing.T) {
	l, path := openLedger(t)
	const channels, each = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, channels)
	for ch := uint64(1); ch <= channels; ch++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := uint64(1); i <= each; i++ {
				if err := accept(l, testVoucher(ch, i*10), 10); err != nil {
					errs <- err
					return
				}
				if _, err := l.Settle(ch, 10, 10); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if _, err := l.Unclaimed(); err != nil { // makes the settles durable
		t.Fatal(err)
	}
	r, err := OpenLedger(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for ch := uint64(1); ch <= channels; ch++ {
		if r.Settled(ch) != each*10 {
			t.Fatalf("channel %d: settled %d after replay, want %d", ch, r.Settled(ch), each*10)
		}
	}
}

func BenchmarkLedgerAccept(b *testing.B) {
	l, _ := openLedger(b)
	var next atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		ch := next.Add(1)
		for i := uint64(1); pb.Next(); i++ {
			if err := accept(l, testVoucher(ch, i), 1); err != nil {
				b.Fatal(err)
			}
			if _, err := l.Settle(ch, 1, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
}
