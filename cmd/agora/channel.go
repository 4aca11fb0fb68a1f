package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

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
	cmd.AddCommand(newChannelOpenCmd(), newChannelTopupCmd(), newChannelCloseCmd(), newChannelShowCmd(), newChannelVoucherCmd(), newChannelClaimCmd())
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

func newChannelOpenCmd() *cobra.Command {
	var from string
	var netuid uint32
	var expiry uint64
	cmd := &cobra.Command{
		Use:   "open PAYEE DEPOSIT --from PAYER --netuid N [--expiry-blocks 86400]",
		Short: "Escrow DEPOSIT for PAYEE on a subnet",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			payee, err := resolveAddress(cmd, args[0])
			if err != nil {
				return err
			}
			deposit, err := positiveAmount(args[1])
			if err != nil {
				return err
			}
			if netuid == 0 {
				return usageErrorf("--netuid is required")
			}
			priv, err := loadSigner(cmd, from)
			if err != nil {
				return err
			}
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			at, err := blocksFromNow(cmd.Context(), c, expiry)
			if err != nil {
				return err
			}
			return sendTx(cmd, priv, []*tx.Msg{{Sum: &tx.Msg_ChannelOpen{ChannelOpen: &tx.MsgChannelOpen{Payee: payee[:], Netuid: netuid, Deposit: deposit, ExpiryHeight: at}}}}, client.SendOptions{})
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "payer key")
	cmd.Flags().Uint32Var(&netuid, "netuid", 0, "subnet whose revenue the payments become")
	cmd.Flags().Uint64Var(&expiry, "expiry-blocks", 86_400, "blocks until the payer may close the channel")
	addTxFlags(cmd)
	return cmd
}

func newChannelTopupCmd() *cobra.Command {
	var from string
	var expiry uint64
	cmd := &cobra.Command{
		Use:   "topup ID AMOUNT --from PAYER [--expiry-blocks N]",
		Short: "Add to a channel's deposit (and optionally push its expiry later)",
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
			priv, err := loadSigner(cmd, from)
			if err != nil {
				return err
			}
			var at uint64
			if expiry > 0 {
				c, err := newClient(cmd)
				if err != nil {
					return err
				}
				if at, err = blocksFromNow(cmd.Context(), c, expiry); err != nil {
					return err
				}
			}
			return sendTx(cmd, priv, []*tx.Msg{{Sum: &tx.Msg_ChannelTopup{ChannelTopup: &tx.MsgChannelTopup{ChannelId: id, Amount: amount, ExpiryHeight: at}}}}, client.SendOptions{})
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "payer key")
	cmd.Flags().Uint64Var(&expiry, "expiry-blocks", 0, "new expiry, in blocks from now (0 keeps it)")
	addTxFlags(cmd)
	return cmd
}

func newChannelCloseCmd() *cobra.Command {
	var from string
	cmd := &cobra.Command{
		Use:   "close ID --from PAYER",
		Short: "After expiry, close a channel and get the unclaimed deposit back",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseChannelID(args[0])
			if err != nil {
				return err
			}
			priv, err := loadSigner(cmd, from)
			if err != nil {
				return err
			}
			return sendTx(cmd, priv, []*tx.Msg{{Sum: &tx.Msg_ChannelClose{ChannelClose: &tx.MsgChannelClose{ChannelId: id}}}}, client.SendOptions{})
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "payer key")
	addTxFlags(cmd)
	return cmd
}

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
			priv, err := loadSigner(cmd, from)
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

func newChannelClaimCmd() *cobra.Command {
	var from, sig string
	cmd := &cobra.Command{
		Use:   "claim ID CUMULATIVE --signature HEX --from PAYEE",
		Short: "Settle a voucher on chain (payee)",
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
			raw, err := hex.DecodeString(sig)
			if err != nil || len(raw) != 64 {
				return usageErrorf("--signature must be 128 hex characters")
			}
			priv, err := loadSigner(cmd, from)
			if err != nil {
				return err
			}
			v := &tx.Voucher{ChannelId: id, Cumulative: amount, Signature: raw}
			return sendTx(cmd, priv, []*tx.Msg{{Sum: &tx.Msg_ChannelClaim{ChannelClaim: &tx.MsgChannelClaim{Voucher: v}}}}, client.SendOptions{})
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "payee key")
	cmd.Flags().StringVar(&sig, "signature", "", "the payer's voucher signature, hex")
	addTxFlags(cmd)
	return cmd
}

func newChannelShowCmd() *cobra.Command {
	var prove bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show a channel's deposit, claimed amount and expiry",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseChannelID(args[0])
			if err != nil {
				return err
			}
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			ch, err := c.Channel(cmd.Context(), id, prove)
			if errors.Is(err, client.ErrNoChannel) {
				return notFoundError{err}
			}
			if err != nil {
				return err
			}
			out := struct {
				ID      uint64 `json:"id"`
				Payer   string `json:"payer"`
				Payee   string `json:"payee"`
				Netuid  uint32 `json:"netuid"`
				Deposit uint64 `json:"deposit"`
				Claimed uint64 `json:"claimed"`
				Expiry  uint64 `json:"expiry_height"`
			}{ch.Id, addrString(ch.Payer), addrString(ch.Payee), ch.Netuid, ch.Deposit, ch.Claimed, ch.ExpiryHeight}
			return printResult(cmd, out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "channel  %d (subnet %d)\npayer    %s\npayee    %s\ndeposit  %s\nclaimed  %s\nexpiry   block %d\n",
					out.ID, out.Netuid, out.Payer, out.Payee, agr.Format(out.Deposit), agr.Format(out.Claimed), out.Expiry)
				return err
			})
		},
	}
	addNodeFlag(cmd)
	addProveFlag(cmd, &prove)
	return cmd
}
