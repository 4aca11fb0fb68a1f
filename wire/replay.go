package wire

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrBusy is returned when a replay cache has no room left for a signer; the
// request is refused (503) rather than an older entry forgotten early, which
// would reopen a replay window.
var ErrBusy = errors.New("too many recent requests from this signer")

// ReplayCache remembers keys (request nonces, sealed envelopes) for a window.
// Room is bounded per owner as well as in total, so one owner flooding the
// cache exhausts only its own share and can never evict another's entries or
// make another's fresh request fail.
type ReplayCache struct {
	mu       sync.Mutex
	ttl      time.Duration
	perOwner int
	total    int
	seen     map[string]replayEntry
	owners   map[string]int
	order    []string
	oldest   int
}

type replayEntry struct {
	owner string
	at    time.Time
}

// NewReplayCache makes a cache keeping keys for ttl, at most perOwner live
// keys per owner and total in all.
func NewReplayCache(ttl time.Duration, perOwner, total int) *ReplayCache {
	return &ReplayCache{ttl: ttl, perOwner: perOwner, total: total, seen: make(map[string]replayEntry), owners: make(map[string]int)}
}

// Add records key for owner at now. It fails with ErrReplay if key is already
// live (whoever recorded it), or ErrBusy if owner's share or the whole cache
// is full.
func (c *ReplayCache) Add(owner, key string, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now)
	if _, dup := c.seen[key]; dup {
		return ErrReplay
	}
	if c.owners[owner] >= c.perOwner {
		return fmt.Errorf("%w: %d in the last %s", ErrBusy, c.perOwner, c.ttl)
	}
	if len(c.seen) >= c.total {
		return fmt.Errorf("%w: the receiver's replay cache is full", ErrBusy)
	}
	c.seen[key] = replayEntry{owner: owner, at: now}
	c.owners[owner]++
	c.order = append(c.order, key)
	return nil
}

// Len is the number of live keys.
func (c *ReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// expire drops keys older than the window from the front of the insertion
// order; the caller holds mu.
func (c *ReplayCache) expire(now time.Time) {
	for c.oldest < len(c.order) {
		key := c.order[c.oldest]
		e, ok := c.seen[key]
		if ok && now.Sub(e.at) <= c.ttl {
			break
		}
		if ok {
			delete(c.seen, key)
			if c.owners[e.owner]--; c.owners[e.owner] <= 0 {
				delete(c.owners, e.owner)
			}
		}
		c.order[c.oldest] = ""
		c.oldest++
	}
	if c.oldest > len(c.order)/2 {
		c.order = append(c.order[:0], c.order[c.oldest:]...)
		c.oldest = 0
	}
}
