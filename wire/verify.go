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
	"os"
	"time"

	"github.com/agoranet/agora/address"
)

// Allow decides whether a verified signer may use the receiver (for a miner:
// a validator with a permit on its subnet). It returns nil to admit, an error
// wrapping ErrNotAllowed (403) to refuse, or one wrapping ErrUnavailable (503)
// when it cannot tell right now.
type Allow func(ctx context.Context, signer address.Address) error

// ErrUnavailable is returned by an Allow that cannot decide (say, the chain is
// unreachable and nothing is cached); the request may be retried.
var ErrUnavailable = errors.New("cannot check the signer right now")

// Replay cache bounds: nonces live for the whole skew window on either side;
// each signer gets a share, so that a flood from one signer (throwaway keys
// never get this far) cannot crowd out another's requests.
const (
	NonceCacheTotal     = 1 << 20
	NonceCachePerSigner = 1 << 14
)

// Verifier checks signed requests for one receiver hotkey.
type Verifier struct {
	Self    address.Address
	Allow   Allow
	MaxBody int64
	Now     func() time.Time
	// Nonces remembers the nonces of admitted requests, keyed per signer.
	Nonces *ReplayCache
}

// NewVerifier makes a verifier for receiver self.
func NewVerifier(self address.Address, allow Allow, maxBody int64) *Verifier {
	return &Verifier{Self: self, Allow: allow, MaxBody: maxBody, Now: time.Now,
		Nonces: NewReplayCache(2*MaxSkew, NonceCachePerSigner, NonceCacheTotal)}
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
		return nil, Signed{}, fmt.Errorf("%w: read body: %w", errBodyRead, err)
	}
	if !ed25519.Verify(pub, RequestSignBytes(r.Method, r.URL.Path, ts, nonce, receiver, body), sig) {
		return nil, Signed{}, ErrBadSignature
	}
	s := Signed{Signer: pub, Address: address.FromPubKey(pub), Timestamp: at, Nonce: nonce}
	// Admission comes before the nonce is recorded: a key that may not use
	// this receiver (a throwaway, unregistered one) never takes room in the
	// replay cache. The signature already proved the sender chose the nonce,
	// so nobody can burn another sender's nonces either.
	if v.Allow != nil {
		if err := v.Allow(r.Context(), s.Address); err != nil {
			if !errors.Is(err, ErrNotAllowed) && !errors.Is(err, ErrUnavailable) {
				err = fmt.Errorf("%w: %w", ErrUnavailable, err)
			}
			return nil, Signed{}, err
		}
	}
	if err := v.Nonces.Add(string(pub), string(pub)+nonce, now); err != nil {
		return nil, Signed{}, err
	}
	return body, s, nil
}

var (
	errTooLarge = errors.New("request too large")
	errBodyRead = errors.New("request body not received")
)

// statusOf maps a rejection to its HTTP status.
func statusOf(err error) int {
	switch {
	case errors.Is(err, errTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, os.ErrDeadlineExceeded):
		return http.StatusRequestTimeout
	case errors.Is(err, errBodyRead):
		return http.StatusBadRequest
	case errors.Is(err, ErrNotAllowed):
		return http.StatusForbidden
	case errors.Is(err, ErrWrongTarget):
		return http.StatusMisdirectedRequest
	case errors.Is(err, ErrBusy), errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable
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
			status, typ := statusOf(err), "authentication_error"
			switch status {
			case http.StatusServiceUnavailable:
				w.Header().Set("Retry-After", "1")
				typ = "overloaded_error"
			case http.StatusForbidden:
				typ = "permission_error"
			case http.StatusBadRequest, http.StatusRequestTimeout, http.StatusRequestEntityTooLarge:
				typ = "invalid_request_error"
			}
			WriteError(w, status, typ, err.Error())
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, s)))
	})
}
