package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
)

func newTxCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tx",
		Short: "Sign and send transactions",
	}
	cmd.AddCommand(newTxTransferCmd())
	return cmd
}

// txResult is what every tx command prints.
type txResult struct {
	Hash   string `json:"hash"`
	Height int64  `json:"height,omitempty"`
	Code   uint32 `json:"code"`
	Log    string `json:"log,omitempty"`
}

func newTxTransferCmd() *cobra.Command {
	var from, feeText, memo string
	cmd := &cobra.Command{
		Use:   "transfer TO AMOUNT",
		Short: "Send AGR from a key in the keystore to an address",
		Long: `transfer sends AMOUNT from the key named by --from to TO (an agora1… address
or a key name). AMOUNT names its unit: 1.5agr, or 1500000000nagr in base units.`,
		Example: `  agora tx transfer --from faucet agora1… 10agr`,
		Args:    exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if from == "" {
				return usageErrorf("--from KEY is required")
			}
			to, err := resolveAddress(cmd, args[0])
			if err != nil {
				return err
			}
			amount, err := positiveAmount(args[1])
			if err != nil {
				return err
			}
			var fee uint64
			if feeText != "" {
				if fee, err = agr.Parse(feeText); err != nil {
					return usageError{err}
				}
			}
			priv, err := loadSigner(cmd, from)
			if err != nil {
				return err
			}
			return sendTx(cmd, priv, []*tx.Msg{tx.Transfer(to, amount)}, client.SendOptions{Fee: fee, Memo: memo})
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "name of the signing key in --home's keystore")
	cmd.Flags().StringVar(&feeText, "fee", "", "fee to pay (default: the chain's flat fee)")
	cmd.Flags().StringVar(&memo, "memo", "", "note stored with the transaction")
	addTxFlags(cmd)
	return cmd
}

// addTxFlags adds the flags every transaction command shares.
func addTxFlags(cmd *cobra.Command) {
	cmd.Flags().Bool("wait", true, "wait until the transaction is in a block")
	cmd.Flags().Duration("timeout", 30*time.Second, "give up after this long")
	addNodeFlag(cmd)
}

// sendTx signs msgs with priv, broadcasts them and reports the outcome.
func sendTx(cmd *cobra.Command, priv ed25519.PrivateKey, msgs []*tx.Msg, o client.SendOptions) error {
	wait, _ := cmd.Flags().GetBool("wait")
	timeout, _ := cmd.Flags().GetDuration("timeout")
	c, err := newClient(cmd)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
	defer cancel()
	hash, err := c.SignAndSend(ctx, priv, msgs, o)
	return reportTx(cmd, c, ctx, hash, err, wait)
}

// reportTx waits for inclusion when asked and prints the outcome. A refused
// or failed transaction is an error (exit 1) after its result is printed.
func reportTx(cmd *cobra.Command, c *client.Client, ctx context.Context, hash []byte, sendErr error, wait bool) error {
	res := txResult{Hash: fmt.Sprintf("%X", hash)}
	var txErr *client.TxError
	switch {
	case errors.As(sendErr, &txErr):
		res.Code, res.Log = txErr.Code, txErr.Log
	case sendErr != nil:
		return sendErr
	case wait:
		r, err := c.WaitTx(ctx, hash)
		if r != nil {
			res.Height = r.Height
		}
		if errors.As(err, &txErr) {
			res.Code, res.Log = txErr.Code, txErr.Log
		} else if err != nil {
			return err
		}
	}
	if err := printResult(cmd, res, func(w io.Writer) error {
		switch {
		case res.Code != 0:
			_, err := fmt.Fprintf(w, "tx %s rejected (code %d): %s\n", res.Hash, res.Code, res.Log)
			return err
		case res.Height > 0:
			_, err := fmt.Fprintf(w, "tx %s committed at height %d\n", res.Hash, res.Height)
			return err
		default:
			_, err := fmt.Fprintf(w, "tx %s accepted into the mempool\n", res.Hash)
			return err
		}
	}); err != nil {
		return err
	}
	if res.Code != 0 {
		return fmt.Errorf("transaction %s failed with code %d", res.Hash, res.Code)
	}
	return nil
}
