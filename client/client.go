// Package client is the Go SDK for an Agora node: CometBFT JSON-RPC, queries
// whose ICS-23 proofs are checked against a signed header, and transaction
// building.
//
// It is what every agent, miner and gateway links, so it imports only the
// chain's public types (chain/tx, chain/proof) and CometBFT's wire types and
// JSON-RPC client: never the chain application, its store (cosmos/iavl,
// goleveldb) or a CometBFT node. TestSDKDependencies holds that line.
package client

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	jsonrpc "github.com/cometbft/cometbft/rpc/jsonrpc/client"
	cmttypes "github.com/cometbft/cometbft/types"
	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/internal/poll"
)

// Client talks to a chain through one or more of its nodes over CometBFT
// RPC. It is safe for concurrent use.
type Client struct {
	rpc rpc
	// verifier, when set, vouches for the headers proofs are checked
	// against (a light client); without it a header is checked against the
	// validator set the same node reports.
	verifier HeaderVerifier

	mu      sync.Mutex // guards chainID
	chainID string
}

// HeaderVerifier supplies headers verified by something the client trusts
// more than the node it asks, such as a light client that has followed the
// chain validators from a trusted height.
type HeaderVerifier interface {
	VerifiedHeader(ctx context.Context, height int64) (*cmttypes.SignedHeader, error)
}

// SetVerifier makes proven queries check their app hash against headers
// from v. Set it before the client is shared.
func (c *Client) SetVerifier(v HeaderVerifier) { c.verifier = v }

// New connects to the nodes at urls (http://host:port), the first
// preferred. Reads and broadcasts fail over to the next node when one cannot
// be reached; an answer from any node is final. Broadcasting the same
// transaction twice after a failover is harmless: its nonce admits it once.
// It makes no request until a method is called.
func New(urls ...string) (*Client, error) {
	if len(urls) == 0 {
		return nil, errors.New("no node url given")
	}
	hc := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
		},
	}
	eps := &endpoints{}
	for _, url := range urls {
		rc, err := jsonrpc.NewWithHTTPClient(url, hc)
		if err != nil {
			return nil, fmt.Errorf("rpc client for %s: %w", url, err)
		}
		eps.list = append(eps.list, &endpoint{url: url, c: rc})
	}
	return &Client{rpc: rpc{eps}}, nil
}

// Endpoints are the node URLs the client uses, in order of preference.
func (c *Client) Endpoints() []string {
	out := make([]string, len(c.rpc.eps.list))
	for i, e := range c.rpc.eps.list {
		out[i] = e.url
	}
	return out
}

// ChainID asks the node once and remembers the answer.
func (c *Client) ChainID(ctx context.Context) (string, error) {
	c.mu.Lock()
	id := c.chainID
	c.mu.Unlock()
	if id != "" {
		return id, nil
	}
	// Not under the lock: a slow node must not stall callers that already
	// hold the id. Concurrent first callers may both ask; they get the same answer.
	st, err := c.rpc.status(ctx)
	if err != nil {
		return "", fmt.Errorf("node status: %w", err)
	}
	if st.NodeInfo.Network == "" {
		return "", errors.New("node status names no chain id")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.chainID == "" {
		c.chainID = st.NodeInfo.Network
	}
	return c.chainID, nil
}

// Height is the node's latest committed height.
func (c *Client) Height(ctx context.Context) (int64, error) {
	st, err := c.rpc.status(ctx)
	if err != nil {
		return 0, fmt.Errorf("node status: %w", err)
	}
	return st.SyncInfo.LatestBlockHeight, nil
}

// WaitForHeight blocks until the chain has committed height h, or ctx ends.
func (c *Client) WaitForHeight(ctx context.Context, h int64) error {
	var got int64
	var last error
	err := poll.Until(ctx, 100*time.Millisecond, func() bool {
		got, last = c.Height(ctx)
		return last == nil && got >= h
	})
	if err != nil {
		return fmt.Errorf("wait for height %d (at %d, last error: %v): %w", h, got, last, err)
	}
	return nil
}

// TxError is a transaction the chain refused (CheckTx) or failed (execution).
type TxError struct {
	Hash      []byte
	Code      uint32
	Codespace string
	Log       string
}

func (e *TxError) Error() string {
	return fmt.Sprintf("transaction %X failed with code %d (%s): %s", e.Hash, e.Code, e.Codespace, e.Log)
}

// Broadcast submits a signed transaction and waits for CheckTx.
func (c *Client) Broadcast(ctx context.Context, raw []byte) ([]byte, error) {
	res, err := c.rpc.broadcastTxSync(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("broadcast: %w", err)
	}
	if res.Code != tx.CodeOK {
		return res.Hash, &TxError{Hash: res.Hash, Code: res.Code, Codespace: res.Codespace, Log: res.Log}
	}
	return res.Hash, nil
}

// WaitTx polls until the transaction is in a block and returns its result;
// a failed execution is returned as *TxError.
func (c *Client) WaitTx(ctx context.Context, hash []byte) (*ResultTx, error) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		res, err := c.rpc.tx(ctx, hash)
		if err == nil {
			if res.TxResult.Code != tx.CodeOK {
				return res, &TxError{Hash: hash, Code: res.TxResult.Code, Codespace: res.TxResult.Codespace, Log: res.TxResult.Log}
			}
			return res, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for tx %X: %w (last error: %v)", hash, ctx.Err(), err)
		case <-t.C:
		}
	}
}

// Tx fetches a committed transaction by hash.
func (c *Client) Tx(ctx context.Context, hash []byte) (*ResultTx, error) {
	res, err := c.rpc.tx(ctx, hash)
	if err != nil {
		return nil, fmt.Errorf("tx %X: %w", hash, err)
	}
	return res, nil
}

// Block fetches a block; height 0 means the latest.
func (c *Client) Block(ctx context.Context, height int64) (*ResultBlock, error) {
	res, err := c.rpc.block(ctx, height)
	if err != nil {
		return nil, fmt.Errorf("block %d: %w", height, err)
	}
	return res, nil
}

// BlockResults fetches the execution results of a block's transactions;
// height 0 means the latest.
func (c *Client) BlockResults(ctx context.Context, height int64) (*ResultBlockResults, error) {
	res, err := c.rpc.blockResults(ctx, height)
	if err != nil {
		return nil, fmt.Errorf("block results %d: %w", height, err)
	}
	return res, nil
}

// TxSearch runs a CometBFT tx_search (e.g. "tx.signer='agora1…'" or
// "transfer.recipient='agora1…'") and returns one page of at most perPage
// (1..100) transactions; page counts from 1.
func (c *Client) TxSearch(ctx context.Context, query string, page, perPage int, newestFirst bool) (*ResultTxSearch, error) {
	res, err := c.rpc.txSearch(ctx, query, page, perPage, newestFirst)
	if err != nil {
		return nil, fmt.Errorf("tx search %q: %w", query, err)
	}
	return res, nil
}

// Blockchain returns the headers of blocks minHeight..maxHeight (at most 20
// per call, CometBFT's limit), newest first, and the latest height.
func (c *Client) Blockchain(ctx context.Context, minHeight, maxHeight int64) (*ResultBlockchainInfo, error) {
	res, err := c.rpc.blockchain(ctx, minHeight, maxHeight)
	if err != nil {
		return nil, fmt.Errorf("blocks %d..%d: %w", minHeight, maxHeight, err)
	}
	return res, nil
}

// SendOptions tune SignAndSend.
type SendOptions struct {
	Fee   uint64 // 0: the chain's flat fee for the messages
	Memo  string
	Nonce *uint64 // nil: the account's pending nonce from the node
}

// SignAndSend builds, signs and broadcasts a transaction of msgs from priv.
func (c *Client) SignAndSend(ctx context.Context, priv ed25519.PrivateKey, msgs []*tx.Msg, o SendOptions) ([]byte, error) {
	chainID, err := c.ChainID(ctx)
	if err != nil {
		return nil, err
	}
	sender := address.FromPubKey(priv.Public().(ed25519.PublicKey))
	var nonce uint64
	if o.Nonce != nil {
		nonce = *o.Nonce
	} else if nonce, err = c.PendingNonce(ctx, sender); err != nil {
		return nil, err
	}
	fee := o.Fee
	if fee == 0 {
		p, err := c.Params(ctx, false)
		if err != nil {
			return nil, err
		}
		fee = tx.RequiredFee(p, msgs)
	}
	raw, err := tx.Sign(priv, &tx.TxBody{ChainId: chainID, Nonce: nonce, Fee: fee, Msgs: msgs, Memo: o.Memo})
	if err != nil {
		return nil, err
	}
	return c.Broadcast(ctx, raw)
}

// SendAndWait signs and broadcasts msgs, then waits for the block that
// includes them; it returns the height, or a *TxError if the chain refused.
func (c *Client) SendAndWait(ctx context.Context, priv ed25519.PrivateKey, msgs []*tx.Msg, o SendOptions) (int64, error) {
	hash, err := c.SignAndSend(ctx, priv, msgs, o)
	if err != nil {
		return 0, err
	}
	res, err := c.WaitTx(ctx, hash)
	if err != nil {
		return 0, err
	}
	return res.Height, nil
}

// PendingNonce is the next nonce the node's mempool expects from addr.
func (c *Client) PendingNonce(ctx context.Context, addr address.Address) (uint64, error) {
	res, err := c.rpc.abciQuery(ctx, tx.QueryNonce+addr.String(), nil, 0, false)
	if err != nil {
		return 0, fmt.Errorf("query nonce of %s: %w", addr, err)
	}
	if res.Response.Code != tx.CodeOK {
		return 0, fmt.Errorf("query nonce of %s: %s", addr, res.Response.Log)
	}
	var acc tx.Account
	if err := proto.Unmarshal(res.Response.Value, &acc); err != nil {
		return 0, fmt.Errorf("decode nonce of %s: %w", addr, err)
	}
	return acc.Nonce, nil
}

// ErrNoHeader is returned when the header that commits a queried state is not available yet.
var ErrNoHeader = errors.New("header for the queried height is not available")
