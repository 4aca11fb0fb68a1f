package chain

import (
	"bytes"
	"context"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/chain/snapshot"
	"github.com/agoranet/agora/chain/state"
)

// servingHarness runs a chain that snapshots every 3 blocks and returns it
// with its newest listed snapshot.
func servingHarness(t *testing.T) (*harness, *abci.Snapshot) {
	t.Helper()
	alice, bob := newKey(1), newKey(2)
	h := newHarness(t, map[address.Address]uint64{alice.addr: 1e12})
	ss, err := snapshot.Open(t.TempDir(), snapshot.Options{Interval: 3, ChunkSize: 512})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ss.Close)
	h.app.SetSnapshots(ss)
	for n := uint64(0); n < 6; n++ {
		h.block(signTransfer(t, alice, bob.addr, 10, n, fee))
		ss.Wait()
	}
	res, err := h.app.ListSnapshots(context.Background(), &abci.RequestListSnapshots{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Snapshots) != 2 || res.Snapshots[0].Height != 6 {
		t.Fatalf("snapshots %+v, want heights 6 and 3", res.Snapshots)
	}
	return h, res.Snapshots[0]
}

func freshApp(t *testing.T) *App {
	t.Helper()
	st, err := state.OpenMem(state.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a, err := NewApp(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func loadChunks(t *testing.T, a *App, sn *abci.Snapshot) [][]byte {
	t.Helper()
	var out [][]byte
	for i := range sn.Chunks {
		r, err := a.LoadSnapshotChunk(context.Background(), &abci.RequestLoadSnapshotChunk{Height: sn.Height, Format: sn.Format, Chunk: i})
		if err != nil || len(r.Chunk) == 0 {
			t.Fatalf("chunk %d: %v", i, err)
		}
		out = append(out, r.Chunk)
	}
	return out
}

func TestStateSyncABCI(t *testing.T) {
	ctx := context.Background()
	src, sn := servingHarness(t)
	chunks := loadChunks(t, src.app, sn)
	if len(chunks) < 2 {
		t.Fatalf("want several chunks, got %d", len(chunks))
	}
	trusted := src.store.Hash() // height 6 is the latest commit

	for _, c := range []uint32{sn.Chunks, 1 << 31} {
		r, err := src.app.LoadSnapshotChunk(ctx, &abci.RequestLoadSnapshotChunk{Height: sn.Height, Format: 1, Chunk: c})
		if err != nil || len(r.Chunk) != 0 {
			t.Fatalf("chunk index %d out of range served %d bytes, err %v", c, len(r.Chunk), err)
		}
	}
	if r, err := src.app.LoadSnapshotChunk(ctx, &abci.RequestLoadSnapshotChunk{Height: 1 << 63, Format: 1}); err != nil || len(r.Chunk) != 0 {
		t.Fatal("absurd height served a chunk")
	}

	offers := []struct {
		name string
		mut  func(*abci.Snapshot) *abci.Snapshot
		hash []byte
		want abci.ResponseOfferSnapshot_Result
	}{
		{"unknown format", func(s *abci.Snapshot) *abci.Snapshot { s.Format = 7; return s }, trusted, abci.ResponseOfferSnapshot_REJECT_FORMAT},
		{"height 0", func(s *abci.Snapshot) *abci.Snapshot { s.Height = 0; return s }, trusted, abci.ResponseOfferSnapshot_REJECT},
		{"absurd height", func(s *abci.Snapshot) *abci.Snapshot { s.Height = 1 << 62; return s }, trusted, abci.ResponseOfferSnapshot_REJECT},
		{"absurd chunk count", func(s *abci.Snapshot) *abci.Snapshot { s.Chunks = 1 << 30; return s }, trusted, abci.ResponseOfferSnapshot_REJECT},
		{"metadata not matching hash", func(s *abci.Snapshot) *abci.Snapshot { s.Metadata = append(s.Metadata, 0); return s }, trusted, abci.ResponseOfferSnapshot_REJECT},
		{"no trusted app hash", func(s *abci.Snapshot) *abci.Snapshot { return s }, nil, abci.ResponseOfferSnapshot_REJECT},
		{"nil snapshot", func(*abci.Snapshot) *abci.Snapshot { return nil }, trusted, abci.ResponseOfferSnapshot_REJECT},
	}
	for _, tc := range offers {
		t.Run(tc.name, func(t *testing.T) {
			cp := *sn
			cp.Metadata = bytes.Clone(sn.Metadata)
			r, err := freshApp(t).OfferSnapshot(ctx, &abci.RequestOfferSnapshot{Snapshot: tc.mut(&cp), AppHash: tc.hash})
			if err != nil || r.Result != tc.want {
				t.Fatalf("got %v (err %v), want %v", r.GetResult(), err, tc.want)
			}
		})
	}

	t.Run("wrong trusted app hash rejects after the last chunk", func(t *testing.T) {
		a := freshApp(t)
		lie := bytes.Clone(trusted)
		lie[0] ^= 1
		if r, _ := a.OfferSnapshot(ctx, &abci.RequestOfferSnapshot{Snapshot: sn, AppHash: lie}); r.Result != abci.ResponseOfferSnapshot_ACCEPT {
			t.Fatalf("offer: %v", r.Result)
		}
		var last *abci.ResponseApplySnapshotChunk
		for i, c := range chunks {
			var err error
			if last, err = a.ApplySnapshotChunk(ctx, &abci.RequestApplySnapshotChunk{Index: uint32(i), Chunk: c, Sender: "peer"}); err != nil {
				t.Fatal(err)
			}
		}
		if last.Result != abci.ResponseApplySnapshotChunk_REJECT_SNAPSHOT || a.store.Version() != 0 {
			t.Fatalf("got %v with store at %d", last.Result, a.store.Version())
		}
		// Apply with nothing offered is refused, not an error.
		if r, err := a.ApplySnapshotChunk(ctx, &abci.RequestApplySnapshotChunk{Index: 0, Chunk: chunks[0]}); err != nil || r.Result != abci.ResponseApplySnapshotChunk_REJECT_SNAPSHOT {
			t.Fatalf("apply without offer: %v %v", r.GetResult(), err)
		}
	})

	t.Run("flipped chunk bytes are refetched, a repeat liar rejected, then restore completes", func(t *testing.T) {
		a := freshApp(t)
		if r, _ := a.OfferSnapshot(ctx, &abci.RequestOfferSnapshot{Snapshot: sn, AppHash: trusted}); r.Result != abci.ResponseOfferSnapshot_ACCEPT {
			t.Fatalf("offer: %v", r.Result)
		}
		bad := bytes.Clone(chunks[0])
		bad[len(bad)-1] ^= 0x55
		r, err := a.ApplySnapshotChunk(ctx, &abci.RequestApplySnapshotChunk{Index: 0, Chunk: bad, Sender: "liar"})
		if err != nil || r.Result != abci.ResponseApplySnapshotChunk_RETRY || len(r.RefetchChunks) != 1 || r.RefetchChunks[0] != 0 || len(r.RejectSenders) != 0 {
			t.Fatalf("first lie: %+v %v", r, err)
		}
		r, err = a.ApplySnapshotChunk(ctx, &abci.RequestApplySnapshotChunk{Index: 0, Chunk: bad, Sender: "liar"})
		if err != nil || r.Result != abci.ResponseApplySnapshotChunk_RETRY || len(r.RejectSenders) != 1 || r.RejectSenders[0] != "liar" {
			t.Fatalf("second lie: %+v %v", r, err)
		}
		for i, c := range chunks {
			r, err := a.ApplySnapshotChunk(ctx, &abci.RequestApplySnapshotChunk{Index: uint32(i), Chunk: c, Sender: "honest"})
			if err != nil || r.Result != abci.ResponseApplySnapshotChunk_ACCEPT {
				t.Fatalf("chunk %d: %v %v", i, r.GetResult(), err)
			}
		}
		info, _ := a.Info(ctx, &abci.RequestInfo{})
		if info.LastBlockHeight != 6 || !bytes.Equal(info.LastBlockAppHash, trusted) || a.chainID != testChain || a.params == nil {
			t.Fatalf("restored app: height %d hash %X chain %q", info.LastBlockHeight, info.LastBlockAppHash, a.chainID)
		}
		// The restored app executes the next block exactly as the source.
		alice, bob := newKey(1), newKey(2)
		next := signTransfer(t, alice, bob.addr, 10, 6, fee)
		if c := (&harness{t: t, app: a}).check(next); c.Code != 0 {
			t.Fatalf("CheckTx on restored app: %d %s", c.Code, c.Log)
		}
		want, err := src.app.FinalizeBlock(ctx, &abci.RequestFinalizeBlock{Height: 7, Txs: [][]byte{next}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := a.FinalizeBlock(ctx, &abci.RequestFinalizeBlock{Height: 7, Txs: [][]byte{next}})
		if err != nil || !bytes.Equal(got.AppHash, want.AppHash) {
			t.Fatalf("block 7 on restored app: %X vs %X (%v)", got.GetAppHash(), want.AppHash, err)
		}
		// A second offer to a node that now has state aborts.
		if r, _ := a.OfferSnapshot(ctx, &abci.RequestOfferSnapshot{Snapshot: sn, AppHash: trusted}); r.Result != abci.ResponseOfferSnapshot_ABORT {
			t.Fatalf("offer to a used store: %v", r.Result)
		}
	})
}
