package gateway

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/wire"
	"github.com/agoranet/agora/x402"
)

// maxTimeoutSeconds is what the gateway quotes as x402's maxTimeoutSeconds:
// the longest it works on one request (its miner client's timeout).
const maxTimeoutSeconds = 600

// ChannelSource reads channels and heights from the chain.
type ChannelSource interface {
	Channel(ctx context.Context, id uint64, prove bool) (*tx.Channel, error)
	Height(ctx context.Context) (int64, error)
}

// Payments makes the gateway charge per request through payment channels.
type Payments struct {
	Chain        ChannelSource
	ChainID      string
	Payee        address.Address
	Netuid       uint32
	PricePer1K   uint64
	Ledger       *Ledger
	ExpiryMargin uint64 // blocks before expiry from which vouchers are refused
	// CacheTTL is how long a channel read and the chain height are reused,
	// which keeps the chain off the per-request path; 0 reads the chain for
	// every request. Reuse is safe because a channel's deposit only grows
	// (a voucher above the cached deposit forces a fresh read) and it cannot
	// close before expiry; ExpiryMargin must cover the height's staleness.
	CacheTTL time.Duration

	cacheMu  sync.Mutex
	channels map[uint64]cachedChannel
	height   int64
	heightAt time.Time
}

type cachedChannel struct {
	ch *tx.Channel
	at time.Time
}

// ErrPayment wraps every reason a voucher is refused.
var ErrPayment = errors.New("payment refused")

// errChainReadLimited refuses a request whose voucher would need a chain
// read its client has no budget left for (a 429, not a 402).
var errChainReadLimited = errors.New("too many unverified payments from this client")

// chainGate is called before every chain read an unverified request causes;
// an error stops the read.
type chainGate func() error

// authorization is a verified payment not yet recorded: the gateway checks
// the payer's limits between verifying and reserving, so a refused request
// leaves no voucher behind that the client's retry would then replay.
type authorization struct {
	channel uint64
	payer   address.Address
	accept  func(maxCharge uint64) (Durable, error)
}

// paymentError is a refusal after the payer proved who it is, so the 402
// may tell it what its channel owes.
type paymentError struct {
	channel uint64
	err     error
}

func (e *paymentError) Error() string { return e.err.Error() }
func (e *paymentError) Unwrap() error { return e.err }

// verify checks a request's payment: its PAYMENT-SIGNATURE voucher, or, for
// clients that only have an API key, the session key in its
// "Authorization: Bearer agora-sk-…" token. gate runs before each chain
// read, since until the signature verifies the request could come from
// anyone.
func (p *Payments) verify(ctx context.Context, r *http.Request, gate chainGate) (*authorization, error) {
	h := r.Header.Get(x402.HeaderPaymentSignature)
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if h == "" && strings.HasPrefix(token, SessionTokenPrefix) {
		return p.verifySession(ctx, token, gate)
	}
	pl, v, err := ParsePaymentSignature(h)
	if err != nil {
		return nil, err
	}
	if want := x402.Network(p.ChainID); pl.Accepted.Network != want {
		return nil, fmt.Errorf("%w: payment is for network %q, this gateway is on %q", ErrPayment, pl.Accepted.Network, want)
	}
	if pl.Accepted.PayTo != "" && pl.Accepted.PayTo != p.Payee.String() {
		return nil, fmt.Errorf("%w: payment is to %s, this gateway is %s", ErrPayment, pl.Accepted.PayTo, p.Payee)
	}
	ch, height, err := p.channelFor(ctx, v.ChannelId, v.Cumulative, gate)
	if err != nil {
		return nil, err
	}
	if !v.Verify(p.ChainID, ch.PayerPubKey) {
		return nil, fmt.Errorf("%w: voucher signature does not verify", ErrPayment)
	}
	refuse := func(err error) error { return &paymentError{channel: ch.Id, err: err} }
	if d := v.Delegation; d != nil {
		if err := p.checkDelegation(d, height); err != nil {
			return nil, refuse(err)
		}
	}
	if v.Cumulative > ch.Deposit {
		return nil, refuse(fmt.Errorf("%w: voucher for %d exceeds the deposit of %d", ErrPayment, v.Cumulative, ch.Deposit))
	}
	return &authorization{channel: ch.Id, payer: address.FromPubKey(ch.PayerPubKey), accept: func(maxCharge uint64) (Durable, error) {
		durable, err := p.Ledger.Accept(v, maxCharge)
		if err != nil {
			return nil, refuse(fmt.Errorf("%w: %w", ErrPayment, err))
		}
		return durable, nil
	}}, nil
}

func (p *Payments) verifySession(ctx context.Context, token string, gate chainGate) (*authorization, error) {
	key, d, err := ParseSessionToken(token)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPayment, err)
	}
	ch, height, err := p.channelFor(ctx, d.ChannelId, 0, gate)
	if err != nil {
		return nil, err
	}
	if !ed25519.Verify(ch.PayerPubKey, tx.DelegationSignBytes(p.ChainID, d), d.Signature) {
		return nil, fmt.Errorf("%w: the session key's delegation is not signed by channel %d's payer", ErrPayment, ch.Id)
	}
	refuse := func(err error) error { return &paymentError{channel: ch.Id, err: err} }
	if err := p.checkDelegation(d, height); err != nil {
		return nil, refuse(err)
	}
	return &authorization{channel: ch.Id, payer: address.FromPubKey(ch.PayerPubKey), accept: func(maxCharge uint64) (Durable, error) {
		durable, err := p.Ledger.AcceptNext(ch.Id, maxCharge, func(cum uint64) (*tx.Voucher, error) {
			if cum > d.Cap {
				return nil, fmt.Errorf("%w: the session key's spend cap of %d is reached (this request needs up to %d in total)", ErrPayment, d.Cap, cum)
			}
			if cum > ch.Deposit {
				return nil, fmt.Errorf("%w: channel %d's deposit of %d is used up; top it up", ErrPayment, ch.Id, ch.Deposit)
			}
			return tx.SignDelegatedVoucher(key, p.ChainID, d, cum), nil
		})
		if err != nil {
			if !errors.Is(err, ErrPayment) {
				err = fmt.Errorf("%w: %w", ErrPayment, err)
			}
			return nil, refuse(err)
		}
		return durable, nil
	}}, nil
}

// checkDelegation enforces what only a gateway can: expiry and subnets.
func (p *Payments) checkDelegation(d *tx.Delegation, height int64) error {
	// The chain refuses a delegated voucher's claim from the delegation's
	// expiry on, so stop accepting it ExpiryMargin blocks before: the
	// claimer needs that long to settle what was served.
	if h, err := agr.Add(uint64(height), p.ExpiryMargin); err != nil || h >= d.ExpiryHeight {
		return fmt.Errorf("%w: the session key expires at block %d", ErrPayment, d.ExpiryHeight)
	}
	if len(d.Netuids) > 0 && !slices.Contains(d.Netuids, p.Netuid) {
		return fmt.Errorf("%w: the session key may not pay on subnet %d", ErrPayment, p.Netuid)
	}
	return nil
}

// readChannel reads a channel, reusing a read younger than CacheTTL whose
// deposit covers need; gate runs before a read that goes to the chain.
func (p *Payments) readChannel(ctx context.Context, id, need uint64, gate chainGate) (*tx.Channel, error) {
	now := time.Now()
	p.cacheMu.Lock()
	c, ok := p.channels[id]
	p.cacheMu.Unlock()
	if ok && now.Sub(c.at) < p.CacheTTL && c.ch.Deposit >= need {
		return c.ch, nil
	}
	if gate != nil {
		if err := gate(); err != nil {
			return nil, err
		}
	}
	ch, err := p.Chain.Channel(ctx, id, false)
	if err != nil || p.CacheTTL <= 0 {
		return ch, err
	}
	p.cacheMu.Lock()
	defer p.cacheMu.Unlock()
	if p.channels == nil || len(p.channels) >= 1<<16 {
		p.channels = map[uint64]cachedChannel{} // bounded: start over rather than grow
	}
	p.channels[id] = cachedChannel{ch: ch, at: now}
	return ch, nil
}

// chainHeight is the chain's height, reused for CacheTTL; gate runs before
// a read that goes to the chain.
func (p *Payments) chainHeight(ctx context.Context, gate chainGate) (int64, error) {
	now := time.Now()
	p.cacheMu.Lock()
	h, at := p.height, p.heightAt
	p.cacheMu.Unlock()
	if h > 0 && now.Sub(at) < p.CacheTTL {
		return h, nil
	}
	if gate != nil {
		if err := gate(); err != nil {
			return 0, err
		}
	}
	h, err := p.Chain.Height(ctx)
	if err != nil {
		return 0, err
	}
	p.cacheMu.Lock()
	p.height, p.heightAt = h, now
	p.cacheMu.Unlock()
	return h, nil
}

// channelFor reads a channel and checks it pays this gateway on its subnet
// and is not about to expire.
func (p *Payments) channelFor(ctx context.Context, id, need uint64, gate chainGate) (*tx.Channel, int64, error) {
	ch, err := p.readChannel(ctx, id, need, gate)
	switch {
	case errors.Is(err, errChainReadLimited):
		return nil, 0, err
	case errors.Is(err, client.ErrNoChannel):
		return nil, 0, fmt.Errorf("%w: channel %d is unknown or closed", ErrPayment, id)
	case err != nil:
		return nil, 0, fmt.Errorf("%w: cannot read channel %d: %w", ErrPayment, id, err)
	}
	if payee, _ := address.FromBytes(ch.Payee); payee != p.Payee {
		return nil, 0, fmt.Errorf("%w: channel %d pays %s, not this gateway", ErrPayment, ch.Id, payee)
	}
	if ch.Netuid != p.Netuid {
		return nil, 0, fmt.Errorf("%w: channel %d is for subnet %d", ErrPayment, ch.Id, ch.Netuid)
	}
	height, err := p.chainHeight(ctx, gate)
	if errors.Is(err, errChainReadLimited) {
		return nil, 0, err
	}
	if err != nil {
		return nil, 0, fmt.Errorf("%w: chain unavailable: %w", ErrPayment, err)
	}
	if expires, err := agr.Add(uint64(height), p.ExpiryMargin); err != nil || expires >= ch.ExpiryHeight {
		return nil, 0, fmt.Errorf("%w: channel %d expires at block %d", ErrPayment, ch.Id, ch.ExpiryHeight)
	}
	return ch, height, nil
}

// requirements is the agora-channel way to pay for r at most maxCharge;
// channel, when the payer proved it holds it, adds what it already owes.
func (p *Payments) requirements(maxCharge, channel uint64) x402.Requirements {
	req := x402.Requirements{
		Scheme: x402.SchemeChannel, Network: x402.Network(p.ChainID), Amount: x402.Amount(maxCharge),
		Asset: x402.Asset, PayTo: p.Payee.String(), MaxTimeoutSeconds: maxTimeoutSeconds,
		Extra: x402.ChannelExtra{ChainID: p.ChainID, Netuid: p.Netuid, PricePer1K: x402.Amount(p.PricePer1K)},
	}
	if channel != 0 {
		req.Extra.ChannelID = x402.Amount(channel)
		req.Extra.Owed = x402.Amount(p.Ledger.Owed(channel))
	}
	return req
}

// paymentRequired answers 402 with the requirements and the refusal reason.
func (p *Payments) paymentRequired(w http.ResponseWriter, r *http.Request, maxCharge uint64, reason error) {
	var channel uint64
	if pe := (*paymentError)(nil); errors.As(reason, &pe) {
		channel = pe.channel
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	pr := x402.PaymentRequired{
		X402Version: x402.Version,
		Error:       reason.Error(),
		Resource: x402.Resource{URL: scheme + "://" + r.Host + r.URL.Path, MimeType: "application/json",
			Description: fmt.Sprintf("a completion on Agora subnet %d, paid per token at %d %s per 1000", p.Netuid, p.PricePer1K, x402.Asset)},
		Accepts: []x402.Requirements{p.requirements(maxCharge, channel)},
	}
	w.Header().Set(x402.HeaderPaymentRequired, x402.Encode(pr))
	wire.WriteError(w, http.StatusPaymentRequired, "payment_required", reason.Error())
}

// ParsePaymentSignature decodes a PAYMENT-SIGNATURE header: an x402 v2
// PaymentPayload of the agora-channel scheme whose payload is a voucher.
// Only its shape is checked here; the signature is checked against the
// channel's payer once the channel is read.
func ParsePaymentSignature(h string) (*x402.PaymentPayload, *tx.Voucher, error) {
	if h == "" {
		return nil, nil, fmt.Errorf("%w: no %s header", ErrPayment, x402.HeaderPaymentSignature)
	}
	var pl x402.PaymentPayload
	if err := x402.Decode(h, &pl); err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %w", ErrPayment, x402.HeaderPaymentSignature, err)
	}
	if pl.X402Version != x402.Version {
		return nil, nil, fmt.Errorf("%w: %s has x402Version %d, want %d", ErrPayment, x402.HeaderPaymentSignature, pl.X402Version, x402.Version)
	}
	if pl.Accepted.Scheme != x402.SchemeChannel {
		return nil, nil, fmt.Errorf("%w: scheme %q, this gateway takes %q", ErrPayment, pl.Accepted.Scheme, x402.SchemeChannel)
	}
	channel, err := x402.ParseAmount(pl.Payload.ChannelID)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: channelId: %w", ErrPayment, err)
	}
	cum, err := x402.ParseAmount(pl.Payload.Cumulative)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: cumulative: %w", ErrPayment, err)
	}
	sig, err := hex.DecodeString(pl.Payload.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize || channel == 0 || cum == 0 {
		return nil, nil, fmt.Errorf("%w: malformed voucher in %s", ErrPayment, x402.HeaderPaymentSignature)
	}
	return &pl, &tx.Voucher{ChannelId: channel, Cumulative: cum, Signature: sig}, nil
}

// PaymentSignature renders a signed voucher as a PAYMENT-SIGNATURE header
// accepting req (tools and tests; agents build theirs with package x402).
func PaymentSignature(req x402.Requirements, v *tx.Voucher) string {
	return x402.Encode(x402.PaymentPayload{X402Version: x402.Version, Accepted: req, Payload: x402.ChannelPayload{
		ChannelID: x402.Amount(v.ChannelId), Cumulative: x402.Amount(v.Cumulative), Signature: hex.EncodeToString(v.Signature)}})
}

// payState follows one paid request from its reservation to its charge.
// Only the request's handler goroutine touches it.
type payState struct {
	p           *Payments
	channel     uint64
	payer       address.Address
	provisional uint64 // the maximum charge reserved
	// tokens is what the payer is billed for so far: each verified
	// attempt's tokens as the gateway bounds them, plus the tokens that
	// attempts which never verified delivered to the client. It saturates;
	// the charge is capped at provisional anyway.
	tokens  uint64
	settled bool
	metrics *Metrics // counts the charge (nil: not counted)
}

// bill adds tokens to what the payer is charged for.
func (ps *payState) bill(tokens uint64) {
	if ps == nil {
		return
	}
	if sum, err := agr.Add(ps.tokens, tokens); err == nil {
		ps.tokens = sum
	} else {
		ps.tokens = ^uint64(0)
	}
}

// charge is the gateway's price of what was billed, never above the
// reservation (the voucher covers no more).
func (ps *payState) charge() uint64 {
	price, err := agr.Price(ps.p.PricePer1K, ps.tokens)
	if err != nil || price > ps.provisional {
		return ps.provisional
	}
	return price
}

// errSettled is finish called a second time.
var errSettled = errors.New("request already settled")

// finish settles the request once, at what was billed, and returns what to
// tell the client.
func (ps *payState) finish() (x402.SettleResponse, error) {
	if ps.settled {
		return x402.SettleResponse{}, errSettled
	}
	ps.settled = true
	charged := ps.charge()
	owed, err := ps.p.Ledger.Settle(ps.channel, ps.provisional, charged)
	if err != nil {
		return x402.SettleResponse{}, fmt.Errorf("settle channel %d: %w", ps.channel, err)
	}
	ps.metrics.addCharge(charged)
	return x402.SettleResponse{Success: true, Payer: ps.payer.String(), Network: x402.Network(ps.p.ChainID),
		Extra: x402.SettleExtra{ChannelID: x402.Amount(ps.channel), Charged: x402.Amount(charged), Owed: x402.Amount(owed)}}, nil
}
