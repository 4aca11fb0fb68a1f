package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"
	"github.com/spf13/cobra"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain"
	"github.com/agoranet/agora/client"
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
		genesisFile                        string
		peers, ssRPC                       []string
		trustHeight                        int64
		trustHash                          string
		trustPeriod                        time.Duration
		yes                                bool
		snapInterval                       int64
		snapKeep                           int
	)
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write config.toml, the node and consensus keys, and genesis.json into --home",
		Long: `init prepares a node home: CometBFT config, a node (p2p) key, a consensus
key (priv_validator_key.json, what a chain validator signs blocks with) and
a genesis file in which this node is the only chain validator.

A public chain has no premine. Starting balances (--account) make the
genesis a devnet genesis.

To join an existing network instead, pass its --genesis file and --peers.
With --state-sync-rpc the node restores the application from a peer's
snapshot rather than replaying every block: it needs a trusted block
(--trust-height and --trust-hash, from a source you trust). Without them,
init fetches a recent header from the first RPC server, prints it and asks
you to confirm it (--yes accepts it; with --output json, --yes is required).

--snapshot-interval and --snapshot-keep (in config/app.toml) make this node
serve snapshots to joining nodes.`,
		Example: `  agora node init --home ./n1 --chain-id agora-local --account agora1…=1000agr
  agora node init --home ./n2 --genesis genesis.json --peers ID@10.0.0.1:26656 \
      --state-sync-rpc http://10.0.0.1:26657,http://10.0.0.2:26657 --trust-height 1200 --trust-hash 4F…`,
		Args: exactArgs(0),
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
			if snapInterval < 0 || snapKeep < 0 {
				return usageErrorf("--snapshot-interval and --snapshot-keep must not be negative")
			}
			opts := node.InitOptions{
				ChainID: chainID, Moniker: moniker, Genesis: g, BlockTime: blockTime,
				RPCAddr: rpcAddr, P2PAddr: p2pAddr, Overwrite: force, PersistentPeers: peers,
			}
			if genesisFile != "" {
				if len(accounts) > 0 {
					return usageErrorf("--account cannot be combined with --genesis")
				}
				doc, err := cmttypes.GenesisDocFromFile(genesisFile)
				if err != nil {
					return usageErrorf("--genesis: %v", err)
				}
				opts.GenesisDoc = doc
				chainID = doc.ChainID
			}
			if len(ssRPC) > 0 {
				if opts.GenesisDoc == nil || len(peers) == 0 {
					return usageErrorf("--state-sync-rpc needs --genesis and --peers of the network to join")
				}
				ss, err := stateSyncOptions(cmd, ssRPC, trustHeight, trustHash, trustPeriod, yes)
				if err != nil {
					return err
				}
				opts.StateSync = ss
			} else if trustHeight != 0 || trustHash != "" {
				return usageErrorf("--trust-height and --trust-hash need --state-sync-rpc")
			}
			err := node.Init(home, opts)
			if errors.Is(err, node.ErrExists) {
				return usageErrorf("%v (use --force to overwrite)", err)
			}
			if err != nil {
				return err
			}
			if err := node.WriteAppConfig(home, node.AppConfig{Snapshot: node.SnapshotSettings{Interval: snapInterval, Keep: snapKeep}}); err != nil {
				return err
			}
			out := map[string]string{"home": home, "chain_id": chainID, "genesis": node.GenesisPath(home), "config": node.ConfigPath(home)}
			if id, err := node.NodeID(home); err == nil {
				out["node_id"] = id
			}
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
	cmd.Flags().StringVar(&genesisFile, "genesis", "", "genesis.json of an existing network to join (instead of making a new one)")
	cmd.Flags().StringSliceVar(&peers, "peers", nil, "persistent peers id@host:port,…")
	cmd.Flags().StringSliceVar(&ssRPC, "state-sync-rpc", nil, "RPC URLs url,url,… to state-sync from (two or more; one is used twice)")
	cmd.Flags().Int64Var(&trustHeight, "trust-height", 0, "trusted block height for state sync")
	cmd.Flags().StringVar(&trustHash, "trust-hash", "", "hex hash of the block at --trust-height")
	cmd.Flags().DurationVar(&trustPeriod, "trust-period", 0, "how old the trusted block may be (default CometBFT's 168h)")
	cmd.Flags().BoolVar(&yes, "yes", false, "accept the fetched trusted header without asking")
	def := node.DefaultSnapshotSettings()
	cmd.Flags().Int64Var(&snapInterval, "snapshot-interval", def.Interval, "serve state-sync snapshots: make one every K blocks (0 = off; config/app.toml)")
	cmd.Flags().IntVar(&snapKeep, "snapshot-keep", def.Keep, "how many recent snapshots to keep (config/app.toml)")
	return cmd
}

// trustMargin is how far below the latest block a fetched trusted header
// sits, so a snapshot above it exists and the header is final everywhere.
const trustMargin = 100

// stateSyncOptions builds the state-sync settings, fetching and confirming a
// trusted header when none was given.
func stateSyncOptions(cmd *cobra.Command, rpcs []string, height int64, hash string, period time.Duration, yes bool) (*node.StateSyncOptions, error) {
	if len(rpcs) == 1 {
		// The light client wants a primary and a witness; one server listed
		// twice is trusted alone, which the operator chose by naming one.
		rpcs = []string{rpcs[0], rpcs[0]}
	}
	ss := &node.StateSyncOptions{RPCServers: rpcs, TrustHeight: height, TrustPeriod: period}
	if (height == 0) != (hash == "") {
		return nil, usageErrorf("give both --trust-height and --trust-hash, or neither to fetch one")
	}
	if hash != "" {
		h, err := hex.DecodeString(hash)
		if err != nil || len(h) != 32 {
			return nil, usageErrorf("--trust-hash: want 64 hex digits")
		}
		if height <= 0 {
			return nil, usageErrorf("--trust-height must be positive")
		}
		ss.TrustHash = h
		return ss, nil
	}
	asJSON, err := outputJSON(cmd)
	if err != nil {
		return nil, err
	}
	c, err := client.New(rpcs[0])
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
	defer cancel()
	latest, err := c.Height(ctx)
	if err != nil {
		return nil, fmt.Errorf("fetch trusted header from %s: %w", rpcs[0], err)
	}
	ss.TrustHeight = max(1, latest-trustMargin)
	blk, err := c.Block(ctx, ss.TrustHeight)
	if err != nil {
		return nil, fmt.Errorf("fetch trusted header from %s: %w", rpcs[0], err)
	}
	ss.TrustHash = blk.BlockID.Hash
	w := cmd.ErrOrStderr()
	if asJSON {
		w = cmd.OutOrStdout()
	}
	if asJSON {
		if err := json.NewEncoder(w).Encode(map[string]any{"trust_height": ss.TrustHeight, "trust_hash": fmt.Sprintf("%X", ss.TrustHash), "rpc": rpcs[0]}); err != nil {
			return nil, err
		}
	} else {
		fmt.Fprintf(w, "trusted header from %s:\n  height %d\n  hash   %X\n  time   %s\nCheck it against a source you trust (another operator, an explorer).\n",
			rpcs[0], ss.TrustHeight, ss.TrustHash, blk.Block.Time.UTC().Format(time.RFC3339))
	}
	if yes {
		return ss, nil
	}
	if asJSON {
		return nil, usageErrorf("--output json cannot ask: pass --yes to accept the header above, or --trust-height/--trust-hash")
	}
	fmt.Fprint(w, "trust this header? [y/N] ")
	line, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
		return nil, errors.New("trusted header not confirmed")
	}
	return ss, nil
}

func newNodeStartCmd() *cobra.Command {
	var logLevel, metricsAddr, explorerAddr string
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Run the node in --home until interrupted",
		Long: `start runs the node in --home until interrupted.

--metrics ADDR serves Prometheus metrics on http://ADDR/metrics: CometBFT's
own (cometbft_*) and the chain application's (agora_chain_txs_total by
message type and result code, agora_chain_block_seconds, agora_chain_height,
agora_chain_supply_base_units by kind). Empty (the default) serves none.

--explorer ADDR serves the explorer on http://ADDR/: blocks, transactions,
accounts, subnets and their metagraphs, chain validators and channels, as
web pages and as JSON under /api/ (docs/explorer.md). It reads this node's
RPC.`,
		Example: `  agora node start --home ./n1 --metrics 127.0.0.1:26660 --explorer 127.0.0.1:8090`,
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			n, err := node.Start(homeDir(cmd), node.StartOptions{Logger: logger, MetricsAddr: metricsAddr})
			if err != nil {
				return err
			}
			logger.Info("node started", "home", homeDir(cmd), "rpc", n.RPCURL())
			if u := n.MetricsURL(); u != "" {
				logger.Info("serving metrics", "url", u)
			}
			if explorerAddr != "" {
				ex, err := listenAndServeExplorer(explorerAddr, "", logger, n.RPCURL())
				if err != nil {
					n.Stop()
					return err
				}
				defer ex.Close()
				fmt.Fprintf(cmd.OutOrStdout(), "explorer  %s\n", ex.URL())
			}
			<-cmd.Context().Done()
			logger.Info("stopping node")
			return n.Stop()
		},
	}
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.Flags().StringVar(&metricsAddr, "metrics", "", "serve Prometheus metrics on http://`ADDR`/metrics, e.g. 127.0.0.1:26660 (empty: off)")
	cmd.Flags().StringVar(&explorerAddr, "explorer", "", "serve the explorer on http://`ADDR`/, e.g. 127.0.0.1:8090 (empty: off)")
	return cmd
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usageErrorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}
