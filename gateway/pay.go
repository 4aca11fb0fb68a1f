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
}

func encodeHeader(v any) string {
	raw, _ := json.Marshal(v)
	return base64.StdEncoding.EncodeToString(raw)
}

// maxCharge bounds a request's price: every byte of the body could be a
// token (byte-level vocabularies), plus the completion's maximum.
func (p *Payments) maxCharge(body []byte, req *openai.ChatRequest) uint64 {
	maxTokens := uint64(256)
	if req.MaxTokens != nil {
		maxTokens = uint64(*req.MaxTokens)
	}
	return (p.PricePer1K*(uint64(len(body))+maxTokens) + 999) / 1000
}

// ErrPayment wraps every reason a voucher is refused.
var ErrPayment = errors.New("payment refused")

// authorize checks the PAYMENT-SIGNATURE of a request and records it
// durably. It returns the channel and the provisional charge.
func (p *Payments) authorize(ctx context.Context, r *http.Request, maxCharge uint64) (uint64, error) {
	v, err := ParsePaymentSignature(r.Header.Get(HeaderPaymentSignature))
	if err != nil {
		return 0, err
	}
	pv := PaymentVoucher{ChannelID: v.ChannelId, Cumulative: v.Cumulative}
	ch, err := p.Chain.Channel(ctx, pv.ChannelID, false)
	if errors.Is(err, client.ErrNoChannel) {
		return 0, fmt.Errorf("%w: channel %d is unknown or closed", ErrPayment, pv.ChannelID)
	}
	if err != nil {
		return 0, fmt.Errorf("%w: cannot read channel %d: %v", ErrPayment, pv.ChannelID, err)
	}
	if payee, _ := address.FromBytes(ch.Payee); payee != p.Payee {
		return 0, fmt.Errorf("%w: channel %d pays %s, not this gateway", ErrPayment, ch.Id, payee)
	}
	if ch.Netuid != p.Netuid {
		return 0, fmt.Errorf("%w: channel %d is for subnet %d", ErrPayment, ch.Id, ch.Netuid)
	}
	height, err := p.Chain.Height(ctx)
	if err != nil {
		return 0, fmt.Errorf("%w: chain unavailable: %v", ErrPayment, err)
	}
	if uint64(height)+p.ExpiryMargin >= ch.ExpiryHeight {
		return 0, fmt.Errorf("%w: channel %d expires at block %d", ErrPayment, ch.Id, ch.ExpiryHeight)
	}
	if !v.Verify(p.ChainID, ch.PayerPubKey) {
		return 0, fmt.Errorf("%w: voucher signature does not verify", ErrPayment)
	}
	if v.Cumulative > ch.Deposit {
		return 0, fmt.Errorf("%w: voucher for %d exceeds the deposit of %d", ErrPayment, v.Cumulative, ch.Deposit)
	}
	if err := p.Ledger.Accept(v, maxCharge); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrPayment, err)
	}
	return pv.ChannelID, nil
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
