package devnet

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain"
	"github.com/agoranet/agora/engine"
	"github.com/agoranet/agora/keys"
	"github.com/agoranet/agora/node"
)

// A devnet home's fixed names: its chain, and the funded faucet key with
// its keystore password (a devnet holds nothing worth protecting).
const (
	ChainID  = "agora-devnet"
	Faucet   = "faucet"
	Password = "devnet"
	// FaucetBalance funds experiments; it counts toward the cap like emission.
	FaucetBalance = 1_000_000 * agr.Unit
	// RoyaltyStreamBlocks is the devnet genesis's royalty_stream_blocks (the
	// default is an hour of blocks).
	RoyaltyStreamBlocks = 5
)

// HomeOptions describe the chain a fresh devnet home gets.
type HomeOptions struct {
	RPCPort, P2PPort int // on 127.0.0.1
	BlockTime        time.Duration
}

// Prepare creates the faucet key and node files unless home already holds
// a devnet, and returns the faucet (and its mnemonic when new).
func Prepare(home string, o HomeOptions) (keys.Info, string, error) {
	ks, err := keys.Open(filepath.Join(home, "keys"))
	if err != nil {
		return keys.Info{}, "", err
	}
	if _, err := os.Stat(node.GenesisPath(home)); err == nil {
		faucet, err := ks.Get(Faucet)
		if err != nil {
			return keys.Info{}, "", fmt.Errorf("existing devnet in %s has no faucet key (use --reset): %w", home, err)
		}
		return faucet, "", nil
	}
	faucet, mnemonic, err := ks.Create(Faucet, keys.Coldkey, []byte(Password))
	if errors.Is(err, keys.ErrExists) {
		// A key left by an earlier attempt that failed before the genesis.
		if faucet, err = ks.Get(Faucet); err != nil {
			return keys.Info{}, "", err
		}
	} else if err != nil {
		return keys.Info{}, "", fmt.Errorf("create faucet key: %w", err)
	}
	params := chain.DefaultParams(uint64(o.BlockTime / time.Millisecond))
	// Royalty streams to holders over a few blocks, not an hour, so the
	// status output shows earnings seconds after paid requests settle.
	params.RoyaltyStreamBlocks = RoyaltyStreamBlocks
	g := chain.Genesis{
		Params:   params,
		Accounts: []chain.GenesisAccount{{Address: faucet.Address, Balance: FaucetBalance}},
		Devnet:   true,
	}
	err = node.Init(home, node.InitOptions{
		ChainID: ChainID, Moniker: "devnet", Genesis: g, BlockTime: o.BlockTime,
		RPCAddr: "tcp://127.0.0.1:" + strconv.Itoa(o.RPCPort),
		P2PAddr: "tcp://127.0.0.1:" + strconv.Itoa(o.P2PPort),
	})
	if err != nil {
		return keys.Info{}, "", err
	}
	return faucet, mnemonic, nil
}

// ModelPath picks the model a devnet pins: explicit if given, else pulled
// if that file exists, else an untrained model generated once in home
// (random weights: no network needed). label says which, for people.
func ModelPath(home, explicit, pulled string) (path, label string, err error) {
	if explicit != "" {
		return explicit, explicit, nil
	}
	if _, err := os.Stat(pulled); err == nil {
		return pulled, pulled, nil
	}
	path = filepath.Join(home, "models", "devnet-untrained.gguf")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if err := generate(path, 1); err != nil {
			return "", "", err
		}
	}
	return path, path + " (generated, UNTRAINED: random weights, no network needed)", nil
}

// CheaterModel generates, in home, the other model a cheating miner serves
// under the pinned model's id.
func CheaterModel(home string) (string, error) {
	path := filepath.Join(home, "models", "cheater-untrained.gguf")
	return path, generate(path, 2)
}

func generate(path string, seed uint64) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return engine.Generate(path, engine.Shapes["tiny"], engine.QuantQ8, seed)
}
