package explorer

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
)

// historyEpochs is how many past epochs the subnet and neuron pages chart.
const historyEpochs = 16

// costLRU is a least-recently-used cache bounded by the summed cost of its
// entries. It holds only what never changes (state at a past height), so
// nothing in it is ever stale; it is bounded only so that browsing many
// subnets cannot grow the explorer without limit.
type costLRU struct {
	mu      sync.Mutex
	max     int
	cost    int
	order   *list.List // front: most recent; values are *lruEntry
	entries map[any]*list.Element
}

type lruEntry struct {
	key  any
	val  any
	cost int
}

func newCostLRU(maxCost int) *costLRU {
	return &costLRU{max: maxCost, order: list.New(), entries: map[any]*list.Element{}}
}

func (c *costLRU) get(key any) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*lruEntry).val, true
}

func (c *costLRU) put(key, val any, cost int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		c.cost -= el.Value.(*lruEntry).cost
		c.order.Remove(el)
	}
	c.entries[key] = c.order.PushFront(&lruEntry{key, val, cost})
	c.cost += cost
	for c.cost > c.max && c.order.Len() > 1 {
		old := c.order.Back()
		e := old.Value.(*lruEntry)
		c.order.Remove(old)
		delete(c.entries, e.key)
		c.cost -= e.cost
	}
}

// cached returns the value for key, computing (and caching) it on a miss.
// Concurrent misses may both compute; the result is the same either way.
func lruGet[T any](c *costLRU, key any, load func() (T, int, error)) (T, error) {
	if v, ok := c.get(key); ok {
		return v.(T), nil
	}
	v, cost, err := load()
	if err != nil {
		return v, err
	}
	c.put(key, v, cost)
	return v, nil
}

// historyCacheCost bounds the history cache, in bytes (roughly): 16 epochs
// of four 4096-UID subnets and the weight rows of their validators.
const historyCacheCost = 64 << 20

// epochUID is one UID's results in one epoch.
type epochUID struct {
	Hotkey                                           [20]byte
	Stake                                            uint64
	Incentive, Consensus, Trust, Dividends, Emission uint64
	Permit                                           bool
}

// epochSnap is a subnet right after one of its epochs, compacted: the
// explorer keeps sixteen per subnet and a metagraph is much larger.
type epochSnap struct {
	Height   uint64 // the block whose end ran the epoch
	Prev     uint64 // the epoch before it (0: none)
	Emission uint64 // paid out in this epoch
	UIDs     []epochUID
}

type epochSnapKey struct {
	netuid uint32
	height uint64
}

// subnetAt reads a subnet record as of height: a single key, so much
// cheaper than the metagraph when only LastEpoch is wanted.
func subnetAt(ctx context.Context, c *client.Client, netuid uint32, height int64) (*tx.Subnet, error) {
	raw, _, _, err := c.Query(ctx, tx.QueryStore, tx.SubnetKey(netuid), height, false)
	if err != nil {
		return nil, err
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("subnet %d at %d: %w", netuid, height, client.ErrNoSubnet)
	}
	s := &tx.Subnet{}
	if err := proto.Unmarshal(raw, s); err != nil {
		return nil, fmt.Errorf("decode subnet %d at %d: %w", netuid, height, err)
	}
	return s, nil
}

// snapshot reads the subnet as the epoch at height left it.
func (e *Explorer) snapshot(ctx context.Context, netuid uint32, height uint64) (*epochSnap, error) {
	return lruGet(e.caches.history, epochSnapKey{netuid, height}, func() (*epochSnap, int, error) {
		mg, err := e.cfg.Chain.Metagraph(ctx, netuid, int64(height))
		if err != nil {
			return nil, 0, err
		}
		if mg.Subnet.LastEpoch != height {
			// Not an epoch height: nothing to chart (and not cached, though
			// it would never change either).
			return nil, 0, fmt.Errorf("subnet %d ran no epoch at %d", netuid, height)
		}
		s := &epochSnap{Height: height, Emission: mg.Subnet.LastEpochEmission, UIDs: make([]epochUID, len(mg.Neurons))}
		for i, n := range mg.Neurons {
			u := &s.UIDs[i]
			copy(u.Hotkey[:], n.Hotkey)
			if i < len(mg.Stake) {
				u.Stake = mg.Stake[i]
			}
			u.Incentive, u.Consensus, u.Trust, u.Dividends, u.Emission = n.Incentive, n.Consensus, n.ValidatorTrust, n.Dividends, n.Emission
			u.Permit = n.ValidatorPermit
		}
		// The epoch before is the LastEpoch of the block before: exact even
		// when a crowded block deferred an epoch past its tempo boundary.
		if height > mg.Subnet.RegisteredAt+1 {
			prev, err := subnetAt(ctx, e.cfg.Chain, netuid, int64(height-1))
			switch {
			case err == nil && prev.LastEpoch > prev.RegisteredAt && prev.RegisteredAt == mg.Subnet.RegisteredAt:
				s.Prev = prev.LastEpoch
			case err != nil && !versionGone(err):
				return nil, 0, err
			}
		}
		return s, 64 + len(s.UIDs)*80, nil
	})
}

// unavailable reports whether err says the node no longer keeps (or never
// had) the state version asked for: the end of the history it can show.
func versionGone(err error) bool {
	var qe *client.QueryError
	return errors.As(err, &qe) && (qe.Code == tx.CodeNotAvailable || qe.Code == tx.CodeNotFound) || errors.Is(err, client.ErrNoSubnet)
}

// epochHistory returns up to historyEpochs epochs of sub, oldest first,
// ending with its last epoch. History the node has pruned is simply not
// shown; on another error it returns what it read before it.
func (e *Explorer) epochHistory(ctx context.Context, sub *tx.Subnet) ([]*epochSnap, error) {
	var out []*epochSnap
	h := sub.LastEpoch
	if h <= sub.RegisteredAt {
		return nil, nil // no epoch has run yet
	}
	// Epochs normally run every tempo + 1 blocks: read those heights in
	// parallel first, so the walk below (exact, even across a deferred
	// epoch) mostly hits the cache on a first visit.
	if p := sub.Params; p != nil && p.Tempo > 0 {
		var wg sync.WaitGroup
		sem := make(chan struct{}, 4)
		for k := uint64(1); k < historyEpochs; k++ {
			g := h - min(h, k*(p.Tempo+1))
			if g <= sub.RegisteredAt {
				break
			}
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				e.snapshot(ctx, sub.Netuid, g) // errors surface in the walk
			})
		}
		wg.Wait()
	}
	for h != 0 && len(out) < historyEpochs {
		s, err := e.snapshot(ctx, sub.Netuid, h)
		if versionGone(err) {
			break
		}
		if err != nil {
			slices.Reverse(out)
			return out, err // what was read is still worth charting
		}
		out = append(out, s)
		h = s.Prev
	}
	slices.Reverse(out)
	return out, nil
}

type weightRowKey struct {
	netuid uint32
	uid    uint32
	height uint64
}

// weightRow reads the weights a UID had set as of height (0: now). The
// chain keeps them under a private prefix, but any key is readable by the
// raw store query; the bytes are consensus, so they never change.
func (e *Explorer) weightRow(ctx context.Context, netuid, uid uint32, height uint64) (*tx.WeightRow, error) {
	load := func() (*tx.WeightRow, int, error) {
		raw, _, _, err := e.cfg.Chain.Query(ctx, tx.QueryStore, tx.WeightsKey(netuid, uint16(uid)), int64(height), false)
		if err != nil {
			return nil, 0, err
		}
		row := &tx.WeightRow{}
		if err := proto.Unmarshal(raw, row); err != nil {
			return nil, 0, fmt.Errorf("decode weights of uid %d: %w", uid, err)
		}
		return row, 48 + 8*len(row.Uids), nil
	}
	if height == 0 {
		r, _, err := load()
		return r, err
	}
	return lruGet(e.caches.history, weightRowKey{netuid, uid, height}, load)
}

// subnetCaches are the subnet pages' caches.
type subnetCaches struct {
	history *costLRU
	latest  latestMetagraphs
}

// latestMetagraphs keeps each subnet's metagraph at the newest height it
// was read at. A metagraph at a height never changes, and decoding one of
// a 4096-UID subnet from the node's JSON-RPC costs tens of milliseconds,
// so every page and key lookup within one block shares one read.
type latestMetagraphs struct {
	mu sync.Mutex
	m  map[uint32]*tx.Metagraph
}

// maxLatest bounds latestMetagraphs: more subnets than this just read
// again (the map is cleared, not grown).
const maxLatest = 64

// metagraph reads a subnet's metagraph as of the node's latest block.
func (e *Explorer) metagraph(ctx context.Context, netuid uint32) (*tx.Metagraph, error) {
	h, err := e.cfg.Chain.Height(ctx)
	if err != nil {
		return nil, err
	}
	e.caches.latest.mu.Lock()
	mg, ok := e.caches.latest.m[netuid]
	e.caches.latest.mu.Unlock()
	if ok && mg.Height >= h {
		return mg, nil
	}
	// The latest version, not h: the node's status can name a block whose
	// state the application is still committing.
	if mg, err = e.cfg.Chain.Metagraph(ctx, netuid, 0); err != nil {
		return nil, err
	}
	e.caches.latest.mu.Lock()
	defer e.caches.latest.mu.Unlock()
	if e.caches.latest.m == nil || len(e.caches.latest.m) >= maxLatest {
		e.caches.latest.m = map[uint32]*tx.Metagraph{}
	}
	if old, ok := e.caches.latest.m[netuid]; !ok || old.Height < mg.Height {
		e.caches.latest.m[netuid] = mg
	}
	return mg, nil
}
