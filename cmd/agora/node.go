package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain"
	"github.com/agoranet/agora/node"
)

func newNodeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Initialize and run a chain node",
	}
	cmd.AddCommand(newNodeInitCmd(), newNodeStartCmd())
	return cmd
}

func newNodeInitCmd() *cobra.Command {
	var (
		chainID, moniker, rpcAddr, p2pAddr string
		blockTime                          time.Duration
		accounts                           []string
		force                              bool
	)
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write config.toml, node and validator keys, and genesis.json into --home",
		Long: `init prepares a node home: CometBFT config, a node key, a validator key
and a genesis file in which this node is the only validator.

A public chain has no premine. Starting balances (--account) make the
genesis a devnet genesis.`,
		Example: `  agora node init --home ./n1 --chain-id agora-local --account agora1…=1000agr`,
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			home := homeDir(cmd)
			g := chain.Genesis{Params: chain.DefaultParams(uint64(blockTime / time.Millisecond))}
			for _, a := range accounts {
				addrText, amountText, ok := strings.Cut(a, "=")
				if !ok {
					return usageErrorf("--account %q: want ADDRESS=AMOUNT", a)
				}
				addr, err := address.Parse(addrText)
				if err != nil {
					return usageErrorf("--account: %v", err)
				}
				amount, err := agr.Parse(amountText)
				if err != nil {
					return usageErrorf("--account: %v", err)
				}
				g.Accounts = append(g.Accounts, chain.GenesisAccount{Address: addr, Balance: amount})
				g.Devnet = true
			}
			err := node.Init(home, node.InitOptions{
				ChainID: chainID, Moniker: moniker, Genesis: g, BlockTime: blockTime,
				RPCAddr: rpcAddr, P2PAddr: p2pAddr, Overwrite: force,
			})
			if errors.Is(err, node.ErrExists) {
				return usageErrorf("%v (use --force to overwrite)", err)
			}
			if err != nil {
				return err
			}
			out := map[string]string{"home": home, "chain_id": chainID, "genesis": node.GenesisPath(home), "config": node.ConfigPath(home)}
			return printResult(cmd, out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "initialized %s for chain %s\n  config  %s\n  genesis %s\nstart it with: agora node start --home %s\n",
					home, chainID, node.ConfigPath(home), node.GenesisPath(home), home)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&chainID, "chain-id", "agora-local", "chain identifier")
	cmd.Flags().StringVar(&moniker, "moniker", "agora-node", "human-readable node name")
	cmd.Flags().DurationVar(&blockTime, "block-time", time.Second, "target block time (CometBFT timeout_commit)")
	cmd.Flags().StringVar(&rpcAddr, "rpc-addr", "tcp://127.0.0.1:26657", "CometBFT RPC listen address")
	cmd.Flags().StringVar(&p2pAddr, "p2p-addr", "tcp://127.0.0.1:26656", "CometBFT P2P listen address")
	cmd.Flags().StringArrayVar(&accounts, "account", nil, "genesis balance ADDRESS=AMOUNT (repeatable; makes a devnet genesis)")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing config and genesis")
	return cmd
}

func newNodeStartCmd() *cobra.Command {
	var logLevel string
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Run the node in --home until interrupted",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			n, err := node.Start(homeDir(cmd), node.StartOptions{Logger: logger})
			if err != nil {
				return err
			}
			logger.Info("node started", "home", homeDir(cmd), "rpc", n.RPCURL())
			<-cmd.Context().Done()
			logger.Info("stopping node")
			return n.Stop()
		},
	}
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usageErrorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}
