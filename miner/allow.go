package miner

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/wire"
)

// MetagraphSource reads a subnet's metagraph (client.Client does, from the chain).
type MetagraphSource interface {
	Metagraph(ctx context.Context, netuid uint32, height int64) (*tx.Metagraph, error)
}

// AllowOption widens who a miner serves beyond its subnet's permitted
// validators.
type AllowOption func(*allowPolicy)

type allowPolicy struct {
	extra     map[address.Address]bool
	anyStaked bool
	log       *slog.Logger
}

// AllowHotkeys also admits these hotkeys, registered or not (an operator's
// own tools, a gateway it trusts).
func AllowHotkeys(hotkeys ...address.Address) AllowOption {
	return func(p *allowPolicy) {
		for _, h := range hotkeys {
			p.extra[h] = true
		}
	}
}

// AllowAnyStaked also admits every neuron of the subnet with stake, the
// permissive policy miners once had by default: any such neuron then uses the
// miner without paying through a gateway.
func AllowAnyStaked() AllowOption { return func(p *allowPolicy) { p.anyStaked = true } }

// AllowLogger logs failed chain reads.
func AllowLogger(l *slog.Logger) AllowOption { return func(p *allowPolicy) { p.log = l } }

// allowSnapshot is one metagraph read, reduced to who may be served.
type allowSnapshot struct {
	allowed map[address.Address]bool
	at      time.Time
}

// chainAllow answers from the last metagraph it read and refreshes it in the
// background of at most one caller: the lock guards only the snapshot and the
// in-flight marker, never a chain read, so a slow chain never queues callers
// whose answer is already cached.
type chainAllow struct {
	src     MetagraphSource
	netuid  uint32
	refresh time.Duration
	policy  allowPolicy
	now     func() time.Time

	mu       sync.Mutex
	snap     *allowSnapshot
	inflight chan struct{} // closed when the running read ends; nil if none
	lastTry  time.Time
}

// ChainAllow admits the hotkeys that hold a validator permit on the subnet
// (they run the gateways that charge users, and the challenges), from a
// metagraph refreshed at most every refresh, and nobody else unless opts
// say so. An unknown signer triggers an early refresh at most every
// refresh/10, so a flood of throwaway keys costs at most that many reads.
func ChainAllow(src MetagraphSource, netuid uint32, refresh time.Duration, opts ...AllowOption) wire.Allow {
	a := &chainAllow{src: src, netuid: netuid, refresh: refresh, now: time.Now,
		policy: allowPolicy{extra: map[address.Address]bool{}, log: slog.New(slog.DiscardHandler)}}
	for _, o := range opts {
		o(&a.policy)
	}
	return a.allow
}

func (a *chainAllow) allow(ctx context.Context, signer address.Address) error {
	if a.policy.extra[signer] {
		return nil
	}
	a.mu.Lock()
	snap, now := a.snap, a.now()
	known := snap != nil && snap.allowed[signer]
	stale := snap == nil || now.Sub(snap.at) > a.refresh
	// An unknown signer may have just got its permit: look again, but not
	// more often than every refresh/10 however many strangers ask.
	recheck := !known && now.Sub(a.lastTry) > a.refresh/10
	if (stale || recheck) && a.inflight == nil {
		done := make(chan struct{})
		a.inflight, a.lastTry = done, now
		// The read runs on its own (bounded by its timeout) so that the
		// caller that started it can give up without failing the others.
		go a.read(context.WithoutCancel(ctx), done)
	}
	wait := a.inflight
	a.mu.Unlock()
	if known {
		// Served from the cache, even while a refresh is in flight.
		return nil
	}
	if wait != nil {
		select {
		case <-wait:
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", wire.ErrUnavailable, ctx.Err())
		}
		a.mu.Lock()
		snap = a.snap
		a.mu.Unlock()
	}
	if snap == nil {
		return fmt.Errorf("%w: the metagraph of subnet %d could not be read", wire.ErrUnavailable, a.netuid)
	}
	return a.verdict(snap.allowed[signer], signer)
}

// verdict turns a lookup into Allow's answer.
func (a *chainAllow) verdict(ok bool, signer address.Address) error {
	if ok {
		return nil
	}
	what := "a validator with a permit on subnet %d"
	if a.policy.anyStaked {
		what = "a validator with a permit or a staked neuron on subnet %d"
	}
	return fmt.Errorf("%w: %s is not "+what+"; this miner serves only those (and hotkeys its operator allows)",
		wire.ErrNotAllowed, signer, a.netuid)
}

// read fetches the metagraph without holding the lock and publishes the
// result. On failure the previous snapshot stays (a chain hiccup should not
// stop a miner serving validators it already knows).
func (a *chainAllow) read(ctx context.Context, done chan struct{}) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	mg, err := a.src.Metagraph(ctx, a.netuid, 0)
	var snap *allowSnapshot
	if err == nil {
		snap = &allowSnapshot{allowed: map[address.Address]bool{}, at: a.now()}
		for uid, n := range mg.Neurons {
			addr, aerr := address.FromBytes(n.Hotkey)
			if aerr != nil {
				continue
			}
			staked := uid < len(mg.Stake) && mg.Stake[uid] > 0
			if n.ValidatorPermit || (a.policy.anyStaked && staked) {
				snap.allowed[addr] = true
			}
		}
	} else {
		a.policy.log.Warn("metagraph read for admission failed", "netuid", a.netuid, "err", err.Error())
	}
	a.mu.Lock()
	if snap != nil {
		a.snap = snap
	}
	a.inflight = nil
	a.mu.Unlock()
	close(done)
}
