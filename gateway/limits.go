package gateway

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Limits bound what one payer can take from a gateway. A paying request's
// payer is its verified channel, so a forged voucher never gets a bucket of
// its own; a free gateway's payer is the client's address.
type Limits struct {
	Concurrent int     // requests in flight per payer (0: unlimited)
	PerSecond  float64 // sustained requests per second per payer (0: unlimited)
	Burst      int     // requests allowed at once above the rate
	// ChainReadsPerSecond and ChainReadBurst bound, per client address, the
	// requests that make the gateway read the chain before their voucher
	// verifies: a voucher naming a fresh, made-up channel id costs its
	// sender nothing and the gateway a chain round trip. Zero takes
	// PerSecond and Burst, or, where those are zero too, 10/s with a burst
	// of 20: this bound is never off.
	ChainReadsPerSecond float64
	ChainReadBurst      int
}

// Default chain-read budget per client address.
const (
	defaultChainReadsPerSecond = 10
	defaultChainReadBurst      = 20
)

// chainReadLimits is the rate-only bucket that gates unverified chain reads.
func (l Limits) chainReadLimits() Limits {
	out := Limits{PerSecond: l.ChainReadsPerSecond, Burst: l.ChainReadBurst}
	if out.PerSecond <= 0 {
		out.PerSecond, out.Burst = l.PerSecond, max(out.Burst, l.Burst)
	}
	if out.PerSecond <= 0 {
		out.PerSecond, out.Burst = defaultChainReadsPerSecond, max(out.Burst, defaultChainReadBurst)
	}
	return out
}

type payerState struct {
	inFlight int
	tokens   float64
	last     time.Time
}

// limiter enforces Limits per payer key.
type limiter struct {
	l      Limits
	mu     sync.Mutex
	payers map[string]*payerState
	now    func() time.Time
	sweep  time.Time
}

func newLimiter(l Limits) *limiter {
	return &limiter{l: l, payers: map[string]*payerState{}, now: time.Now}
}

// acquire admits a request from payer, or returns how long to wait.
func (lm *limiter) acquire(payer string) (release func(), retryAfter time.Duration) {
	if lm == nil || (lm.l.Concurrent <= 0 && lm.l.PerSecond <= 0) {
		return func() {}, 0
	}
	lm.mu.Lock()
	defer lm.mu.Unlock()
	now := lm.now()
	lm.evictIdle(now)
	p := lm.payers[payer]
	if p == nil {
		p = &payerState{tokens: float64(max(lm.l.Burst, 1)), last: now}
		lm.payers[payer] = p
	}
	if lm.l.PerSecond > 0 {
		p.tokens = math.Min(float64(max(lm.l.Burst, 1)), p.tokens+now.Sub(p.last).Seconds()*lm.l.PerSecond)
		p.last = now
		if p.tokens < 1 {
			return nil, time.Duration((1 - p.tokens) / lm.l.PerSecond * float64(time.Second))
		}
	}
	if lm.l.Concurrent > 0 && p.inFlight >= lm.l.Concurrent {
		return nil, time.Second
	}
	if lm.l.PerSecond > 0 {
		p.tokens--
	}
	p.inFlight++
	return func() {
		lm.mu.Lock()
		p.inFlight--
		lm.mu.Unlock()
	}, 0
}

// evictIdle forgets payers with nothing in flight and a full bucket, once a minute.
func (lm *limiter) evictIdle(now time.Time) {
	if now.Sub(lm.sweep) < time.Minute {
		return
	}
	lm.sweep = now
	for k, p := range lm.payers {
		if p.inFlight == 0 && now.Sub(p.last) > time.Minute {
			delete(lm.payers, k)
		}
	}
}

// channelKey is a verified payer's bucket.
func channelKey(channel uint64) string { return "channel:" + strconv.FormatUint(channel, 10) }

// clientKey is the client's address: what a request is limited by before
// (or without) a verified payment.
func clientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "ip:" + host
}

// gate is the chain-read budget of one unverified request from client: it
// takes one token from the client's bucket at its first chain read (a
// request's channel and height reads count once), and refuses the read
// when the bucket is empty.
func (lm *limiter) gate(client string) chainGate {
	taken := false
	return func() error {
		if taken {
			return nil
		}
		release, wait := lm.acquire(client)
		if release == nil {
			return &limitedError{wait: wait}
		}
		release() // rate only: nothing stays in flight
		taken = true
		return nil
	}
}

// limitedError is a chain read refused for want of budget; it matches
// errChainReadLimited and says when to retry.
type limitedError struct{ wait time.Duration }

func (e *limitedError) Error() string        { return errChainReadLimited.Error() }
func (e *limitedError) Is(target error) bool { return target == errChainReadLimited }
