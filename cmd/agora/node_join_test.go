package main

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/agoranet/agora/chain"
	"github.com/agoranet/agora/internal/testkit"
	"github.com/agoranet/agora/node"
)

func TestNodeInitJoinFlags(t *testing.T) {
	ctx := context.Background()
	_, funded := testkit.Key(1)
	srcHome := t.TempDir()
	n := testkit.StartNode(t, testkit.NodeOptions{ChainID: "agora-join-cli", Home: srcHome,
		Genesis: chain.Genesis{Params: chain.DefaultParams(200), Devnet: true, Accounts: []chain.GenesisAccount{{Address: funded, Balance: 1e12}}}})
	gen := node.GenesisPath(srcHome)
	peer := "0123456789abcdef0123456789abcdef01234567@127.0.0.1:26656"
	hash := strings.Repeat("ab", 32)

	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"state sync without genesis", []string{"--peers", peer, "--state-sync-rpc", n.RPCURL(), "--trust-height", "1", "--trust-hash", hash}, exitUsage},
		{"trust without rpc", []string{"--genesis", gen, "--peers", peer, "--trust-height", "1", "--trust-hash", hash}, exitUsage},
		{"short trust hash", []string{"--genesis", gen, "--peers", peer, "--state-sync-rpc", n.RPCURL(), "--trust-height", "1", "--trust-hash", "abcd"}, exitUsage},
		{"height without hash", []string{"--genesis", gen, "--peers", peer, "--state-sync-rpc", n.RPCURL(), "--trust-height", "1"}, exitUsage},
		{"accounts with genesis", []string{"--genesis", gen, "--account", funded.String() + "=1agr"}, exitUsage},
		{"json fetch needs --yes", []string{"--genesis", gen, "--peers", peer, "--state-sync-rpc", n.RPCURL(), "--output", "json"}, exitUsage},
		{"negative snapshot interval", []string{"--snapshot-interval", "-1"}, exitUsage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"node", "init", "--home", t.TempDir()}, tc.args...)
			if _, code := runCLI(t, ctx, args...); code != tc.want {
				t.Fatalf("exit %d, want %d", code, tc.want)
			}
		})
	}

	// Fetching the trusted header and accepting it writes a state-sync home.
	home := t.TempDir()
	out, code := runCLI(t, ctx, "node", "init", "--home", home, "--genesis", gen, "--peers", peer,
		"--state-sync-rpc", n.RPCURL(), "--yes", "--output", "json", "--snapshot-interval", "50", "--snapshot-keep", "3")
	if code != exitOK {
		t.Fatalf("join init exit %d: %s", code, out)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	var trusted struct {
		Height int64  `json:"trust_height"`
		Hash   string `json:"trust_hash"`
	}
	if err := dec.Decode(&trusted); err != nil || trusted.Height < 1 || len(trusted.Hash) != 64 {
		t.Fatalf("trusted header output %q: %v", out, err)
	}
	cfg, err := node.LoadConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.StateSync.Enable || cfg.StateSync.TrustHeight != trusted.Height || !strings.EqualFold(cfg.StateSync.TrustHash, trusted.Hash) ||
		len(cfg.StateSync.RPCServers) != 2 || cfg.P2P.PersistentPeers != peer {
		t.Fatalf("state sync config %+v, peers %q", cfg.StateSync, cfg.P2P.PersistentPeers)
	}
	ac, err := node.LoadAppConfig(home)
	if err != nil || ac.Snapshot.Interval != 50 || ac.Snapshot.Keep != 3 {
		t.Fatalf("app.toml %+v %v", ac, err)
	}
	if b, err := os.ReadFile(node.GenesisPath(home)); err != nil || len(b) == 0 {
		t.Fatal("genesis not written")
	}
}
