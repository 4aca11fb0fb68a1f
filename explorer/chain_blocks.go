package explorer

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/agoranet/agora/client"
)

// blocksPerPage is CometBFT's limit for one blockchain call.
const blocksPerPage = 20

// blocksData is GET /blocks: a page of headers, newest first.
type blocksData struct {
	Height int64          `json:"height"` // the chain's latest
	Blocks []blockSummary `json:"blocks"`
	// NewerBefore and OlderBefore are the ?before= of the neighbouring
	// pages (0: none).
	NewerBefore int64 `json:"newer_before,omitempty"`
	OlderBefore int64 `json:"older_before,omitempty"`
}

// NewerURL links the page of newer blocks ("" on the first page).
func (b *blocksData) NewerURL() string {
	switch {
	case b.NewerBefore == 0:
		return ""
	case b.NewerBefore > b.Height:
		return "/blocks"
	}
	return fmt.Sprintf("/blocks?before=%d", b.NewerBefore)
}

// OlderURL links the page of older blocks ("" on the last page).
func (b *blocksData) OlderURL() string {
	if b.OlderBefore == 0 {
		return ""
	}
	return fmt.Sprintf("/blocks?before=%d", b.OlderBefore)
}

func (e *Explorer) loadBlocks(r *http.Request) (any, error) {
	ctx, c := r.Context(), e.cfg.Chain
	tip, err := c.Height(ctx)
	if err != nil {
		return nil, err
	}
	top := tip
	if s := r.URL.Query().Get("before"); s != "" {
		before, err := strconv.ParseInt(s, 10, 64)
		if err != nil || before < 2 {
			return nil, BadRequestf("?before=%q: give a block height of 2 or more; the page lists the blocks below it", s)
		}
		top = min(before-1, tip)
	}
	bottom := max(1, top-blocksPerPage+1)
	var (
		res  *client.ResultBlockchainInfo
		vals proposers
	)
	err = chainParallel(
		func() (err error) { res, err = c.Blockchain(ctx, bottom, top); return },
		func() error {
			l, err := c.ChainValidators(ctx, false)
			vals = proposerNames(l)
			return err
		},
	)
	if err != nil {
		return nil, notAvailable(err)
	}
	d := &blocksData{Height: max(tip, res.LastHeight), Blocks: []blockSummary{}}
	for _, m := range res.BlockMetas {
		d.Blocks = append(d.Blocks, summarize(m, vals))
	}
	if top < d.Height {
		d.NewerBefore = min(top+blocksPerPage+1, d.Height+1)
	}
	if bottom > 1 {
		d.OlderBefore = bottom
	}
	return d, nil
}

// blockView is GET /blocks/{height}.
type blockView struct {
	Height   int64     `json:"height"`
	Time     time.Time `json:"time"`
	Hash     string    `json:"hash"`
	AppHash  string    `json:"app_hash"` // the state after the previous block
	Proposer proposer  `json:"proposer"`
	NumTxs   int       `json:"num_txs"`
	Txs      []txView  `json:"txs"`
	// Events are the block's own (end of block): emission, subnet epochs,
	// chain validator changes.
	Events []txEvent `json:"events"`
	Tip    int64     `json:"chain_height"`
}

// Prev and Next are the neighbouring heights (0: none).
func (b *blockView) Prev() int64 {
	if b.Height > 1 {
		return b.Height - 1
	}
	return 0
}

func (b *blockView) Next() int64 {
	if b.Height < b.Tip {
		return b.Height + 1
	}
	return 0
}

func (e *Explorer) loadBlock(r *http.Request) (any, error) {
	height, err := parseHeight(r.PathValue("height"))
	if err != nil {
		return nil, err
	}
	ctx, c := r.Context(), e.cfg.Chain
	tip, err := c.Height(ctx)
	if err != nil {
		return nil, err
	}
	if height > tip {
		return nil, fmt.Errorf("block %d is not committed yet: the chain is at height %d: %w", height, tip, ErrNotFound)
	}
	var (
		blk     *client.ResultBlock
		results *client.ResultBlockResults
		vals    proposers
	)
	err = chainParallel(
		func() (err error) { blk, err = c.Block(ctx, height); return },
		func() (err error) { results, err = c.BlockResults(ctx, height); return },
		func() error {
			l, err := c.ChainValidators(ctx, false)
			vals = proposerNames(l)
			return err
		},
	)
	if err != nil {
		return nil, notAvailable(err)
	}
	b := blk.Block
	v := &blockView{
		Height: b.Height, Time: b.Time, Hash: blk.BlockID.Hash.String(), AppHash: b.AppHash.String(),
		Proposer: vals.lookup(b.ProposerAddress), NumTxs: len(b.Txs), Tip: tip,
		Txs: make([]txView, 0, len(b.Txs)), Events: renderEvents(results.FinalizeBlockEvents),
	}
	for i, raw := range b.Txs {
		var out txOutcome
		if i < len(results.TxsResults) {
			r := results.TxsResults[i]
			out = txOutcome{Code: r.Code, Log: r.Log, Events: r.Events}
		}
		v.Txs = append(v.Txs, decodeTx(raw, b.Height, uint32(i), out))
	}
	return v, nil
}

// txPage is GET /txs/{hash}.
type txPage struct {
	txView
	Time time.Time `json:"time"`
}

func (e *Explorer) loadTx(r *http.Request) (any, error) {
	hash, err := parseTxHash(r.PathValue("hash"))
	if err != nil {
		return nil, err
	}
	ctx, c := r.Context(), e.cfg.Chain
	res, err := c.Tx(ctx, hash)
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("no transaction %X on this chain (it may still be in the mempool, or the node does not index transactions): %w", hash, ErrNotFound)
		}
		return nil, err
	}
	p := &txPage{txView: decodeTx(res.Tx, res.Height, res.Index, txOutcome{
		Code: res.TxResult.Code, Log: res.TxResult.Log, Events: res.TxResult.Events,
	})}
	// The block's time, from its header: one cheap call.
	if hdr, err := c.Blockchain(ctx, res.Height, res.Height); err == nil && len(hdr.BlockMetas) == 1 {
		p.Time = hdr.BlockMetas[0].Header.Time
	}
	return p, nil
}

// parseHeight reads a block height from a path.
func parseHeight(s string) (int64, error) {
	h, err := strconv.ParseInt(s, 10, 64)
	if err != nil || h < 1 {
		return 0, BadRequestf("%q is not a block height: give a whole number of 1 or more, like /blocks/42", s)
	}
	return h, nil
}

// parseTxHash reads a transaction hash: 64 hex digits, either case.
func parseTxHash(s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return nil, BadRequestf("%q is not a transaction hash: give its 64 hexadecimal digits, as the tx page and the CLI print them", s)
	}
	return b, nil
}

// isNotFound recognizes CometBFT's "tx (…) not found" and friends: the RPC
// answers those as errors with text only.
func isNotFound(err error) bool {
	return err != nil && strings.Contains(err.Error(), "not found")
}

// notAvailable turns a pruned height ("height 3 is not available, lowest
// height is 90") into a 404 rather than a node failure.
func notAvailable(err error) error {
	if err != nil && strings.Contains(err.Error(), "is not available") {
		return fmt.Errorf("%v: this node has pruned that block: %w", err, ErrNotFound)
	}
	return err
}
