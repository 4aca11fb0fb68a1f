package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newExplorerCmd() *cobra.Command {
	var addr, chatURL string
	cmd := &cobra.Command{
		Use:   "explorer",
		Short: "Serve the explorer (web pages and JSON API) over one or more nodes' RPC",
		Long: `explorer serves the network in a browser: blocks, transactions, accounts,
subnets and their metagraphs, miners and validators, chain validators and
channels, each page with a JSON twin under /api/ (see docs/explorer.md).

It reads the chain through the --node RPC URLs, failing over between them,
and keeps nothing on disk. A node can serve it itself with
'agora node start --explorer ADDR'; devnet and testnet start one and print
its link.`,
		Example: `  agora explorer --node http://127.0.0.1:26657 --addr 127.0.0.1:8090`,
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := newLogger("warn")
			if err != nil {
				return err
			}
			ex, err := startExplorer(addr, chatURL, logger, nodeAddrs(cmd)...)
			if err != nil {
				return err
			}
			defer ex.Close()
			fmt.Fprintf(cmd.OutOrStdout(), "explorer  %s\n", ex.URL())
			<-cmd.Context().Done()
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8090", "listen on `ADDR` (host:port)")
	cmd.Flags().StringVar(&chatURL, "chat-url", "", "link the header to a gateway's chat page, e.g. http://127.0.0.1:8080/chat")
	addNodeFlag(cmd)
	return cmd
}
