package gateway

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/agoranet/agora/chain/tx"
)

// accept accepts a voucher and waits until it is durable.
func accept(l *Ledger, v *tx.Voucher, maxCharge uint64) error {
	d, err := l.Accept(v, maxCharge)
	if err != nil {
		return err
	}
	return d()
}

func TestLedgerReplayAndTornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	l, err := OpenLedger(path)
	if err != nil {
		t.Fatal(err)
	}
	v := func(cum uint64) *tx.Voucher {
		return &tx.Voucher{ChannelId: 4, Cumulative: cum, Signature: make([]byte, 64)}
	}
	if err := accept(l, v(100), 60); err != nil {
		t.Fatal(err)
	}
	if owed, _ := l.Settle(4, 60, 25); owed != 25 {
		t.Fatalf("owed %d after settling at 25", owed)
	}
	if err := accept(l, v(100), 10); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: %v", err)
	}
	if err := accept(l, v(110), 90); !errors.Is(err, ErrInsufficient) {
		t.Fatalf("insufficient: %v", err)
	}
	if err := accept(l, v(200), 90); err != nil {
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
	if r.Owed(4) != 25+90 {
		t.Fatalf("replayed owed %d, want 115", r.Owed(4))
	}
	claims := r.Unclaimed()
	if len(claims) != 1 || claims[0].Amount != 115 || claims[0].Voucher.Cumulative != 200 {
		t.Fatalf("unclaimed %v", claims)
	}
	if err := r.MarkClaimed(4, 115); err != nil || len(r.Unclaimed()) != 0 {
		t.Fatalf("after claim: %v %v", err, r.Unclaimed())
	}
	// Records written after the torn tail survive the next replay.
	r2, err := OpenLedger(path)
	if err != nil || len(r2.Unclaimed()) != 0 || r2.Owed(4) != 115 {
		t.Fatalf("second replay: %v owed %d unclaimed %v", err, r2.Owed(4), r2.Unclaimed())
	}
}

func FuzzParsePaymentSignature(f *testing.F) {
	f.Add(encodeHeader(PaymentVoucher{ChannelID: 1, Cumulative: 5, Signature: strings.Repeat("ab", 64)}))
	f.Add("not base64")
	f.Fuzz(func(t *testing.T, h string) {
		v, err := ParsePaymentSignature(h)
		if err == nil && (len(v.Signature) != 64 || v.ChannelId == 0) {
			t.Fatalf("accepted %+v", v)
		}
	})
}

// TestLedgerGroupCommit accepts vouchers from many goroutines at once (they
// share fsyncs) and checks every accepted one survives a reopen.
func TestLedgerGroupCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	l, err := OpenLedger(path)
	if err != nil {
		t.Fatal(err)
	}
	const channels, each = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, channels)
	for ch := uint64(1); ch <= channels; ch++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := uint64(1); i <= each; i++ {
				if err := accept(l, &tx.Voucher{ChannelId: ch, Cumulative: i * 10, Signature: make([]byte, 64)}, 10); err != nil {
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
	r, err := OpenLedger(path)
	if err != nil {
		t.Fatal(err)
	}
	for ch := uint64(1); ch <= channels; ch++ {
		if r.Owed(ch) != each*10 {
			t.Fatalf("channel %d: owed %d after replay, want %d", ch, r.Owed(ch), each*10)
		}
	}
}

func BenchmarkLedgerAccept(b *testing.B) {
	l, err := OpenLedger(filepath.Join(b.TempDir(), "ledger.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	var next atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		ch := next.Add(1)
		for i := uint64(1); pb.Next(); i++ {
			if err := accept(l, &tx.Voucher{ChannelId: ch, Cumulative: i, Signature: make([]byte, 64)}, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
}
