// Package testnet builds and runs a local network of N chain validators,
// each an `agora node start --home H` operating-system process with its own
// node key, consensus key and loopback ports, sharing one genesis whose
// chain validators are operator-signed entries (gentxs) and whose peers are
// dialed all-to-all.
//
// It is a library for the `agora testnet` command, the multi-validator
// benchmark and the fault tests, which kill, restart and partition real
// processes. Only the agora command and tests import it.
package testnet

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain"
	"github.com/agoranet/agora/internal/atomicfile"
	"github.com/agoranet/agora/keys"
	"github.com/agoranet/agora/node"
)

// Fixed names of a testnet home: its keystore password (a testnet holds
// nothing worth protecting) and the funded faucet key services draw on —
// the devnet's names, so devnet's services run on a testnet unchanged.
const (
	Password      = "devnet"
	Faucet        = "faucet"
	FaucetBalance = 1_000_000 * agr.Unit
	// OperatorBalance funds each chain validator's operator; Bond of it is
	// bonded at genesis.
	OperatorBalance = 10_000 * agr.Unit
	Bond            = 1_000 * agr.Unit
	MaxValidators   = 16
	ManifestName    = "testnet.json"
)

// Options describe a new testnet.
type Options struct {
	ChainID    string
	Validators int
	BlockTime  time.Duration
	// Accounts are extra funded genesis accounts (benchmarks, tests).
	Accounts []chain.GenesisAccount
	// Tune, when set, edits the chain parameters before the genesis is signed.
	Tune func(*chain.GenesisParams)
	// ScryptN lowers the keystore's work factor (tests only; 0: default).
	ScryptN int
}

// NodeInfo is one node of the manifest.
type NodeInfo struct {
	Moniker string `json:"moniker"`
	Home    string `json:"home"`
	PID     int    `json:"pid"`
	RPC     string `json:"rpc"` // http://127.0.0.1:port
	P2P     string `json:"p2p"` // 127.0.0.1:port
	NodeID  string `json:"node_id"`
}

// Manifest is <dir>/testnet.json: what runs where.
type Manifest struct {
	ChainID string     `json:"chain_id"`
	Nodes   []NodeInfo `json:"nodes"`
}

// RPCs are the nodes' RPC URLs.
func (m *Manifest) RPCs() []string {
	out := make([]string, len(m.Nodes))
	for i, n := range m.Nodes {
		out[i] = n.RPC
	}
	return out
}

// ManifestPath is the manifest file of a testnet directory.
func ManifestPath(dir string) string { return filepath.Join(dir, ManifestName) }

// KeysDir is the keystore holding the faucet and the operator keys.
func KeysDir(dir string) string { return filepath.Join(dir, "keys") }

// NodeHome is the home of node i.
func NodeHome(dir string, i int) string { return filepath.Join(dir, "node"+strconv.Itoa(i)) }

// ReadManifest loads <dir>/testnet.json.
func ReadManifest(dir string) (*Manifest, error) {
	raw, err := os.ReadFile(ManifestPath(dir))
	if err != nil {
		return nil, fmt.Errorf("read testnet manifest: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("parse %s: %w", ManifestPath(dir), err)
	}
	if len(m.Nodes) == 0 || len(m.Nodes) > MaxValidators+8 {
		return nil, fmt.Errorf("%s lists %d nodes", ManifestPath(dir), len(m.Nodes))
	}
	return &m, nil
}

// WriteManifest writes <dir>/testnet.json atomically.
func WriteManifest(dir string, m *Manifest) error {
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Replace(ManifestPath(dir), append(raw, '\n'), 0o600)
}

// freePorts returns n loopback ports the kernel just handed out. The child
// processes bind them, so a port has to be chosen here and passed on; this
// is the unavoidable race of handing ports to another process (something
// else may take one before the child binds it). Start reports a child that
// died binding its port with its log so the caller can rebuild.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	// All held open at once so no two are the same.
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free loopback port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Exists reports whether dir already holds a built testnet.
func Exists(dir string) bool {
	_, err := os.Stat(ManifestPath(dir))
	return err == nil
}

// Build writes a testnet of o.Validators chain validators into dir: one home
// per node, operator and faucet keys in dir's keystore, a genesis whose
// chain validators are signed by their operators, and the manifest.
func Build(dir string, o Options) (*Manifest, error) {
	if o.Validators < 1 || o.Validators > MaxValidators {
		return nil, fmt.Errorf("testnet: %d chain validators, want 1..%d", o.Validators, MaxValidators)
	}
	if o.ChainID == "" {
		o.ChainID = "agora-testnet"
	}
	if o.BlockTime <= 0 {
		o.BlockTime = time.Second
	}
	if Exists(dir) {
		return nil, fmt.Errorf("testnet: %s already holds a testnet", dir)
	}
	var kopts []keys.Option
	if o.ScryptN > 0 {
		kopts = append(kopts, keys.WithScryptN(o.ScryptN))
	}
	ks, err := keys.Open(KeysDir(dir), kopts...)
	if err != nil {
		return nil, err
	}
	pw := []byte(Password)
	faucet, err := createKey(ks, Faucet, keys.Coldkey, pw)
	if err != nil {
		return nil, err
	}
	n := o.Validators
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	m := &Manifest{ChainID: o.ChainID}
	params := chain.DefaultParams(uint64(o.BlockTime / time.Millisecond))
	if o.Tune != nil {
		o.Tune(&params)
	}
	g := chain.Genesis{Params: params, Devnet: true,
		Accounts: append([]chain.GenesisAccount{{Address: faucet.Address, Balance: FaucetBalance}}, o.Accounts...)}
	bond := max(Bond, params.MinSelfBond)
	// First pass: each home gets its own node key and consensus key (a
	// throwaway single-node genesis, replaced below).
	for i := range n {
		home := NodeHome(dir, i)
		moniker := "node" + strconv.Itoa(i)
		err := node.Init(home, node.InitOptions{ChainID: o.ChainID, Moniker: moniker, Genesis: chain.Genesis{Params: params}, Overwrite: true})
		if err != nil {
			return nil, fmt.Errorf("init %s: %w", home, err)
		}
		id, err := node.NodeID(home)
		if err != nil {
			return nil, err
		}
		cons, err := node.ConsensusPubKey(home)
		if err != nil {
			return nil, err
		}
		opInfo, err := createKey(ks, moniker, keys.Coldkey, pw)
		if err != nil {
			return nil, err
		}
		op, err := ks.Unlock(moniker, pw)
		if err != nil {
			return nil, err
		}
		g.Accounts = append(g.Accounts, chain.GenesisAccount{Address: opInfo.Address, Balance: max(OperatorBalance, bond)})
		g.Validators = append(g.Validators, chain.SignGenesisValidator(o.ChainID, op, chain.GenesisValidator{
			Moniker: moniker, ConsensusPubKey: cons, Bond: bond,
		}))
		m.Nodes = append(m.Nodes, NodeInfo{
			Moniker: moniker, Home: home, NodeID: id,
			RPC: "http://127.0.0.1:" + strconv.Itoa(ports[2*i]),
			P2P: "127.0.0.1:" + strconv.Itoa(ports[2*i+1]),
		})
	}
	// Second pass: node0 writes the shared genesis document, the others
	// take it as is; everyone dials everyone.
	var doc []byte
	for i, ni := range m.Nodes {
		var peers []string
		for j, p := range m.Nodes {
			if j != i {
				peers = append(peers, p.NodeID+"@"+p.P2P)
			}
		}
		io := node.InitOptions{
			ChainID: o.ChainID, Moniker: ni.Moniker, Genesis: g, BlockTime: o.BlockTime,
			RPCAddr: "tcp://" + ni.RPC[len("http://"):], P2PAddr: "tcp://" + ni.P2P,
			PersistentPeers: peers, Overwrite: true, MempoolSize: mempoolSize(o),
		}
		if i > 0 {
			if io.GenesisDoc, err = cmttypes.GenesisDocFromJSON(doc); err != nil {
				return nil, err
			}
		}
		if err := node.Init(ni.Home, io); err != nil {
			return nil, fmt.Errorf("init %s: %w", ni.Home, err)
		}
		if i == 0 {
			if doc, err = os.ReadFile(node.GenesisPath(ni.Home)); err != nil {
				return nil, fmt.Errorf("read the shared genesis: %w", err)
			}
		}
	}
	if err := WriteManifest(dir, m); err != nil {
		return nil, err
	}
	return m, nil
}

func mempoolSize(o Options) int {
	return max(50_000, 2*len(o.Accounts)*64)
}

func createKey(ks *keys.Keystore, name string, kind keys.Kind, pw []byte) (keys.Info, error) {
	info, _, err := ks.Create(name, kind, pw)
	if errors.Is(err, keys.ErrExists) {
		return ks.Get(name)
	}
	if err != nil {
		return keys.Info{}, fmt.Errorf("create key %s: %w", name, err)
	}
	return info, nil
}

// FaucetKey unlocks the testnet's funded faucet key.
func FaucetKey(dir string) (ed25519.PrivateKey, address.Address, error) {
	ks, err := keys.Open(KeysDir(dir))
	if err != nil {
		return nil, address.Address{}, err
	}
	k, err := ks.Unlock(Faucet, []byte(Password))
	if err != nil {
		return nil, address.Address{}, fmt.Errorf("unlock the testnet faucet: %w", err)
	}
	return k, address.FromPubKey(k.Public().(ed25519.PublicKey)), nil
}

// chainGenesis is the chain id and app state of a genesis file, the parts
// nodes must share to be one network.
func chainGenesis(raw []byte) (string, error) {
	doc, err := cmttypes.GenesisDocFromJSON(raw)
	if err != nil {
		return "", err
	}
	return doc.ChainID + "\x00" + doc.GenesisTime.String() + "\x00" + string(doc.AppState), nil
}
