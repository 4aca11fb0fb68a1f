package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
)

func newQueryCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "query",
		Aliases: []string{"q"},
		Short:   "Read chain state (verified with Merkle proofs by default)",
	}
	cmd.AddCommand(newQueryAccountCmd("account"), newQueryAccountCmd("balance"), newQuerySupplyCmd(),
		newQueryParamsCmd(), newQueryBlockCmd(), newQueryTxCmd(), newQueryMetagraphCmd())
	return cmd
}

// proofJSON is how a verified proof is reported.
type proofJSON struct {
	Height  int64  `json:"height"`
	Header  int64  `json:"header"`
	AppHash string `json:"app_hash"`
}

func proofOut(p *client.Proof) *proofJSON {
	if p == nil {
		return nil
	}
	return &proofJSON{Height: p.Height, Header: p.Header, AppHash: fmt.Sprintf("%X", p.AppHash)}
}

func proofLine(p *proofJSON) string {
	if p == nil {
		return "not proven (--prove=false)"
	}
	return fmt.Sprintf("proven at height %d against app hash %s of signed header %d", p.Height, p.AppHash, p.Header)
}

func addProveFlag(cmd *cobra.Command, prove *bool) {
	cmd.Flags().BoolVar(prove, "prove", true, "verify the answer with an ICS-23 proof against a signed header (waits for the next block)")
}

// notFoundWhen marks err as a lookup that found nothing (exit 3) when the
// node's message says so with marker.
func notFoundWhen(err error, marker string) error {
	if err != nil && strings.Contains(err.Error(), marker) {
		return notFoundError{err}
	}
	return err
}

// readCommand finishes a command that reads from --node: the node flag,
// and --prove where prove is not nil.
func readCommand(cmd *cobra.Command, prove *bool) *cobra.Command {
	addNodeFlag(cmd)
	if prove != nil {
		addProveFlag(cmd, prove)
	}
	return cmd
}

// show connects to --node, reads with read and prints the result: as JSON
// under --output json, else with text.
func show[T any](cmd *cobra.Command, read func(ctx context.Context, c *client.Client) (T, error), text func(w io.Writer, v T) error) error {
	c, err := newClient(cmd)
	if err != nil {
		return err
	}
	v, err := read(cmd.Context(), c)
	if err != nil {
		return err
	}
	return printResult(cmd, v, func(w io.Writer) error { return text(w, v) })
}

type accountOut struct {
	Address string     `json:"address"`
	Balance uint64     `json:"balance"`
	Nonce   uint64     `json:"nonce"`
	Proof   *proofJSON `json:"proof,omitempty"`
}

func newQueryAccountCmd(use string) *cobra.Command {
	var prove bool
	return readCommand(&cobra.Command{
		Use:   use + " ADDRESS|KEY",
		Short: "Show an account's balance and nonce",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, err := resolveAddress(cmd, args[0])
			if err != nil {
				return err
			}
			return show(cmd, func(ctx context.Context, c *client.Client) (accountOut, error) {
				acc, p, err := c.Account(ctx, addr, prove)
				return accountOut{addr.String(), acc.GetBalance(), acc.GetNonce(), proofOut(p)}, err
			}, func(w io.Writer, a accountOut) error {
				if use == "balance" {
					_, err := fmt.Fprintf(w, "%s\n", agr.Format(a.Balance))
					return err
				}
				_, err := fmt.Fprintf(w, "address  %s\nbalance  %s (%d nagr)\nnonce    %d\n%s\n",
					a.Address, agr.Format(a.Balance), a.Balance, a.Nonce, proofLine(a.Proof))
				return err
			})
		},
	}, &prove)
}

type supplyOut struct {
	Total             uint64     `json:"total"`
	Cap               uint64     `json:"cap"`
	Genesis           uint64     `json:"genesis"`
	Minted            uint64     `json:"minted"`
	Burned            uint64     `json:"burned"`
	PendingEmission   uint64     `json:"pending_emission"`
	LastBlockEmission uint64     `json:"last_block_emission"`
	Bonded            uint64     `json:"bonded"`
	Unbonding         uint64     `json:"unbonding"`
	Slashed           uint64     `json:"slashed"`
	RoyaltyHeld       uint64     `json:"royalty_held"`
	OfferingEscrow    uint64     `json:"offering_escrow"`
	Proof             *proofJSON `json:"proof,omitempty"`
}

func newQuerySupplyCmd() *cobra.Command {
	var prove bool
	return readCommand(&cobra.Command{
		Use:     "supply",
		Aliases: []string{"emission"},
		Short:   "Show total supply, emission, burned fees, the pending emission pool, chain-validator bonds and royalty pools",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return show(cmd, func(ctx context.Context, c *client.Client) (supplyOut, error) {
				s, p, err := c.Supply(ctx, prove)
				if err != nil {
					return supplyOut{}, err
				}
				params, err := c.Params(ctx, false)
				if err != nil {
					return supplyOut{}, err
				}
				return supplyOut{Total: s.Genesis + s.Minted - s.Burned, Cap: params.SupplyCap, Genesis: s.Genesis, Minted: s.Minted,
					Burned: s.Burned, PendingEmission: s.PendingEmission, LastBlockEmission: s.LastBlockEmission,
					Bonded: s.Bonded, Unbonding: s.Unbonding, Slashed: s.Slashed,
					RoyaltyHeld: s.RoyaltyHeld, OfferingEscrow: s.OfferingEscrow, Proof: proofOut(p)}, nil
			}, func(w io.Writer, s supplyOut) error {
				_, err := fmt.Fprintf(w, "total supply      %s\ncap               %s\ngenesis           %s\nminted            %s\nburned            %s (slashed %s)\npending emission  %s\nlast block        %s\nbonded            %s (unbonding %s)\nroyalties         %s (offerings %s)\n%s\n",
					agr.Format(s.Total), agr.Format(s.Cap), agr.Format(s.Genesis), agr.Format(s.Minted),
					agr.Format(s.Burned), agr.Format(s.Slashed), agr.Format(s.PendingEmission), agr.Format(s.LastBlockEmission),
					agr.Format(s.Bonded), agr.Format(s.Unbonding), agr.Format(s.RoyaltyHeld), agr.Format(s.OfferingEscrow), proofLine(s.Proof))
				return err
			})
		},
	}, &prove)
}

func newQueryParamsCmd() *cobra.Command {
	var prove bool
	return readCommand(&cobra.Command{
		Use:   "params",
		Short: "Show the chain parameters",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return show(cmd, func(ctx context.Context, c *client.Client) (*tx.Params, error) {
				return c.Params(ctx, prove)
			}, func(w io.Writer, p *tx.Params) error {
				_, err := fmt.Fprintf(w, "fee per transfer     %s\nblock reward base    %s\nsupply cap           %s\ntarget block time    %d ms\nmax messages per tx  %d\nmax memo bytes       %d\n",
					agr.Format(p.FeeTransfer), agr.Format(p.BlockRewardBase), agr.Format(p.SupplyCap), p.TargetBlockTimeMs, p.MaxMsgsPerTx, p.MaxMemoBytes)
				return err
			})
		},
	}, &prove)
}

type blockOut struct {
	Height   int64     `json:"height"`
	Hash     string    `json:"hash"`
	Time     time.Time `json:"time"`
	Proposer string    `json:"proposer"`
	AppHash  string    `json:"app_hash"`
	Txs      []string  `json:"txs"`
}

func newQueryBlockCmd() *cobra.Command {
	return readCommand(&cobra.Command{
		Use:   "block [HEIGHT]",
		Short: "Show a block (default: the latest)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var h int64
			if len(args) == 1 {
				var err error
				if h, err = strconv.ParseInt(args[0], 10, 64); err != nil || h <= 0 {
					return usageErrorf("height %q must be a positive integer", args[0])
				}
			}
			return show(cmd, func(ctx context.Context, c *client.Client) (blockOut, error) {
				b, err := c.Block(ctx, h)
				if err != nil {
					return blockOut{}, notFoundWhen(err, "must be less than or equal")
				}
				if b.Block == nil {
					return blockOut{}, notFoundError{fmt.Errorf("the chain has no block yet")}
				}
				hashes := make([]string, len(b.Block.Txs))
				for i, t := range b.Block.Txs {
					hashes[i] = fmt.Sprintf("%X", t.Hash())
				}
				return blockOut{b.Block.Height, b.BlockID.Hash.String(), b.Block.Time, b.Block.ProposerAddress.String(), b.Block.AppHash.String(), hashes}, nil
			}, func(w io.Writer, out blockOut) error {
				_, err := fmt.Fprintf(w, "height    %d\nhash      %s\ntime      %s\nproposer  %s\napp hash  %s\ntxs       %d\n",
					out.Height, out.Hash, out.Time.Format(time.RFC3339Nano), out.Proposer, out.AppHash, len(out.Txs))
				for _, h := range out.Txs {
					fmt.Fprintf(w, "  %s\n", h)
				}
				return err
			})
		},
	}, nil)
}

type txEvent struct {
	Type       string            `json:"type"`
	Attributes map[string]string `json:"attributes"`
}

type txOut struct {
	Hash   string    `json:"hash"`
	Height int64     `json:"height"`
	Index  uint32    `json:"index"`
	Code   uint32    `json:"code"`
	Log    string    `json:"log,omitempty"`
	Events []txEvent `json:"events"`
}

func newQueryTxCmd() *cobra.Command {
	return readCommand(&cobra.Command{
		Use:   "tx HASH",
		Short: "Show a committed transaction and its result",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			hash, err := hex.DecodeString(strings.TrimPrefix(args[0], "0x"))
			if err != nil || len(hash) != 32 {
				return usageErrorf("tx hash %q must be 64 hex characters", args[0])
			}
			return show(cmd, func(ctx context.Context, c *client.Client) (txOut, error) {
				r, err := c.Tx(ctx, hash)
				if err != nil {
					return txOut{}, notFoundWhen(err, "not found")
				}
				var events []txEvent
				for _, e := range r.TxResult.Events {
					attrs := make(map[string]string, len(e.Attributes))
					for _, a := range e.Attributes {
						attrs[a.Key] = a.Value
					}
					events = append(events, txEvent{e.Type, attrs})
				}
				return txOut{fmt.Sprintf("%X", r.Hash), r.Height, r.Index, r.TxResult.Code, r.TxResult.Log, events}, nil
			}, func(w io.Writer, out txOut) error {
				status := "ok"
				if out.Code != 0 {
					status = fmt.Sprintf("failed (code %d): %s", out.Code, out.Log)
				}
				_, err := fmt.Fprintf(w, "hash    %s\nheight  %d\nindex   %d\nresult  %s\n", out.Hash, out.Height, out.Index, status)
				for _, e := range out.Events {
					fmt.Fprintf(w, "event   %s %v\n", e.Type, e.Attributes)
				}
				return err
			})
		},
	}, nil)
}
