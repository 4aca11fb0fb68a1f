package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/libs/bytes"
	jsonrpc "github.com/cometbft/cometbft/rpc/jsonrpc/client"
	rpctypes "github.com/cometbft/cometbft/rpc/jsonrpc/types"
	cmttypes "github.com/cometbft/cometbft/types"
)

// The node's JSON-RPC answers the SDK reads. They mirror CometBFT's result
// types field for field (same JSON names), but only the fields used here:
// CometBFT's own result package imports its p2p stack, and with it the
// node's database (goleveldb), which no SDK build should carry.

// ResultTx is a committed transaction and its execution result.
type ResultTx struct {
	Hash     bytes.HexBytes    `json:"hash"`
	Height   int64             `json:"height"`
	Index    uint32            `json:"index"`
	TxResult abci.ExecTxResult `json:"tx_result"`
	Tx       cmttypes.Tx       `json:"tx"`
}

// ResultBlock is a block and its id.
type ResultBlock struct {
	BlockID cmttypes.BlockID `json:"block_id"`
	Block   *cmttypes.Block  `json:"block"`
}

// ResultBlockResults are the execution results of one block: its
// transactions' and the block's own events (emission, epochs, slashing).
type ResultBlockResults struct {
	Height              int64                `json:"height"`
	TxsResults          []*abci.ExecTxResult `json:"txs_results"`
	FinalizeBlockEvents []abci.Event         `json:"finalize_block_events"`
}

// ResultTxSearch is one page of a tx_search.
type ResultTxSearch struct {
	Txs        []*ResultTx `json:"txs"`
	TotalCount int         `json:"total_count,string"`
}

// ResultBlockchainInfo lists block headers, newest first.
type ResultBlockchainInfo struct {
	LastHeight int64                 `json:"last_height,string"`
	BlockMetas []*cmttypes.BlockMeta `json:"block_metas"`
}

type resultStatus struct {
	NodeInfo struct {
		Network string `json:"network"`
	} `json:"node_info"`
	SyncInfo struct {
		LatestBlockHeight int64 `json:"latest_block_height"`
	} `json:"sync_info"`
}

type resultBroadcastTx struct {
	Code      uint32         `json:"code"`
	Log       string         `json:"log"`
	Codespace string         `json:"codespace"`
	Hash      bytes.HexBytes `json:"hash"`
}

type resultABCIQuery struct {
	Response abci.ResponseQuery `json:"response"`
}

type resultCommit struct {
	cmttypes.SignedHeader `json:"signed_header"`
	CanonicalCommit       bool `json:"canonical"`
}

type resultValidators struct {
	Validators []*cmttypes.Validator `json:"validators"`
	Total      int                   `json:"total"`
}

// rpc calls the node's JSON-RPC methods with the parameters CometBFT's
// RPC server expects, on the first endpoint that answers.
type rpc struct{ eps *endpoints }

// call runs one method and decodes its result into a new T. A transport
// failure (refused connection, timeout, a 5xx that is not JSON-RPC) moves on
// to the next endpoint; an answer from a node, even an error answer, is
// final: another node would say the same.
func call[T any](ctx context.Context, r rpc, method string, params map[string]any) (*T, error) {
	var failures []error
	for _, ep := range r.eps.order() {
		res := new(T)
		_, err := ep.c.Call(ctx, method, params, res)
		if err == nil {
			ep.ok()
			return res, nil
		}
		var rpcErr *rpctypes.RPCError
		if errors.As(err, &rpcErr) || ctx.Err() != nil {
			return nil, err
		}
		ep.failed()
		failures = append(failures, fmt.Errorf("%s: %w", ep.url, err))
	}
	if len(failures) == 1 {
		return nil, failures[0]
	}
	return nil, fmt.Errorf("%w: %w", ErrNoEndpoint, errors.Join(failures...))
}

// ErrNoEndpoint is returned when no node endpoint could be reached.
var ErrNoEndpoint = errors.New("every node endpoint failed")

// failoverCooldown is how long an endpoint that failed is tried only after
// the healthy ones.
const failoverCooldown = 10 * time.Second

type endpoint struct {
	url      string
	c        *jsonrpc.Client
	failedAt atomic.Int64 // unix nanoseconds of the last transport failure; 0 healthy
}

func (e *endpoint) ok()     { e.failedAt.Store(0) }
func (e *endpoint) failed() { e.failedAt.Store(time.Now().UnixNano()) }

// endpoints are the node URLs a client was given, in the caller's order of
// preference.
type endpoints struct{ list []*endpoint }

// order is the list with endpoints that failed within the cool-down moved
// to the back (oldest failure first), so a dead node costs one timeout per
// cool-down, not one per call.
func (es *endpoints) order() []*endpoint {
	if len(es.list) == 1 {
		return es.list
	}
	cutoff := time.Now().Add(-failoverCooldown).UnixNano()
	healthy := make([]*endpoint, 0, len(es.list))
	var cooling []*endpoint
	for _, e := range es.list {
		if f := e.failedAt.Load(); f != 0 && f > cutoff {
			cooling = append(cooling, e)
			continue
		}
		healthy = append(healthy, e)
	}
	slices.SortStableFunc(cooling, func(a, b *endpoint) int { return cmp.Compare(a.failedAt.Load(), b.failedAt.Load()) })
	return append(healthy, cooling...)
}

// heightParam is the optional height most methods take; 0 means the latest.
func heightParam(height int64) map[string]any {
	if height > 0 {
		return map[string]any{"height": height}
	}
	return map[string]any{}
}

func (r rpc) status(ctx context.Context) (*resultStatus, error) {
	return call[resultStatus](ctx, r, "status", map[string]any{})
}

func (r rpc) broadcastTxSync(ctx context.Context, raw []byte) (*resultBroadcastTx, error) {
	return call[resultBroadcastTx](ctx, r, "broadcast_tx_sync", map[string]any{"tx": cmttypes.Tx(raw)})
}

func (r rpc) abciQuery(ctx context.Context, path string, data []byte, height int64, prove bool) (*resultABCIQuery, error) {
	return call[resultABCIQuery](ctx, r, "abci_query",
		map[string]any{"path": path, "data": bytes.HexBytes(data), "height": height, "prove": prove})
}

func (r rpc) tx(ctx context.Context, hash []byte) (*ResultTx, error) {
	return call[ResultTx](ctx, r, "tx", map[string]any{"hash": hash, "prove": false})
}

func (r rpc) block(ctx context.Context, height int64) (*ResultBlock, error) {
	return call[ResultBlock](ctx, r, "block", heightParam(height))
}

func (r rpc) blockResults(ctx context.Context, height int64) (*ResultBlockResults, error) {
	return call[ResultBlockResults](ctx, r, "block_results", heightParam(height))
}

func (r rpc) txSearch(ctx context.Context, query string, page, perPage int, newestFirst bool) (*ResultTxSearch, error) {
	order := "asc"
	if newestFirst {
		order = "desc"
	}
	return call[ResultTxSearch](ctx, r, "tx_search",
		map[string]any{"query": query, "prove": false, "page": page, "per_page": perPage, "order_by": order})
}

func (r rpc) blockchain(ctx context.Context, minHeight, maxHeight int64) (*ResultBlockchainInfo, error) {
	return call[ResultBlockchainInfo](ctx, r, "blockchain", map[string]any{"minHeight": minHeight, "maxHeight": maxHeight})
}

func (r rpc) commit(ctx context.Context, height int64) (*resultCommit, error) {
	return call[resultCommit](ctx, r, "commit", heightParam(height))
}

func (r rpc) validators(ctx context.Context, height int64, page, perPage int) (*resultValidators, error) {
	params := heightParam(height)
	params["page"], params["per_page"] = page, perPage
	return call[resultValidators](ctx, r, "validators", params)
}
