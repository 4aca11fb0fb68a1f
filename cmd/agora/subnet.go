package main

import (
	"crypto/ed25519"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/subnet"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
)

// loadSigners unlocks several keys with one password (from flag, env or one prompt).
func loadSigners(cmd *cobra.Command, names ...string) ([]ed25519.PrivateKey, error) {
	ks, err := openKeystore(cmd)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if n == "" {
			return nil, usageErrorf("both --from (coldkey) and --hotkey are required")
		}
		if _, _, err := lookupKey(cmd, n); err != nil {
			return nil, err
		}
	}
	pw, err := readPassword(cmd, false)
	if err != nil {
		return nil, err
	}
	out := make([]ed25519.PrivateKey, len(names))
	for i, n := range names {
		if out[i], err = ks.Unlock(n, pw); err != nil {
			return nil, fmt.Errorf("unlock key %q: %w", n, err)
		}
	}
	return out, nil
}

func parseNetuid(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 {
		return 0, usageErrorf("netuid %q must be a positive integer", s)
	}
	return uint32(n), nil
}

func optionalAmount(cmd *cobra.Command, flag string) (uint64, error) {
	s, _ := cmd.Flags().GetString(flag)
	if s == "" {
		return 0, nil
	}
	v, err := agr.Parse(s)
	if err != nil {
		return 0, usageErrorf("--%s: %v", flag, err)
	}
	return v, nil
}

func newSubnetCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "subnet", Short: "Register, configure, start and inspect subnets"}
	cmd.AddCommand(newSubnetRegisterCmd(), newSubnetStartCmd(), newSubnetSetParamsCmd(), newSubnetListCmd())
	return cmd
}

func newSubnetRegisterCmd() *cobra.Command {
	var from, hotkey, name string
	cmd := &cobra.Command{
		Use:   "register --from COLDKEY --hotkey HOTKEY",
		Short: "Create a subnet owned by COLDKEY; its lock cost is held by the subnet; HOTKEY becomes UID 0",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			maxLock, err := optionalAmount(cmd, "max-lock")
			if err != nil {
				return err
			}
			keys, err := loadSigners(cmd, from, hotkey)
			if err != nil {
				return err
			}
			cold, hot := keys[0], keys[1]
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			chainID, err := c.ChainID(cmd.Context())
			if err != nil {
				return err
			}
			owner := address.FromPubKey(cold.Public().(ed25519.PublicKey))
			msg := &tx.Msg{Sum: &tx.Msg_SubnetRegister{SubnetRegister: &tx.MsgSubnetRegister{
				MaxLock: maxLock, Name: name, OwnerHotkey: tx.ProveHotkey(hot, chainID, subnet.NewSubnetNetuid, owner)}}}
			return sendTx(cmd, cold, []*tx.Msg{msg}, client.SendOptions{})
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "owner coldkey (pays the lock)")
	cmd.Flags().StringVar(&hotkey, "hotkey", "", "owner hotkey (becomes UID 0)")
	cmd.Flags().StringVar(&name, "name", "", "subnet name")
	cmd.Flags().String("max-lock", "", "refuse if the lock cost is above this (e.g. 200agr)")
	addTxFlags(cmd)
	return cmd
}

func newSubnetStartCmd() *cobra.Command {
	var from string
	cmd := &cobra.Command{
		Use:   "start NETUID --from OWNER",
		Short: "Turn on emission to a subnet",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			netuid, err := parseNetuid(args[0])
			if err != nil {
				return err
			}
			priv, err := loadSigner(cmd, from)
			if err != nil {
				return err
			}
			return sendTx(cmd, priv, []*tx.Msg{{Sum: &tx.Msg_SubnetStart{SubnetStart: &tx.MsgSubnetStart{Netuid: netuid}}}}, client.SendOptions{})
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "owner coldkey")
	addTxFlags(cmd)
	return cmd
}

func newSubnetSetParamsCmd() *cobra.Command {
	var from string
	cmd := &cobra.Command{
		Use:   "set-params NETUID --from OWNER [--tempo N] [--commit-reveal=false] …",
		Short: "Change a subnet's hyperparameters (only the flags given change)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			netuid, err := parseNetuid(args[0])
			if err != nil {
				return err
			}
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			mg, err := c.Metagraph(cmd.Context(), netuid, 0)
			if err != nil {
				return err
			}
			p := mg.Subnet.Params
			f := cmd.Flags()
			u64 := map[string]*uint64{"tempo": &p.Tempo, "immunity-period": &p.ImmunityPeriod, "activity-cutoff": &p.ActivityCutoff,
				"weights-rate-limit": &p.WeightsRateLimit, "reveal-period": &p.RevealPeriod, "bonds-moving-average": &p.BondsMovingAverage,
				"weights-version": &p.WeightsVersion, "serving-rate-limit": &p.ServingRateLimit}
			for name, dst := range u64 {
				if f.Changed(name) {
					*dst, _ = f.GetUint64(name)
				}
			}
			u32 := map[string]*uint32{"max-uids": &p.MaxUids, "max-validators": &p.MaxValidators, "kappa": &p.Kappa,
				"bonds-penalty": &p.BondsPenalty, "min-allowed-weights": &p.MinAllowedWeights, "yuma-version": &p.YumaVersion}
			for name, dst := range u32 {
				if f.Changed(name) {
					*dst, _ = f.GetUint32(name)
				}
			}
			amounts := map[string]*uint64{"min-burn": &p.MinBurn, "max-burn": &p.MaxBurn, "stake-threshold": &p.StakeThreshold, "price-per-1k": &p.PricePer_1K}
			for name, dst := range amounts {
				if f.Changed(name) {
					if *dst, err = optionalAmount(cmd, name); err != nil {
						return err
					}
				}
			}
			if f.Changed("commit-reveal") {
				p.CommitReveal, _ = f.GetBool("commit-reveal")
			}
			if f.Changed("model-id") {
				p.ModelId, _ = f.GetString("model-id")
			}
			if err := subnet.ValidateParams(p); err != nil {
				return usageError{err}
			}
			priv, err := loadSigner(cmd, from)
			if err != nil {
				return err
			}
			msg := &tx.Msg{Sum: &tx.Msg_SubnetSetParams{SubnetSetParams: &tx.MsgSubnetSetParams{Netuid: netuid, Params: p}}}
			return sendTx(cmd, priv, []*tx.Msg{msg}, client.SendOptions{})
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "owner coldkey")
	for _, n := range []string{"tempo", "immunity-period", "activity-cutoff", "weights-rate-limit", "reveal-period", "weights-version", "serving-rate-limit"} {
		f.Uint64(n, 0, n+" in blocks (reveal-period in tempos)")
	}
	f.Uint64("bonds-moving-average", 0, "bonds moving average, of 1,000,000")
	for _, n := range []string{"max-uids", "max-validators", "min-allowed-weights"} {
		f.Uint32(n, 0, n)
	}
	f.Uint32("kappa", 0, "consensus quantile, of 65535")
	f.Uint32("bonds-penalty", 0, "bonds penalty, of 65535")
	f.Uint32("yuma-version", 0, "3 (Yuma3 bonds) or 2 (classic)")
	for _, n := range []string{"min-burn", "max-burn", "stake-threshold", "price-per-1k"} {
		f.String(n, "", n+" amount (e.g. 0.5agr)")
	}
	f.Bool("commit-reveal", true, "weights are committed, then revealed a tempo later")
	f.String("model-id", "", "pinned model: sha256 of the GGUF file, hex")
	addTxFlags(cmd)
	return cmd
}

func newSubnetListCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List subnets",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			subs, err := c.Subnets(cmd.Context())
			if err != nil {
				return err
			}
			if subs == nil {
				subs = []*tx.Subnet{}
			}
			return printResult(cmd, subs, func(w io.Writer) error {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NETUID\tNAME\tOWNER\tUIDS\tSTARTED\tTEMPO\tEMITTED")
				for _, s := range subs {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%d/%d\t%v\t%d\t%s\n", s.Netuid, s.Name, addrString(s.Owner), s.N, s.Params.MaxUids,
						s.Started, s.Params.Tempo, agr.Format(s.TotalEmitted))
				}
				return tw.Flush()
			})
		},
	}
	addNodeFlag(cmd)
	return cmd
}

func addrString(b []byte) string {
	a, err := address.FromBytes(b)
	if err != nil {
		return fmt.Sprintf("%x", b)
	}
	return a.String()
}
