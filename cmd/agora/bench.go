package main

import "github.com/spf13/cobra"

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure throughput and latency of Agora's parts on this machine",
	}
	cmd.AddCommand(newBenchTransfersCmd(), newBenchEngineCmd(), newBenchGatewayCmd())
	return cmd
}
