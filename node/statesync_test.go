package node

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/agoranet/agora/chain"
)

// p2pAddr picks a loopback port for a node's P2P listener. CometBFT binds
// that listener itself and cannot be handed one, so this is the one place a
// port is probed and released; the window is a few milliseconds.
func p2pAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "tcp://" + addr
}

func appInfo(t *testing.T, n *Node) *abci.ResponseInfo {
	t.Helper()
	info, err := n.cmt.ProxyApp().Query().Info(context.Background(), &abci.RequestInfo{})
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// TestJoinByStateSync runs a one-chain-validator network that snapshots
// every 5 blocks (kept long enough to outlast discovery at 50 ms blocks); a fresh node given only the genesis, the first node as a
// peer and a trusted header joins by restoring a snapshot (not by replaying
// from block 1), reaches the same app hash, and keeps following the chain.
func TestJoinByStateSync(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two nodes and waits for state sync discovery")
	}
	_, alice := testKey(1)
	homeA := t.TempDir()
	err := Init(homeA, InitOptions{
		ChainID: "agora-join", Moniker: "a",
		Genesis:   chain.Genesis{Params: chain.DefaultParams(200), Devnet: true, Accounts: []chain.GenesisAccount{{Address: alice, Balance: 1_000_000_000_000}}},
		BlockTime: 50 * time.Millisecond,
		P2PAddr:   p2pAddr(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	// Two listeners on the serving node give the light client a distinct
	// primary and witness URL.
	rpcA, rpcA2 := listen(t), listen(t)
	a, err := Start(homeA, StartOptions{RPCListener: rpcA, Snapshots: &SnapshotSettings{Interval: 5, Keep: 200}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Stop() })
	witness, err := serveRPC(a.cmt, rpcA2, cometLogger{l: a.log, stopping: a.stopping})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(witness.close)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := a.WaitForHeight(ctx, 12); err != nil {
		t.Fatal(err)
	}
	trust := a.cmt.BlockStore().LoadBlockMeta(3)
	genDoc, err := cmttypes.GenesisDocFromFile(GenesisPath(homeA))
	if err != nil {
		t.Fatal(err)
	}

	homeB := t.TempDir()
	err = Init(homeB, InitOptions{
		Moniker: "b", GenesisDoc: genDoc, P2PAddr: p2pAddr(t),
		PersistentPeers: []string{a.P2PAddr()},
		StateSync: &StateSyncOptions{
			RPCServers:  []string{rpcURL(rpcA), rpcURL(rpcA2)},
			TrustHeight: trust.Header.Height, TrustHash: trust.BlockID.Hash,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Start(homeB, StartOptions{RPCListener: listen(t), Snapshots: &SnapshotSettings{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Stop() })

	target := a.Height() + 5
	if err := b.WaitForHeight(ctx, target); err != nil {
		t.Fatalf("joined node did not reach %d (at %d): %v", target, b.Height(), err)
	}
	if base := b.EarliestHeight(); base <= 1 {
		t.Fatalf("joined node's earliest block is %d: it replayed instead of state-syncing", base)
	}
	// Same app hash at the same height: compare the block headers both
	// nodes stored for target+1, which carry the app hash after target.
	if err := b.WaitForHeight(ctx, target+1); err != nil {
		t.Fatal(err)
	}
	ha, hb := a.cmt.BlockStore().LoadBlockMeta(target+1), b.cmt.BlockStore().LoadBlockMeta(target+1)
	if ha == nil || hb == nil || !bytes.Equal(ha.Header.AppHash, hb.Header.AppHash) {
		t.Fatalf("app hash after %d differs between the nodes", target)
	}
	if info := appInfo(t, b); info.LastBlockHeight < target {
		t.Fatalf("joined app at %d", info.LastBlockHeight)
	}
	t.Logf("joined at base %d, followed to %d", b.EarliestHeight(), b.Height())
}
