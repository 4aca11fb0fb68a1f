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
	"github.com/agoranet/agora/chain/subnet"
	"github.com/agoranet/agora/keys"
	"github.com/agoranet/agora/node"
)

// TestSubnetLifecycleCLI drives the incentive machine through the CLI on a
// real node: subnet, neurons, stake, weights, epochs, metagraph.
func TestSubnetLifecycleCLI(t *testing.T) {
	home := t.TempDir()
	t.Setenv("AGORA_PASSWORD", "pw")
	ks, err := keys.Open(home+"/keys", keys.WithScryptN(1<<10))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []struct {
		name string
		kind keys.Kind
	}{{"owner", keys.Coldkey}, {"ownerhot", keys.Hotkey}, {"val", keys.Coldkey}, {"valhot", keys.Hotkey}, {"miner", keys.Coldkey}, {"minerhot", keys.Hotkey}, {"idlehot", keys.Hotkey}} {
		if _, _, err := ks.Create(k.name, k.kind, []byte("pw")); err != nil {
			t.Fatal(err)
		}
	}
	g := chain.Genesis{Params: chain.DefaultParams(200), Devnet: true}
	sp := subnet.DefaultSubnetParams()
	sp.Tempo, sp.WeightsRateLimit, sp.CommitReveal, sp.ImmunityPeriod, sp.MaxUids, sp.MaxValidators = 9, 0, false, 10, 16, 4
	g.Params.DefaultSubnet = sp
	for _, name := range []string{"owner", "val", "miner", "valhot"} {
		info, _ := ks.Get(name)
		g.Accounts = append(g.Accounts, chain.GenesisAccount{Address: info.Address, Balance: 10_000 * agr.Unit})
	}
	cn := startCLINode(t, home, "agora-cli", g)
	ctx, url, run, n := cn.ctx, cn.url, cn.run, cn.node
	run("subnet", "register", "--from", "owner", "--hotkey", "ownerhot", "--name", "chat")
	run("neuron", "register", "1", "--from", "val", "--hotkey", "valhot")
	run("neuron", "register", "1", "--from", "miner", "--hotkey", "minerhot", "--max-burn", "10agr")
	run("neuron", "register", "1", "--from", "miner", "--hotkey", "idlehot")
	run("stake", "add", "1", "valhot", "100agr", "--from", "val")
	run("subnet", "start", "1", "--from", "owner")
	run("neuron", "serve", "1", "--hotkey", "valhot", "--endpoint", "http://127.0.0.1:9999")

	type row struct {
		UID             int     `json:"uid"`
		Stake           uint64  `json:"stake"`
		ValidatorPermit bool    `json:"validator_permit"`
		Incentive       float64 `json:"incentive"`
		Dividends       float64 `json:"dividends"`
		Emission        uint64  `json:"emission"`
		Endpoint        string  `json:"endpoint"`
	}
	metagraph := func() []row {
		var mg struct{ Neurons []row }
		if err := json.Unmarshal([]byte(run("query", "metagraph", "--netuid", "1", "--output", "json")), &mg); err != nil {
			t.Fatal(err)
		}
		return mg.Neurons
	}
	for !metagraph()[1].ValidatorPermit {
		select {
		case <-ctx.Done():
			t.Fatal("validator never got a permit")
		case <-time.After(300 * time.Millisecond):
		}
	}
	run("weights", "set", "1", "--hotkey", "valhot", "--weights", "2:65535")
	// Wait out two more epochs (tempo 9: one every 10 blocks) by height,
	// with the margin the old fixed 5 s wait had (25 blocks of 200 ms).
	if err := n.WaitForHeight(ctx, n.Height()+25); err != nil {
		t.Fatal(err)
	}
	mg := metagraph()
	if len(mg) != 4 || mg[2].Incentive == 0 || mg[2].Emission == 0 || mg[3].Incentive != 0 {
		t.Fatalf("metagraph after epochs: %+v", mg)
	}
	if mg[1].Dividends == 0 || mg[1].Stake <= 100*agr.Unit || mg[1].Endpoint != "http://127.0.0.1:9999" {
		t.Fatalf("validator row %+v", mg[1])
	}
	if out := run("subnet", "list"); !strings.Contains(out, "chat") {
		t.Fatalf("subnet list: %s", out)
	}
	// A payment channel from the owner to the miner's coldkey: open, sign a
	// voucher, claim it, and see the settlement.
	run("channel", "open", "miner", "5agr", "--from", "owner", "--netuid", "1", "--expiry-blocks", "100")
	var voucher struct {
		Signature string `json:"signature"`
	}
	if err := json.Unmarshal([]byte(run("channel", "voucher", "1", "2agr", "--from", "owner", "--output", "json")), &voucher); err != nil {
		t.Fatal(err)
	}
	run("channel", "claim", "1", "2agr", "--signature", voucher.Signature, "--from", "miner")
	run("channel", "claim", "1", "2agr", "--signature", voucher.Signature, "--from", "miner") // idempotent
	var ch struct {
		Deposit, Claimed uint64
	}
	if err := json.Unmarshal([]byte(run("channel", "show", "1", "--output", "json")), &ch); err != nil || ch.Deposit != 5*agr.Unit || ch.Claimed != 2*agr.Unit {
		t.Fatalf("channel %+v %v", ch, err)
	}
	// Clear refusals.
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"weights", "set", "1", "--hotkey", "valhot", "--weights", "2"}, exitUsage},
		{[]string{"query", "metagraph", "--netuid", "9"}, exitNotFound},
		{[]string{"subnet", "start", "1", "--from", "val"}, exitError},
		{[]string{"stake", "remove", "1", "valhot", "1000000agr", "--from", "val"}, exitError},
		{[]string{"channel", "show", "99"}, exitNotFound},
		{[]string{"channel", "claim", "1", "9agr", "--signature", voucher.Signature, "--from", "miner"}, exitError},
		{[]string{"channel", "close", "1", "--from", "owner"}, exitError},
	} {
		if _, code := runCLI(t, ctx, append(c.args, "--home", home, "--node", url)...); code != c.want {
			t.Errorf("agora %v: exit %d, want %d", c.args, code, c.want)
		}
	}
}

// cliNode is a running single-validator node for CLI tests, and the
// commands that talk to it.
type cliNode struct {
	t    *testing.T
	ctx  context.Context
	home string
	url  string
	node *node.Node
}

// startCLINode initializes home with g (200 ms blocks), starts its node on
// a loopback port and waits for the first block. The node stops, and ctx
// ends, with the test.
func startCLINode(t *testing.T, home, chainID string, g chain.Genesis) *cliNode {
	t.Helper()
	rpc, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Init(home, node.InitOptions{ChainID: chainID, Genesis: g, BlockTime: 200 * time.Millisecond,
		P2PAddr: "tcp://127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	n, err := node.Start(home, node.StartOptions{RPCListener: rpc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Stop() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	if err := n.WaitForHeight(ctx, 1); err != nil {
		t.Fatal(err)
	}
	return &cliNode{t: t, ctx: ctx, home: home, url: "http://" + rpc.Addr().String(), node: n}
}

// exit runs an agora command against the node and returns its exit code.
func (c *cliNode) exit(args ...string) int {
	c.t.Helper()
	_, code := runCLI(c.t, c.ctx, append(args, "--home", c.home, "--node", c.url)...)
	return code
}

// run runs an agora command against the node; anything but success fails the test.
func (c *cliNode) run(args ...string) string {
	c.t.Helper()
	out, code := runCLI(c.t, c.ctx, append(args, "--home", c.home, "--node", c.url)...)
	if code != exitOK {
		c.t.Fatalf("agora %s: exit %d: %s", strings.Join(args, " "), code, out)
	}
	return out
}
