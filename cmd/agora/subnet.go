package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

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
	cmd.AddCommand(txCommands(subnetRegister, subnetStart, subnetSetParams)...)
	cmd.AddCommand(newSubnetListCmd())
	return cmd
}

var (
	subnetRegister = txSpec{
		use:    "register --from COLDKEY --hotkey HOTKEY",
		short:  "Create a subnet owned by COLDKEY; its lock cost is held by the subnet; HOTKEY becomes UID 0",
		args:   0,
		from:   "owner coldkey (pays the lock)",
		hotkey: "owner hotkey (becomes UID 0)",
		flags: func(f *pflag.FlagSet) {
			f.String("name", "", "subnet name")
			f.String("max-lock", "", "refuse if the lock cost is above this (e.g. 200agr)")
		},
		build: func(r *txRun, _ []string) []*tx.Msg {
			maxLock := r.optionalAmount("max-lock")
			cold, hot := r.signPair()
			chainID := r.chainID()
			if r.err != nil {
				return nil
			}
			return msgs(tx.SubnetRegister(r.flag("name"), tx.ProveHotkey(hot, chainID, subnet.NewSubnetNetuid, signerAddress(cold)), maxLock))
		},
	}
	subnetStart     = oneArgTx("start NETUID --from OWNER", "Turn on emission to a subnet", "owner coldkey", (*txRun).netuid, tx.SubnetStart)
	subnetSetParams = txSpec{
		use:   "set-params NETUID --from OWNER [--tempo N] [--commit-reveal=false] …",
		short: "Change a subnet's hyperparameters (only the flags given change)",
		args:  1,
		from:  "owner coldkey",
		flags: subnetParamFlags,
		build: func(r *txRun, a []string) []*tx.Msg {
			netuid := r.netuid(a[0])
			if c := r.client(); c != nil {
				mg, err := c.Metagraph(r.cmd.Context(), netuid, 0)
				if r.fail(err) {
					p, err := changedParams(r.cmd, mg.Subnet.Params)
					if r.fail(err) {
						r.sign("from")
						return msgs(tx.SubnetSetParams(netuid, p))
					}
				}
			}
			return nil
		},
	}
)

// changedParams applies the hyperparameter flags given to p and checks the result.
func changedParams(cmd *cobra.Command, p *tx.SubnetParams) (*tx.SubnetParams, error) {
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
			v, err := optionalAmount(cmd, name)
			if err != nil {
				return nil, err
			}
			*dst = v
		}
	}
	if f.Changed("commit-reveal") {
		p.CommitReveal, _ = f.GetBool("commit-reveal")
	}
	if f.Changed("model-id") {
		p.ModelId, _ = f.GetString("model-id")
	}
	if f.Changed("royalty-on-emission") {
		p.RoyaltyOnEmission, _ = f.GetBool("royalty-on-emission")
	}
	if err := subnet.ValidateParams(p); err != nil {
		return nil, usageError{err}
	}
	return p, nil
}

// subnetParamFlags are set-params' hyperparameter flags.
func subnetParamFlags(f *pflag.FlagSet) {
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
	f.String("model-id", "", "pinned model: sha256 of the GGUF file, hex (it must be registered: agora model publish)")
	f.Bool("royalty-on-emission", false, "the pinned model's royalty is also paid out of emission, not only paid revenue")
}

func newSubnetListCmd() *cobra.Command {
	return readCommand(&cobra.Command{
		Use:   "list",
		Short: "List subnets",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return show(cmd, func(ctx context.Context, c *client.Client) ([]*tx.Subnet, error) {
				subs, err := c.Subnets(ctx)
				if subs == nil {
					subs = []*tx.Subnet{}
				}
				return subs, err
			}, func(w io.Writer, subs []*tx.Subnet) error {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NETUID\tNAME\tOWNER\tUIDS\tSTARTED\tTEMPO\tEMITTED")
				for _, s := range subs {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%d/%d\t%v\t%d\t%s\n", s.Netuid, s.Name, addrString(s.Owner), s.N, s.Params.MaxUids,
						s.Started, s.Params.Tempo, agr.Format(s.TotalEmitted))
				}
				return tw.Flush()
			})
		},
	}, nil)
}

func addrString(b []byte) string {
	a, err := address.FromBytes(b)
	if err != nil {
		return fmt.Sprintf("%x", b)
	}
	return a.String()
}
