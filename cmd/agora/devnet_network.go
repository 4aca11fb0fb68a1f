package main

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/devnet"
	"github.com/agoranet/agora/engine"
	"github.com/agoranet/agora/gateway"
	"github.com/agoranet/agora/keys"
)

type netFlags struct {
	model       string
	miners      int
	cheater     bool
	tempo       uint64
	gatewayPort int
	limits      gateway.Limits // per payer at the gateway
	explorerURL string         // the explorer the chat page reads miners' keys from
}

func startNetwork(cmd *cobra.Command, c *client.Client, home string, f netFlags, logger *slog.Logger) (*devnet.Network, string, error) {
	// --model, else the default pulled model in the user's home, else a
	// generated untrained model in the devnet home.
	path, label, err := devnet.ModelPath(home, f.model, filepath.Join(defaultHome(), "models", filepath.Base(engine.DefaultModelURL)))
	if err != nil {
		return nil, "", err
	}
	m, err := engine.Load(path)
	if err != nil {
		return nil, "", err
	}
	var cheat *engine.Model
	if f.cheater {
		cp, err := devnet.CheaterModel(home)
		if err != nil {
			return nil, "", err
		}
		if cheat, err = engine.Load(cp); err != nil {
			return nil, "", err
		}
	}
	ks, err := keys.Open(filepath.Join(home, "keys"))
	if err != nil {
		return nil, "", err
	}
	faucet, err := ks.Unlock(devnetFaucet, []byte(devnetPassword))
	if err != nil {
		return nil, "", fmt.Errorf("unlock the faucet: %w", err)
	}
	fmt.Fprintln(cmd.ErrOrStderr(), "registering subnet 1, miners and a validator…")
	n, err := devnet.Start(cmd.Context(), devnet.Options{Chain: c, Faucet: faucet, Keystore: ks, Password: []byte(devnetPassword),
		Model: m, Cheat: cheat, Miners: f.miners, Tempo: f.tempo, Interval: 3 * time.Second, Logger: logger,
		GatewayAddr: fmt.Sprintf("127.0.0.1:%d", f.gatewayPort), LedgerPath: filepath.Join(home, "gateway-ledger.jsonl"),
		GatewayLimits: &f.limits, ExplorerURL: f.explorerURL, CommitPath: filepath.Join(home, "commits", fmt.Sprintf("%d-validator.json", devnet.Netuid))})
	if err != nil {
		return nil, "", err
	}
	return n, label, nil
}
