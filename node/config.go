// Package node runs an Agora chain node: CometBFT v0.38 in-process with the
// chain application, plus the files a node's home directory holds.
//
// It is the one place CometBFT's node, its p2p stack and its databases are
// linked; nothing an agent, miner or gateway builds on (client, chain/tx,
// chain/proof) may import it.
package node

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	cmtcfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	cmttypes "github.com/cometbft/cometbft/types"
	cmttime "github.com/cometbft/cometbft/types/time"
	"github.com/spf13/viper"

	"github.com/agoranet/agora/chain"
)

// InitOptions describe a new node home.
type InitOptions struct {
	ChainID   string
	Moniker   string
	Genesis   chain.Genesis
	BlockTime time.Duration // CometBFT timeout_commit
	RPCAddr   string        // e.g. tcp://127.0.0.1:26657
	P2PAddr   string        // e.g. tcp://127.0.0.1:26656
	// MempoolSize is the maximum number of pending transactions.
	MempoolSize int
	// Overwrite replaces an existing home's config and genesis.
	Overwrite bool

	// GenesisDoc, when set, is the genesis of an existing network, written
	// as is; Genesis and ChainID are then ignored (ChainID is taken from it).
	GenesisDoc *cmttypes.GenesisDoc
	// PersistentPeers are id@host:port addresses this node always dials.
	PersistentPeers []string
	// StateSync, when set, makes a fresh node restore the application from
	// a peer's snapshot instead of replaying every block.
	StateSync *StateSyncOptions
}

// StateSyncOptions point a joining node at a trusted block of the network.
type StateSyncOptions struct {
	// RPCServers are at least two RPC URLs the light client checks
	// headers against (a primary and a witness; they may be the same node
	// listed twice only in tests).
	RPCServers  []string
	TrustHeight int64
	TrustHash   []byte
	// TrustPeriod bounds how old the trusted header may be (CometBFT's
	// default is a week).
	TrustPeriod time.Duration
}

// ErrExists is returned by Init when the home already holds a genesis.
var ErrExists = errors.New("node home already initialized")

// ConfigPath is the CometBFT config file of a home.
func ConfigPath(home string) string { return filepath.Join(home, "config", "config.toml") }

// GenesisPath is the genesis file of a home.
func GenesisPath(home string) string { return filepath.Join(home, "config", "genesis.json") }

// StateDir is where the application's IAVL store lives.
func StateDir(home string) string { return filepath.Join(home, "data") }

// Init writes config.toml, the node and consensus keys and genesis.json into home.
func Init(home string, o InitOptions) (err error) {
	if o.GenesisDoc != nil {
		o.ChainID = o.GenesisDoc.ChainID
	}
	if o.ChainID == "" {
		return errors.New("chain id is required")
	}
	if _, err := os.Stat(GenesisPath(home)); err == nil && !o.Overwrite {
		return fmt.Errorf("%w: %s", ErrExists, GenesisPath(home))
	}
	if o.GenesisDoc != nil {
		if err := o.GenesisDoc.ValidateAndComplete(); err != nil {
			return fmt.Errorf("genesis document: %w", err)
		}
		if _, err := chain.ParseGenesis(o.GenesisDoc.AppState); err != nil {
			return fmt.Errorf("genesis: %w", err)
		}
	} else if err := o.Genesis.Validate(); err != nil {
		return fmt.Errorf("genesis: %w", err)
	}
	// CometBFT's file helpers panic on I/O errors; keep that inside this package.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("write node files in %s: %v", home, r)
		}
	}()
	for _, d := range []string{home, filepath.Join(home, "config"), filepath.Join(home, "data")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	cfg := DefaultConfig(home, o)
	cmtcfg.WriteConfigFile(ConfigPath(home), cfg)

	if _, err := p2p.LoadOrGenNodeKey(cfg.NodeKeyFile()); err != nil {
		return fmt.Errorf("node key: %w", err)
	}
	pv := privval.LoadOrGenFilePV(cfg.PrivValidatorKeyFile(), cfg.PrivValidatorStateFile())
	if o.GenesisDoc != nil {
		if err := o.GenesisDoc.SaveAs(GenesisPath(home)); err != nil {
			return fmt.Errorf("save genesis: %w", err)
		}
		return nil
	}
	g := o.Genesis
	if len(g.Validators) == 0 {
		// A single-node home: its own consensus key becomes a bootstrap
		// chain validator (no bond, power 1), operated by that same key.
		consensus := ed25519.PrivateKey(pv.Key.PrivKey.Bytes())
		g.Validators = []chain.GenesisValidator{chain.SignGenesisValidator(o.ChainID, consensus, chain.GenesisValidator{
			Moniker: o.Moniker, ConsensusPubKey: consensus.Public().(ed25519.PublicKey),
		})}
	}
	if err := g.ValidateFor(o.ChainID); err != nil {
		return fmt.Errorf("genesis: %w", err)
	}
	appState, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		return fmt.Errorf("encode app genesis: %w", err)
	}
	cp := cmttypes.DefaultConsensusParams()
	// Evidence older than the unbonding period could name a bond already
	// paid out; CometBFT must drop it before the app could no longer slash.
	// CometBFT keeps evidence while it is younger than either bound, so both
	// are the unbonding period.
	cp.Evidence.MaxAgeNumBlocks = int64(g.Params.UnbondingBlocks)
	cp.Evidence.MaxAgeDuration = time.Duration(math.MaxInt64)
	if ms := g.Params.UnbondingBlocks * g.Params.TargetBlockTimeMs; g.Params.UnbondingBlocks < 1<<31 && g.Params.TargetBlockTimeMs < 1<<27 && ms < uint64(math.MaxInt64/int64(time.Millisecond)) {
		cp.Evidence.MaxAgeDuration = time.Duration(ms) * time.Millisecond
	}
	// No validators here: CometBFT takes the first set from InitChain.
	doc := &cmttypes.GenesisDoc{
		ChainID:         o.ChainID,
		GenesisTime:     cmttime.Now(),
		InitialHeight:   1,
		ConsensusParams: cp,
		AppState:        appState,
	}
	if err := doc.ValidateAndComplete(); err != nil {
		return fmt.Errorf("genesis document: %w", err)
	}
	if err := doc.SaveAs(GenesisPath(home)); err != nil {
		return fmt.Errorf("save genesis: %w", err)
	}
	return nil
}

// DefaultConfig is the CometBFT configuration Agora nodes start from.
func DefaultConfig(home string, o InitOptions) *cmtcfg.Config {
	cfg := cmtcfg.DefaultConfig()
	cfg.SetRoot(home)
	if o.Moniker != "" {
		cfg.Moniker = o.Moniker
	}
	if o.BlockTime > 0 {
		cfg.Consensus.TimeoutCommit = o.BlockTime
	}
	if o.RPCAddr != "" {
		cfg.RPC.ListenAddress = o.RPCAddr
	}
	if o.P2PAddr != "" {
		cfg.P2P.ListenAddress = o.P2PAddr
	}
	// A lone node has no peers to exchange addresses with.
	cfg.P2P.PexReactor = false
	cfg.P2P.AllowDuplicateIP = true
	if len(o.PersistentPeers) > 0 {
		cfg.P2P.PersistentPeers = strings.Join(o.PersistentPeers, ",")
		// Networks on one machine or a private range dial loopback and
		// private addresses, which a strict address book refuses.
		cfg.P2P.AddrBookStrict = false
		cfg.P2P.PexReactor = true
	}
	if ss := o.StateSync; ss != nil {
		cfg.StateSync.Enable = true
		cfg.StateSync.RPCServers = ss.RPCServers
		cfg.StateSync.TrustHeight = ss.TrustHeight
		cfg.StateSync.TrustHash = hex.EncodeToString(ss.TrustHash)
		if ss.TrustPeriod > 0 {
			cfg.StateSync.TrustPeriod = ss.TrustPeriod
		}
		// CometBFT's minimum: long enough to hear snapshots from the
		// persistent peers, which are dialed first.
		cfg.StateSync.DiscoveryTime = 5 * time.Second
		// Chunks are up to 8 MiB compressed; allow a slow link per chunk.
		cfg.StateSync.ChunkRequestTimeout = 30 * time.Second
		cfg.StateSync.ChunkFetchers = 4
	}
	// Many benchmark and agent clients hold connections open at once.
	cfg.RPC.MaxOpenConnections = 2048
	cfg.RPC.MaxSubscriptionClients = 200
	cfg.RPC.TimeoutBroadcastTxCommit = 30 * time.Second
	cfg.Mempool.Size = 50_000
	if o.MempoolSize > 0 {
		cfg.Mempool.Size = o.MempoolSize
	}
	cfg.Mempool.CacheSize = 100_000
	cfg.Mempool.MaxTxsBytes = 256 << 20
	cfg.Instrumentation.Prometheus = false
	cfg.LogLevel = "error"
	return cfg
}

// LoadConfig reads home's config.toml the way CometBFT's own CLI does.
func LoadConfig(home string) (*cmtcfg.Config, error) {
	path := ConfigPath(home)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no node config at %s (run 'agora node init' first): %w", path, err)
	}
	v := viper.New()
	v.SetConfigFile(path)
	if err := v.ReadInConfig(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	cfg := cmtcfg.DefaultConfig()
	if err := v.Unmarshal(cfg); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	cfg.SetRoot(home)
	if err := cfg.ValidateBasic(); err != nil {
		return nil, fmt.Errorf("invalid %s: %w", path, err)
	}
	return cfg, nil
}

// NodeID is the p2p node id of a home (hex of its node key's address), the
// id part of an id@host:port peer address.
func NodeID(home string) (string, error) {
	cfg := DefaultConfig(home, InitOptions{})
	nk, err := p2p.LoadNodeKey(cfg.NodeKeyFile())
	if err != nil {
		return "", fmt.Errorf("load node key of %s: %w", home, err)
	}
	return string(nk.ID()), nil
}

// ConsensusPubKey is the ed25519 key a home's node signs votes with.
func ConsensusPubKey(home string) (pub []byte, err error) {
	cfg := DefaultConfig(home, InitOptions{})
	pv, err := loadPV(cfg)
	if err != nil {
		return nil, err
	}
	pk, err := pv.GetPubKey()
	if err != nil {
		return nil, fmt.Errorf("consensus key of %s: %w", home, err)
	}
	return pk.Bytes(), nil
}
