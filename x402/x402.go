// Package x402 is the wire form of Agora's HTTP 402 payments: the
// PAYMENT-REQUIRED, PAYMENT-SIGNATURE and PAYMENT-RESPONSE headers laid out
// as x402 version 2 lays them out (base64 JSON with x402Version, resource,
// accepts[] of scheme/network/amount/asset/payTo/maxTimeoutSeconds/extra),
// so generic x402 clients can parse what a gateway sends. Agora pays through
// payment channels, so it defines its own scheme, "agora-channel": the
// payload is a cumulative voucher on a channel instead of a one-off transfer.
//
// It is a leaf: it imports only the standard library, so an agent or an SDK
// can speak the protocol without compiling any server or chain code.
package x402

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/agoranet/agora/agr"
)

// Version is the x402 protocol version these shapes follow.
const Version = 2

// Headers, as x402 v2 names them.
const (
	HeaderPaymentRequired  = "PAYMENT-REQUIRED"
	HeaderPaymentSignature = "PAYMENT-SIGNATURE"
	HeaderPaymentResponse  = "PAYMENT-RESPONSE"
)

// PaymentEvent is the server-sent event that ends a paid stream, whose
// headers were sent before the charge was known; its data is the
// SettleResponse JSON (not base64).
const PaymentEvent = "agora-payment"

// SchemeChannel is Agora's scheme: cumulative vouchers on a payment channel.
const SchemeChannel = "agora-channel"

// Asset names what amounts are counted in: AGR base units (10^-9 AGR).
const Asset = "nagr"

// MaxHeaderBytes bounds every header this package decodes.
const MaxHeaderBytes = 8 << 10

// ErrMalformed wraps every decoding failure.
var ErrMalformed = errors.New("malformed x402 header")

// Network is the CAIP-2-style id of an Agora chain: "agora:<chain-id>".
func Network(chainID string) string { return "agora:" + chainID }

// Resource describes what is being paid for.
type Resource struct {
	URL         string `json:"url"`
	Description string `json:"description,omitempty"`
	MimeType    string `json:"mimeType,omitempty"`
}

// Requirements is one way to pay, an entry of PaymentRequired.accepts.
// Amount is the most this request may cost, in Asset units, as a decimal
// string (x402 carries amounts as strings so JavaScript loses no digits).
type Requirements struct {
	Scheme            string       `json:"scheme"`
	Network           string       `json:"network"`
	Amount            string       `json:"amount"`
	Asset             string       `json:"asset"`
	PayTo             string       `json:"payTo"`
	MaxTimeoutSeconds int          `json:"maxTimeoutSeconds"`
	Extra             ChannelExtra `json:"extra"`
}

// ChannelExtra is what the agora-channel scheme adds: which subnet's
// channel pays, the price the gateway charges, and what the channel already
// owes it, so the client signs its next voucher for Owed + Amount.
type ChannelExtra struct {
	ChainID    string `json:"chainId"`
	Netuid     uint32 `json:"netuid"`
	PricePer1K string `json:"pricePer1k"`
	// ChannelID and Owed are set when the request named a channel the
	// gateway knows: Owed is that channel's settled total so far.
	ChannelID string `json:"channelId,omitempty"`
	Owed      string `json:"owed,omitempty"`
}

// PaymentRequired is the PAYMENT-REQUIRED header of a 402.
type PaymentRequired struct {
	X402Version int            `json:"x402Version"`
	Error       string         `json:"error,omitempty"`
	Resource    Resource       `json:"resource"`
	Accepts     []Requirements `json:"accepts"`
}

// ChannelPayload is the agora-channel scheme's payload: a voucher.
type ChannelPayload struct {
	ChannelID  string `json:"channelId"`
	Cumulative string `json:"cumulative"`
	Signature  string `json:"signature"` // hex ed25519 over the chain's voucher sign bytes
}

// PaymentPayload is the PAYMENT-SIGNATURE header.
type PaymentPayload struct {
	X402Version int            `json:"x402Version"`
	Resource    *Resource      `json:"resource,omitempty"`
	Accepted    Requirements   `json:"accepted"`
	Payload     ChannelPayload `json:"payload"`
}

// SettleExtra is what a gateway reports of one request's charge.
type SettleExtra struct {
	ChannelID string `json:"channelId"`
	Charged   string `json:"charged"` // this request
	Owed      string `json:"owed"`    // the channel's total: sign the next voucher above owed + amount
}

// SettleResponse is the PAYMENT-RESPONSE header (and, at the end of a
// stream, the payment event's data). Transaction is empty: a channel charge
// settles on chain later, in a batch claim.
type SettleResponse struct {
	Success     bool        `json:"success"`
	ErrorReason string      `json:"errorReason,omitempty"`
	Payer       string      `json:"payer,omitempty"`
	Transaction string      `json:"transaction"`
	Network     string      `json:"network"`
	Extra       SettleExtra `json:"extra"`
}

// Encode renders a header value: base64 of the JSON.
func Encode(v any) string {
	// This package's types hold only strings and numbers: they always marshal.
	raw, _ := json.Marshal(v)
	return base64.StdEncoding.EncodeToString(raw)
}

// Decode parses a header value into v, bounded by MaxHeaderBytes.
func Decode(h string, v any) error {
	if h == "" {
		return fmt.Errorf("%w: empty", ErrMalformed)
	}
	if len(h) > MaxHeaderBytes {
		return fmt.Errorf("%w: %d bytes, over %d", ErrMalformed, len(h), MaxHeaderBytes)
	}
	raw, err := base64.StdEncoding.DecodeString(h)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}

// Amount renders a base-unit amount the way x402 carries it.
func Amount(n uint64) string { return strconv.FormatUint(n, 10) }

// ParseAmount reads an amount field; an empty field is 0.
func ParseAmount(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: amount %q: %v", ErrMalformed, s, err)
	}
	return n, nil
}

// Channel returns the agora-channel entry of a PaymentRequired for network,
// or an error naming what the gateway offered instead.
func (p *PaymentRequired) Channel(network string) (*Requirements, error) {
	if p.X402Version != Version {
		return nil, fmt.Errorf("%w: x402Version %d, want %d", ErrMalformed, p.X402Version, Version)
	}
	var offered []string
	for i := range p.Accepts {
		r := &p.Accepts[i]
		if r.Scheme == SchemeChannel && r.Network == network {
			return r, nil
		}
		offered = append(offered, r.Scheme+"@"+r.Network)
	}
	return nil, fmt.Errorf("%w: no %s payment on %s offered (offered: %v)", ErrMalformed, SchemeChannel, network, offered)
}

// MaxCharge is the most a request may cost at pricePer1K: every byte of
// its body could be a prompt token (byte-level vocabularies), plus the
// completion's max_tokens. Gateways quote it and agents check the quote
// against it, so both compute the same number; it fails rather than wraps.
func MaxCharge(pricePer1K uint64, bodyBytes int, maxTokens int) (uint64, error) {
	if bodyBytes < 0 || maxTokens < 0 {
		return 0, fmt.Errorf("%w: negative size", agr.ErrOverflow)
	}
	tokens, err := agr.Add(uint64(bodyBytes), uint64(maxTokens))
	if err != nil {
		return 0, err
	}
	return agr.Price(pricePer1K, tokens)
}

// ParseRequired decodes a PAYMENT-REQUIRED header and returns its
// agora-channel requirements on chainID with their amount parsed.
func ParseRequired(h, chainID string) (*Requirements, uint64, error) {
	var pr PaymentRequired
	if err := Decode(h, &pr); err != nil {
		return nil, 0, fmt.Errorf("%s: %w", HeaderPaymentRequired, err)
	}
	r, err := pr.Channel(Network(chainID))
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", HeaderPaymentRequired, err)
	}
	amount, err := ParseAmount(r.Amount)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", HeaderPaymentRequired, err)
	}
	return r, amount, nil
}
