package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/agent"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/internal/atomicfile"
	"github.com/agoranet/agora/openai"
)

// chatState remembers an agent's channel to a gateway between runs.
type chatState struct {
	Channel uint64 `json:"channel"`
	Signed  uint64 `json:"signed"` // highest voucher amount signed; new vouchers must exceed it
	Owed    uint64 `json:"owed"`   // the channel's total charge as the agent agreed to it
}

// save writes the state atomically and durably: a torn or lost file would
// lose Signed, and the next voucher would repeat an amount the gateway
// already holds.
func (st chatState) save(path string) error {
	raw, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return atomicfile.Replace(path, raw, 0o600)
}

func newChatCmd() *cobra.Command {
	var from, gatewayURL, depositText, budgetText string
	var maxTokens int
	var sealed bool
	cmd := &cobra.Command{
		Use:   "chat --from PAYER --gateway URL PROMPT",
		Short: "Ask a gateway, paying per request from your own channel, and stream the answer",
		Long: `chat is the agent path: it asks the gateway whom to pay (HTTP 402, with a
probe that carries no prompt), checks on chain that the subnet exists and
the payee is a validator with a permit on it, opens a channel to it on first
use (--deposit) or reuses the one it remembers in --home, and pays each
request with a voucher it prices itself from the subnet's on-chain price: a
gateway asking more than that, more than --max-price, more than the deposit
holds, or claiming more than was agreed, gets nothing signed.

With --e2e the request is sealed end to end (HPKE, RFC 9180) to the
gateway's best miner that has published an X25519 key on chain: the gateway
routes and charges it without being able to read the prompt or the answer.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			deposit, err := positiveAmount(depositText)
			if err != nil {
				return err
			}
			budget, err := positiveAmount(budgetText)
			if err != nil {
				return err
			}
			if maxTokens < 1 || maxTokens > openai.MaxTokensCap {
				return usageErrorf("--max-tokens must be between 1 and %d", openai.MaxTokensCap)
			}
			priv, c, chainID, err := signerOnChain(cmd, from)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			payer := signerAddress(priv)
			a := agent.New(gatewayURL, priv, chainID, 0, 0)
			a.Chain, a.Budget = c, budget
			terms, err := a.Discover(ctx, maxTokens)
			if err != nil {
				return err
			}
			statePath := filepath.Join(homeDir(cmd), "agent", chainID, fmt.Sprintf("%s-%d.json", terms.Payee, terms.Netuid))
			var st chatState
			if raw, err := os.ReadFile(statePath); err == nil {
				if err := json.Unmarshal(raw, &st); err != nil {
					return fmt.Errorf("agent state %s: %w", statePath, err)
				}
			}
			if st.Channel != 0 {
				ch, err := c.Channel(ctx, st.Channel, false)
				switch {
				case errors.Is(err, client.ErrNoChannel):
					st = chatState{}
				case err != nil:
					return err
				case !bytes.Equal(ch.Payee, terms.Payee[:]) || ch.Netuid != terms.Netuid || !bytes.Equal(ch.Payer, payer[:]):
					st = chatState{} // not the channel this state was for
				}
			}
			if st.Channel == 0 {
				h, err := c.Height(ctx)
				if err != nil {
					return err
				}
				expiry, err := agr.Add(uint64(h), 1_000_000)
				if err != nil {
					return err
				}
				height, err := c.SendAndWait(ctx, priv, []*tx.Msg{tx.ChannelOpen(terms.Payee, terms.Netuid, deposit, expiry)}, client.SendOptions{})
				if err != nil {
					return fmt.Errorf("open a channel to the gateway: %w", err)
				}
				if st.Channel, err = agent.OpenedChannel(ctx, c, payer, height); err != nil {
					return err
				}
				if err := st.save(statePath); err != nil {
					return fmt.Errorf("remember channel %d: %w", st.Channel, err)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "opened channel %d with %s to %s on subnet %d\n", st.Channel, agr.Format(deposit), terms.Payee, terms.Netuid)
			}
			if st.Owed == 0 {
				st.Owed = st.Signed // state from before owed was kept: assume everything signed was used
			}
			a.Channel, a.Signed, a.Owed = st.Channel, st.Signed, st.Owed
			a.OnSigned = func(signed, owed uint64) error {
				st.Signed, st.Owed = signed, owed
				return st.save(statePath)
			}
			if sealed {
				if a.Sealed, err = agent.PickMiner(ctx, gatewayURL, c, terms.Netuid); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "sealed end to end to miner %s\n", a.Sealed.Miner)
			}
			_, err = a.Chat(ctx, strings.Join(args, " "), maxTokens, func(delta string) { fmt.Fprint(cmd.OutOrStdout(), delta) })
			fmt.Fprintln(cmd.OutOrStdout())
			st.Signed, st.Owed = a.Signed, a.Owed
			if serr := st.save(statePath); serr != nil {
				err = errors.Join(err, fmt.Errorf("save agent state: %w", serr))
			}
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
	cmd.Flags().StringVar(&budgetText, "max-price", "0.1agr", "most one request may be authorized for")
	cmd.Flags().IntVar(&maxTokens, "max-tokens", 128, "most tokens to generate")
	cmd.Flags().BoolVar(&sealed, "e2e", false, "encrypt the request and answer end to end to one miner")
	addNodeFlag(cmd)
	return cmd
}
