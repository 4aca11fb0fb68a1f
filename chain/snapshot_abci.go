package chain

import (
	"context"
	"errors"
	"fmt"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/agoranet/agora/chain/snapshot"
	"github.com/agoranet/agora/chain/state"
)

// Strikes against a sender before it is rejected, and bad chunks in one
// restore before the snapshot itself is given up on: a hash mismatch may be
// a broken transfer once, but a peer that keeps sending wrong bytes is lying,
// and a snapshot whose chunks nobody can match has lying metadata.
const (
	maxSenderStrikes = 2
	maxBadChunks     = 16
)

// snapshots is the App's state-sync side. Serving reads the snapshot store;
// restoring runs inside the ABCI calls CometBFT serializes.
type snapshots struct {
	store *snapshot.Store

	restore *snapshot.Restorer
	strikes map[string]int
	bad     int
}

// SetSnapshots gives the app a snapshot store to make snapshots into after
// commits and serve to joining nodes. Call before the node starts.
func (a *App) SetSnapshots(s *snapshot.Store) { a.snap.store = s }

func (s *snapshots) afterCommit(st *state.Store, version int64) {
	if s.store != nil {
		s.store.AfterCommit(st, version)
	}
}

// ListSnapshots offers the kept snapshots to a joining peer.
func (a *App) ListSnapshots(_ context.Context, _ *abci.RequestListSnapshots) (*abci.ResponseListSnapshots, error) {
	if a.snap.store == nil {
		return &abci.ResponseListSnapshots{}, nil
	}
	list, err := a.snap.store.List()
	if err != nil {
		// A broken local snapshot dir must not stop the chain; serve none.
		a.log.Error("list snapshots", "err", err)
		return &abci.ResponseListSnapshots{}, nil
	}
	out := make([]*abci.Snapshot, 0, len(list))
	for _, in := range list {
		out = append(out, &abci.Snapshot{Height: uint64(in.Height), Format: in.Format, Chunks: in.Chunks, Hash: in.Hash, Metadata: in.Metadata})
	}
	return &abci.ResponseListSnapshots{Snapshots: out}, nil
}

// LoadSnapshotChunk serves one chunk; an unknown one is an empty response,
// which CometBFT reports to the peer as missing.
func (a *App) LoadSnapshotChunk(_ context.Context, req *abci.RequestLoadSnapshotChunk) (*abci.ResponseLoadSnapshotChunk, error) {
	if a.snap.store == nil || req.Height > snapshot.MaxHeight {
		return &abci.ResponseLoadSnapshotChunk{}, nil
	}
	b, err := a.snap.store.LoadChunk(int64(req.Height), req.Format, req.Chunk)
	if err != nil {
		if !errors.Is(err, snapshot.ErrNotFound) {
			a.log.Error("load snapshot chunk", "height", req.Height, "chunk", req.Chunk, "err", err)
		}
		return &abci.ResponseLoadSnapshotChunk{}, nil
	}
	return &abci.ResponseLoadSnapshotChunk{Chunk: b}, nil
}

// OfferSnapshot starts restoring a peer's snapshot into the empty store.
// req.AppHash is the app hash CometBFT's light client verified for the
// snapshot's height; the restore must end at exactly that root.
func (a *App) OfferSnapshot(_ context.Context, req *abci.RequestOfferSnapshot) (*abci.ResponseOfferSnapshot, error) {
	reply := func(r abci.ResponseOfferSnapshot_Result) (*abci.ResponseOfferSnapshot, error) {
		return &abci.ResponseOfferSnapshot{Result: r}, nil
	}
	if req.Snapshot == nil {
		return reply(abci.ResponseOfferSnapshot_REJECT)
	}
	if err := a.abortRestore(); err != nil {
		return nil, err
	}
	if a.store.Version() != 0 {
		a.log.Error("snapshot offered to a node that already has state", "version", a.store.Version())
		return reply(abci.ResponseOfferSnapshot_ABORT)
	}
	sn := req.Snapshot
	if sn.Height > snapshot.MaxHeight {
		return reply(abci.ResponseOfferSnapshot_REJECT)
	}
	in := snapshot.Info{Height: int64(sn.Height), Format: sn.Format, Chunks: sn.Chunks, Hash: sn.Hash, Metadata: sn.Metadata}
	r, err := snapshot.NewRestorer(a.store, in, req.AppHash)
	switch {
	case errors.Is(err, snapshot.ErrFormat):
		return reply(abci.ResponseOfferSnapshot_REJECT_FORMAT)
	case errors.Is(err, snapshot.ErrBadMetadata):
		a.log.Warn("snapshot refused", "height", sn.Height, "err", err)
		return reply(abci.ResponseOfferSnapshot_REJECT)
	case err != nil:
		return nil, fmt.Errorf("start restore at %d: %w", sn.Height, err)
	}
	a.snap.restore, a.snap.strikes, a.snap.bad = r, map[string]int{}, 0
	a.log.Info("restoring snapshot", "height", sn.Height, "chunks", sn.Chunks)
	return reply(abci.ResponseOfferSnapshot_ACCEPT)
}

func (a *App) abortRestore() error {
	if a.snap.restore == nil {
		return nil
	}
	r := a.snap.restore
	a.snap.restore = nil
	if err := r.Abort(); err != nil {
		return fmt.Errorf("abort restore: %w", err)
	}
	return nil
}

// ApplySnapshotChunk imports one chunk. Bad peer data never becomes a Go
// error (that would halt the node): it becomes a result code, and only a
// failing local store stops the node.
func (a *App) ApplySnapshotChunk(_ context.Context, req *abci.RequestApplySnapshotChunk) (*abci.ResponseApplySnapshotChunk, error) {
	res := func(r abci.ResponseApplySnapshotChunk_Result) *abci.ResponseApplySnapshotChunk {
		return &abci.ResponseApplySnapshotChunk{Result: r}
	}
	r := a.snap.restore
	if r == nil {
		return res(abci.ResponseApplySnapshotChunk_REJECT_SNAPSHOT), nil
	}
	done, err := r.Apply(req.Index, req.Chunk)
	switch {
	case err == nil && !done:
		return res(abci.ResponseApplySnapshotChunk_ACCEPT), nil
	case err == nil:
		a.snap.restore = nil
		if err := a.loadCommitted(); err != nil {
			return nil, fmt.Errorf("load restored state: %w", err)
		}
		a.log.Info("snapshot restored", "height", a.store.Version(), "chain_id", a.chainID)
		return res(abci.ResponseApplySnapshotChunk_ACCEPT), nil
	case errors.Is(err, snapshot.ErrChunkHash):
		a.snap.bad++
		a.snap.strikes[req.Sender]++
		a.log.Warn("snapshot chunk refused", "index", req.Index, "sender", req.Sender, "err", err)
		if a.snap.bad > maxBadChunks {
			if aerr := a.abortRestore(); aerr != nil {
				return nil, aerr
			}
			return res(abci.ResponseApplySnapshotChunk_REJECT_SNAPSHOT), nil
		}
		out := res(abci.ResponseApplySnapshotChunk_RETRY)
		out.RefetchChunks = []uint32{req.Index}
		if a.snap.strikes[req.Sender] >= maxSenderStrikes && req.Sender != "" {
			out.RejectSenders = []string{req.Sender}
		}
		return out, nil
	case errors.Is(err, snapshot.ErrBadChunk), errors.Is(err, snapshot.ErrAppHash):
		// The chunk matched the metadata, so the snapshot itself is bad;
		// the restorer already emptied the store for the next one.
		a.snap.restore = nil
		a.log.Warn("snapshot rejected", "height", r.Info().Height, "sender", req.Sender, "err", err)
		out := res(abci.ResponseApplySnapshotChunk_REJECT_SNAPSHOT)
		if req.Sender != "" {
			out.RejectSenders = []string{req.Sender}
		}
		return out, nil
	default:
		a.snap.restore = nil
		return nil, fmt.Errorf("apply snapshot chunk %d: %w", req.Index, err)
	}
}
