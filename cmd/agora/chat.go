package main

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agent"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
)

// chatState remembers an agent's channel to a gateway between runs.
type chatState struct {
	Channel uint64 `json:"channel"`
	Signed  uint64 `json:"signed"` // highest voucher amount signed; new vouchers must exceed it
}

func newChatCmd() *cobra.Command {
	var from, gatewayURL, depositText string
	var maxTokens int
	var sealed bool
	cmd := &cobra.Command{
		Use:   "chat --from PAYER --gateway URL PROMPT",
		Short: "Ask a gateway, paying per request from your own channel, and stream the answer",
		Long: `chat is the agent path: it asks the gateway what a request costs (HTTP 402),
opens a channel to the gateway on first use (--deposit) or reuses the one it
remembers in --home, pays with a voucher, and streams the answer.

With --e2e the request is sealed end to end (HPKE, RFC 9180) to the
gateway's best miner that has published an X25519 key on chain: the gateway
routes and charges it without being able to read the prompt or the answer.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			deposit, err := positiveAmount(depositText)
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
			ctx := cmd.Context()
			chainID, err := c.ChainID(ctx)
			if err != nil {
				return err
			}
			a := agent.New(gatewayURL, priv, chainID, 0, 0)
			prompt := strings.Join(args, " ")
			probe, _ := json.Marshal(map[string]any{"model": "agora", "messages": []map[string]string{{"role": "user", "content": prompt}}, "max_tokens": maxTokens, "stream": true})
			reqs, err := a.Requirements(ctx, probe)
			if err != nil {
				return err
			}
			payee, err := address.Parse(reqs.Payee)
			if err != nil {
				return fmt.Errorf("gateway payee: %w", err)
			}
			statePath := filepath.Join(homeDir(cmd), "agent", reqs.Payee+".json")
			var st chatState
			if raw, err := os.ReadFile(statePath); err == nil {
				json.Unmarshal(raw, &st)
			}
			if st.Channel != 0 {
				if _, err := c.Channel(ctx, st.Channel, false); errors.Is(err, client.ErrNoChannel) {
					st = chatState{}
				}
			}
			if st.Channel == 0 {
				h, err := c.Height(ctx)
				if err != nil {
					return err
				}
				height, err := c.SendAndWait(ctx, priv, []*tx.Msg{{Sum: &tx.Msg_ChannelOpen{ChannelOpen: &tx.MsgChannelOpen{
					Payee: payee[:], Netuid: reqs.Netuid, Deposit: deposit, ExpiryHeight: uint64(h) + 1_000_000}}}}, client.SendOptions{})
				if err != nil {
					return fmt.Errorf("open a channel to the gateway: %w", err)
				}
				if st.Channel, err = agent.OpenedChannel(ctx, c, address.FromPubKey(priv.Public().(ed25519.PublicKey)), height); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "opened channel %d with %s\n", st.Channel, agr.Format(deposit))
			}
			a.Channel, a.Signed, a.Owed = st.Channel, st.Signed, st.Signed
			if sealed {
				if a.Sealed, err = agent.PickMiner(ctx, gatewayURL, c, reqs.Netuid); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "sealed end to end to miner %s\n", a.Sealed.Miner)
			}
			save := func() {
				st.Signed = a.Signed
				raw, _ := json.Marshal(st)
				os.MkdirAll(filepath.Dir(statePath), 0o700)
				os.WriteFile(statePath, raw, 0o600)
			}
			_, err = a.Chat(ctx, prompt, maxTokens, func(delta string) { fmt.Fprint(cmd.OutOrStdout(), delta) })
			save()
			fmt.Fprintln(cmd.OutOrStdout())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "paid from channel %d; %s owed in total\n", a.Channel, agr.Format(a.Owed))
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "payer key")
	cmd.Flags().StringVar(&gatewayURL, "gateway", "http://127.0.0.1:8080/v1", "gateway base URL")
	cmd.Flags().StringVar(&depositText, "deposit", "5agr", "deposit of a new channel")
	cmd.Flags().IntVar(&maxTokens, "max-tokens", 128, "most tokens to generate")
	cmd.Flags().BoolVar(&sealed, "e2e", false, "encrypt the request and answer end to end to one miner")
	addNodeFlag(cmd)
	return cmd
}
