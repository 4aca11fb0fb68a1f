package testnet

import (
	"context"
	"testing"
	"time"

	"github.com/agoranet/agora/node"
)

// TestJoinByStateSync: while four chain validators run, a fresh node given
// only the genesis, the peers and a trusted height and hash restores the
// application from a peer's snapshot (CometBFT's statesync reactor and light
// client, checked against the app hash), follows the chain, and then
// answers proven queries. It never replayed the early blocks: it does not
// have them.
func TestJoinByStateSync(t *testing.T) {
	if testing.Short() {
		t.Skip("starts five node processes")
	}
	exe := agora(t)
	dir := t.TempDir()
	m, err := Build(dir, Options{ChainID: "agora-join", Validators: 4, BlockTime: testBlockTime, ScryptN: 1 << 4})
	if err != nil {
		t.Fatal(err)
	}
	// Snapshots every 5 blocks, none pruned during the test: a joiner asking
	// for chunks of a snapshot pruned meanwhile gets none and waits out
	// CometBFT's chunk timeout.
	for _, n := range m.Nodes {
		if err := node.WriteAppConfig(n.Home, node.AppConfig{Snapshot: node.SnapshotSettings{Interval: 5, Keep: 100}}); err != nil {
			t.Fatal(err)
		}
	}
	netw := openNet(t, dir, exe)
	if err := netw.StartAll(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 75*time.Second)
	defer cancel()
	// Past two snapshots, so one is complete and offered.
	if err := netw.WaitHeight(ctx, 12); err != nil {
		t.Fatal(err)
	}
	trust := int64(11)
	hash, _, err := netw.BlockID(ctx, 0, trust)
	if err != nil {
		t.Fatal(err)
	}
	joiner := extraNode(t, dir, m, "joiner", node.InitOptions{
		StateSync: &node.StateSyncOptions{RPCServers: []string{m.Nodes[0].RPC, m.Nodes[1].RPC}, TrustHeight: trust, TrustHash: hash}})
	netw.Manifest.Nodes = append(netw.Manifest.Nodes, joiner)
	netw.procs = append(netw.procs, nil)
	j := len(netw.Manifest.Nodes) - 1
	start := time.Now()
	if err := netw.StartNode(j); err != nil {
		t.Fatal(err)
	}
	target := maxHeight(ctx, t, netw, 0, 1, 2, 3) + 2
	if err := netw.WaitHeight(ctx, target, j); err != nil {
		t.Fatal(err)
	}
	t.Logf("joined by state sync and reached height %d in %v", target, time.Since(start).Round(time.Millisecond))
	// The joiner may have restored a snapshot taken after target was
	// computed, so it need not hold block target; it holds its own latest.
	at, err := netw.Height(ctx, j)
	if err != nil {
		t.Fatal(err)
	}
	if err := netw.WaitHeight(ctx, at, 0); err != nil {
		t.Fatal(err)
	}
	if err := netw.Agree(ctx, at, 0, j); err != nil {
		t.Fatal(err)
	}
	c, err := netw.Client(j)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Block(ctx, 2); err == nil {
		t.Error("the joiner has block 2: it replayed blocks instead of restoring a snapshot")
	}
	_, faucet, err := FaucetKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	acc, proof, err := c.Account(ctx, faucet, true)
	if err != nil {
		t.Fatalf("proven query against the joiner: %v", err)
	}
	if acc.GetBalance() != FaucetBalance || proof == nil {
		t.Fatalf("faucet %v, proof %v", acc, proof)
	}
}
