package gateway

import (
	"context"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
)

// countingChain is a channel table that counts reads. Gateway handlers read
// it from their own goroutines, hence the lock.
type countingChain struct {
	mu            sync.Mutex
	ch            *tx.Channel
	reads, height int
}

func (c *countingChain) Channel(_ context.Context, id uint64, _ bool) (*tx.Channel, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads++
	if id != c.ch.Id {
		return nil, client.ErrNoChannel
	}
	return proto.Clone(c.ch).(*tx.Channel), nil
}

func (c *countingChain) Height(context.Context) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.height++
	return 10, nil
}

// counts returns the channel and height reads so far.
func (c *countingChain) counts() (reads, height int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads, c.height
}

func TestChannelReadsAreCached(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		ttl       time.Duration
		wantReads int
	}{
		{"no cache reads every time", 0, 3},
		{"cache reads once", time.Hour, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &countingChain{ch: &tx.Channel{Id: 7, Deposit: 100}}
			p := &Payments{Chain: src, CacheTTL: tc.ttl}
			for range 3 {
				ch, err := p.readChannel(ctx, 7, 50, nil)
				if err != nil || ch.Deposit != 100 {
					t.Fatalf("%v %v", ch, err)
				}
				if _, err := p.chainHeight(ctx, nil); err != nil {
					t.Fatal(err)
				}
			}
			if src.reads != tc.wantReads || src.height != tc.wantReads {
				t.Fatalf("%d channel reads and %d height reads, want %d", src.reads, src.height, tc.wantReads)
			}
		})
	}
	// A voucher above the cached deposit reads again: the payer may have
	// topped up since.
	src := &countingChain{ch: &tx.Channel{Id: 7, Deposit: 100}}
	p := &Payments{Chain: src, CacheTTL: time.Hour}
	p.readChannel(ctx, 7, 0, nil)
	src.ch.Deposit = 500
	if ch, err := p.readChannel(ctx, 7, 300, nil); err != nil || ch.Deposit != 500 || src.reads != 2 {
		t.Fatalf("after a top-up: %v %v, %d reads", ch, err, src.reads)
	}
	// Unknown channels are never cached as known.
	if _, err := p.readChannel(ctx, 8, 0, nil); err == nil {
		t.Fatal("unknown channel read")
	}
}
