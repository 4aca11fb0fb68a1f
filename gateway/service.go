package gateway

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/httpserve"
)

// Defaults of a paid gateway service.
var (
	// DefaultLimits bound one payer: a few requests at once, a few a second.
	DefaultLimits = Limits{Concurrent: 4, PerSecond: 5, Burst: 10}
)

const (
	// DefaultExpiryMargin is how many blocks before a channel's expiry a
	// service stops accepting vouchers on it and claims it. It covers the
	// longest request still in flight, the cached height's staleness and
	// the claim's inclusion.
	DefaultExpiryMargin = 60
	// DefaultCacheTTL is how long a service reuses a channel or height read.
	DefaultCacheTTL = time.Second
)

// ServiceConfig configures a paid gateway service.
type ServiceConfig struct {
	// Gateway configures routing: Key (the validator's hotkey, which signs
	// wire requests, is the payee and signs claims), Candidates, Model, and
	// the rest. The service sets its Payments and Limits.
	Gateway Config
	Chain   *client.Client
	Netuid  uint32
	// LedgerPath is the gateway's ledger of vouchers and charges.
	LedgerPath string
	// PricePer1K is the price per 1000 tokens (0: the subnet's, from the chain).
	PricePer1K uint64
	// Limits bound each payer (nil: DefaultLimits; a zero field turns that
	// limit off).
	Limits *Limits
	// ExpiryMargin (blocks; 0: DefaultExpiryMargin) is shared by the
	// voucher checks and the claimer, which is what keeps claims ahead of
	// expiry.
	ExpiryMargin uint64
	// ClaimInterval is how often settled charges are claimed (0: DefaultClaimInterval).
	ClaimInterval time.Duration
	// CacheTTL is how long channel and height reads are reused (0:
	// DefaultCacheTTL, or less where the margin is short); it must stay
	// well inside ExpiryMargin.
	CacheTTL time.Duration
	// HTTP bounds the server Serve runs (zero fields: httpserve's defaults).
	HTTP httpserve.Options
}

// Service is a gateway that charges: its ledger, its payments and a claim
// loop it owns, which runs from NewService until Close.
type Service struct {
	gw      *Gateway
	ledger  *Ledger
	claimer *Claimer
	log     *slog.Logger
	httpOpt httpserve.Options

	cancel   context.CancelFunc
	claiming chan struct{} // closed when the claim loop has returned

	mu      sync.Mutex
	servers []*httpserve.Server
	closed  bool
}

// ErrServiceClosed is returned by Serve after Close.
var ErrServiceClosed = errors.New("gateway service closed")

// NewService opens the ledger, builds the gateway's payments and starts
// claiming. The claim loop runs under a context of its own (ctx only bounds
// the setup), so it lives until Close.
func NewService(ctx context.Context, cfg ServiceConfig) (*Service, error) {
	gc := cfg.Gateway
	if cfg.Chain == nil || len(gc.Key) != ed25519.PrivateKeySize || gc.Candidates == nil || cfg.Netuid == 0 || cfg.LedgerPath == "" {
		return nil, errors.New("gateway service: chain, key, candidates, netuid and ledger path are required")
	}
	if gc.Logger == nil {
		gc.Logger = slog.New(slog.DiscardHandler)
	}
	if gc.Model == "" {
		gc.Model = fmt.Sprintf("agora-subnet-%d", cfg.Netuid)
	}
	limits := DefaultLimits
	if cfg.Limits != nil {
		limits = *cfg.Limits
	}
	if limits.Concurrent < 0 || limits.PerSecond < 0 || limits.Burst < 0 {
		return nil, fmt.Errorf("gateway service: negative limits %+v", limits)
	}
	gc.Limits = limits
	margin := cfg.ExpiryMargin
	if margin == 0 {
		margin = DefaultExpiryMargin
	}
	chainID, err := cfg.Chain.ChainID(ctx)
	if err != nil {
		return nil, fmt.Errorf("gateway service: %w", err)
	}
	price := cfg.PricePer1K
	if price == 0 {
		mg, err := cfg.Chain.Metagraph(ctx, cfg.Netuid, 0)
		if err != nil {
			return nil, fmt.Errorf("gateway service: read subnet %d: %w", cfg.Netuid, err)
		}
		if price = mg.Subnet.GetParams().GetPricePer_1K(); price == 0 {
			return nil, fmt.Errorf("gateway service: subnet %d sets no price", cfg.Netuid)
		}
	}
	ledger, err := OpenLedger(cfg.LedgerPath)
	if err != nil {
		return nil, fmt.Errorf("gateway service: %w", err)
	}
	if gc.Metrics == nil {
		gc.Metrics = NewMetrics()
	}
	claimer, err := NewClaimer(ctx, ClaimConfig{Chain: cfg.Chain, Key: gc.Key, Ledger: ledger, Interval: cfg.ClaimInterval,
		ExpiryMargin: margin, Logger: gc.Logger.With("gateway", "claims"), Metrics: gc.Metrics})
	var ttl time.Duration
	if err == nil {
		// A height reused for half the margin could hide half of it.
		limit := time.Duration(margin/2) * claimer.cfg.BlockTime
		switch ttl = cfg.CacheTTL; {
		case ttl == 0:
			ttl = min(DefaultCacheTTL, limit/2)
		case ttl >= limit:
			err = fmt.Errorf("%w: a cache TTL of %v against a margin of %d blocks of %v", ErrClaimSchedule, ttl, margin, claimer.cfg.BlockTime)
		}
	}
	if err != nil {
		ledger.Close()
		return nil, fmt.Errorf("gateway service: %w", err)
	}
	gc.Payments = &Payments{Chain: cfg.Chain, ChainID: chainID, Payee: address.FromPubKey(gc.Key.Public().(ed25519.PublicKey)),
		Netuid: cfg.Netuid, PricePer1K: price, Ledger: ledger, ExpiryMargin: margin, CacheTTL: ttl}
	runCtx, cancel := context.WithCancel(context.Background())
	s := &Service{gw: New(gc), ledger: ledger, claimer: claimer, log: gc.Logger, httpOpt: cfg.HTTP, cancel: cancel, claiming: make(chan struct{})}
	go func() {
		defer close(s.claiming)
		claimer.Run(runCtx)
	}()
	return s, nil
}

// Handler is the gateway's OpenAI-compatible API.
func (s *Service) Handler() http.Handler { return s.gw.Handler() }

// Ledger is the service's ledger.
func (s *Service) Ledger() *Ledger { return s.ledger }

// Claimer is the service's claimer.
func (s *Service) Claimer() *Claimer { return s.claimer }

// Serve answers the API on l (with httpserve's bounds) until Close.
func (s *Service) Serve(l net.Listener) error {
	srv := httpserve.New(s.Handler(), s.httpOpt)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return ErrServiceClosed
	}
	s.servers = append(s.servers, srv)
	s.mu.Unlock()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("gateway serve: %w", err)
	}
	return ErrServiceClosed
}

// Close stops serving (letting requests in flight finish and settle, for
// up to ctx), stops the claim loop, claims what is settled one last time and
// closes the ledger. What cannot be claimed now stays in the ledger for the
// next start.
func (s *Service) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	servers := s.servers
	s.mu.Unlock()
	var errs []error
	for _, srv := range servers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("gateway shutdown: %w", err))
			srv.Close()
		}
	}
	s.cancel()
	<-s.claiming
	if _, err := s.claimer.Once(ctx, true); err != nil && !errors.Is(err, ErrClaimFailed) {
		s.log.Warn("final claim failed; the ledger keeps it for the next start", "err", err.Error())
	}
	if err := s.ledger.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close ledger: %w", err))
	}
	return errors.Join(errs...)
}
