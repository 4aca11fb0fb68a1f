package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
)

// txSpec declares one transaction command. Every such command runs the
// same path: build (parse the arguments, unlock the signer, make the
// messages), then sign, broadcast, wait for the block and print the result
// as text or --output json. A spec says only what differs.
type txSpec struct {
	use, short, long, example string
	args                      int
	from, hotkey              string // help of --from / --hotkey; empty: no such flag
	flags                     func(f *pflag.FlagSet)
	build                     func(r *txRun, args []string) []*tx.Msg
}

// command builds the cobra command for s, with the flags every
// transaction command shares.
func (s txSpec) command() *cobra.Command {
	cmd := &cobra.Command{
		Use: s.use, Short: s.short, Long: s.long, Example: s.example, Args: exactArgs(s.args),
		RunE: func(cmd *cobra.Command, args []string) error {
			r := &txRun{cmd: cmd}
			msgs := s.build(r, args)
			if r.err != nil {
				return r.err
			}
			return r.send(msgs)
		},
	}
	if s.from != "" {
		cmd.Flags().String("from", "", s.from)
	}
	if s.hotkey != "" {
		cmd.Flags().String("hotkey", "", s.hotkey)
	}
	if s.flags != nil {
		s.flags(cmd.Flags())
	}
	addTxFlags(cmd)
	return cmd
}

// txCommands builds the commands of specs.
func txCommands(specs ...txSpec) []*cobra.Command {
	out := make([]*cobra.Command, len(specs))
	for i, s := range specs {
		out[i] = s.command()
	}
	return out
}

// txRun carries one transaction command through build. It keeps the first
// error, like bufio.Scanner: later parse steps are harmless no-ops and steps
// that prompt or touch the network are skipped, so a build reads as the
// straight line of what the command needs.
type txRun struct {
	cmd    *cobra.Command
	err    error
	signer ed25519.PrivateKey
	opts   client.SendOptions
	c      *client.Client
	// created names what the transaction registers (model_id, root), for
	// the result to print beside the hash.
	created txCreated
}

// txCreated is the id a registering transaction creates.
type txCreated struct {
	ModelID string `json:"model_id,omitempty"`
	Root    string `json:"root,omitempty"`
}

// fail records err unless an earlier error was recorded; it reports
// whether the run is still good.
func (r *txRun) fail(err error) bool {
	if r.err == nil {
		r.err = err
	}
	return r.err == nil
}

func (r *txRun) usagef(format string, a ...any) { r.fail(usageErrorf(format, a...)) }

func (r *txRun) netuid(s string) uint32 { n, err := parseNetuid(s); r.fail(err); return n }

func (r *txRun) channelID(s string) uint64 { id, err := parseChannelID(s); r.fail(err); return id }

func (r *txRun) amount(s string) uint64 { v, err := positiveAmount(s); r.fail(err); return v }

func (r *txRun) optionalAmount(flag string) uint64 {
	v, err := optionalAmount(r.cmd, flag)
	r.fail(err)
	return v
}

func (r *txRun) address(s string) address.Address {
	if r.err != nil {
		return address.Address{}
	}
	a, err := resolveAddress(r.cmd, s)
	r.fail(err)
	return a
}

func (r *txRun) flag(name string) string { s, _ := r.cmd.Flags().GetString(name); return s }

// sign unlocks the key named by the flag and makes it the signer.
func (r *txRun) sign(flag string) ed25519.PrivateKey {
	if r.err == nil {
		r.signer, r.err = loadSigner(r.cmd, r.flag(flag))
	}
	return r.signer
}

// signPair unlocks --from and --hotkey with one password; the coldkey signs.
func (r *txRun) signPair() (cold, hot ed25519.PrivateKey) {
	if r.err != nil {
		return nil, nil
	}
	keys, err := loadSigners(r.cmd, r.flag("from"), r.flag("hotkey"))
	if !r.fail(err) {
		return nil, nil
	}
	r.signer = keys[0]
	return keys[0], keys[1]
}

func (r *txRun) client() *client.Client {
	if r.c == nil && r.err == nil {
		r.c, r.err = newClient(r.cmd)
	}
	return r.c
}

func (r *txRun) chainID() string {
	if c := r.client(); c != nil {
		id, err := c.ChainID(r.cmd.Context())
		r.fail(err)
		return id
	}
	return ""
}

// blocksFromNow turns a number of blocks into an absolute height.
func (r *txRun) blocksFromNow(n uint64) uint64 {
	if c := r.client(); c != nil {
		at, err := blocksFromNow(r.cmd.Context(), c, n)
		r.fail(err)
		return at
	}
	return 0
}

// send signs msgs with the signer, broadcasts them and reports the outcome.
func (r *txRun) send(msgs []*tx.Msg) error {
	c := r.client()
	if r.err != nil {
		return r.err
	}
	wait, _ := r.cmd.Flags().GetBool("wait")
	timeout, _ := r.cmd.Flags().GetDuration("timeout")
	ctx, cancel := context.WithTimeout(r.cmd.Context(), timeout)
	defer cancel()
	hash, err := c.SignAndSend(ctx, r.signer, msgs, r.opts)
	return reportTx(r.cmd, c, ctx, hash, err, wait, r.created)
}

// oneArgTx declares the simplest transaction command: one argument
// parsed by parse, signed by --from, one message.
func oneArgTx[T any](use, short, from string, parse func(*txRun, string) T, msg func(T) *tx.Msg) txSpec {
	return txSpec{use: use, short: short, args: 1, from: from, build: func(r *txRun, a []string) []*tx.Msg {
		v := parse(r, a[0])
		r.sign("from")
		return msgs(msg(v))
	}}
}

// msgs is a message list, for builds that make one message.
func msgs(m ...*tx.Msg) []*tx.Msg { return m }

// addTxFlags adds the flags every transaction command shares.
func addTxFlags(cmd *cobra.Command) {
	cmd.Flags().Bool("wait", true, "wait until the transaction is in a block")
	cmd.Flags().Duration("timeout", 30*time.Second, "give up after this long")
	addNodeFlag(cmd)
}

// txResult is what every tx command prints.
type txResult struct {
	Hash   string `json:"hash"`
	Height int64  `json:"height,omitempty"`
	Code   uint32 `json:"code"`
	Log    string `json:"log,omitempty"`
	txCreated
}

// reportTx waits for inclusion when asked and prints the outcome. A refused
// or failed transaction is an error (exit 1) after its result is printed.
func reportTx(cmd *cobra.Command, c *client.Client, ctx context.Context, hash []byte, sendErr error, wait bool, created txCreated) error {
	res := txResult{Hash: fmt.Sprintf("%X", hash), txCreated: created}
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
		if res.Code == 0 && res.ModelID != "" {
			fmt.Fprintf(w, "model id %s\n", res.ModelID)
		}
		if res.Code == 0 && res.Root != "" {
			fmt.Fprintf(w, "root %s\n", res.Root)
		}
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
