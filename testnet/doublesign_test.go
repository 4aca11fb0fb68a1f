package testnet

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	cmtcfg "github.com/cometbft/cometbft/config"

	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/keys"
	"github.com/agoranet/agora/node"
)

// TestDoubleSignerIsSlashedEverywhere runs a second process with node3's
// priv_validator_key.json (its own node key, its own signing state: the
// double-signing an operator causes by starting a backup without stopping
// the primary). The twin's propose timeout is tiny, so it prevotes nil
// where node3 prevotes the block: conflicting votes, which CometBFT's
// consensus and evidence reactors turn into DuplicateVoteEvidence. The chain
// must slash and tombstone node3's chain validator, identically on every node.
func TestDoubleSignerIsSlashedEverywhere(t *testing.T) {
	if testing.Short() {
		t.Skip("starts five node processes")
	}
	exe := agora(t)
	dir := t.TempDir()
	m, err := Build(dir, Options{ChainID: "agora-twin", Validators: 4, BlockTime: testBlockTime, ScryptN: 1 << 4})
	if err != nil {
		t.Fatal(err)
	}
	// The twin: node3's consensus key in a fresh home of the same network.
	victim := m.Nodes[3]
	twin := extraNode(t, dir, m, "twin", node.InitOptions{})
	twinHome := twin.Home
	key, err := os.ReadFile(filepath.Join(victim.Home, "config", "priv_validator_key.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(twinHome, "config", "priv_validator_key.json"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := node.LoadConfig(twinHome)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Consensus.TimeoutPropose = time.Millisecond
	cfg.Consensus.TimeoutProposeDelta = 0
	cmtcfg.WriteConfigFile(node.ConfigPath(twinHome), cfg)
	m.Nodes = append(m.Nodes, twin)
	if err := WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	netw := openNet(t, dir, exe)
	ks, err := keys.Open(KeysDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	op, err := ks.Get("node3")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := range 4 {
		if err := netw.StartNode(i); err != nil {
			t.Fatal(err)
		}
	}
	if err := netw.WaitHeight(ctx, 2, 0, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	if err := netw.StartNode(4); err != nil {
		t.Fatal(err)
	}
	c0, err := netw.Client(0)
	if err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		cv, _, err := c0.ChainValidator(ctx, op.Address, false)
		if err == nil && cv.GetTombstoned() {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("node3's chain validator was not tombstoned: %v %v", cv, err)
		case <-tick.C:
		}
	}
	// Stop the double signer; the other three hold 3/3 of the remaining power.
	_ = netw.Kill(4)
	_ = netw.Kill(3)
	h := maxHeight(ctx, t, netw, 0, 1, 2) + 2
	if err := netw.WaitHeight(ctx, h, 0, 1, 2); err != nil {
		t.Fatal(err)
	}
	if err := netw.Agree(ctx, h, 0, 1, 2); err != nil {
		t.Fatal(err)
	}
	var first *tx.ChainValidator
	for i := range 3 {
		c, err := netw.Client(i)
		if err != nil {
			t.Fatal(err)
		}
		cv, _, err := c.ChainValidator(ctx, op.Address, true)
		if err != nil {
			t.Fatalf("node%d: %v", i, err)
		}
		if !cv.GetTombstoned() || !cv.GetJailed() || cv.GetSlashed() == 0 || cv.GetPower() != 0 {
			t.Errorf("node%d: double signer not slashed and out of the set: %v", i, cv)
		}
		if i == 0 {
			first = cv
		} else if !proto.Equal(cv, first) {
			t.Errorf("node%d sees %v, node0 %v", i, cv, first)
		}
	}
}
