package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/validator"
	"github.com/agoranet/agora/yuma"
)

func newNeuronCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "neuron", Short: "Register hotkeys on subnets and publish where they serve"}
	cmd.AddCommand(txCommands(neuronRegister, neuronServe)...)
	return cmd
}

var (
	neuronRegister = txSpec{
		use:    "register NETUID --from COLDKEY --hotkey HOTKEY",
		short:  "Burn the registration price from COLDKEY and give HOTKEY a UID",
		args:   1,
		from:   "coldkey that pays the burn and owns the hotkey",
		hotkey: "hotkey to register",
		flags:  func(f *pflag.FlagSet) { f.String("max-burn", "", "refuse if the burn is above this (e.g. 2agr)") },
		build: func(r *txRun, a []string) []*tx.Msg {
			netuid, maxBurn := r.netuid(a[0]), r.optionalAmount("max-burn")
			cold, hot := r.signPair()
			chainID := r.chainID()
			if r.err != nil {
				return nil
			}
			return msgs(tx.NeuronRegister(netuid, tx.ProveHotkey(hot, chainID, netuid, signerAddress(cold)), maxBurn))
		},
	}
	neuronServe = txSpec{
		use:    "serve NETUID --hotkey HOTKEY --endpoint URL",
		short:  "Publish a neuron's endpoint, X25519 encryption key and served model (signed by the hotkey)",
		args:   1,
		hotkey: "the neuron's hotkey (signs and pays the fee)",
		flags: func(f *pflag.FlagSet) {
			f.String("endpoint", "", "URL the neuron serves on")
			f.String("x25519", "", "X25519 public key for end-to-end encryption, hex")
			f.String("model-id", "", "served model: sha256 of the GGUF file, hex")
		},
		build: func(r *txRun, a []string) []*tx.Msg {
			netuid := r.netuid(a[0])
			var xk []byte
			if x := r.flag("x25519"); x != "" {
				var err error
				if xk, err = hex.DecodeString(x); err != nil || len(xk) != 32 {
					r.usagef("--x25519 must be 64 hex characters")
				}
			}
			r.sign("hotkey")
			return msgs(tx.NeuronServe(netuid, r.flag("endpoint"), xk, r.flag("model-id")))
		},
	}
)

// signerAddress is the address of a key.
func signerAddress(k ed25519.PrivateKey) address.Address {
	return address.FromPubKey(k.Public().(ed25519.PublicKey))
}

func newStakeCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "stake", Short: "Stake to a hotkey on a subnet, withdraw, and set a validator's take"}
	cmd.AddCommand(txCommands(stakeMove("add", "Move AMOUNT from your coldkey into HOTKEY's stake pool on NETUID", tx.StakeAdd),
		stakeMove("remove", "Withdraw AMOUNT of your stake in HOTKEY's pool on NETUID to your coldkey", tx.StakeRemove), stakeSetTake)...)
	return cmd
}

func stakeMove(use, short string, msg func(address.Address, uint32, uint64) *tx.Msg) txSpec {
	return txSpec{
		use:   use + " NETUID HOTKEY AMOUNT --from COLDKEY",
		short: short,
		args:  3,
		from:  "your coldkey",
		build: func(r *txRun, a []string) []*tx.Msg {
			netuid, hot, amount := r.netuid(a[0]), r.address(a[1]), r.amount(a[2])
			r.sign("from")
			return msgs(msg(hot, netuid, amount))
		},
	}
}

var stakeSetTake = txSpec{
	use:   "set-take HOTKEY PERCENT --from OWNER",
	short: "Set the share of dividends a validator hotkey keeps before its delegators (e.g. 18 or 9.5)",
	args:  2,
	from:  "the hotkey's owner coldkey",
	build: func(r *txRun, a []string) []*tx.Msg {
		hot := r.address(a[0])
		pct, err := yuma.ParseFixed(strings.TrimSuffix(a[1], "%"))
		if err != nil {
			r.usagef("take %q: a percentage like 18 or 9.5", a[1])
		}
		bps := pct.MulU64(100)
		if bps > 10_000 {
			r.usagef("take %s%% is above 100%%", a[1])
		}
		r.sign("from")
		return msgs(tx.SetTake(hot, uint32(bps)))
	},
}

func newWeightsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "weights",
		Short: "Set weights, or commit them and reveal a tempo later",
		Long: `A validator scores UIDs with weights (uid:value pairs, values 0..65535).
On subnets with commit-reveal (the default), 'commit' stores a hash and
saves the weights and salt under --home/commits; 'reveal' publishes them in
the reveal window reveal_period tempos later.`,
	}
	cmd.AddCommand(txCommands(weightsSet("set"), weightsSet("commit"), weightsReveal)...)
	return cmd
}

func parseWeights(s string) ([]uint32, []uint32, error) {
	var uids, vals []uint32
	for _, part := range strings.Split(s, ",") {
		u, v, ok := strings.Cut(strings.TrimSpace(part), ":")
		uid, err1 := strconv.ParseUint(u, 10, 16)
		val, err2 := strconv.ParseUint(v, 10, 16)
		if !ok || err1 != nil || err2 != nil {
			return nil, nil, usageErrorf("weights %q: want uid:value pairs like 1:65535,2:100", part)
		}
		uids, vals = append(uids, uint32(uid)), append(vals, uint32(val))
	}
	return uids, vals, nil
}

// commitPath is where 'weights commit' (and 'agora validator') keep a
// hotkey's pending commit for the reveal.
func commitPath(cmd *cobra.Command, netuid uint32, hotkey string) string {
	return filepath.Join(homeDir(cmd), "commits", fmt.Sprintf("%d-%s.json", netuid, hotkey))
}

func weightsSet(mode string) txSpec {
	short := "Set weights directly (subnets with commit-reveal off)"
	if mode == "commit" {
		short = "Commit a hash of weights; the weights and salt are saved for 'weights reveal'"
	}
	return txSpec{
		use:    mode + " NETUID --hotkey HOTKEY --weights UID:VALUE,…",
		short:  short,
		args:   1,
		hotkey: "the validator's hotkey",
		flags: func(f *pflag.FlagSet) {
			f.String("weights", "", "uid:value pairs, values 0..65535")
			f.Uint64("version-key", 0, "weights version key")
		},
		build: func(r *txRun, a []string) []*tx.Msg {
			netuid := r.netuid(a[0])
			uids, vals, err := parseWeights(r.flag("weights"))
			r.fail(err)
			version, _ := r.cmd.Flags().GetUint64("version-key")
			priv := r.sign("hotkey")
			if mode == "set" || r.err != nil {
				return msgs(tx.WeightsSet(netuid, uids, vals, version))
			}
			c, err := validator.NewCommit(netuid, uids, vals, version)
			if r.fail(err) {
				// Saved before sending: a commit whose salt is lost can never be revealed.
				r.fail(validator.SaveCommit(commitPath(r.cmd, netuid, r.flag("hotkey")), c))
			}
			if r.err != nil {
				return nil
			}
			return msgs(c.CommitMsg(signerAddress(priv)))
		},
	}
}

var weightsReveal = txSpec{
	use:    "reveal NETUID --hotkey HOTKEY",
	short:  "Reveal the weights saved by 'weights commit'",
	args:   1,
	hotkey: "the validator's hotkey",
	build: func(r *txRun, a []string) []*tx.Msg {
		netuid := r.netuid(a[0])
		if r.err != nil {
			return nil
		}
		hotkey := r.flag("hotkey")
		c, err := validator.LoadCommit(commitPath(r.cmd, netuid, hotkey))
		if errors.Is(err, os.ErrNotExist) {
			err = notFoundError{fmt.Errorf("no saved commit for %s on subnet %d (run 'agora weights commit' first)", hotkey, netuid)}
		}
		r.fail(err)
		r.sign("hotkey")
		if r.err != nil {
			return nil
		}
		return msgs(c.RevealMsg())
	},
}

// metagraphRow is one UID in 'agora query metagraph'.
type metagraphRow struct {
	UID             int     `json:"uid"`
	Hotkey          string  `json:"hotkey"`
	Coldkey         string  `json:"coldkey"`
	Stake           uint64  `json:"stake"`
	Active          bool    `json:"active"`
	ValidatorPermit bool    `json:"validator_permit"`
	Consensus       float64 `json:"consensus"`
	Incentive       float64 `json:"incentive"`
	Dividends       float64 `json:"dividends"`
	ValidatorTrust  float64 `json:"validator_trust"`
	Emission        uint64  `json:"emission"`
	LastUpdate      uint64  `json:"last_update"`
	RegisteredAt    uint64  `json:"registered_at"`
	Endpoint        string  `json:"endpoint"`
	ModelID         string  `json:"model_id"`
}

// fraction renders a Q32.32 chain value for display (never fed back to consensus).
func displayFraction(v uint64) float64 {
	f, _ := strconv.ParseFloat(yuma.Fixed(v).String(), 64)
	return f
}

// metagraphOut is 'agora query metagraph' under --output json.
type metagraphOut struct {
	Netuid  uint32         `json:"netuid"`
	Height  int64          `json:"height"`
	Neurons []metagraphRow `json:"neurons"`
	subnet  *tx.Subnet
}

func newQueryMetagraphCmd() *cobra.Command {
	var netuid uint32
	var height int64
	cmd := readCommand(&cobra.Command{
		Use:   "metagraph --netuid N",
		Short: "Show every UID of a subnet: stake, permits, consensus, incentive, dividends, emission, endpoint",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if netuid == 0 {
				return usageErrorf("--netuid is required")
			}
			return show(cmd, func(ctx context.Context, c *client.Client) (metagraphOut, error) {
				mg, err := c.Metagraph(ctx, netuid, height)
				if err != nil {
					return metagraphOut{}, notFoundWhen(err, "not found")
				}
				rows := make([]metagraphRow, len(mg.Neurons))
				for uid, n := range mg.Neurons {
					rows[uid] = metagraphRow{
						UID: uid, Hotkey: addrString(n.Hotkey), Coldkey: addrString(n.Coldkey), Stake: mg.Stake[uid],
						Active: n.Active, ValidatorPermit: n.ValidatorPermit, Consensus: displayFraction(n.Consensus),
						Incentive: displayFraction(n.Incentive), Dividends: displayFraction(n.Dividends), ValidatorTrust: displayFraction(n.ValidatorTrust),
						Emission: n.Emission, LastUpdate: n.LastUpdate, RegisteredAt: n.RegisteredAt, Endpoint: n.Endpoint, ModelID: n.ModelId,
					}
				}
				return metagraphOut{netuid, mg.Height, rows, mg.Subnet}, nil
			}, func(w io.Writer, out metagraphOut) error {
				s := out.subnet
				fmt.Fprintf(w, "subnet %d %q at height %d: %d UIDs, started %v, tempo %d\n", netuid, s.Name, out.Height, s.N, s.Started, s.Params.Tempo)
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "UID\tHOTKEY\tSTAKE\tVPERMIT\tCONSENSUS\tINCENTIVE\tDIVIDENDS\tTRUST\tEMISSION\tENDPOINT")
				for _, r := range out.Neurons {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%v\t%.4f\t%.4f\t%.4f\t%.4f\t%s\t%s\n", r.UID, r.Hotkey, agr.Format(r.Stake), r.ValidatorPermit,
						r.Consensus, r.Incentive, r.Dividends, r.ValidatorTrust, agr.Format(r.Emission), r.Endpoint)
				}
				return tw.Flush()
			})
		},
	}, nil)
	cmd.Flags().Uint32Var(&netuid, "netuid", 0, "subnet")
	cmd.Flags().Int64Var(&height, "height", 0, "read at this height (default: latest)")
	return cmd
}
