package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/chain"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/internal/poll"
	"github.com/agoranet/agora/node"
)

// JoinConfig sizes a join benchmark.
type JoinConfig struct {
	Blocks    int64         // chain length before the joins
	Accounts  int           // accounts created (64 transfers per tx)
	BlockTime time.Duration // timeout_commit of the benchmark chain
	Progress  io.Writer
	// Logger receives the joining nodes' logs; nil discards them.
	Logger *slog.Logger
}

// JoinResult is what a join benchmark measured.
type JoinResult struct {
	Blocks          int64   `json:"blocks"`
	Accounts        int     `json:"accounts"`
	SnapshotHeight  int64   `json:"snapshot_height"`
	SnapshotBytes   int64   `json:"snapshot_bytes"`
	SnapshotChunks  uint32  `json:"snapshot_chunks"`
	StateSyncSecs   float64 `json:"state_sync_seconds"`
	ReplaySecs      float64 `json:"replay_seconds"`
	Ratio           float64 `json:"replay_over_state_sync"`
	StateSyncBase   int64   `json:"state_sync_earliest_block"`
	DiscoverySecs   float64 `json:"state_sync_discovery_seconds"`
	StateSyncTarget int64   `json:"state_sync_target_height"`
	ReplayTarget    int64   `json:"replay_target_height"`
}

const (
	joinChainID  = "agora-bench-join"
	msgsPerTx    = 64
	joinDiscover = 5 * time.Second // CometBFT's minimum discovery_time, set by node.DefaultConfig
)

func joinAccount(i int) address.Address {
	seed := sha256.Sum256(binary.BigEndian.AppendUint64([]byte("agora-bench-join"), uint64(i)))
	return address.FromPubKey(ed25519.NewKeyFromSeed(seed[:]).Public().(ed25519.PublicKey))
}

// Join builds a chain of cfg.Blocks blocks holding cfg.Accounts accounts on
// one node that snapshots, then times two fresh nodes catching up with it:
// one by state sync (restore the newest snapshot, then blocksync the rest)
// and one by replaying every block from genesis. Everything runs in a
// temporary directory that is removed on return.
func Join(ctx context.Context, cfg JoinConfig) (*JoinResult, error) {
	if cfg.Blocks < 10 || cfg.Accounts < 1 {
		return nil, errors.New("bench: --blocks must be at least 10 and --accounts positive")
	}
	if cfg.BlockTime <= 0 {
		cfg.BlockTime = 5 * time.Millisecond
	}
	progress := cfg.Progress
	if progress == nil {
		progress = io.Discard
	}
	dir, err := os.MkdirTemp("", "agora-bench-join-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	funder := transferKey(0)
	g := chain.Genesis{Params: chain.DefaultParams(uint64(max(1, cfg.BlockTime/time.Millisecond))), Devnet: true,
		Accounts: []chain.GenesisAccount{{Address: address.FromPubKey(funder.Public().(ed25519.PublicKey)), Balance: 10_000_000_000_000_000}}}
	homeA := filepath.Join(dir, "a")
	rpcA, p2pA, err := freeLoopbackPorts()
	if err != nil {
		return nil, err
	}
	if err := node.Init(homeA, node.InitOptions{ChainID: joinChainID, Moniker: "a", Genesis: g, BlockTime: cfg.BlockTime,
		RPCAddr: fmt.Sprintf("tcp://127.0.0.1:%d", rpcA), P2PAddr: fmt.Sprintf("tcp://127.0.0.1:%d", p2pA)}); err != nil {
		return nil, err
	}
	// Snapshots near the end of the build, kept long enough to outlast the
	// joiners' discovery while the chain keeps moving.
	interval := max(10, cfg.Blocks/5)
	// Fast blocks pass many intervals during discovery: keep ≥ 20,000 blocks' worth.
	keep := int(max(20, 20_000/interval))
	a, err := node.Start(homeA, node.StartOptions{Snapshots: &node.SnapshotSettings{Interval: interval, Keep: keep}})
	if err != nil {
		return nil, err
	}
	defer a.Stop()
	c, err := client.New(a.RPCURL())
	if err != nil {
		return nil, err
	}
	if err := a.WaitForHeight(ctx, 1); err != nil {
		return nil, err
	}

	fmt.Fprintf(progress, "creating %d accounts (%d transfers per tx)…\n", cfg.Accounts, msgsPerTx)
	p, err := c.Params(ctx, false)
	if err != nil {
		return nil, err
	}
	var last []byte
	for i, nonce := 0, uint64(0); i < cfg.Accounts; nonce++ {
		msgs := make([]*tx.Msg, 0, msgsPerTx)
		for ; i < cfg.Accounts && len(msgs) < msgsPerTx; i++ {
			msgs = append(msgs, tx.Transfer(joinAccount(i), 1))
		}
		raw, err := tx.Sign(funder, &tx.TxBody{ChainId: joinChainID, Nonce: nonce, Fee: tx.RequiredFee(p, msgs), Msgs: msgs})
		if err != nil {
			return nil, err
		}
		if last, err = c.Broadcast(ctx, raw); err != nil {
			return nil, fmt.Errorf("fill accounts: %w", err)
		}
	}
	if _, err := c.WaitTx(ctx, last); err != nil {
		return nil, fmt.Errorf("fill accounts: %w", err)
	}
	fmt.Fprintf(progress, "accounts created at height %d; building to %d blocks…\n", a.Height(), cfg.Blocks)
	if err := a.WaitForHeight(ctx, cfg.Blocks); err != nil {
		return nil, err
	}
	var snap struct {
		h      int64
		chunks uint32
	}
	if err := poll.Until(ctx, 100*time.Millisecond, func() bool {
		list, err := a.Snapshots()
		if err == nil && len(list) > 0 && list[0].Height >= cfg.Blocks-interval {
			snap.h, snap.chunks = list[0].Height, list[0].Chunks
			return true
		}
		return false
	}); err != nil {
		return nil, fmt.Errorf("wait for a snapshot: %w", err)
	}
	res := &JoinResult{Blocks: cfg.Blocks, Accounts: cfg.Accounts, SnapshotHeight: snap.h, SnapshotChunks: snap.chunks,
		DiscoverySecs: joinDiscover.Seconds()}
	if res.SnapshotBytes, err = a.SnapshotBytes(snap.h); err != nil {
		return nil, err
	}
	// A trusted header below the snapshot, as an operator would take one.
	trust, err := c.Block(ctx, max(1, snap.h/2))
	if err != nil {
		return nil, err
	}
	genDoc, err := cmttypes.GenesisDocFromFile(node.GenesisPath(homeA))
	if err != nil {
		return nil, err
	}

	join := func(name string, ss *node.StateSyncOptions) (secs float64, target, base int64, err error) {
		home := filepath.Join(dir, name)
		rpc, p2p, err := freeLoopbackPorts()
		if err != nil {
			return 0, 0, 0, err
		}
		if err := node.Init(home, node.InitOptions{Moniker: name, GenesisDoc: genDoc, PersistentPeers: []string{a.P2PAddr()},
			StateSync: ss, RPCAddr: fmt.Sprintf("tcp://127.0.0.1:%d", rpc), P2PAddr: fmt.Sprintf("tcp://127.0.0.1:%d", p2p)}); err != nil {
			return 0, 0, 0, err
		}
		target = a.Height()
		start := time.Now()
		n, err := node.Start(home, node.StartOptions{Snapshots: &node.SnapshotSettings{}, Logger: cfg.Logger})
		if err != nil {
			return 0, 0, 0, err
		}
		defer n.Stop()
		if err := n.WaitForHeight(ctx, target); err != nil {
			return 0, 0, 0, fmt.Errorf("%s join to %d (at %d): %w", name, target, n.Height(), err)
		}
		return time.Since(start).Seconds(), target, n.EarliestHeight(), nil
	}
	fmt.Fprintf(progress, "joining by state sync from snapshot %d (%d chunks, %d bytes)…\n", snap.h, snap.chunks, res.SnapshotBytes)
	res.StateSyncSecs, res.StateSyncTarget, res.StateSyncBase, err = join("statesync", &node.StateSyncOptions{
		RPCServers: []string{a.RPCURL(), a.RPCURL()}, TrustHeight: trust.Block.Height, TrustHash: trust.BlockID.Hash})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "joining by replaying every block…\n")
	if res.ReplaySecs, res.ReplayTarget, _, err = join("replay", nil); err != nil {
		return nil, err
	}
	if res.StateSyncSecs > 0 {
		res.Ratio = res.ReplaySecs / res.StateSyncSecs
	}
	return res, nil
}
