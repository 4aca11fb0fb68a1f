package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/agr"
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

func proofLine(p *client.Proof) string {
	if p == nil {
		return "not proven (--prove=false)"
	}
	return fmt.Sprintf("proven at height %d against app hash %X of signed header %d", p.Height, p.AppHash, p.Header)
}

func addProveFlag(cmd *cobra.Command, prove *bool) {
	cmd.Flags().BoolVar(prove, "prove", true, "verify the answer with an ICS-23 proof against a signed header (waits for the next block)")
}

func newQueryAccountCmd(use string) *cobra.Command {
	var prove bool
	cmd := &cobra.Command{
		Use:   use + " ADDRESS|KEY",
		Short: "Show an account's balance and nonce",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, err := resolveAddress(cmd, args[0])
			if err != nil {
				return err
			}
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			acc, p, err := c.Account(cmd.Context(), addr, prove)
			if err != nil {
				return err
			}
			out := struct {
				Address string     `json:"address"`
				Balance uint64     `json:"balance"`
				Nonce   uint64     `json:"nonce"`
				Proof   *proofJSON `json:"proof,omitempty"`
			}{addr.String(), acc.Balance, acc.Nonce, proofOut(p)}
			return printResult(cmd, out, func(w io.Writer) error {
				if use == "balance" {
					_, err := fmt.Fprintf(w, "%s\n", agr.Format(acc.Balance))
					return err
				}
				_, err := fmt.Fprintf(w, "address  %s\nbalance  %s (%d nagr)\nnonce    %d\n%s\n",
					addr, agr.Format(acc.Balance), acc.Balance, acc.Nonce, proofLine(p))
				return err
			})
		},
	}
	addNodeFlag(cmd)
	addProveFlag(cmd, &prove)
	return cmd
}

func newQuerySupplyCmd() *cobra.Command {
	var prove bool
	cmd := &cobra.Command{
		Use:     "supply",
		Aliases: []string{"emission"},
		Short:   "Show total supply, emission, burned fees and the pending emission pool",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			s, p, err := c.Supply(cmd.Context(), prove)
			if err != nil {
				return err
			}
			params, err := c.Params(cmd.Context(), false)
			if err != nil {
				return err
			}
			total := s.Genesis + s.Minted - s.Burned
			out := struct {
				Total             uint64     `json:"total"`
				Cap               uint64     `json:"cap"`
				Genesis           uint64     `json:"genesis"`
				Minted            uint64     `json:"minted"`
				Burned            uint64     `json:"burned"`
				PendingEmission   uint64     `json:"pending_emission"`
				LastBlockEmission uint64     `json:"last_block_emission"`
				Proof             *proofJSON `json:"proof,omitempty"`
			}{total, params.SupplyCap, s.Genesis, s.Minted, s.Burned, s.PendingEmission, s.LastBlockEmission, proofOut(p)}
			return printResult(cmd, out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "total supply      %s\ncap               %s\ngenesis           %s\nminted            %s\nburned            %s\npending emission  %s\nlast block        %s\n%s\n",
					agr.Format(total), agr.Format(params.SupplyCap), agr.Format(s.Genesis), agr.Format(s.Minted),
					agr.Format(s.Burned), agr.Format(s.PendingEmission), agr.Format(s.LastBlockEmission), proofLine(p))
				return err
			})
		},
	}
	addNodeFlag(cmd)
	addProveFlag(cmd, &prove)
	return cmd
}

func newQueryParamsCmd() *cobra.Command {
	var prove bool
	cmd := &cobra.Command{
		Use:   "params",
		Short: "Show the chain parameters",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			p, err := c.Params(cmd.Context(), prove)
			if err != nil {
				return err
			}
			return printResult(cmd, p, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "fee per transfer     %s\nblock reward base    %s\nsupply cap           %s\ntarget block time    %d ms\nmax messages per tx  %d\nmax memo bytes       %d\n",
					agr.Format(p.FeeTransfer), agr.Format(p.BlockRewardBase), agr.Format(p.SupplyCap), p.TargetBlockTimeMs, p.MaxMsgsPerTx, p.MaxMemoBytes)
				return err
			})
		},
	}
	addNodeFlag(cmd)
	addProveFlag(cmd, &prove)
	return cmd
}

func newQueryBlockCmd() *cobra.Command {
	cmd := &cobra.Command{
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
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			b, err := c.Block(cmd.Context(), h)
			if err != nil {
				if strings.Contains(err.Error(), "must be less than or equal") {
					return notFoundError{err}
				}
				return err
			}
			if b.Block == nil {
				return notFoundError{fmt.Errorf("the chain has no block yet")}
			}
			hashes := make([]string, len(b.Block.Txs))
			for i, t := range b.Block.Txs {
				hashes[i] = fmt.Sprintf("%X", t.Hash())
			}
			out := struct {
				Height   int64     `json:"height"`
				Hash     string    `json:"hash"`
				Time     time.Time `json:"time"`
				Proposer string    `json:"proposer"`
				AppHash  string    `json:"app_hash"`
				Txs      []string  `json:"txs"`
			}{b.Block.Height, b.BlockID.Hash.String(), b.Block.Time, b.Block.ProposerAddress.String(), b.Block.AppHash.String(), hashes}
			return printResult(cmd, out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "height    %d\nhash      %s\ntime      %s\nproposer  %s\napp hash  %s\ntxs       %d\n",
					out.Height, out.Hash, out.Time.Format(time.RFC3339Nano), out.Proposer, out.AppHash, len(hashes))
				for _, h := range hashes {
					fmt.Fprintf(w, "  %s\n", h)
				}
				return err
			})
		},
	}
	addNodeFlag(cmd)
	return cmd
}

func newQueryTxCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tx HASH",
		Short: "Show a committed transaction and its result",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			hash, err := hex.DecodeString(strings.TrimPrefix(args[0], "0x"))
			if err != nil || len(hash) != 32 {
				return usageErrorf("tx hash %q must be 64 hex characters", args[0])
			}
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			r, err := c.Tx(cmd.Context(), hash)
			if err != nil {
				if strings.Contains(err.Error(), "not found") {
					return notFoundError{err}
				}
				return err
			}
			type event struct {
				Type       string            `json:"type"`
				Attributes map[string]string `json:"attributes"`
			}
			var events []event
			for _, e := range r.TxResult.Events {
				attrs := make(map[string]string, len(e.Attributes))
				for _, a := range e.Attributes {
					attrs[a.Key] = a.Value
				}
				events = append(events, event{e.Type, attrs})
			}
			out := struct {
				Hash   string  `json:"hash"`
				Height int64   `json:"height"`
				Index  uint32  `json:"index"`
				Code   uint32  `json:"code"`
				Log    string  `json:"log,omitempty"`
				Events []event `json:"events"`
			}{fmt.Sprintf("%X", r.Hash), r.Height, r.Index, r.TxResult.Code, r.TxResult.Log, events}
			return printResult(cmd, out, func(w io.Writer) error {
				status := "ok"
				if out.Code != 0 {
					status = fmt.Sprintf("failed (code %d): %s", out.Code, out.Log)
				}
				_, err := fmt.Fprintf(w, "hash    %s\nheight  %d\nindex   %d\nresult  %s\n", out.Hash, out.Height, out.Index, status)
				for _, e := range events {
					fmt.Fprintf(w, "event   %s %v\n", e.Type, e.Attributes)
				}
				return err
			})
		},
	}
	addNodeFlag(cmd)
	return cmd
}
