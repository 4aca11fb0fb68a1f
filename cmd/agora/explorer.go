package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/devnet"
	"github.com/agoranet/agora/explorer"
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
			ex, err := listenAndServeExplorer(addr, chatURL, logger, nodeAddrs(cmd)...)
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

// listenAndServeExplorer serves the explorer at addr over the nodes at rpcs
// (with failover), linking to a gateway's chat page when chatURL is set.
func listenAndServeExplorer(addr, chatURL string, logger *slog.Logger, rpcs ...string) (*explorer.Server, error) {
	c, err := client.New(rpcs...)
	if err != nil {
		return nil, err
	}
	ex, err := explorer.Listen(addr, explorer.Config{Chain: c, ChatURL: chatURL, Log: logger})
	if err != nil {
		return nil, fmt.Errorf("--explorer: %w", err)
	}
	return ex, nil
}

// listenExplorer binds the devnet's (or testnet's) explorer port on
// loopback before the services start, and records its URL for the gateway.
func (f *netFlags) listenExplorer(port int) (net.Listener, error) {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return nil, fmt.Errorf("explorer port %d on 127.0.0.1: %w (choose another with --explorer-port)", port, err)
	}
	f.explorerURL = "http://" + l.Addr().String()
	return l, nil
}

// startExplorer serves the devnet's (or testnet's) explorer on l over the
// nodes at rpcs; with services running (network non-nil) it links their
// chat page and reads miners' verification figures from their gateway.
func startExplorer(l net.Listener, network *devnet.Network, logger *slog.Logger, rpcs ...string) (*explorer.Server, error) {
	c, err := client.New(rpcs...)
	if err != nil {
		return nil, err
	}
	cfg := explorer.Config{Chain: c, Log: logger}
	if network != nil {
		cfg.ChatURL, cfg.Gateways = chatPage(network), []string{network.GatewayURL}
	}
	return explorer.Start(l, cfg)
}

// chatPage is the gateway's chat page.
func chatPage(network *devnet.Network) string {
	return strings.TrimSuffix(network.GatewayURL, "/v1") + "/chat"
}

// chatLink is the chat page with the devnet's session key and explorer in
// its fragment, which the browser never sends to a server; the page moves
// them to local storage.
func chatLink(network *devnet.Network, explorerURL string) string {
	return chatPage(network) + "#key=" + url.QueryEscape(network.SessionToken) + "&explorer=" + url.QueryEscape(explorerURL)
}
