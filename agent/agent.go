// Package agent is the paying client of an Agora gateway: it answers HTTP
// 402 (x402 v2, scheme agora-channel) with a voucher on its own channel and
// streams the completion. The whole agent path in a few lines:
//
//	a := agent.New("http://127.0.0.1:8080/v1", payerKey, chainID, channelID, lastSigned)
//	a.Chain = chainClient // prices and deposits come from the chain, not the gateway
//	text, err := a.Chat(ctx, "Hello!", 64, func(delta string) { fmt.Print(delta) })
//
// The gateway is not trusted with money: the agent prices every request
// itself from the subnet's on-chain price, refuses a quote above that bound,
// above its per-request budget or beyond the channel's deposit, and keeps
// its own running total of what it owes, so a gateway that claims more is
// refused rather than paid.
//
// It is SDK code linked into user programs: it speaks to the gateway only
// through the shared protocol packages (x402, wire, e2e, openai) and reads
// the chain through client, and must not import a server (gateway, miner,
// validator, node) or the chain application. client's TestSDKDependencies
// checks this.
package agent

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/e2e"
	"github.com/agoranet/agora/openai"
	"github.com/agoranet/agora/wire"
	"github.com/agoranet/agora/x402"
)

// Model is the model name the agent asks for: the alias every Agora gateway
// accepts for whatever its subnet serves (gateway.ModelAlias), so the agent
// needs no per-subnet name. Gateways answer any other unknown name with 404.
const Model = "agora"

// Errors the agent refuses a gateway with. Each wraps ErrRefused, so a
// caller can tell "the gateway asked for something we will not sign" from
// a network failure.
var (
	ErrRefused = errors.New("gateway refused")
	// ErrOverpriced: the quote is above the agent's own bound, the
	// subnet's on-chain price over the request's size and max_tokens.
	ErrOverpriced = fmt.Errorf("%w: quote above the chain's price", ErrRefused)
	// ErrOverBudget: the quote is above the agent's per-request budget.
	ErrOverBudget = fmt.Errorf("%w: quote above the per-request budget", ErrRefused)
	// ErrDeposit: paying would take the channel beyond its deposit.
	ErrDeposit = fmt.Errorf("%w: the channel's deposit does not cover it", ErrRefused)
	// ErrOwed: the gateway says it is owed more than the agent agreed to.
	ErrOwed = fmt.Errorf("%w: gateway claims more than is owed", ErrRefused)
	// ErrOvercharged: a request was charged above what was authorized for it.
	ErrOvercharged = fmt.Errorf("%w: charge above the request's authorization", ErrRefused)
	// ErrTerms: the gateway names another network, asset, payee, subnet or
	// channel than the agent's channel pays.
	ErrTerms = fmt.Errorf("%w: payment terms do not match the channel", ErrRefused)
	// ErrPayee: the payee is not a validator with a permit on the subnet.
	ErrPayee = fmt.Errorf("%w: payee is not a permitted validator", ErrRefused)
)

// Chain is what an agent reads from the chain it trusts; *client.Client
// is one.
type Chain interface {
	Channel(ctx context.Context, id uint64, prove bool) (*tx.Channel, error)
	Subnet(ctx context.Context, netuid uint32, prove bool) (*tx.Subnet, error)
	Metagraph(ctx context.Context, netuid uint32, height int64) (*tx.Metagraph, error)
}

// Agent pays a gateway from one channel. It serves one request at a time:
// Chat serializes its callers, because each voucher builds on the last.
type Agent struct {
	BaseURL string
	Payer   ed25519.PrivateKey
	ChainID string
	Channel uint64
	HTTP    *http.Client
	// Chain supplies the subnet's price and the channel's deposit; required.
	Chain Chain
	// Prove makes those chain reads proven (slower: each waits for a header).
	Prove bool
	// Budget is the most one request may be authorized for; 0 leaves only
	// the price bound and the deposit.
	Budget uint64
	// Signed is the highest cumulative amount signed so far; vouchers must rise.
	Signed uint64
	// Owed is the channel's total charge as the agent has agreed to it:
	// every charge the gateway reported that was within its request's
	// authorization, or the whole authorization when no report came.
	Owed uint64
	// OnSigned, when set, is called with the books (Signed, Owed) after a
	// voucher is signed and before it is sent, so a caller can persist
	// them first: a voucher sent but forgotten would make the next one
	// repeat an amount the gateway already holds. An error stops the request.
	OnSigned func(signed, owed uint64) error
	// Sealed, when set, encrypts each request end to end to this miner
	// (see PickMiner): the gateway routes and charges it without reading
	// the prompt or the answer.
	Sealed *SealTarget

	mu sync.Mutex // held for a whole Chat
}

// SealTarget is a miner and the X25519 key it published on chain.
type SealTarget struct {
	Miner address.Address
	Key   []byte
}

// New makes an agent; signed is the highest voucher amount already signed on
// the channel (0 for a new channel), which is also taken as owed. Set Chain
// before the first Chat.
func New(baseURL string, payer ed25519.PrivateKey, chainID string, channel, signed uint64) *Agent {
	return &Agent{BaseURL: strings.TrimRight(baseURL, "/"), Payer: payer, ChainID: chainID, Channel: channel, HTTP: http.DefaultClient, Signed: signed, Owed: signed}
}

func (a *Agent) httpClient() *http.Client {
	if a.HTTP != nil {
		return a.HTTP
	}
	return http.DefaultClient
}

// Requirements asks the gateway what body would cost (its 402) and returns
// the agora-channel entry for this chain, unchecked: Chat checks it against
// the chain before signing anything. body is sent as is, so it must hold
// only what the gateway may read.
func (a *Agent) Requirements(ctx context.Context, body []byte) (*x402.Requirements, error) {
	resp, err := a.post(ctx, body, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusPaymentRequired {
		return nil, fmt.Errorf("gateway answered %s, expected 402 Payment Required", resp.Status)
	}
	r, _, err := x402.ParseRequired(resp.Header.Get(x402.HeaderPaymentRequired), a.ChainID)
	if err != nil {
		return nil, fmt.Errorf("gateway's %w", err)
	}
	return r, nil
}

// Terms is whom a gateway asks to be paid, checked on chain.
type Terms struct {
	Payee  address.Address
	Netuid uint32
	Quote  *x402.Requirements
}

// Discover asks the gateway whom to pay, with a probe that carries no
// prompt (only the model, max_tokens and stream), and checks on chain that
// the subnet exists and the payee is a validator with a permit on it: the
// checks to make before opening a channel to it.
func (a *Agent) Discover(ctx context.Context, maxTokens int) (*Terms, error) {
	probe, err := json.Marshal(openai.ChatRequest{Model: Model, Messages: []openai.Message{{Role: "user", Content: ""}},
		MaxTokens: &maxTokens, Stream: true})
	if err != nil {
		return nil, err
	}
	q, err := a.Requirements(ctx, probe)
	if err != nil {
		return nil, err
	}
	payee, err := address.Parse(q.PayTo)
	if err != nil {
		return nil, fmt.Errorf("%w: payTo %q: %v", ErrTerms, q.PayTo, err)
	}
	if q.Extra.ChainID != "" && q.Extra.ChainID != a.ChainID {
		return nil, fmt.Errorf("%w: gateway is on chain %q, not %q", ErrTerms, q.Extra.ChainID, a.ChainID)
	}
	if a.Chain == nil {
		return nil, errors.New("agent has no chain to check the gateway against")
	}
	if err := CheckPayee(ctx, a.Chain, payee, q.Extra.Netuid); err != nil {
		return nil, err
	}
	return &Terms{Payee: payee, Netuid: q.Extra.Netuid, Quote: q}, nil
}

// CheckPayee checks on chain that subnet netuid exists and that payee is
// registered on it with a validator permit: only validators run gateways,
// so a channel to anyone else pays someone who serves nothing.
func CheckPayee(ctx context.Context, c Chain, payee address.Address, netuid uint32) error {
	mg, err := c.Metagraph(ctx, netuid, 0)
	if err != nil {
		return fmt.Errorf("read subnet %d: %w", netuid, err)
	}
	if mg.Subnet == nil {
		return fmt.Errorf("subnet %d: %w", netuid, client.ErrNoSubnet)
	}
	for uid, n := range mg.Neurons {
		if hot, err := address.FromBytes(n.Hotkey); err != nil || hot != payee {
			continue
		} else if !n.ValidatorPermit {
			return fmt.Errorf("%w: %s (uid %d) has no validator permit on subnet %d", ErrPayee, payee, uid, netuid)
		}
		return nil
	}
	return fmt.Errorf("%w: %s is not registered on subnet %d", ErrPayee, payee, netuid)
}

func (a *Agent) post(ctx context.Context, body []byte, payment string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.BaseURL+"/chat/completions", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if payment != "" {
		req.Header.Set(x402.HeaderPaymentSignature, payment)
	}
	resp, err := a.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	return resp, nil
}

// authorization is what the agent agreed to pay for one request.
type authorization struct {
	quote      uint64 // this request's maximum, as quoted and checked
	cumulative uint64 // the voucher signed for it
	header     string // PAYMENT-SIGNATURE
}

// authorize checks a quote for a request of bodyBytes and maxTokens against
// the chain and the agent's own books, and signs the voucher that pays it.
// Nothing is signed unless every check passes.
func (a *Agent) authorize(ctx context.Context, q *x402.Requirements, bodyBytes, maxTokens int) (*authorization, error) {
	ch, err := a.Chain.Channel(ctx, a.Channel, a.Prove)
	if err != nil {
		return nil, fmt.Errorf("read channel %d: %w", a.Channel, err)
	}
	if !bytes.Equal(ch.PayerPubKey, a.Payer.Public().(ed25519.PublicKey)) {
		return nil, fmt.Errorf("%w: channel %d is not paid by this key", ErrTerms, a.Channel)
	}
	payee, err := address.FromBytes(ch.Payee)
	if err != nil {
		return nil, fmt.Errorf("channel %d payee: %w", a.Channel, err)
	}
	switch {
	case q.Scheme != x402.SchemeChannel || q.Network != x402.Network(a.ChainID):
		return nil, fmt.Errorf("%w: %s on %s", ErrTerms, q.Scheme, q.Network)
	case q.Asset != x402.Asset:
		return nil, fmt.Errorf("%w: asset %q, not %q", ErrTerms, q.Asset, x402.Asset)
	case q.PayTo != payee.String():
		return nil, fmt.Errorf("%w: gateway asks to pay %s, channel %d pays %s", ErrTerms, q.PayTo, a.Channel, payee)
	case q.Extra.Netuid != ch.Netuid:
		return nil, fmt.Errorf("%w: gateway serves subnet %d, channel %d is for subnet %d", ErrTerms, q.Extra.Netuid, a.Channel, ch.Netuid)
	case q.Extra.ChainID != "" && q.Extra.ChainID != a.ChainID:
		return nil, fmt.Errorf("%w: chain %q, not %q", ErrTerms, q.Extra.ChainID, a.ChainID)
	case q.Extra.ChannelID != "" && !sameChannel(q.Extra.ChannelID, a.Channel):
		return nil, fmt.Errorf("%w: gateway speaks of channel %s, this is channel %d", ErrTerms, q.Extra.ChannelID, a.Channel)
	}
	sub, err := a.Chain.Subnet(ctx, ch.Netuid, a.Prove)
	if err != nil {
		return nil, fmt.Errorf("read subnet %d: %w", ch.Netuid, err)
	}
	if sub.Params == nil {
		return nil, fmt.Errorf("subnet %d has no parameters", ch.Netuid)
	}
	bound, err := x402.MaxCharge(sub.Params.PricePer_1K, bodyBytes, maxTokens)
	if err != nil {
		return nil, fmt.Errorf("price of this request: %w", err)
	}
	quote, err := x402.ParseAmount(q.Amount)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTerms, err)
	}
	if quote > bound {
		return nil, fmt.Errorf("%w: gateway asks up to %d, the subnet's price of %d per 1k tokens bounds this request at %d",
			ErrOverpriced, quote, sub.Params.PricePer_1K, bound)
	}
	if a.Budget > 0 && quote > a.Budget {
		return nil, fmt.Errorf("%w: this request may cost %d, the budget is %d", ErrOverBudget, quote, a.Budget)
	}
	if q.Extra.Owed != "" {
		owed, err := x402.ParseAmount(q.Extra.Owed)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrTerms, err)
		}
		if owed > a.Owed {
			return nil, fmt.Errorf("%w: gateway says channel %d owes %d, the agent agreed to %d", ErrOwed, a.Channel, owed, a.Owed)
		}
		// Less than agreed is the gateway's loss, not ours: the next
		// voucher only needs to cover what it says.
		a.Owed = owed
	}
	cum, err := agr.Add(a.Owed, quote)
	if err != nil {
		return nil, fmt.Errorf("voucher amount: %w", err)
	}
	next, err := agr.Add(a.Signed, 1)
	if err != nil {
		return nil, fmt.Errorf("voucher amount: %w", err)
	}
	cum = max(cum, next)
	if cum > ch.Deposit {
		return nil, fmt.Errorf("%w: a voucher for %d is above channel %d's deposit of %d; top it up", ErrDeposit, cum, a.Channel, ch.Deposit)
	}
	v := tx.SignVoucher(a.Payer, a.ChainID, a.Channel, cum)
	header := x402.Encode(x402.PaymentPayload{X402Version: x402.Version, Accepted: *q, Payload: x402.ChannelPayload{
		ChannelID: strconv.FormatUint(a.Channel, 10), Cumulative: x402.Amount(cum), Signature: hex.EncodeToString(v.Signature)}})
	return &authorization{quote: quote, cumulative: cum, header: header}, nil
}

// sameChannel says whether a decimal channel id from the gateway names id.
func sameChannel(s string, id uint64) bool {
	n, err := x402.ParseAmount(s)
	return err == nil && s != "" && n == id
}

// settle books what the gateway reported for a request authorized by au.
// The agent's running total moves by the reported charge, never above the
// request's quote, and the gateway's own total is checked against it.
func (a *Agent) settle(au *authorization, sr *x402.SettleResponse) error {
	if sr == nil || !sr.Success {
		// Unknown (a cut stream, a failed settlement): the gateway may
		// have used the whole authorization.
		a.Owed = a.Owed + au.quote // ≤ au.cumulative, checked when signing
		return nil
	}
	if !sameChannel(sr.Extra.ChannelID, a.Channel) {
		a.Owed = a.Owed + au.quote
		return fmt.Errorf("%w: payment response for channel %q, not %d", ErrTerms, sr.Extra.ChannelID, a.Channel)
	}
	charged, err1 := x402.ParseAmount(sr.Extra.Charged)
	owed, err2 := x402.ParseAmount(sr.Extra.Owed)
	if err := errors.Join(err1, err2); err != nil {
		a.Owed = a.Owed + au.quote
		return fmt.Errorf("%w: payment response: %v", ErrTerms, err)
	}
	if charged > au.quote {
		a.Owed = a.Owed + au.quote
		return fmt.Errorf("%w: charged %d for a request authorized up to %d", ErrOvercharged, charged, au.quote)
	}
	agreed := a.Owed + charged // ≤ a.Owed + quote ≤ cumulative: no wrap
	if owed > agreed {
		a.Owed = agreed
		return fmt.Errorf("%w: gateway says channel %d owes %d, the agent agreed to %d", ErrOwed, a.Channel, owed, agreed)
	}
	a.Owed = min(agreed, owed) // a lower total is the gateway's loss
	return nil
}

// Chat sends one user message, pays for it, and streams the answer to
// onDelta. It returns what was received even when it also returns an error.
func (a *Agent) Chat(ctx context.Context, prompt string, maxTokens int, onDelta func(string)) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.Chain == nil {
		return "", errors.New("agent has no chain to check prices against")
	}
	if a.Channel == 0 {
		return "", errors.New("agent has no channel")
	}
	if maxTokens < 1 || maxTokens > openai.MaxTokensCap {
		return "", fmt.Errorf("max_tokens %d is not between 1 and %d", maxTokens, openai.MaxTokensCap)
	}
	body, err := json.Marshal(openai.ChatRequest{Model: Model, Messages: []openai.Message{{Role: "user", Content: prompt}},
		MaxTokens: &maxTokens, Stream: true})
	if err != nil {
		return "", err
	}
	var reply *e2e.Reply
	if t := a.Sealed; t != nil {
		if body, reply, err = e2e.Seal(t.Key, t.Miner, Model, maxTokens, true, body); err != nil {
			return "", err
		}
	}
	// The probe is the very body that will be paid for: sealed, it shows the
	// gateway only the envelope.
	q, err := a.Requirements(ctx, body)
	if err != nil {
		return "", err
	}
	au, err := a.authorize(ctx, q, len(body), maxTokens)
	if err != nil {
		return "", err
	}
	a.Signed = au.cumulative
	if a.OnSigned != nil {
		if err := a.OnSigned(a.Signed, a.Owed); err != nil {
			return "", fmt.Errorf("record voucher %d before sending it: %w", a.Signed, err)
		}
	}
	resp, err := a.post(ctx, body, au.header)
	if err != nil {
		return "", errors.Join(err, a.settle(au, nil))
	}
	defer resp.Body.Close()
	var settled *x402.SettleResponse
	if h := resp.Header.Get(x402.HeaderPaymentResponse); h != "" {
		var sr x402.SettleResponse
		if x402.Decode(h, &sr) == nil {
			settled = &sr
		}
	}
	if resp.StatusCode != http.StatusOK {
		var e wire.ErrorBody
		json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&e)
		failed := fmt.Errorf("gateway answered %s: %s", resp.Status, e.Error.Message)
		if resp.StatusCode == http.StatusPaymentRequired && settled == nil {
			// The voucher was refused: nothing was charged against it.
			// (A gateway that claims it anyway gains at most this quote,
			// and Signed already counts it.)
			return "", failed
		}
		return "", errors.Join(failed, a.settle(au, settled))
	}
	var text strings.Builder
	sr, err := readStream(resp.Body, func(data []byte) error {
		if string(data) == "[DONE]" {
			return nil
		}
		if reply != nil {
			var err error
			if data, _, err = reply.Open(data); err != nil {
				return err
			}
		}
		var chunk struct {
			openai.Response
			Error *wire.ErrorDetail `json:"error"`
		}
		if json.Unmarshal(data, &chunk) != nil {
			return nil
		}
		if chunk.Error != nil {
			return fmt.Errorf("%s: %s", chunk.Error.Type, chunk.Error.Message)
		}
		for _, c := range chunk.Choices {
			if c.Delta != nil && c.Delta.Content != "" {
				text.WriteString(c.Delta.Content)
				if onDelta != nil {
					onDelta(c.Delta.Content)
				}
			}
		}
		return nil
	})
	if sr != nil {
		settled = sr
	}
	if err == nil && reply != nil && !reply.Done() {
		err = errors.New("the sealed answer ended before the miner's final message")
	}
	return text.String(), errors.Join(err, a.settle(au, settled))
}

// readStream reads a paid SSE stream: onData gets every data payload of the
// answer (a failover marker included), up to the miner's receipt; after it
// (or after an error) comes the payment event, whose SettleResponse is
// returned, also with the first error onData or the stream gave. One scanner
// reads it all: a second reader after the receipt would miss what the
// first had already buffered.
func readStream(body io.Reader, onData func([]byte) error) (*x402.SettleResponse, error) {
	var receipt bool
	var settled *x402.SettleResponse
	var failed error
	err := wire.ScanEvents(body, func(e wire.Event) error {
		switch {
		case e.Name == wire.ReceiptEvent:
			receipt = true
		case e.Name == x402.PaymentEvent:
			if len(e.Data) > x402.MaxHeaderBytes {
				return fmt.Errorf("%w: %s event of %d bytes", x402.ErrMalformed, x402.PaymentEvent, len(e.Data))
			}
			var sr x402.SettleResponse
			if err := json.Unmarshal(e.Data, &sr); err != nil {
				return fmt.Errorf("%w: %s event: %v", x402.ErrMalformed, x402.PaymentEvent, err)
			}
			settled = &sr
		case failed != nil:
			// Past a failure only the payment event matters: the
			// gateway still says what it charged.
		case receipt:
			failed = errors.New("answer data after the miner's receipt")
		default:
			failed = onData(e.Data)
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, x402.ErrMalformed) {
			return nil, err
		}
		return settled, errors.Join(failed, err)
	}
	if failed != nil {
		return settled, failed
	}
	if !receipt {
		return settled, errors.New("the stream ended without the miner's receipt")
	}
	return settled, nil
}

// minerInfo is one entry of a gateway's GET /v1/agora/miners.
type minerInfo struct {
	Hotkey string `json:"hotkey"`
}

// PickMiner chooses the gateway's best-scored miner that has published an
// X25519 key on chain, for sealed requests. The gateway only says whom it
// would route to; the key comes from the chain, so a gateway cannot
// substitute its own.
func PickMiner(ctx context.Context, gatewayURL string, c Chain, netuid uint32) (*SealTarget, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(gatewayURL, "/")+"/agora/miners", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("list the gateway's miners: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("list the gateway's miners: %s", resp.Status)
	}
	var list struct {
		Data []minerInfo `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&list); err != nil {
		return nil, fmt.Errorf("list the gateway's miners: %w", err)
	}
	mg, err := c.Metagraph(ctx, netuid, 0)
	if err != nil {
		return nil, err
	}
	keys := map[address.Address][]byte{}
	for _, n := range mg.Neurons {
		if hot, err := address.FromBytes(n.Hotkey); err == nil && len(n.X25519PubKey) == 32 {
			keys[hot] = n.X25519PubKey
		}
	}
	for _, m := range list.Data { // best first
		hot, err := address.Parse(m.Hotkey)
		if err != nil {
			continue
		}
		if k, ok := keys[hot]; ok {
			return &SealTarget{Miner: hot, Key: k}, nil
		}
	}
	return nil, fmt.Errorf("none of the gateway's %d miners has published an X25519 key on subnet %d", len(list.Data), netuid)
}

// OpenedChannel finds the id of the channel payer opened in the block at height.
func OpenedChannel(ctx context.Context, c *client.Client, payer address.Address, height int64) (uint64, error) {
	blk, err := c.BlockResults(ctx, height)
	if err != nil {
		return 0, fmt.Errorf("read block %d: %w", height, err)
	}
	for _, r := range blk.TxsResults {
		for _, e := range r.Events {
			if e.Type != "channel_open" {
				continue
			}
			var id, who string
			for _, at := range e.Attributes {
				switch at.Key {
				case "channel_id":
					id = at.Value
				case "payer":
					who = at.Value
				}
			}
			if who == payer.String() {
				return strconv.ParseUint(id, 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("no channel opened by %s at block %d", payer, height)
}
