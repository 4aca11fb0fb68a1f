// Package agent is the paying client of an Agora gateway: it answers HTTP
// 402 with a voucher on its own channel and streams the completion. The
// whole agent path in a few lines:
//
//	a := agent.New("http://127.0.0.1:8080/v1", payerKey, chainID, channelID, lastSigned)
//	text, err := a.Chat(ctx, "Hello!", 64, func(delta string) { fmt.Print(delta) })
package agent

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/e2e"
	"github.com/agoranet/agora/gateway"
	"github.com/agoranet/agora/openai"
	"github.com/agoranet/agora/wire"
)

// Agent pays a gateway from one channel.
type Agent struct {
	BaseURL string
	Payer   ed25519.PrivateKey
	ChainID string
	Channel uint64
	HTTP    *http.Client
	// Signed is the highest cumulative amount signed so far; vouchers must rise.
	Signed uint64
	// Owed is what the gateway last said the channel owes.
	Owed uint64
	// Sealed, when set, encrypts each request end to end to this miner
	// (see PickMiner): the gateway routes and charges it without reading
	// the prompt or the answer.
	Sealed *SealTarget
}

// SealTarget is a miner and the X25519 key it published on chain.
type SealTarget struct {
	Miner address.Address
	Key   []byte
}

// New makes an agent; signed is the highest voucher amount already signed on
// the channel (0 for a new channel).
func New(baseURL string, payer ed25519.PrivateKey, chainID string, channel, signed uint64) *Agent {
	return &Agent{BaseURL: strings.TrimRight(baseURL, "/"), Payer: payer, ChainID: chainID, Channel: channel, HTTP: http.DefaultClient, Signed: signed, Owed: signed}
}

// Requirements asks the gateway what a request would cost.
func (a *Agent) Requirements(ctx context.Context, body []byte) (*gateway.Requirements, error) {
	resp, err := a.post(ctx, body, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusPaymentRequired {
		return nil, fmt.Errorf("gateway answered %s, expected 402 Payment Required", resp.Status)
	}
	var r gateway.Requirements
	raw, err := base64.StdEncoding.DecodeString(resp.Header.Get(gateway.HeaderPaymentRequired))
	if err == nil {
		err = json.Unmarshal(raw, &r)
	}
	if err != nil {
		return nil, fmt.Errorf("bad %s header: %v", gateway.HeaderPaymentRequired, err)
	}
	return &r, nil
}

func (a *Agent) post(ctx context.Context, body []byte, payment string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.BaseURL+"/chat/completions", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if payment != "" {
		req.Header.Set(gateway.HeaderPaymentSignature, payment)
	}
	return a.HTTP.Do(req)
}

// Chat sends one user message, pays for it, and streams the answer to onDelta.
func (a *Agent) Chat(ctx context.Context, prompt string, maxTokens int, onDelta func(string)) (string, error) {
	body, _ := json.Marshal(openai.ChatRequest{Model: "agora", Messages: []openai.Message{{Role: "user", Content: prompt}},
		MaxTokens: &maxTokens, Stream: true})
	var reply *e2e.Reply
	if t := a.Sealed; t != nil {
		var err error
		if body, reply, err = e2e.Seal(t.Key, t.Miner, "agora", maxTokens, true, body); err != nil {
			return "", err
		}
	}
	reqs, err := a.Requirements(ctx, body)
	if err != nil {
		return "", err
	}
	cum := max(a.Signed+1, a.Owed+reqs.MaxCharge)
	v := tx.SignVoucher(a.Payer, a.ChainID, a.Channel, cum)
	raw, _ := json.Marshal(gateway.PaymentVoucher{ChannelID: a.Channel, Cumulative: cum, Signature: hex.EncodeToString(v.Signature)})
	a.Signed = cum
	resp, err := a.post(ctx, body, base64.StdEncoding.EncodeToString(raw))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e wire.ErrorBody
		json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&e)
		return "", fmt.Errorf("gateway answered %s: %s", resp.Status, e.Error.Message)
	}
	var text strings.Builder
	var paid bool
	_, _, err = wire.ReadStream(resp.Body, func(e wire.Event) error {
		if string(e.Data) == "[DONE]" {
			return nil
		}
		data := e.Data
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
	// The stream ends with the receipt, then the payment event; read the latter.
	if rest, rerr := io.ReadAll(io.LimitReader(resp.Body, 64<<10)); rerr == nil {
		if i := bytes.Index(rest, []byte("event: "+gateway.PaymentEvent+"\ndata: ")); i >= 0 {
			line := rest[i+len("event: "+gateway.PaymentEvent+"\ndata: "):]
			if j := bytes.IndexByte(line, '\n'); j >= 0 {
				var pr gateway.PaymentResponse
				if json.Unmarshal(line[:j], &pr) == nil {
					a.Owed, paid = pr.Owed, true
				}
			}
		}
	}
	if err == nil && reply != nil && !reply.Done() {
		err = fmt.Errorf("the sealed answer ended before the miner's final message")
	}
	if err != nil {
		return text.String(), err
	}
	if !paid {
		a.Owed = cum // unknown: assume the whole authorization was used
	}
	return text.String(), nil
}

// PickMiner chooses the gateway's best-scored miner that has published an
// X25519 key on chain, for sealed requests. The gateway only says whom it
// would route to; the key comes from the chain, so a gateway cannot
// substitute its own.
func PickMiner(ctx context.Context, gatewayURL string, c *client.Client, netuid uint32) (*SealTarget, error) {
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
		Data []gateway.MinerInfo `json:"data"`
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
	blk, err := c.RPC().BlockResults(ctx, &height)
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
