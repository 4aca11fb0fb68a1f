package gateway

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/openai"
	"github.com/agoranet/agora/wire"
)

// HTTP 402 headers (x402-style).
const (
	HeaderPaymentRequired  = "PAYMENT-REQUIRED"
	HeaderPaymentSignature = "PAYMENT-SIGNATURE"
	HeaderPaymentResponse  = "PAYMENT-RESPONSE"
)

// PaymentEvent is the SSE event carrying PAYMENT-RESPONSE at the end of a stream.
const PaymentEvent = "agora-payment"

// Requirements tell a client how to pay for a request.
type Requirements struct {
	Scheme     string `json:"scheme"` // "agora-channel"
	ChainID    string `json:"chain_id"`
	Payee      string `json:"payee"`
	Netuid     uint32 `json:"netuid"`
	PricePer1K uint64 `json:"price_per_1k"`
	MaxCharge  uint64 `json:"max_charge"`
}

// PaymentVoucher is what PAYMENT-SIGNATURE carries (base64 JSON).
type PaymentVoucher struct {
	ChannelID  uint64 `json:"channel_id"`
	Cumulative uint64 `json:"cumulative"`
	Signature  string `json:"signature"` // hex ed25519 over tx.VoucherSignBytes
}

// PaymentResponse is what PAYMENT-RESPONSE carries (base64 JSON).
type PaymentResponse struct {
	ChannelID uint64 `json:"channel_id"`
	Charged   uint64 `json:"charged"` // this request
	Owed      uint64 `json:"owed"`    // the channel's total: sign the next voucher above owed + max_charge
}

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

func encodeHeader(v any) string {
	raw, _ := json.Marshal(v)
	return base64.StdEncoding.EncodeToString(raw)
}

// maxCharge bounds a request's price: every byte of the body could be a
// token (byte-level vocabularies), plus the completion's maximum.
func (p *Payments) maxCharge(body []byte, req *openai.ChatRequest) uint64 {
	maxTokens := uint64(openai.DefaultMaxTokens)
	if req.MaxTokens != nil {
		maxTokens = uint64(*req.MaxTokens)
	}
	return (p.PricePer1K*(uint64(len(body))+maxTokens) + 999) / 1000
}

// ErrPayment wraps every reason a voucher is refused.
var ErrPayment = errors.New("payment refused")

// authorize takes payment for a request: from its PAYMENT-SIGNATURE
// voucher, or, for clients that only have an API key, by signing the next
// voucher with the session key in its "Authorization: Bearer agora-sk-…"
// token. It returns the channel and the wait for the voucher's record to be
// durable, which must end before the gateway answers.
func (p *Payments) authorize(ctx context.Context, r *http.Request, maxCharge uint64) (uint64, Durable, error) {
	h := r.Header.Get(HeaderPaymentSignature)
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if h == "" && strings.HasPrefix(token, SessionTokenPrefix) {
		return p.authorizeSession(ctx, token, maxCharge)
	}
	v, err := ParsePaymentSignature(h)
	if err != nil {
		return 0, nil, err
	}
	ch, height, err := p.channelFor(ctx, v.ChannelId, v.Cumulative)
	if err != nil {
		return 0, nil, err
	}
	if !v.Verify(p.ChainID, ch.PayerPubKey) {
		return 0, nil, fmt.Errorf("%w: voucher signature does not verify", ErrPayment)
	}
	if d := v.Delegation; d != nil {
		if err := p.checkDelegation(d, height); err != nil {
			return 0, nil, err
		}
	}
	if v.Cumulative > ch.Deposit {
		return 0, nil, fmt.Errorf("%w: voucher for %d exceeds the deposit of %d", ErrPayment, v.Cumulative, ch.Deposit)
	}
	durable, err := p.Ledger.Accept(v, maxCharge)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %v", ErrPayment, err)
	}
	return v.ChannelId, durable, nil
}

func (p *Payments) authorizeSession(ctx context.Context, token string, maxCharge uint64) (uint64, Durable, error) {
	key, d, err := ParseSessionToken(token)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %v", ErrPayment, err)
	}
	ch, height, err := p.channelFor(ctx, d.ChannelId, 0)
	if err != nil {
		return 0, nil, err
	}
	if !ed25519.Verify(ch.PayerPubKey, tx.DelegationSignBytes(p.ChainID, d), d.Signature) {
		return 0, nil, fmt.Errorf("%w: the session key's delegation is not signed by channel %d's payer", ErrPayment, ch.Id)
	}
	if err := p.checkDelegation(d, height); err != nil {
		return 0, nil, err
	}
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
		if errors.Is(err, ErrPayment) {
			return 0, nil, err
		}
		return 0, nil, fmt.Errorf("%w: %v", ErrPayment, err)
	}
	return ch.Id, durable, nil
}

// checkDelegation enforces what only a gateway can: expiry and subnets.
func (p *Payments) checkDelegation(d *tx.Delegation, height int64) error {
	if uint64(height) >= d.ExpiryHeight {
		return fmt.Errorf("%w: the session key expired at block %d", ErrPayment, d.ExpiryHeight)
	}
	if len(d.Netuids) > 0 && !slices.Contains(d.Netuids, p.Netuid) {
		return fmt.Errorf("%w: the session key may not pay on subnet %d", ErrPayment, p.Netuid)
	}
	return nil
}

// readChannel reads a channel, reusing a read younger than CacheTTL whose
// deposit covers need.
func (p *Payments) readChannel(ctx context.Context, id, need uint64) (*tx.Channel, error) {
	now := time.Now()
	p.cacheMu.Lock()
	c, ok := p.channels[id]
	p.cacheMu.Unlock()
	if ok && now.Sub(c.at) < p.CacheTTL && c.ch.Deposit >= need {
		return c.ch, nil
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

// chainHeight is the chain's height, reused for CacheTTL.
func (p *Payments) chainHeight(ctx context.Context) (int64, error) {
	now := time.Now()
	p.cacheMu.Lock()
	h, at := p.height, p.heightAt
	p.cacheMu.Unlock()
	if h > 0 && now.Sub(at) < p.CacheTTL {
		return h, nil
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
func (p *Payments) channelFor(ctx context.Context, id, need uint64) (*tx.Channel, int64, error) {
	ch, err := p.readChannel(ctx, id, need)
	if errors.Is(err, client.ErrNoChannel) {
		return nil, 0, fmt.Errorf("%w: channel %d is unknown or closed", ErrPayment, id)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("%w: cannot read channel %d: %v", ErrPayment, id, err)
	}
	if payee, _ := address.FromBytes(ch.Payee); payee != p.Payee {
		return nil, 0, fmt.Errorf("%w: channel %d pays %s, not this gateway", ErrPayment, ch.Id, payee)
	}
	if ch.Netuid != p.Netuid {
		return nil, 0, fmt.Errorf("%w: channel %d is for subnet %d", ErrPayment, ch.Id, ch.Netuid)
	}
	height, err := p.chainHeight(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: chain unavailable: %v", ErrPayment, err)
	}
	if uint64(height)+p.ExpiryMargin >= ch.ExpiryHeight {
		return nil, 0, fmt.Errorf("%w: channel %d expires at block %d", ErrPayment, ch.Id, ch.ExpiryHeight)
	}
	return ch, height, nil
}

// paymentRequired answers 402 with the requirements and the refusal reason.
func (p *Payments) paymentRequired(w http.ResponseWriter, maxCharge uint64, reason error) {
	w.Header().Set(HeaderPaymentRequired, encodeHeader(Requirements{Scheme: "agora-channel", ChainID: p.ChainID,
		Payee: p.Payee.String(), Netuid: p.Netuid, PricePer1K: p.PricePer1K, MaxCharge: maxCharge}))
	wire.WriteError(w, http.StatusPaymentRequired, "payment_required", reason.Error())
}

// ClaimLoop settles owed amounts on chain every interval, in one transaction
// per round, until ctx ends. It is safe to restart: the ledger knows what
// was settled, and claims on chain are idempotent.
func ClaimLoop(ctx context.Context, c *client.Client, key ed25519.PrivateKey, l *Ledger, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := ClaimOnce(ctx, c, key, l); err != nil && ctx.Err() == nil && log != nil {
			log.Warn("claim failed", "err", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ClaimOnce claims everything owed in one transaction.
func ClaimOnce(ctx context.Context, c *client.Client, key ed25519.PrivateKey, l *Ledger) error {
	claims := l.Unclaimed()
	if len(claims) == 0 {
		return nil
	}
	msgs := make([]*tx.Msg, len(claims))
	for i, cl := range claims {
		msgs[i] = &tx.Msg{Sum: &tx.Msg_ChannelClaim{ChannelClaim: cl}}
	}
	if _, err := c.SendAndWait(ctx, key, msgs, client.SendOptions{}); err != nil {
		return err
	}
	for _, cl := range claims {
		if err := l.MarkClaimed(cl.Voucher.ChannelId, cl.Amount); err != nil {
			return err
		}
	}
	return nil
}

// ParsePaymentSignature decodes a PAYMENT-SIGNATURE header (base64 JSON).
func ParsePaymentSignature(h string) (*tx.Voucher, error) {
	if h == "" {
		return nil, fmt.Errorf("%w: no %s header", ErrPayment, HeaderPaymentSignature)
	}
	if len(h) > 4096 {
		return nil, fmt.Errorf("%w: %s too long", ErrPayment, HeaderPaymentSignature)
	}
	raw, err := base64.StdEncoding.DecodeString(h)
	var pv PaymentVoucher
	if err == nil {
		err = json.Unmarshal(raw, &pv)
	}
	sig, serr := hex.DecodeString(pv.Signature)
	if err != nil || serr != nil || len(sig) != ed25519.SignatureSize || pv.ChannelID == 0 || pv.Cumulative == 0 {
		return nil, fmt.Errorf("%w: malformed %s", ErrPayment, HeaderPaymentSignature)
	}
	return &tx.Voucher{ChannelId: pv.ChannelID, Cumulative: pv.Cumulative, Signature: sig}, nil
}
