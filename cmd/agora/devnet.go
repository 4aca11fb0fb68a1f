package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/devnet"
	"github.com/agoranet/agora/gateway"
	"github.com/agoranet/agora/node"
)

const (
	devnetChainID  = devnet.ChainID
	devnetFaucet   = devnet.Faucet
	devnetPassword = devnet.Password
)

func newDevnetCmd() *cobra.Command {
	var (
		rpcPort, p2pPort int
		explorerPort     int
		blockTime        time.Duration
		reset, keep      bool
		statusEvery      time.Duration
		chainOnly        bool
		net              netFlags
	)
	cmd := &cobra.Command{
		Use:   "devnet",
		Short: "Run a fresh single-node chain with a subnet, miners, a subnet validator and a gateway, offline",
		Long: `devnet starts a complete local chain in one command: genesis with a funded
faucet key, one chain validator, 1-second blocks, RPC on 127.0.0.1:26657.

Without --home it runs in a temporary directory removed on exit (unless
--keep). With --home it reuses that devnet across restarts (--reset wipes it).
Stop it with Ctrl-C.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			home := homeDir(cmd)
			temporary := !cmd.Flags().Changed(flagHome) && os.Getenv("AGORA_HOME") == ""
			if temporary {
				dir, err := os.MkdirTemp("", "agora-devnet-")
				if err != nil {
					return fmt.Errorf("create devnet home: %w", err)
				}
				home = dir
				if !keep {
					defer os.RemoveAll(dir)
				}
			} else if reset {
				if err := os.RemoveAll(home); err != nil {
					return fmt.Errorf("reset %s: %w", home, err)
				}
			}
			ports := []int{rpcPort, p2pPort, explorerPort}
			if !chainOnly {
				ports = append(ports, net.gatewayPort)
			}
			if err := checkPortsFree(ports...); err != nil {
				return err
			}
			logger, err := newLogger("warn")
			if err != nil {
				return err
			}
			faucet, mnemonic, err := devnet.Prepare(home, devnet.HomeOptions{RPCPort: rpcPort, P2PPort: p2pPort, BlockTime: blockTime})
			if err != nil {
				return err
			}
			n, err := node.Start(home, node.StartOptions{Logger: logger})
			if err != nil {
				return err
			}
			defer n.Stop()
			ctx := cmd.Context()
			waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err = n.WaitForHeight(waitCtx, 1)
			cancel()
			if err != nil {
				return fmt.Errorf("devnet produced no block: %w", err)
			}
			info := devnetInfo{
				ChainID: devnetChainID, Home: home, RPC: n.RPCURL(),
				Faucet: devnetKey{Name: devnetFaucet, Address: faucet.Address.String(), Mnemonic: mnemonic, Password: devnetPassword},
			}
			c, err := client.New(n.RPCURL())
			if err != nil {
				return err
			}
			svc, err := startServices(cmd, home, &net, explorerPort, !chainOnly, logger, n.RPCURL())
			if err != nil {
				return err
			}
			defer svc.stop()
			network := svc.network
			info.ExplorerURL = svc.explorer.URL()
			if network != nil {
				info.Model, info.ChatURL = svc.model, svc.chatLink
				info.OpenAIBaseURL, info.OpenAIAPIKey = network.GatewayURL, network.SessionToken
				for _, p := range network.Participants {
					info.Participants = append(info.Participants, devnetParticipant{p.Role, p.Name, p.Hotkey.String(), p.Endpoint})
				}
				if r, err := readDevnetRoyalties(ctx, c, network); err == nil {
					info.Royalties = r
				} else {
					logger.Warn("devnet royalties", "err", err.Error())
				}
			}
			if err := printResult(cmd, info, info.print); err != nil {
				return err
			}
			t := time.NewTicker(statusEvery)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					fmt.Fprintln(cmd.ErrOrStderr(), "stopping devnet…")
					svc.stop()
					return n.Stop()
				case <-t.C:
					printDevnetStatus(ctx, cmd.ErrOrStderr(), c, n.Height(), network)
				}
			}
		},
	}
	cmd.Flags().IntVar(&rpcPort, "rpc-port", 26657, "CometBFT RPC port on 127.0.0.1")
	cmd.Flags().IntVar(&p2pPort, "p2p-port", 26656, "CometBFT P2P port on 127.0.0.1")
	cmd.Flags().IntVar(&explorerPort, "explorer-port", 8090, "port of the explorer on 127.0.0.1")
	cmd.Flags().DurationVar(&blockTime, "block-time", time.Second, "block time")
	cmd.Flags().BoolVar(&reset, "reset", false, "wipe an existing --home devnet first")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the temporary home after exit")
	cmd.Flags().DurationVar(&statusEvery, "status-every", 5*time.Second, "how often to print the status table")
	cmd.Flags().BoolVar(&chainOnly, "chain-only", false, "run only the chain: no subnet, miners or validator")
	cmd.Flags().StringVar(&net.model, "model", "", "GGUF model the subnet pins and miners serve (default: the pulled SmolLM2 if present, else a generated untrained model)")
	cmd.Flags().IntVar(&net.miners, "miners", 3, "honest miners")
	cmd.Flags().BoolVar(&net.cheater, "cheater", false, "add a miner that serves another model under the pinned model's id")
	cmd.Flags().Uint64Var(&net.tempo, "tempo", 20, "subnet tempo in blocks")
	cmd.Flags().IntVar(&net.gatewayPort, "gateway-port", 8080, "port of the OpenAI-compatible gateway on 127.0.0.1")
	cmd.Flags().IntVar(&net.limits.Concurrent, "gateway-max-concurrent", gateway.DefaultLimits.Concurrent, "requests one payer may have in flight at the gateway (0: unlimited)")
	cmd.Flags().Float64Var(&net.limits.PerSecond, "gateway-rate", gateway.DefaultLimits.PerSecond, "requests per second one payer may sustain at the gateway (0: unlimited)")
	cmd.Flags().IntVar(&net.limits.Burst, "gateway-burst", gateway.DefaultLimits.Burst, "requests one payer may send at once above the rate")
	return cmd
}

type devnetKey struct {
	Name     string `json:"name"`
	Address  string `json:"address"`
	Mnemonic string `json:"mnemonic,omitempty"`
	Password string `json:"keystore_password"`
}

type devnetParticipant struct {
	Role     string `json:"role"`
	Name     string `json:"name"`
	Hotkey   string `json:"hotkey"`
	Endpoint string `json:"endpoint,omitempty"`
}

type devnetInfo struct {
	ChainID       string              `json:"chain_id"`
	Home          string              `json:"home"`
	RPC           string              `json:"rpc"`
	ExplorerURL   string              `json:"explorer_url"`
	ChatURL       string              `json:"chat_url,omitempty"`
	Faucet        devnetKey           `json:"faucet"`
	Model         string              `json:"model,omitempty"`
	OpenAIBaseURL string              `json:"openai_base_url,omitempty"`
	OpenAIAPIKey  string              `json:"openai_api_key,omitempty"`
	Participants  []devnetParticipant `json:"participants,omitempty"`
	// Royalties are the pinned model's and its dataset's holders, with
	// their figures at start; the periodic status prints them as they grow.
	Royalties *devnetRoyalties `json:"royalties,omitempty"`
}

// devnetRoyalties is what the devnet's pinned model and the dataset it
// cites have earned, and what each holder can claim, in base units.
type devnetRoyalties struct {
	Height      int64  `json:"height"`
	ModelID     string `json:"model_id"`
	RoyaltyBps  uint32 `json:"royalty_bps"`
	DataBps     uint32 `json:"data_bps"`
	ModelEarned uint64 `json:"model_earned"` // credited to the model's shareholders
	DataPaid    uint64 `json:"data_paid"`    // passed on to the cited dataset
	// Shareholders are the model's owner (the faucet), then "shareholder".
	Shareholders  []devnetHolder `json:"shareholders"`
	DatasetRoot   string         `json:"dataset_root"`
	DatasetEarned uint64         `json:"dataset_earned"`
	Contributors  []devnetHolder `json:"contributors"`
}

// devnetHolder is one holder's position: Shares are model shares or
// dataset weight; Earned is what it claimed plus what it can claim.
type devnetHolder struct {
	Name      string `json:"name"`
	Address   string `json:"address"`
	Shares    uint64 `json:"shares"`
	Earned    uint64 `json:"earned"`
	Claimable uint64 `json:"claimable"`
}

// readDevnetRoyalties reads the positions devnet.Start registered.
func readDevnetRoyalties(ctx context.Context, c *client.Client, network *devnet.Network) (*devnetRoyalties, error) {
	m, err := c.Model(ctx, network.ModelID, false)
	if err != nil {
		return nil, err
	}
	r := &devnetRoyalties{ModelID: network.ModelID, RoyaltyBps: m.RoyaltyBps, DataBps: m.DataBps,
		ModelEarned: m.GetPool().GetEarned(), DataPaid: m.DataPaid, DatasetRoot: hex.EncodeToString(network.DatasetRoot)}
	holder := func(name string, a address.Address, p *client.Position) devnetHolder {
		r.Height = max(r.Height, p.Height)
		return devnetHolder{Name: name, Address: a.String(), Shares: p.Holding.GetShares(),
			Earned: agr.SaturatingAdd(p.Holding.GetClaimed(), p.Claimable), Claimable: p.Claimable}
	}
	for i, a := range network.ModelShareholders {
		p, err := c.ModelPosition(ctx, network.ModelID, a, false)
		if err != nil {
			return nil, err
		}
		name := "shareholder"
		if i == 0 {
			name = "owner"
		}
		r.Shareholders = append(r.Shareholders, holder(name, a, p))
	}
	for i, a := range network.Contributors {
		p, err := c.DatasetPosition(ctx, network.DatasetRoot, a, false)
		if err != nil {
			return nil, err
		}
		r.DatasetEarned = p.Pool.GetEarned()
		r.Contributors = append(r.Contributors, holder(fmt.Sprintf("contributor%d", i+1), a, p))
	}
	return r, nil
}

// print is the status's royalty block: earnings grow as the subnet's paid
// traffic settles at its epochs and streams in over royalty_stream_blocks.
func (r *devnetRoyalties) print(w io.Writer) {
	fmt.Fprintf(w, "  royalties: model %s… takes %s of revenue, %s of that for data: royalty %s, of which dataset %s… %s\n",
		r.ModelID[:min(12, len(r.ModelID))], bps(r.RoyaltyBps), bps(r.DataBps), agr.Format(agr.SaturatingAdd(r.ModelEarned, r.DataPaid)),
		r.DatasetRoot[:min(12, len(r.DatasetRoot))], agr.Format(r.DatasetEarned))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  HOLDER\tOF\tSHARES\tEARNED\tCLAIMABLE")
	for _, h := range r.Shareholders {
		fmt.Fprintf(tw, "  %s\tmodel\t%d\t%s\t%s\n", h.Name, h.Shares, agr.Format(h.Earned), agr.Format(h.Claimable))
	}
	for _, h := range r.Contributors {
		fmt.Fprintf(tw, "  %s\tdataset\t%d\t%s\t%s\n", h.Name, h.Shares, agr.Format(h.Earned), agr.Format(h.Claimable))
	}
	tw.Flush()
}

func (d devnetInfo) print(w io.Writer) error {
	mn := d.Faucet.Mnemonic
	if mn == "" {
		mn = "(unchanged from the first run of this home)"
	}
	if _, err := fmt.Fprintf(w, "Agora devnet is running. Open in a browser:\n\n  explorer  %s\n", d.ExplorerURL); err != nil {
		return err
	}
	if d.ChatURL != "" {
		fmt.Fprintf(w, "  chat      %s\n", d.ChatURL)
	}
	_, err := fmt.Fprintf(w, `
  chain id   %s
  rpc        %s
  home       %s
  faucet     %s  (key %q, keystore password %q)
  mnemonic   %s

Try it (another terminal):
  export AGORA_HOME=%s AGORA_PASSWORD=%s
  agora keys new alice
  agora tx transfer --from faucet alice 10agr
  agora query account alice

`, d.ChainID, d.RPC, d.Home, d.Faucet.Address, d.Faucet.Name, d.Faucet.Password, mn, d.Home, d.Faucet.Password)
	if err != nil {
		return err
	}
	if d.Model != "" {
		fmt.Fprintf(w, "\nSubnet %d serves %s\n", devnet.Netuid, d.Model)
		for _, p := range d.Participants {
			fmt.Fprintf(w, "  %-9s %-10s %s %s\n", p.Role, p.Name, p.Hotkey, p.Endpoint)
		}
		fmt.Fprintf(w, "Watch it: agora query metagraph --netuid %d\n", devnet.Netuid)
		if r := d.Royalties; r != nil {
			fmt.Fprintf(w, "The model pays %s of paid revenue to its shareholders and dataset contributors;\nthe status below shows them earning. Claim: agora model claim %s --from shareholder\n",
				bps(r.RoyaltyBps), r.ModelID)
		}
		fmt.Fprintf(w, "\nChat with it through any OpenAI client; the key is a session key paying from the faucet's channel (cap 100 AGR):\n")
		fmt.Fprintf(w, "export OPENAI_BASE_URL=%s\nexport OPENAI_API_KEY=%s\n", d.OpenAIBaseURL, d.OpenAIAPIKey)
	}
	_, err = fmt.Fprintln(w, "\nCtrl-C stops the devnet.")
	return err
}

func checkPortsFree(ports ...int) error {
	for _, p := range ports {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			return fmt.Errorf("port %d on 127.0.0.1 is taken (another devnet running?); choose another with --rpc-port/--p2p-port: %w", p, err)
		}
		l.Close()
	}
	return nil
}

func printDevnetStatus(ctx context.Context, w io.Writer, c *client.Client, height int64, network *devnet.Network) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, _, err := c.Supply(ctx, false)
	if err != nil {
		fmt.Fprintf(w, "height %d\n", height)
		return
	}
	fmt.Fprintf(w, "height %d  supply %s  minted %s  burned %s\n",
		height, agr.Format(s.Genesis+s.Minted-s.Burned), agr.Format(s.Minted), agr.Format(s.Burned))
	if network == nil {
		return
	}
	mg, err := c.Metagraph(ctx, devnet.Netuid, 0)
	if err != nil {
		return
	}
	scores := map[int]float64{}
	for _, sc := range network.Validator.Scores() {
		scores[sc.UID] = sc.EMA
	}
	roles := map[string]string{}
	for _, p := range network.Participants {
		roles[p.Hotkey.String()] = p.Name
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  UID\tNAME\tSTAKE\tSCORE\tINCENTIVE\tDIVIDENDS\tLAST EPOCH EMISSION")
	for uid, n := range mg.Neurons {
		name := roles[addrString(n.Hotkey)]
		if uid == 0 {
			name = "owner"
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%.3f\t%.4f\t%.4f\t%s\n", uid, name, agr.Format(mg.Stake[uid]), scores[uid],
			displayFraction(n.Incentive), displayFraction(n.Dividends), agr.Format(n.Emission))
	}
	tw.Flush()
	if r, err := readDevnetRoyalties(ctx, c, network); err == nil {
		r.print(w)
	}
}
