package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"

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

// services is what devnet and testnet run beside their chain: the
// explorer and, unless it is chain only, devnet's subnet network.
type services struct {
	network  *devnet.Network // nil: chain only
	model    string          // the pinned model's label, with a network
	chatLink string          // the chat page with the key and explorer in its fragment
	explorer *explorer.Server
	once     sync.Once
}

// startServices starts them in the order the chat link needs: the
// explorer's address is bound first (the gateway names it as where miners'
// keys come from), then the network, then the explorer is served over rpcs
// with the network's chat page and its gateway's per-miner figures.
func startServices(cmd *cobra.Command, home string, f *netFlags, explorerPort int, withNetwork bool, logger *slog.Logger, rpcs ...string) (*services, error) {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", explorerPort))
	if err != nil {
		return nil, fmt.Errorf("explorer port %d on 127.0.0.1: %w (choose another with --explorer-port)", explorerPort, err)
	}
	f.explorerURL = "http://" + l.Addr().String()
	c, err := client.New(rpcs...)
	if err != nil {
		l.Close()
		return nil, err
	}
	s := &services{}
	cfg := explorer.Config{Chain: c, Log: logger}
	if withNetwork {
		if s.network, s.model, err = startNetwork(cmd, c, home, *f, logger); err != nil {
			l.Close()
			return nil, fmt.Errorf("start the devnet network: %w", err)
		}
		s.chatLink = chatLink(s.network, f.explorerURL)
		cfg.ChatURL, cfg.Gateways = chatPage(s.network), []string{s.network.GatewayURL}
	}
	if s.explorer, err = explorer.Start(l, cfg); err != nil {
		l.Close()
		s.stop()
		return nil, err
	}
	return s, nil
}

// stop stops the network and the explorer; it may be called again.
func (s *services) stop() {
	s.once.Do(func() {
		if s.network != nil {
			s.network.Stop()
		}
		if s.explorer != nil {
			s.explorer.Close()
		}
	})
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
