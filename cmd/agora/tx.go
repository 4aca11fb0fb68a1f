package main

import (
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/tx"
)

func newTxCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tx",
		Short: "Sign and send transactions",
	}
	cmd.AddCommand(txTransfer.command())
	return cmd
}

var txTransfer = txSpec{
	use:   "transfer TO AMOUNT",
	short: "Send AGR from a key in the keystore to an address",
	long: `transfer sends AMOUNT from the key named by --from to TO (an agora1… address
or a key name). AMOUNT names its unit: 1.5agr, or 1500000000nagr in base units.`,
	example: `  agora tx transfer --from faucet agora1… 10agr`,
	args:    2,
	from:    "name of the signing key in --home's keystore",
	flags: func(f *pflag.FlagSet) {
		f.String("fee", "", "fee to pay (default: the chain's flat fee)")
		f.String("memo", "", "note stored with the transaction")
	},
	build: func(r *txRun, a []string) []*tx.Msg {
		if r.flag("from") == "" {
			r.usagef("--from KEY is required")
		}
		to, amount := r.address(a[0]), r.amount(a[1])
		if fee := r.flag("fee"); fee != "" {
			v, err := agr.Parse(fee)
			if err != nil {
				r.fail(usageError{err})
			}
			r.opts.Fee = v
		}
		r.opts.Memo = r.flag("memo")
		r.sign("from")
		return msgs(tx.Transfer(to, amount))
	},
}
