package gateway

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Limits bound what one payer can take from a gateway.
type Limits struct {
	Concurrent int     // requests in flight per payer (0: unlimited)
	PerSecond  float64 // sustained requests per second per payer (0: unlimited)
	Burst      int     // requests allowed at once above the rate
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

// payerKey identifies who a request is charged to: the channel's payer when
// it pays, else the client's address.
func payerKey(r *http.Request, channel uint64) string {
	if channel != 0 {
		return "channel:" + strconv.FormatUint(channel, 10)
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "ip:" + host
}
