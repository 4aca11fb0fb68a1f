package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/subnet"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/yuma"
)

func newNeuronCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "neuron", Short: "Register hotkeys on subnets and publish where they serve"}
	cmd.AddCommand(newNeuronRegisterCmd(), newNeuronServeCmd())
	return cmd
}

func newNeuronRegisterCmd() *cobra.Command {
	var from, hotkey string
	cmd := &cobra.Command{
		Use:   "register NETUID --from COLDKEY --hotkey HOTKEY",
		Short: "Burn the registration price from COLDKEY and give HOTKEY a UID",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			netuid, err := parseNetuid(args[0])
			if err != nil {
				return err
			}
			maxBurn, err := optionalAmount(cmd, "max-burn")
			if err != nil {
				return err
			}
			keys, err := loadSigners(cmd, from, hotkey)
			if err != nil {
				return err
			}
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			chainID, err := c.ChainID(cmd.Context())
			if err != nil {
				return err
			}
			cold := address.FromPubKey(keys[0].Public().(ed25519.PublicKey))
			msg := &tx.Msg{Sum: &tx.Msg_NeuronRegister{NeuronRegister: &tx.MsgNeuronRegister{
				Netuid: netuid, Hotkey: tx.ProveHotkey(keys[1], chainID, netuid, cold), MaxBurn: maxBurn}}}
			return sendTx(cmd, keys[0], []*tx.Msg{msg}, client.SendOptions{})
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "coldkey that pays the burn and owns the hotkey")
	cmd.Flags().StringVar(&hotkey, "hotkey", "", "hotkey to register")
	cmd.Flags().String("max-burn", "", "refuse if the burn is above this (e.g. 2agr)")
	addTxFlags(cmd)
	return cmd
}

func newNeuronServeCmd() *cobra.Command {
	var hotkey, endpoint, x25519, model string
	cmd := &cobra.Command{
		Use:   "serve NETUID --hotkey HOTKEY --endpoint URL",
		Short: "Publish a neuron's endpoint, X25519 encryption key and served model (signed by the hotkey)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			netuid, err := parseNetuid(args[0])
			if err != nil {
				return err
			}
			var xk []byte
			if x25519 != "" {
				if xk, err = hex.DecodeString(x25519); err != nil || len(xk) != 32 {
					return usageErrorf("--x25519 must be 64 hex characters")
				}
			}
			priv, err := loadSigner(cmd, hotkey)
			if err != nil {
				return err
			}
			msg := &tx.Msg{Sum: &tx.Msg_NeuronServe{NeuronServe: &tx.MsgNeuronServe{Netuid: netuid, Endpoint: endpoint, X25519PubKey: xk, ModelId: model}}}
			return sendTx(cmd, priv, []*tx.Msg{msg}, client.SendOptions{})
		},
	}
	cmd.Flags().StringVar(&hotkey, "hotkey", "", "the neuron's hotkey (signs and pays the fee)")
	cmd.Flags().StringVar(&endpoint, "endpoint", "", "URL the neuron serves on")
	cmd.Flags().StringVar(&x25519, "x25519", "", "X25519 public key for end-to-end encryption, hex")
	cmd.Flags().StringVar(&model, "model-id", "", "served model: sha256 of the GGUF file, hex")
	addTxFlags(cmd)
	return cmd
}

func newStakeCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "stake", Short: "Stake to a hotkey on a subnet, withdraw, and set a validator's take"}
	cmd.AddCommand(newStakeMoveCmd(true), newStakeMoveCmd(false), newStakeTakeCmd())
	return cmd
}

func newStakeMoveCmd(add bool) *cobra.Command {
	var from string
	use, short := "add", "Move AMOUNT from your coldkey into HOTKEY's stake pool on NETUID"
	if !add {
		use, short = "remove", "Withdraw AMOUNT of your stake in HOTKEY's pool on NETUID to your coldkey"
	}
	cmd := &cobra.Command{
		Use:   use + " NETUID HOTKEY AMOUNT --from COLDKEY",
		Short: short,
		Args:  exactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			netuid, err := parseNetuid(args[0])
			if err != nil {
				return err
			}
			hot, err := resolveAddress(cmd, args[1])
			if err != nil {
				return err
			}
			amount, err := positiveAmount(args[2])
			if err != nil {
				return err
			}
			priv, err := loadSigner(cmd, from)
			if err != nil {
				return err
			}
			var msg *tx.Msg
			if add {
				msg = &tx.Msg{Sum: &tx.Msg_StakeAdd{StakeAdd: &tx.MsgStakeAdd{Hotkey: hot[:], Netuid: netuid, Amount: amount}}}
			} else {
				msg = &tx.Msg{Sum: &tx.Msg_StakeRemove{StakeRemove: &tx.MsgStakeRemove{Hotkey: hot[:], Netuid: netuid, Amount: amount}}}
			}
			return sendTx(cmd, priv, []*tx.Msg{msg}, client.SendOptions{})
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "your coldkey")
	addTxFlags(cmd)
	return cmd
}

func newStakeTakeCmd() *cobra.Command {
	var from string
	cmd := &cobra.Command{
		Use:   "set-take HOTKEY PERCENT --from OWNER",
		Short: "Set the share of dividends a validator hotkey keeps before its delegators (e.g. 18 or 9.5)",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			hot, err := resolveAddress(cmd, args[0])
			if err != nil {
				return err
			}
			pct, err := yuma.ParseFixed(strings.TrimSuffix(args[1], "%"))
			if err != nil {
				return usageErrorf("take %q: a percentage like 18 or 9.5", args[1])
			}
			bps := pct.MulU64(100)
			if bps > 10_000 {
				return usageErrorf("take %s%% is above 100%%", args[1])
			}
			priv, err := loadSigner(cmd, from)
			if err != nil {
				return err
			}
			msg := &tx.Msg{Sum: &tx.Msg_SetTake{SetTake: &tx.MsgSetTake{Hotkey: hot[:], TakeBps: uint32(bps)}}}
			return sendTx(cmd, priv, []*tx.Msg{msg}, client.SendOptions{})
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the hotkey's owner coldkey")
	addTxFlags(cmd)
	return cmd
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
	cmd.AddCommand(newWeightsSetCmd("set"), newWeightsSetCmd("commit"), newWeightsRevealCmd())
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

// pendingCommit is what 'weights commit' saves for 'weights reveal'.
type pendingCommit struct {
	Netuid     uint32   `json:"netuid"`
	Uids       []uint32 `json:"uids"`
	Values     []uint32 `json:"values"`
	Salt       string   `json:"salt"`
	VersionKey uint64   `json:"version_key"`
}

func commitPath(cmd *cobra.Command, netuid uint32, hotkey string) string {
	return filepath.Join(homeDir(cmd), "commits", fmt.Sprintf("%d-%s.json", netuid, hotkey))
}

func newWeightsSetCmd(mode string) *cobra.Command {
	var hotkey, weights string
	var version uint64
	short := "Set weights directly (subnets with commit-reveal off)"
	if mode == "commit" {
		short = "Commit a hash of weights; the weights and salt are saved for 'weights reveal'"
	}
	cmd := &cobra.Command{
		Use:   mode + " NETUID --hotkey HOTKEY --weights UID:VALUE,…",
		Short: short,
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			netuid, err := parseNetuid(args[0])
			if err != nil {
				return err
			}
			uids, vals, err := parseWeights(weights)
			if err != nil {
				return err
			}
			priv, err := loadSigner(cmd, hotkey)
			if err != nil {
				return err
			}
			if mode == "set" {
				msg := &tx.Msg{Sum: &tx.Msg_WeightsSet{WeightsSet: &tx.MsgWeightsSet{Netuid: netuid, Uids: uids, Values: vals, VersionKey: version}}}
				return sendTx(cmd, priv, []*tx.Msg{msg}, client.SendOptions{})
			}
			salt := make([]byte, 32)
			if _, err := rand.Read(salt); err != nil {
				return err
			}
			pc := pendingCommit{Netuid: netuid, Uids: uids, Values: vals, Salt: hex.EncodeToString(salt), VersionKey: version}
			raw, _ := json.MarshalIndent(pc, "", "  ")
			path := commitPath(cmd, netuid, hotkey)
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				return err
			}
			// Saved before sending: a commit whose salt is lost can never be revealed.
			if err := os.WriteFile(path, raw, 0o600); err != nil {
				return fmt.Errorf("save commit: %w", err)
			}
			hot := address.FromPubKey(priv.Public().(ed25519.PublicKey))
			msg := &tx.Msg{Sum: &tx.Msg_WeightsCommit{WeightsCommit: &tx.MsgWeightsCommit{Netuid: netuid, Hash: subnet.WeightsHash(hot, netuid, uids, vals, salt, version)}}}
			return sendTx(cmd, priv, []*tx.Msg{msg}, client.SendOptions{})
		},
	}
	cmd.Flags().StringVar(&hotkey, "hotkey", "", "the validator's hotkey")
	cmd.Flags().StringVar(&weights, "weights", "", "uid:value pairs, values 0..65535")
	cmd.Flags().Uint64Var(&version, "version-key", 0, "weights version key")
	addTxFlags(cmd)
	return cmd
}

func newWeightsRevealCmd() *cobra.Command {
	var hotkey string
	cmd := &cobra.Command{
		Use:   "reveal NETUID --hotkey HOTKEY",
		Short: "Reveal the weights saved by 'weights commit'",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			netuid, err := parseNetuid(args[0])
			if err != nil {
				return err
			}
			raw, err := os.ReadFile(commitPath(cmd, netuid, hotkey))
			if errors.Is(err, os.ErrNotExist) {
				return notFoundError{fmt.Errorf("no saved commit for %s on subnet %d (run 'agora weights commit' first)", hotkey, netuid)}
			}
			if err != nil {
				return err
			}
			var pc pendingCommit
			if err := json.Unmarshal(raw, &pc); err != nil {
				return fmt.Errorf("saved commit: %w", err)
			}
			salt, err := hex.DecodeString(pc.Salt)
			if err != nil {
				return fmt.Errorf("saved commit salt: %w", err)
			}
			priv, err := loadSigner(cmd, hotkey)
			if err != nil {
				return err
			}
			msg := &tx.Msg{Sum: &tx.Msg_WeightsReveal{WeightsReveal: &tx.MsgWeightsReveal{Netuid: netuid, Uids: pc.Uids, Values: pc.Values, Salt: salt, VersionKey: pc.VersionKey}}}
			return sendTx(cmd, priv, []*tx.Msg{msg}, client.SendOptions{})
		},
	}
	cmd.Flags().StringVar(&hotkey, "hotkey", "", "the validator's hotkey")
	addTxFlags(cmd)
	return cmd
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

func newQueryMetagraphCmd() *cobra.Command {
	var netuid uint32
	var height int64
	cmd := &cobra.Command{
		Use:   "metagraph --netuid N",
		Short: "Show every UID of a subnet: stake, permits, consensus, incentive, dividends, emission, endpoint",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if netuid == 0 {
				return usageErrorf("--netuid is required")
			}
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			mg, err := c.Metagraph(cmd.Context(), netuid, height)
			if err != nil {
				if strings.Contains(err.Error(), "not found") {
					return notFoundError{err}
				}
				return err
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
			out := struct {
				Netuid  uint32         `json:"netuid"`
				Height  int64          `json:"height"`
				Neurons []metagraphRow `json:"neurons"`
			}{netuid, mg.Height, rows}
			return printResult(cmd, out, func(w io.Writer) error {
				fmt.Fprintf(w, "subnet %d %q at height %d: %d UIDs, started %v, tempo %d\n", netuid, mg.Subnet.Name, mg.Height, mg.Subnet.N, mg.Subnet.Started, mg.Subnet.Params.Tempo)
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "UID\tHOTKEY\tSTAKE\tVPERMIT\tCONSENSUS\tINCENTIVE\tDIVIDENDS\tTRUST\tEMISSION\tENDPOINT")
				for _, r := range rows {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%v\t%.4f\t%.4f\t%.4f\t%.4f\t%s\t%s\n", r.UID, r.Hotkey, agr.Format(r.Stake), r.ValidatorPermit,
						r.Consensus, r.Incentive, r.Dividends, r.ValidatorTrust, agr.Format(r.Emission), r.Endpoint)
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().Uint32Var(&netuid, "netuid", 0, "subnet")
	cmd.Flags().Int64Var(&height, "height", 0, "read at this height (default: latest)")
	addNodeFlag(cmd)
	return cmd
}
