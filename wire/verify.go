package wire

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/agoranet/agora/address"
)

// Allow decides whether a verified signer may use the receiver (registered on
// the subnet with a validator permit, or paying through a channel).
type Allow func(ctx context.Context, signer address.Address) bool

// Verifier checks signed requests for one receiver hotkey.
type Verifier struct {
	Self    address.Address
	Allow   Allow
	MaxBody int64
	Now     func() time.Time
	nonces  *nonceCache
}

// NewVerifier makes a verifier for receiver self.
func NewVerifier(self address.Address, allow Allow, maxBody int64) *Verifier {
	return &Verifier{Self: self, Allow: allow, MaxBody: maxBody, Now: time.Now, nonces: newNonceCache(2*MaxSkew, 1<<20)}
}

type ctxKey struct{}

// SignerFrom returns the verified signer of a request handled by Middleware.
func SignerFrom(ctx context.Context) (Signed, bool) {
	s, ok := ctx.Value(ctxKey{}).(Signed)
	return s, ok
}

// Verify reads and checks a request, before anything else looks at it. On
// success it returns the body and the signer.
func (v *Verifier) Verify(r *http.Request) ([]byte, Signed, error) {
	pub, receiver, ts, nonce, sig, err := parseHeaders(r.Header)
	if err != nil {
		return nil, Signed{}, err
	}
	if receiver != v.Self {
		return nil, Signed{}, fmt.Errorf("%w: %s", ErrWrongTarget, receiver)
	}
	now := v.Now()
	at := time.UnixMilli(ts)
	if d := now.Sub(at); d > MaxSkew || d < -MaxSkew {
		return nil, Signed{}, fmt.Errorf("%w: %s off", ErrStale, d.Round(time.Millisecond))
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, v.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, Signed{}, fmt.Errorf("%w: body over %d bytes", errTooLarge, v.MaxBody)
		}
		return nil, Signed{}, fmt.Errorf("read body: %w", err)
	}
	if !ed25519.Verify(pub, RequestSignBytes(r.Method, r.URL.Path, ts, nonce, receiver, body), sig) {
		return nil, Signed{}, ErrBadSignature
	}
	// The nonce is only recorded once the signature proves the sender chose it,
	// so nobody can burn another sender's nonces.
	if !v.nonces.add(string(pub)+nonce, now) {
		return nil, Signed{}, ErrReplay
	}
	s := Signed{Signer: pub, Address: address.FromPubKey(pub), Timestamp: at, Nonce: nonce}
	if v.Allow != nil && !v.Allow(r.Context(), s.Address) {
		return nil, Signed{}, fmt.Errorf("%w: %s", ErrNotAllowed, s.Address)
	}
	return body, s, nil
}

var errTooLarge = errors.New("request too large")

// statusOf maps a rejection to its HTTP status.
func statusOf(err error) int {
	switch {
	case errors.Is(err, errTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrNotAllowed):
		return http.StatusForbidden
	case errors.Is(err, ErrWrongTarget):
		return http.StatusMisdirectedRequest
	default:
		return http.StatusUnauthorized
	}
}

// Middleware verifies every request before next sees it; next reads the
// verified body from r.Body and the signer from SignerFrom.
func (v *Verifier) Middleware(log *slog.Logger, next http.Handler) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, s, err := v.Verify(r)
		if err != nil {
			// Log the reason and the claimed signer, never the body.
			log.Info("request rejected", "path", r.URL.Path, "reason", err.Error(), "signer", r.Header.Get(HeaderSigner))
			WriteError(w, statusOf(err), "authentication_error", err.Error())
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, s)))
	})
}

// nonceCache remembers nonces for a window, bounded in size: when full, new
// requests are refused rather than old nonces forgotten early, so a flood
// cannot open a replay window.
type nonceCache struct {
	mu     sync.Mutex
	ttl    time.Duration
	max    int
	seen   map[string]time.Time
	order  []string
	oldest int
}

func newNonceCache(ttl time.Duration, max int) *nonceCache {
	return &nonceCache{ttl: ttl, max: max, seen: make(map[string]time.Time)}
}

func (c *nonceCache) add(k string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Expire from the front of the insertion order.
	for c.oldest < len(c.order) {
		key := c.order[c.oldest]
		if t, ok := c.seen[key]; ok && now.Sub(t) <= c.ttl {
			break
		}
		delete(c.seen, key)
		c.oldest++
	}
	if c.oldest > len(c.order)/2 {
		c.order = append(c.order[:0], c.order[c.oldest:]...)
		c.oldest = 0
	}
	if _, dup := c.seen[k]; dup {
		return false
	}
	if len(c.seen) >= c.max {
		return false
	}
	c.seen[k] = now
	c.order = append(c.order, k)
	return true
}
