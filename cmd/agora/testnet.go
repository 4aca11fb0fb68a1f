package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/gateway"
	"github.com/agoranet/agora/testnet"
)

func newTestnetCmd() *cobra.Command {
	var (
		validators   int
		explorerPort int
		dir          string
		blockTime    time.Duration
		reset        bool
		services     bool
		statusEvery  time.Duration
		net          netFlags
	)
	cmd := &cobra.Command{
		Use:   "testnet",
		Short: "Run N chain validators as separate node processes on this machine, with one shared genesis",
		Long: `testnet builds a network of --validators chain validators in --home (default ~/.agora/testnet; one
node home each, own node and consensus keys, operator keys in DIR/keys, a
genesis with operator-signed chain validator entries and a funded faucet),
starts each as an 'agora node start --home DIR/nodeI' process on its own
loopback ports with all-to-all persistent peers, prints a table, writes
DIR/testnet.json and waits for blocks. Ctrl-C stops every node it started.

Re-running on an existing --home restarts the same network. A node killed by
hand restarts with 'agora node start --home DIR/nodeI' and catches up.
--services also starts devnet's subnet, miners, a subnet validator and the
gateway against the testnet.`,
		Example: `  agora testnet --validators 4 --home ./testnet
  kill -9 $(jq '.nodes[3].pid' ./testnet/testnet.json)   # the chain goes on
  agora node start --home ./testnet/node3                # and it catches up`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if validators < 1 || validators > testnet.MaxValidators {
				return usageErrorf("--validators %d: want 1..%d", validators, testnet.MaxValidators)
			}
			// --home is the testnet's directory; by default a testnet/
			// beside the user's agora home, never the home itself.
			dir = filepath.Join(defaultHome(), "testnet")
			if cmd.Flags().Changed(flagHome) {
				dir = homeDir(cmd)
			}
			if reset {
				if err := os.RemoveAll(dir); err != nil {
					return fmt.Errorf("reset %s: %w", dir, err)
				}
			}
			if !testnet.Exists(dir) {
				fmt.Fprintf(cmd.ErrOrStderr(), "building a %d-chain-validator testnet in %s…\n", validators, dir)
				if _, err := testnet.Build(dir, testnet.Options{ChainID: "agora-testnet", Validators: validators, BlockTime: blockTime}); err != nil {
					return err
				}
			} else if cmd.Flags().Changed("validators") {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s holds a testnet already: restarting it as it is (--reset builds a new one)\n", dir)
			}
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find the agora binary: %w", err)
			}
			n, err := testnet.Open(dir, exe)
			if err != nil {
				return err
			}
			// Stop on SIGTERM as on Ctrl-C: the nodes are our children.
			ctx, stopSignals := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stopSignals()
			defer n.Stop()
			if err := n.StartAll(); err != nil {
				return err
			}
			// Build chose the ports by binding port 0 and releasing it, so
			// another program may have taken one since: a node that died on
			// a taken port gets fresh ones and is started again.
			for attempt := 0; ; attempt++ {
				waitCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
				err = n.WaitHeight(waitCtx, 1)
				cancel()
				if err == nil || !errors.Is(err, testnet.ErrExited) || attempt == 3 {
					break
				}
				retried := false
				for i := range n.Manifest.Nodes {
					if !n.BindFailed(i) {
						continue
					}
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: a port was taken; choosing new ones\n", n.Manifest.Nodes[i].Moniker)
					if err := n.Rebind(i); err != nil {
						return err
					}
					if err := n.StartNode(i); err != nil {
						return err
					}
					retried = true
				}
				if !retried {
					break
				}
			}
			if err != nil {
				return fmt.Errorf("testnet produced no block: %w", err)
			}
			info := testnetInfo{Manifest: n.Manifest, Dir: dir, Faucet: testnet.Faucet, Password: testnet.Password}
			logger, err := newLogger("warn")
			if err != nil {
				return err
			}
			// The explorer reads every node, so it stays up while any is.
			svc, err := startServices(cmd, dir, &net, explorerPort, services, logger, n.Manifest.RPCs()...)
			if err != nil {
				return err
			}
			defer svc.stop()
			info.ExplorerURL = svc.explorer.URL()
			if network := svc.network; network != nil {
				info.ChatURL = svc.chatLink
				info.OpenAIBaseURL, info.OpenAIAPIKey = network.GatewayURL, network.SessionToken
			}
			if err := printResult(cmd, info, info.print); err != nil {
				return err
			}
			t := time.NewTicker(statusEvery)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					fmt.Fprintln(cmd.ErrOrStderr(), "stopping the testnet…")
					svc.stop()
					n.Stop()
					return nil
				case <-t.C:
					printTestnetStatus(ctx, cmd.ErrOrStderr(), n)
				}
			}
		},
	}
	cmd.Flags().IntVar(&validators, "validators", 4, fmt.Sprintf("chain validators, each a node process (1..%d)", testnet.MaxValidators))
	cmd.Flags().DurationVar(&blockTime, "block-time", time.Second, "block time of a new testnet")
	cmd.Flags().BoolVar(&reset, "reset", false, "wipe an existing --home testnet first")
	cmd.Flags().BoolVar(&services, "services", false, "also run devnet's subnet, miners, subnet validator and gateway")
	cmd.Flags().DurationVar(&statusEvery, "status-every", 10*time.Second, "how often to print node heights")
	cmd.Flags().StringVar(&net.model, "model", "", "with --services: GGUF model the subnet pins (default: the pulled SmolLM2 if present, else a generated untrained model)")
	cmd.Flags().IntVar(&net.miners, "miners", 3, "with --services: honest miners")
	cmd.Flags().Uint64Var(&net.tempo, "tempo", 20, "with --services: subnet tempo in blocks")
	cmd.Flags().IntVar(&net.gatewayPort, "gateway-port", 8080, "with --services: gateway port on 127.0.0.1")
	cmd.Flags().IntVar(&explorerPort, "explorer-port", 8090, "port of the explorer on 127.0.0.1 (0 picks a free one)")
	net.limits = gateway.DefaultLimits
	return cmd
}

type testnetInfo struct {
	*testnet.Manifest
	Dir           string `json:"dir"`
	Faucet        string `json:"faucet_key"`
	Password      string `json:"keystore_password"`
	OpenAIBaseURL string `json:"openai_base_url,omitempty"`
	OpenAIAPIKey  string `json:"openai_api_key,omitempty"`
	ExplorerURL   string `json:"explorer_url"`
	ChatURL       string `json:"chat_url,omitempty"`
}

func (i testnetInfo) print(w io.Writer) error {
	fmt.Fprintf(w, "testnet %s: %d chain validators (manifest %s)\n\n", i.ChainID, len(i.Nodes), testnet.ManifestPath(i.Dir))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MONIKER\tRPC\tP2P\tPID\tHOME")
	for _, n := range i.Nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", n.Moniker, n.RPC, n.P2P, n.PID, n.Home)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nexplorer  %s\n", i.ExplorerURL)
	if i.ChatURL != "" {
		fmt.Fprintf(w, "chat      %s\n", i.ChatURL)
	}
	fmt.Fprintf(w, "\nfaucet key %q in %s (password %q)\n", i.Faucet, testnet.KeysDir(i.Dir), i.Password)
	if i.OpenAIBaseURL != "" {
		fmt.Fprintf(w, "OpenAI base URL %s  API key %s\n", i.OpenAIBaseURL, i.OpenAIAPIKey)
	}
	_, err := fmt.Fprintln(w, "Ctrl-C stops every node.")
	return err
}

func printTestnetStatus(ctx context.Context, w io.Writer, n *testnet.Network) {
	fmt.Fprint(w, "heights:")
	for i, ni := range n.Manifest.Nodes {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		h, err := n.Height(qctx, i)
		cancel()
		switch {
		case errors.Is(err, context.Canceled):
			return
		case err != nil:
			fmt.Fprintf(w, " %s=down", ni.Moniker)
		default:
			fmt.Fprintf(w, " %s=%d", ni.Moniker, h)
		}
	}
	fmt.Fprintln(w)
}
