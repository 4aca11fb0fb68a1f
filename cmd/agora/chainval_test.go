package main

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain"
	"github.com/agoranet/agora/keys"
	"github.com/agoranet/agora/node"
)

// TestChainValidatorCLI runs a node whose genesis chain validator is bonded
// by a keystore operator, then enrols a second node's consensus key through
// the CLI, bonds, edits and unbonds it, and checks the chain keeps going
// (the newcomer's power stays below a third, so the one running node still
// commits).
func TestChainValidatorCLI(t *testing.T) {
	home, home2 := t.TempDir(), t.TempDir()
	t.Setenv("AGORA_PASSWORD", "pw")
	ks, err := keys.Open(home+"/keys", keys.WithScryptN(1<<10))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"op", "op2"} {
		if _, _, err := ks.Create(name, keys.Coldkey, []byte("pw")); err != nil {
			t.Fatal(err)
		}
	}
	const chainID = "agora-cv-cli"
	opts := node.InitOptions{ChainID: chainID, Genesis: chain.Genesis{Params: chain.DefaultParams(200)}, BlockTime: 200 * time.Millisecond, P2PAddr: "tcp://127.0.0.1:0"}
	for _, h := range []string{home, home2} {
		if err := node.Init(h, opts); err != nil {
			t.Fatal(err)
		}
	}
	consPub, err := node.ConsensusPubKey(home)
	if err != nil {
		t.Fatal(err)
	}
	opPriv, err := ks.Unlock("op", []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	op, _ := ks.Get("op")
	op2, _ := ks.Get("op2")
	g := chain.Genesis{Params: chain.DefaultParams(200), Devnet: true, Accounts: []chain.GenesisAccount{
		{Address: op.Address, Balance: 1_000 * agr.Unit}, {Address: op2.Address, Balance: 1_000 * agr.Unit}}}
	g.Validators = []chain.GenesisValidator{chain.SignGenesisValidator(chainID, opPriv, chain.GenesisValidator{Moniker: "one", ConsensusPubKey: consPub, Bond: 100 * agr.Unit})}
	opts.Genesis, opts.Overwrite = g, true
	if err := node.Init(home, opts); err != nil {
		t.Fatal(err)
	}
	rpc, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + rpc.Addr().String()
	n, err := node.Start(home, node.StartOptions{RPCListener: rpc})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := n.WaitForHeight(ctx, 1); err != nil {
		t.Fatal(err)
	}
	run := func(wantOK bool, args ...string) string {
		t.Helper()
		out, code := runCLI(t, ctx, append(args, "--home", home, "--node", url)...)
		if (code == exitOK) != wantOK {
			t.Fatalf("agora %s: exit %d: %s", strings.Join(args, " "), code, out)
		}
		return out
	}
	run(true, "chain-validator", "create", "1agr", "--from", "op2", "--node-home", home2, "--moniker", "two")
	// The same consensus key again (and an operator that already runs one): refused.
	run(false, "chain-validator", "create", "1agr", "--from", "op", "--node-home", home2)
	run(true, "chain-validator", "bond", "1agr", "--from", "op2")
	run(true, "chain-validator", "edit", "second", "--from", "op2")
	run(false, "chain-validator", "unjail", "--from", "op2")
	var list []chainValidatorOut
	if err := json.Unmarshal([]byte(run(true, "chain-validator", "list", "--output", "json")), &list); err != nil {
		t.Fatal(err)
	}
	byOp := map[string]chainValidatorOut{}
	for _, v := range list {
		byOp[v.Operator] = v
	}
	if v := byOp[op2.Address.String()]; len(list) != 2 || v.Moniker != "second" || v.Bonded != 2*agr.Unit || v.Power != 2 || v.Status != "active" {
		t.Fatalf("list %+v", list)
	}
	if v := byOp[op.Address.String()]; v.Power != 100 || v.Status != "active" {
		t.Fatalf("genesis chain validator %+v", v)
	}
	run(true, "chain-validator", "unbond", "2agr", "--from", "op2")
	var one chainValidatorOut
	if err := json.Unmarshal([]byte(run(true, "chain-validator", "show", "op2", "--output", "json")), &one); err != nil {
		t.Fatal(err)
	}
	if one.Bonded != 0 || one.Unbonding != 2*agr.Unit || one.Power != 0 {
		t.Fatalf("after unbond %+v", one)
	}
	if err := n.WaitForHeight(ctx, n.Height()+3); err != nil {
		t.Fatalf("chain stopped after the set changes: %v", err)
	}
}
