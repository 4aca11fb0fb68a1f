// Package chain is Agora's ABCI application: a deterministic state machine
// over an IAVL store, built from chain/bank, chain/channel, chain/subnet and
// chain/emission over chain/state.
//
// Only a node links it. What clients share with it (transaction and state
// types, result codes, query paths, state keys, fees) lives in chain/tx and
// the proof check in chain/proof, so no SDK build needs this package. It
// imports no network or service code (client, gateway, miner, validator,
// node), and nothing outside chain/ may need it except node and genesis tooling.
package chain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/royalty"
	"github.com/agoranet/agora/chain/state"
	"github.com/agoranet/agora/chain/subnet"
	"github.com/agoranet/agora/chain/tx"
)

// AppVersion is reported to CometBFT in Info and block headers.
const AppVersion uint64 = 1

// keyChainID is the state key of the chain id the genesis was built for;
// only the app reads it, so it is not in the public key layout (chain/tx).
var keyChainID = []byte{0x04}

// App is the Agora ABCI application.
//
// CometBFT's local client serializes all ABCI calls behind one mutex, so App
// needs no locking of its own.
type App struct {
	abci.BaseApplication

	store   *state.Store
	chainID string
	params  *tx.Params // read-only after genesis
	height  uint64     // the block being finalized (CheckTx: the next one)
	log     *slog.Logger

	// check is CheckTx's pending view: the last committed state plus every tx
	// accepted into the mempool since, so one sender can queue many txs.
	check *state.Cache
	// verified remembers signatures CheckTx already verified. A hit only
	// skips recomputing a pure function, so it cannot change any outcome.
	verified map[[32]byte]struct{}

	snap snapshots // state-sync serving and restoring (snapshot_abci.go)

	// obs, when set, is told what blocks did (metrics.go); blockStart is the
	// wall time FinalizeBlock began, observed only, never part of state.
	obs        Observer
	blockStart time.Time
}

const maxVerifiedCache = 200_000

// NewApp opens the application over store.
func NewApp(store *state.Store, logger *slog.Logger) (*App, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := &App{store: store, log: logger, verified: make(map[[32]byte]struct{})}
	if err := a.loadCommitted(); err != nil {
		return nil, err
	}
	return a, nil
}

// loadCommitted reads params and chain id from the committed state, at start
// and after a state-sync restore.
func (a *App) loadCommitted() error {
	if a.store.Version() > 0 {
		p, err := loadParams(a.store.Committed())
		if err != nil {
			return err
		}
		a.params = p
		id, err := a.store.Committed().Get(keyChainID)
		if err != nil {
			return fmt.Errorf("read chain id: %w", err)
		}
		a.chainID = string(id)
	}
	a.resetCheckState()
	return nil
}

func (a *App) resetCheckState() { a.check = state.NewCache(a.store.Committed()) }

// Info tells CometBFT where the app is, so it can replay missing blocks.
func (a *App) Info(_ context.Context, _ *abci.RequestInfo) (*abci.ResponseInfo, error) {
	return &abci.ResponseInfo{
		Data:             "agora",
		Version:          "1",
		AppVersion:       AppVersion,
		LastBlockHeight:  a.store.Version(),
		LastBlockAppHash: a.store.Hash(),
	}, nil
}

// InitChain writes the genesis state.
func (a *App) InitChain(_ context.Context, req *abci.RequestInitChain) (*abci.ResponseInitChain, error) {
	g, err := ParseGenesis(req.AppStateBytes)
	if err != nil {
		// A bad genesis must stop the node: there is no valid chain to run.
		return nil, err
	}
	// The gentx signatures commit to the chain id CometBFT runs, so an
	// entry signed for another network is refused here.
	if err := g.ValidateFor(req.ChainId); err != nil {
		return nil, fmt.Errorf("invalid app genesis: %w", err)
	}
	if req.InitialHeight > 1 {
		a.store.SetInitialVersion(uint64(req.InitialHeight))
	}
	a.chainID = req.ChainId
	a.params = g.Params.proto()
	blk := a.store.NewBlock()
	set, err := initGenesis(blk, req.ChainId, g, a.params)
	if err != nil {
		return nil, fmt.Errorf("init genesis: %w", err)
	}
	if err := blk.Flush(); err != nil {
		return nil, fmt.Errorf("write genesis: %w", err)
	}
	// Nothing is committed until block 1, so the pending view starts from
	// the genesis writes themselves.
	a.check = state.NewCache(a.store)
	a.log.Info("genesis initialized", "chain_id", req.ChainId, "accounts", len(g.Accounts), "chain_validators", len(set))
	// CometBFT takes the first set from here; the genesis document lists none.
	return &abci.ResponseInitChain{AppHash: a.store.WorkingHash(), Validators: set}, nil
}

// CheckTx admits a transaction to the mempool if it would execute now.
func (a *App) CheckTx(_ context.Context, req *abci.RequestCheckTx) (*abci.ResponseCheckTx, error) {
	d, err := tx.Decode(req.Tx)
	if err != nil {
		return checkErr(tx.CodeMalformed, err), nil
	}
	a.height = uint64(a.store.Version()) + 1
	if _, res := a.ante(a.check, d); res.code != tx.CodeOK {
		return checkErr(res.code, res.err), nil
	}
	if req.Type == abci.CheckTxType_New {
		if err := d.Verify(); err != nil {
			return checkErr(tx.CodeBadSignature, err), nil
		}
		if len(a.verified) >= maxVerifiedCache {
			clear(a.verified)
		}
		a.verified[d.Hash] = struct{}{}
	}
	txc := state.NewCache(a.check)
	res := a.execTx(txc, d)
	if res.code != tx.CodeOK {
		return checkErr(res.code, res.err), nil
	}
	if err := txc.WriteTo(a.check); err != nil {
		return checkErr(tx.CodeInternal, err), nil
	}
	return &abci.ResponseCheckTx{Code: tx.CodeOK, GasWanted: 1}, nil
}

func checkErr(code uint32, err error) *abci.ResponseCheckTx {
	return &abci.ResponseCheckTx{Code: code, Codespace: tx.Codespace, Log: err.Error()}
}

// PrepareProposal drops transactions that cannot even be decoded.
func (a *App) PrepareProposal(_ context.Context, req *abci.RequestPrepareProposal) (*abci.ResponsePrepareProposal, error) {
	txs := make([][]byte, 0, len(req.Txs))
	var size int64
	for _, raw := range req.Txs {
		if _, err := tx.Decode(raw); err != nil {
			continue
		}
		size += int64(len(raw))
		if size > req.MaxTxBytes {
			break
		}
		txs = append(txs, raw)
	}
	return &abci.ResponsePrepareProposal{Txs: txs}, nil
}

// ProcessProposal rejects blocks carrying undecodable transactions: an honest
// proposer never includes them. Valid-but-failing transactions are fine and
// are charged their fee when executed.
func (a *App) ProcessProposal(_ context.Context, req *abci.RequestProcessProposal) (*abci.ResponseProcessProposal, error) {
	for _, raw := range req.Txs {
		if _, err := tx.Decode(raw); err != nil {
			return &abci.ResponseProcessProposal{Status: abci.ResponseProcessProposal_REJECT}, nil
		}
	}
	return &abci.ResponseProcessProposal{Status: abci.ResponseProcessProposal_ACCEPT}, nil
}

// FinalizeBlock executes the block's transactions, then mints the block's emission.
func (a *App) FinalizeBlock(_ context.Context, req *abci.RequestFinalizeBlock) (*abci.ResponseFinalizeBlock, error) {
	if a.params == nil {
		return nil, errors.New("finalize block before genesis")
	}
	if a.obs != nil {
		a.blockStart = time.Now()
	}
	blk := a.store.NewBlock()
	a.height = uint64(req.Height)
	results := make([]*abci.ExecTxResult, len(req.Txs))
	var burned uint64
	for i, raw := range req.Txs {
		r, msg := a.deliverTx(blk, raw)
		if a.obs != nil {
			a.obs.TxResult(msg, r.code)
		}
		if errors.Is(r.err, bank.ErrInvariant) {
			// Corrupt state, not a bad transaction: stop here rather than
			// commit a wrapped balance that every later block builds on.
			a.log.Error("state invariant violated; halting", "height", req.Height, "tx", i, "err", r.err)
			return nil, fmt.Errorf("block %d tx %d: %w", req.Height, i, r.err)
		}
		var err error
		if burned, err = bank.Grow("block fees", burned, r.feeCharged); err != nil {
			return nil, fmt.Errorf("block %d: %w: %v", req.Height, bank.ErrInvariant, err)
		}
		results[i] = r.abci()
	}
	var endStart time.Time
	if a.obs != nil {
		endStart = time.Now()
	}
	events, updates, err := endBlock(&subnet.Ctx{KV: blk, Height: a.height, ChainID: a.chainID, Params: a.params, Royalty: royalty.Payer{}}, burned, req.Misbehavior, req.DecidedLastCommit.Votes)
	if a.obs != nil && err == nil {
		a.observeEndBlock(endStart, events)
	}
	if err != nil {
		a.log.Error("end block failed; halting", "height", req.Height, "err", err)
		return nil, fmt.Errorf("end block %d: %w", req.Height, err)
	}
	if err := blk.Flush(); err != nil {
		return nil, fmt.Errorf("write block %d: %w", req.Height, err)
	}
	return &abci.ResponseFinalizeBlock{
		TxResults:        results,
		Events:           events,
		ValidatorUpdates: updates,
		AppHash:          a.store.WorkingHash(),
	}, nil
}

// deliverTx executes raw; msg is its first message's type, for metrics.
func (a *App) deliverTx(blk *state.Block, raw []byte) (_ txResult, msg string) {
	d, err := tx.Decode(raw)
	if err != nil {
		return txResult{code: tx.CodeMalformed, err: err}, TxMsgNone
	}
	if a.obs != nil {
		msg = msgTypeName(d.Body.GetMsgs())
	}
	if _, ok := a.verified[d.Hash]; ok {
		delete(a.verified, d.Hash)
	} else if err := d.Verify(); err != nil {
		return txResult{code: tx.CodeBadSignature, err: err}, msg
	}
	txc := state.NewCache(blk)
	res := a.execTx(txc, d)
	if res.feeCharged > 0 || res.code == tx.CodeOK {
		if err := txc.WriteTo(blk); err != nil {
			return txResult{code: tx.CodeInternal, err: err}, msg
		}
	}
	return res, msg
}

// Commit makes the finalized block durable.
func (a *App) Commit(_ context.Context, _ *abci.RequestCommit) (*abci.ResponseCommit, error) {
	_, version, err := a.store.Commit()
	if err != nil {
		return nil, err
	}
	a.snap.afterCommit(a.store, version)
	a.observeCommit()
	// CometBFT rechecks the remaining mempool after Commit, rebuilding the
	// pending view on top of the new state.
	a.resetCheckState()
	return &abci.ResponseCommit{}, nil
}
