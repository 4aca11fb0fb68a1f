package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
)

func newChannelCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "channel",
		Short: "Open, top up, claim and close payment channels",
		Long: `A payment channel escrows a payer's deposit for a payee (a gateway hotkey) on
a subnet. The payer pays off-chain with cumulative vouchers; the payee claims
the highest voucher on chain (any number of times); after expiry the payer
closes the channel and gets back what was not claimed.`,
	}
	cmd.AddCommand(txCommands(channelOpen, channelTopup, channelClose, channelClaim)...)
	cmd.AddCommand(newChannelShowCmd(), newChannelVoucherCmd())
	return cmd
}

func parseChannelID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		return 0, usageErrorf("channel id %q must be a positive integer", s)
	}
	return id, nil
}

// blocksFromNow turns --expiry-blocks into an absolute height.
func blocksFromNow(ctx context.Context, c *client.Client, n uint64) (uint64, error) {
	h, err := c.Height(ctx)
	if err != nil {
		return 0, err
	}
	return uint64(h) + n, nil
}

var (
	channelOpen = txSpec{
		use:   "open PAYEE DEPOSIT --from PAYER --netuid N [--expiry-blocks 86400]",
		short: "Escrow DEPOSIT for PAYEE on a subnet",
		args:  2,
		from:  "payer key",
		flags: func(f *pflag.FlagSet) {
			f.Uint32("netuid", 0, "subnet whose revenue the payments become")
			f.Uint64("expiry-blocks", 86_400, "blocks until the payer may close the channel")
		},
		build: func(r *txRun, a []string) []*tx.Msg {
			payee, deposit := r.address(a[0]), r.amount(a[1])
			netuid, _ := r.cmd.Flags().GetUint32("netuid")
			if netuid == 0 {
				r.usagef("--netuid is required")
			}
			r.sign("from")
			expiry, _ := r.cmd.Flags().GetUint64("expiry-blocks")
			return msgs(tx.ChannelOpen(payee, netuid, deposit, r.blocksFromNow(expiry)))
		},
	}
	channelTopup = txSpec{
		use:   "topup ID AMOUNT --from PAYER [--expiry-blocks N]",
		short: "Add to a channel's deposit (and optionally push its expiry later)",
		args:  2,
		from:  "payer key",
		flags: func(f *pflag.FlagSet) { f.Uint64("expiry-blocks", 0, "new expiry, in blocks from now (0 keeps it)") },
		build: func(r *txRun, a []string) []*tx.Msg {
			id, amount := r.channelID(a[0]), r.amount(a[1])
			r.sign("from")
			var at uint64
			if expiry, _ := r.cmd.Flags().GetUint64("expiry-blocks"); expiry > 0 {
				at = r.blocksFromNow(expiry)
			}
			return msgs(tx.ChannelTopup(id, amount, at))
		},
	}
	channelClose = oneArgTx("close ID --from PAYER", "After expiry, close a channel and get the unclaimed deposit back",
		"payer key", (*txRun).channelID, tx.ChannelClose)
	channelClaim = txSpec{
		use:   "claim ID CUMULATIVE --signature HEX --from PAYEE",
		short: "Settle a voucher on chain (payee)",
		args:  2,
		from:  "payee key",
		flags: func(f *pflag.FlagSet) { f.String("signature", "", "the payer's voucher signature, hex") },
		build: func(r *txRun, a []string) []*tx.Msg {
			id, amount := r.channelID(a[0]), r.amount(a[1])
			sig, err := hex.DecodeString(r.flag("signature"))
			if err != nil || len(sig) != 64 {
				r.usagef("--signature must be 128 hex characters")
			}
			r.sign("from")
			return msgs(tx.ChannelClaim(&tx.Voucher{ChannelId: id, Cumulative: amount, Signature: sig}))
		},
	}
)

func newChannelVoucherCmd() *cobra.Command {
	var from string
	cmd := &cobra.Command{
		Use:   "voucher ID CUMULATIVE --from PAYER",
		Short: "Sign a voucher owing CUMULATIVE in total on a channel (prints it as JSON)",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseChannelID(args[0])
			if err != nil {
				return err
			}
			amount, err := positiveAmount(args[1])
			if err != nil {
				return err
			}
			priv, _, chainID, err := signerOnChain(cmd, from)
			if err != nil {
				return err
			}
			v := tx.SignVoucher(priv, chainID, id, amount)
			out := map[string]any{"channel_id": v.ChannelId, "cumulative": v.Cumulative, "signature": fmt.Sprintf("%x", v.Signature)}
			return printResult(cmd, out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "channel %d owes %s\nsignature %x\n", v.ChannelId, agr.Format(v.Cumulative), v.Signature)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "payer key")
	addNodeFlag(cmd)
	return cmd
}

type channelOut struct {
	ID      uint64 `json:"id"`
	Payer   string `json:"payer"`
	Payee   string `json:"payee"`
	Netuid  uint32 `json:"netuid"`
	Deposit uint64 `json:"deposit"`
	Claimed uint64 `json:"claimed"`
	Expiry  uint64 `json:"expiry_height"`
}

func newChannelShowCmd() *cobra.Command {
	var prove bool
	return readCommand(&cobra.Command{
		Use:   "show ID",
		Short: "Show a channel's deposit, claimed amount and expiry",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseChannelID(args[0])
			if err != nil {
				return err
			}
			return show(cmd, func(ctx context.Context, c *client.Client) (channelOut, error) {
				ch, err := c.Channel(ctx, id, prove)
				if errors.Is(err, client.ErrNoChannel) {
					return channelOut{}, notFoundError{err}
				}
				if err != nil {
					return channelOut{}, err
				}
				return channelOut{ch.Id, addrString(ch.Payer), addrString(ch.Payee), ch.Netuid, ch.Deposit, ch.Claimed, ch.ExpiryHeight}, nil
			}, func(w io.Writer, out channelOut) error {
				_, err := fmt.Fprintf(w, "channel  %d (subnet %d)\npayer    %s\npayee    %s\ndeposit  %s\nclaimed  %s\nexpiry   block %d\n",
					out.ID, out.Netuid, out.Payer, out.Payee, agr.Format(out.Deposit), agr.Format(out.Claimed), out.Expiry)
				return err
			})
		},
	}, &prove)
}
