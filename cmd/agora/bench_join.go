package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/bench"
)

func newBenchJoinCmd() *cobra.Command {
	var (
		blocks    int64
		accounts  int
		blockTime time.Duration
	)
	cmd := &cobra.Command{
		Use:   "join",
		Short: "Time a fresh node joining by state sync against one replaying every block",
		Long: `join builds a local chain of --blocks blocks holding --accounts accounts
(created by 64-transfer transactions) on one node that makes state-sync
snapshots, then times two fresh nodes catching up with it: one restoring the
newest snapshot and following by blocksync, one replaying every block from
genesis. It prints both times, their ratio, and the snapshot's size and chunk
count. The state-sync time includes CometBFT's 5 s snapshot discovery.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if blocks < 10 || accounts < 1 {
				return usageErrorf("--blocks must be at least 10 and --accounts positive")
			}
			res, err := bench.Join(cmd.Context(), bench.JoinConfig{Blocks: blocks, Accounts: accounts, BlockTime: blockTime, Progress: cmd.ErrOrStderr()})
			if err != nil {
				return err
			}
			return printResult(cmd, res, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "chain: %d blocks, %d accounts\nsnapshot: height %d, %d chunks, %d bytes\nstate sync: %.1f s (to height %d, earliest block %d)\nreplay:     %.1f s (to height %d)\nreplay / state sync: %.1fx\n",
					res.Blocks, res.Accounts, res.SnapshotHeight, res.SnapshotChunks, res.SnapshotBytes,
					res.StateSyncSecs, res.StateSyncTarget, res.StateSyncBase, res.ReplaySecs, res.ReplayTarget, res.Ratio)
				return err
			})
		},
	}
	cmd.Flags().Int64Var(&blocks, "blocks", 10_000, "chain length before the joins")
	cmd.Flags().IntVar(&accounts, "accounts", 100_000, "accounts on the chain")
	cmd.Flags().DurationVar(&blockTime, "block-time", 5*time.Millisecond, "timeout_commit of the benchmark chain")
	return cmd
}
