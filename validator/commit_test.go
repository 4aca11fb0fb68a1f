package validator

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain"
	"github.com/agoranet/agora/chain/subnet"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/internal/testkit"
)

// TestCommitSurvivesRestart commits weights on a real chain, rebuilds the
// validator from its state file as a restart would, and has the new one
// reveal in the commit's reveal window; then the same with the commit's
// block unrecorded (a crash right after sending), which the chain's record
// of the neuron supplies.
func TestCommitSurvivesRestart(t *testing.T) {
	const chainID = "agora-validator-test"
	owner, ownerAddr := testkit.Key(1)
	hot, hotAddr := testkit.Key(2)
	g := chain.Genesis{Params: chain.DefaultParams(200), Devnet: true, Accounts: []chain.GenesisAccount{
		{Address: ownerAddr, Balance: 10_000 * agr.Unit}, {Address: hotAddr, Balance: 10 * agr.Unit}}}
	sp := subnet.DefaultSubnetParams()
	sp.Tempo, sp.CommitReveal, sp.RevealPeriod, sp.WeightsRateLimit = 4, true, 1, 0
	g.Params.DefaultSubnet = sp
	ch := testkit.StartChain(t, testkit.NodeOptions{ChainID: chainID, Genesis: g})
	c := ch.Client
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The validator's hotkey owns the subnet as UID 0: an owner weighting
	// itself needs no permit or stake, which keeps the test to commit-reveal.
	ch.RegisterSubnet(t, owner, hot, "commits")
	cfg := Config{Hotkey: hot, Netuid: 1, Chain: c, CommitPath: filepath.Join(t.TempDir(), "commits", "1-hot.json")}

	commit := func(forgetBlock bool) {
		t.Helper()
		v, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		v.record(0, hotAddr, "", 1, 0, 0, true, nil)
		if err := v.SubmitWeights(ctx); err != nil {
			t.Fatal(err)
		}
		saved, err := LoadCommit(cfg.CommitPath)
		if err != nil || saved.Block == 0 || len(saved.Uids) != 1 || len(saved.Salt) != 32 {
			t.Fatalf("saved commit %+v: %v", saved, err)
		}
		if forgetBlock {
			saved.Block = 0
			if err := SaveCommit(cfg.CommitPath, saved); err != nil {
				t.Fatal(err)
			}
		}
	}
	revealAfterRestart := func() {
		t.Helper()
		v, err := New(cfg) // the restart: nothing but the state file carries over
		if err != nil {
			t.Fatal(err)
		}
		if v.pending == nil || len(v.Scores()) != 0 {
			t.Fatalf("restarted validator: pending %+v, scores %v", v.pending, v.Scores())
		}
		for v.WeightsSubmitted() == 0 {
			if err := ch.WaitForHeight(ctx, ch.Height()+1); err != nil {
				t.Fatal("no reveal before the deadline: ", err)
			}
			if err := v.SubmitWeights(ctx); err != nil {
				t.Fatal(err) // a reveal the chain refused ends up here
			}
		}
		if _, err := os.Stat(cfg.CommitPath); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("state file after the reveal: %v", err)
		}
		mg, err := c.Metagraph(ctx, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		if n := mg.Neurons[0]; n.FirstCommitBlock != 0 || n.LastUpdate <= n.RegisteredAt {
			t.Fatalf("chain did not take the reveal: %+v", n)
		}
	}
	commit(false)
	revealAfterRestart()
	commit(true)
	revealAfterRestart()
}

func TestSaveCommitRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.json")
	c, err := NewCommit(3, []uint32{1, 2}, []uint32{7, 65535}, 9)
	if err != nil {
		t.Fatal(err)
	}
	c.Block = 42
	if err := SaveCommit(path, c); err != nil {
		t.Fatal(err)
	}
	got, err := LoadCommit(path)
	if err != nil || string(got.Salt) != string(c.Salt) || got.Block != 42 || got.VersionKey != 9 || got.Values[1] != 65535 {
		t.Fatalf("loaded %+v: %v", got, err)
	}
	_, hotAddr := testkit.Key(5)
	if string(got.CommitMsg(hotAddr).GetWeightsCommit().Hash) != string(tx.WeightsHash(hotAddr, 3, c.Uids, c.Values, c.Salt, 9)) {
		t.Fatal("commit hash does not cover the saved weights")
	}
	if _, err := LoadCommit(filepath.Join(t.TempDir(), "none.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}
