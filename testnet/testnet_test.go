package testnet

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/internal/testkit"
	"github.com/agoranet/agora/node"
)

// The agora binary the nodes run, built once for the package.
var (
	buildOnce sync.Once
	agoraExe  string
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func agora(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "agora-testnet-bin-")
		if buildErr != nil {
			return
		}
		agoraExe = filepath.Join(buildDir, "agora")
		out, err := exec.Command("go", "build", "-o", agoraExe, "github.com/agoranet/agora/cmd/agora").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return agoraExe
}

const testBlockTime = 250 * time.Millisecond

// startNet builds and starts an n-validator testnet whose processes are
// killed when the test ends, pass or fail.
func startNet(t *testing.T, n int, accounts ...chain.GenesisAccount) *Network {
	t.Helper()
	exe := agora(t)
	dir := t.TempDir()
	if _, err := Build(dir, Options{ChainID: "agora-faults", Validators: n, BlockTime: testBlockTime, Accounts: accounts, ScryptN: 1 << 4}); err != nil {
		t.Fatal(err)
	}
	net := openNet(t, dir, exe)
	if err := net.StartAll(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := net.WaitHeight(ctx, 2); err != nil {
		t.Fatal(err)
	}
	return net
}

// openNet opens the testnet in dir; every process it starts is killed when
// the test ends, and a failing test logs each node's output.
func openNet(t *testing.T, dir, exe string) *Network {
	t.Helper()
	net, err := Open(dir, exe)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for i := range net.Manifest.Nodes {
			_ = net.Kill(i)
		}
		if t.Failed() {
			for i := range net.Manifest.Nodes {
				t.Logf("%s log:\n%s", net.Manifest.Nodes[i].Moniker, net.LogTail(i))
			}
		}
	})
	return net
}

// extraNode makes the home of a node that is not a chain validator of the
// genesis, joining the network in m from dir/name: node0's genesis, every
// node as a persistent peer, its own loopback ports. o adds to that (state
// sync, say).
func extraNode(t *testing.T, dir string, m *Manifest, name string, o node.InitOptions) NodeInfo {
	t.Helper()
	raw, err := os.ReadFile(node.GenesisPath(m.Nodes[0].Home))
	if err != nil {
		t.Fatal(err)
	}
	if o.GenesisDoc, err = cmttypes.GenesisDocFromJSON(raw); err != nil {
		t.Fatal(err)
	}
	ports, err := freePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Nodes {
		o.PersistentPeers = append(o.PersistentPeers, p.NodeID+"@"+p.P2P)
	}
	n := NodeInfo{Moniker: name, Home: filepath.Join(dir, name),
		RPC: "http://127.0.0.1:" + strconv.Itoa(ports[0]), P2P: "127.0.0.1:" + strconv.Itoa(ports[1])}
	o.Moniker, o.BlockTime = name, testBlockTime
	o.RPCAddr, o.P2PAddr = "tcp://"+strings.TrimPrefix(n.RPC, "http://"), "tcp://"+n.P2P
	if err := node.Init(n.Home, o); err != nil {
		t.Fatal(err)
	}
	if n.NodeID, err = node.NodeID(n.Home); err != nil {
		t.Fatal(err)
	}
	return n
}

func maxHeight(ctx context.Context, t *testing.T, net *Network, which ...int) int64 {
	t.Helper()
	var h int64
	for _, i := range which {
		got, err := net.Height(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		h = max(h, got)
	}
	return h
}

func balance(ctx context.Context, t *testing.T, net *Network, i int, a address.Address) uint64 {
	t.Helper()
	c, err := net.Client(i)
	if err != nil {
		t.Fatal(err)
	}
	acc, _, err := c.Account(ctx, a, false)
	if err != nil {
		t.Fatalf("node%d account %s: %v", i, a, err)
	}
	return acc.GetBalance()
}

// TestKillOneOfFourWhileTransfersFlow: kill -9 one of four chain validators
// in the middle of a stream of transfers sent through the other three. The
// three keep a two-thirds majority, so blocks keep coming and every
// transfer commits; restarted, the killed node replays to the same block and
// app hash as the others and reports the same balances.
func TestKillOneOfFourWhileTransfersFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four node processes")
	}
	const senders, perSender = 3, 8
	var keys []ed25519.PrivateKey
	var accounts []chain.GenesisAccount
	for s := range senders {
		k, a := testkit.Key(byte(40 + s))
		keys = append(keys, k)
		accounts = append(accounts, chain.GenesisAccount{Address: a, Balance: 100 * agr.Unit})
	}
	_, sink := testkit.Key(99)
	net := startNet(t, 4, accounts...)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	fee := chain.DefaultParams(uint64(testBlockTime / time.Millisecond)).FeeTransfer

	var wg sync.WaitGroup
	errs := make(chan error, senders)
	half := make(chan struct{}, senders)
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Client(s) // sender s talks to node s only; node3 is the victim
			if err != nil {
				errs <- err
				return
			}
			for nonce := range perSender {
				raw, err := tx.Sign(keys[s], &tx.TxBody{ChainId: net.Manifest.ChainID, Nonce: uint64(nonce), Fee: fee, Msgs: []*tx.Msg{tx.Transfer(sink, agr.Unit)}})
				if err != nil {
					errs <- err
					return
				}
				hash, err := c.Broadcast(ctx, raw)
				if err != nil {
					errs <- fmt.Errorf("sender %d nonce %d: %w", s, nonce, err)
					return
				}
				if _, err := c.WaitTx(ctx, hash); err != nil {
					errs <- fmt.Errorf("sender %d nonce %d not committed: %w", s, nonce, err)
					return
				}
				if nonce == perSender/2 {
					half <- struct{}{}
				}
			}
		}()
	}
	// Kill once every sender is half way, so transfers are in flight on
	// both sides of the crash.
	for range senders {
		select {
		case <-half:
		case err := <-errs:
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	if err := net.Kill(3); err != nil {
		t.Fatal(err)
	}
	killedAt := maxHeight(ctx, t, net, 0, 1, 2)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Blocks keep coming without node3.
	if err := net.WaitHeight(ctx, killedAt+3, 0, 1, 2); err != nil {
		t.Fatal(err)
	}
	if err := net.StartNode(3); err != nil {
		t.Fatal(err)
	}
	target := maxHeight(ctx, t, net, 0, 1, 2) + 2
	if err := net.WaitHeight(ctx, target); err != nil {
		t.Fatal(err)
	}
	if err := net.Agree(ctx, target, 0, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	want := uint64(senders * perSender * agr.Unit)
	for i := range 4 {
		if got := balance(ctx, t, net, i, sink); got != want {
			t.Errorf("node%d: sink balance %d, want %d (a committed transfer is missing)", i, got, want)
		}
		for s := range senders {
			wantLeft := 100*agr.Unit - perSender*(agr.Unit+fee)
			if got := balance(ctx, t, net, i, accounts[s].Address); got != wantLeft {
				t.Errorf("node%d: sender %d balance %d, want %d", i, s, got, wantLeft)
			}
		}
	}
}

// TestKillTwoOfFourHalts: with two of four chain validators down nobody
// holds two thirds of the votes, so the chain must stop rather than fork;
// restarting one gives three of four and it resumes from the same block.
func TestKillTwoOfFourHalts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four node processes")
	}
	net := startNet(t, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for _, i := range []int{2, 3} {
		if err := net.Kill(i); err != nil {
			t.Fatal(err)
		}
	}
	// One block may have been in its commit step when the votes vanished.
	stalled := maxHeight(ctx, t, net, 0, 1)
	window := time.NewTimer(12 * testBlockTime)
	tick := time.NewTicker(testBlockTime / 2)
	defer tick.Stop()
	last := stalled
wait:
	for {
		select {
		case <-window.C:
			break wait
		case <-tick.C:
			last = maxHeight(ctx, t, net, 0, 1)
		}
	}
	if last > stalled+1 {
		t.Fatalf("chain advanced from %d to %d with half the chain validators down", stalled, last)
	}
	for h := int64(1); h <= last; h++ {
		if c0, _ := net.Height(ctx, 0); c0 < h {
			break
		}
		if c1, _ := net.Height(ctx, 1); c1 < h {
			break
		}
		if err := net.Agree(ctx, h, 0, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := net.StartNode(2); err != nil {
		t.Fatal(err)
	}
	if err := net.WaitHeight(ctx, last+3, 0, 1, 2); err != nil {
		t.Fatal(err)
	}
	if err := net.Agree(ctx, last+3, 0, 1, 2); err != nil {
		t.Fatal(err)
	}
}

// TestManifest: the manifest lists every node with its own ports and node
// id, and the pids of the processes that run.
func TestManifest(t *testing.T) {
	dir := t.TempDir()
	m, err := Build(dir, Options{ChainID: "agora-m", Validators: 3, BlockTime: time.Second, ScryptN: 1 << 4})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, n := range m.Nodes {
		for _, v := range []string{n.RPC, n.P2P, n.NodeID} {
			if seen[v] {
				t.Fatalf("%q used twice", v)
			}
			seen[v] = true
		}
	}
	got, err := ReadManifest(dir)
	if err != nil || len(got.Nodes) != 3 || got.ChainID != "agora-m" {
		t.Fatalf("manifest %+v, %v", got, err)
	}
	if _, err := Build(dir, Options{Validators: 3}); err == nil {
		t.Fatal("Build over an existing testnet succeeded")
	}
	for _, v := range []int{0, MaxValidators + 1} {
		if _, err := Build(t.TempDir(), Options{Validators: v}); err == nil {
			t.Errorf("Build with %d chain validators succeeded", v)
		}
	}
	// Every node holds the byte-identical genesis.
	first, err := os.ReadFile(filepath.Join(m.Nodes[0].Home, "config", "genesis.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range m.Nodes[1:] {
		b, err := os.ReadFile(filepath.Join(n.Home, "config", "genesis.json"))
		if err != nil {
			t.Fatal(err)
		}
		g1, _ := chainGenesis(first)
		g2, _ := chainGenesis(b)
		if g1 != g2 {
			t.Fatalf("%s has another genesis", n.Home)
		}
	}
}
