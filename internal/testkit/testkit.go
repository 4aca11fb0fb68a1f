// Package testkit is the one toolkit tests share: deterministic keys,
// listeners bound to an ephemeral loopback port and handed over (never a
// port probed, released and hoped for), in-process chain nodes (alone, or
// as a Chain with a client that sends and registers subnets), and the small
// generated models tests serve. It is imported only by tests; it must not
// import a service package (miner, gateway, validator, agent), whose own
// tests import it.
package testkit

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/chain"
	"github.com/agoranet/agora/chain/subnet"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/engine"
	"github.com/agoranet/agora/node"
)

// Key is a deterministic ed25519 key for seed and its address.
func Key(seed byte) (ed25519.PrivateKey, address.Address) {
	s := make([]byte, ed25519.SeedSize)
	s[0] = seed
	k := ed25519.NewKeyFromSeed(s)
	return k, address.FromPubKey(k.Public().(ed25519.PublicKey))
}

// Addr is the address of k.
func Addr(k ed25519.PrivateKey) address.Address {
	return address.FromPubKey(k.Public().(ed25519.PublicKey))
}

// Listen binds 127.0.0.1:0 and closes the listener when the test ends.
func Listen(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// NodeOptions describe a test chain.
type NodeOptions struct {
	ChainID   string
	Genesis   chain.Genesis
	BlockTime time.Duration // default 200 ms
	Home      string        // default a fresh temporary directory
}

// StartNode runs a single-validator chain in-process, its RPC on a
// listener bound here and handed to the node, and waits for the first
// block. The node stops when the test ends.
func StartNode(t testing.TB, o NodeOptions) *node.Node {
	t.Helper()
	if o.Home == "" {
		o.Home = t.TempDir()
	}
	if o.BlockTime == 0 {
		o.BlockTime = 200 * time.Millisecond
	}
	if err := node.Init(o.Home, node.InitOptions{ChainID: o.ChainID, Genesis: o.Genesis, BlockTime: o.BlockTime,
		P2PAddr: "tcp://127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	n, err := node.Start(o.Home, node.StartOptions{RPCListener: Listen(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Stop() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := n.WaitForHeight(ctx, 1); err != nil {
		t.Fatal(err)
	}
	return n
}

// Chain is a running test chain: its node, a client of its RPC and the
// chain id transactions are signed for.
type Chain struct {
	*node.Node
	Client *client.Client
	ID     string
}

// StartChain starts a node as StartNode does and connects a client to it.
func StartChain(t testing.TB, o NodeOptions) *Chain {
	t.Helper()
	n := StartNode(t, o)
	c, err := client.New(n.RPCURL())
	if err != nil {
		t.Fatal(err)
	}
	return &Chain{Node: n, Client: c, ID: o.ChainID}
}

// Send has k sign msgs into one transaction and waits for its block; an
// error fails the test.
func (c *Chain) Send(t testing.TB, k ed25519.PrivateKey, msgs ...*tx.Msg) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.Client.SendAndWait(ctx, k, msgs, client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
}

// RegisterSubnet has owner pay for the next subnet, named name, with
// ownerHot proved as the owner's hotkey (the subnet's UID 0).
func (c *Chain) RegisterSubnet(t testing.TB, owner, ownerHot ed25519.PrivateKey, name string) {
	t.Helper()
	c.Send(t, owner, tx.SubnetRegister(name, tx.ProveHotkey(ownerHot, c.ID, subnet.NewSubnetNetuid, Addr(owner)), 0))
}

// Model writes a generated (untrained) model of the named engine shape
// and returns its path.
func Model(t testing.TB, shape string, seed uint64) string {
	t.Helper()
	return QuantizedModel(t, shape, engine.QuantQ8, seed)
}

// QuantizedModel generates a model of an engine shape at quant.
func QuantizedModel(t testing.TB, shape string, quant engine.Quant, seed uint64) string {
	t.Helper()
	s, ok := engine.Shapes[shape]
	if !ok {
		t.Fatalf("testkit: no engine shape %q", shape)
	}
	p := filepath.Join(t.TempDir(), fmt.Sprintf("%s-%s-%d.gguf", shape, quant, seed))
	if err := engine.Generate(p, s, quant, seed); err != nil {
		t.Fatal(err)
	}
	return p
}

// LoadModel generates a model as Model does and loads it; it is closed
// when the test ends.
func LoadModel(t testing.TB, shape string, seed uint64) *engine.Model {
	t.Helper()
	return LoadQuantizedModel(t, shape, engine.QuantQ8, seed)
}

// LoadQuantizedModel generates a model as QuantizedModel does and loads it;
// it is closed when the test ends.
func LoadQuantizedModel(t testing.TB, shape string, quant engine.Quant, seed uint64) *engine.Model {
	t.Helper()
	m, err := engine.Load(QuantizedModel(t, shape, quant, seed))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}
