package client_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestSDKDependencies fails when an SDK package starts linking what only a
// node needs. Agents, miners and gateways all build on client (and agents on
// agent); an import that reaches the chain application pulls its store, its
// database and, through CometBFT's RPC result types, the node's p2p stack
// into every one of them.
func TestSDKDependencies(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH to list dependencies with")
	}
	// Prefixes of module paths no SDK build may contain.
	forbidden := []string{
		"github.com/cosmos/iavl",
		"github.com/cosmos/cosmos-db",
		"github.com/syndtr/goleveldb",
		"github.com/cometbft/cometbft-db",
		"github.com/cometbft/cometbft/node",
		"github.com/cometbft/cometbft/p2p",
		"github.com/cometbft/cometbft/state",
	}
	// Agora packages that are the chain application or a server.
	const mod = "github.com/agoranet/agora/"
	// client/lightclient links CometBFT's light package, and with it a
	// database: programs that want it import it and plug it in through
	// client.HeaderVerifier, so none of these may link it themselves.
	chainApp := []string{"chain", "chain/state", "chain/bank", "chain/channel", "chain/subnet", "chain/emission", "chain/chainval", "chain/snapshot", "node", "client/lightclient"}
	servers := append([]string{"gateway", "miner", "validator", "devnet", "engine"}, chainApp...)
	// SDK packages may link neither the chain nor a server; services (which
	// talk to the chain only through client) may not link the chain.
	cases := []struct {
		pkg     string
		refused []string
	}{
		{mod + "client", servers}, {mod + "agent", servers},
		{mod + "gateway", chainApp}, {mod + "miner", chainApp}, {mod + "validator", chainApp},
		// The explorer reads the chain through client like any service; the
		// emission schedule it charts is the one pure chain package it may use.
		{mod + "explorer", append([]string{"gateway", "miner", "validator", "devnet", "engine"}, slices.DeleteFunc(slices.Clone(chainApp), func(p string) bool { return p == "chain/emission" })...)},
	}
	for _, tc := range cases {
		pkg, servers := tc.pkg, tc.refused
		out, err := exec.Command(goTool, "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		deps := strings.Fields(string(out))
		for _, d := range deps {
			for _, f := range forbidden {
				if d == f || strings.HasPrefix(d, f+"/") {
					t.Errorf("%s depends on %s", pkg, d)
				}
			}
			for _, s := range servers {
				if d == mod+s {
					t.Errorf("%s depends on %s", pkg, d)
				}
			}
		}
		t.Logf("%s: %d packages", pkg, len(deps))
	}
}
