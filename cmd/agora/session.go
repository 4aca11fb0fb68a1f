package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/gateway"
)

func newKeysSessionCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "session", Short: "Session keys: spend-capped API keys for OpenAI clients and agents"}
	cmd.AddCommand(newKeysSessionNewCmd())
	return cmd
}

func newKeysSessionNewCmd() *cobra.Command {
	var (
		from, capText string
		channel, exp  uint64
		netuids       []uint
	)
	cmd := &cobra.Command{
		Use:   "new --from PAYER --channel ID --cap AMOUNT [--expiry-blocks N] [--netuid N]",
		Short: "Print a bearer token (an OpenAI API key) that pays on a channel, up to a cap, until an expiry",
		Long: `session new makes a fresh session key and has the payer's key sign a
delegation to it: it may pay on one channel, at most --cap in total, until
--expiry-blocks from now, on the given subnets. The token carries both; give
it to an OpenAI client as its API key. Anyone holding it can spend up to the
cap, and no more.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			capAmount, err := positiveAmount(capText)
			if err != nil {
				return err
			}
			if channel == 0 {
				return usageErrorf("--channel is required")
			}
			priv, c, chainID, err := signerOnChain(cmd, from)
			if err != nil {
				return err
			}
			at, err := blocksFromNow(cmd.Context(), c, exp)
			if err != nil {
				return err
			}
			token, err := newSessionToken(priv, chainID, channel, capAmount, at, netuids)
			if err != nil {
				return err
			}
			out := map[string]any{"token": token, "channel_id": channel, "cap": capAmount, "expiry_height": at}
			return printResult(cmd, out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "export OPENAI_API_KEY=%s\n", token)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the channel's payer key")
	cmd.Flags().Uint64Var(&channel, "channel", 0, "channel the session key pays on")
	cmd.Flags().StringVar(&capText, "cap", "", "most the session key may spend in total (e.g. 1agr)")
	cmd.Flags().Uint64Var(&exp, "expiry-blocks", 86_400, "blocks the session key stays valid")
	cmd.Flags().UintSliceVar(&netuids, "netuid", nil, "subnets it may pay on (default: any)")
	addNodeFlag(cmd)
	return cmd
}

// newSessionToken makes a session key and a delegation to it signed by payer.
func newSessionToken(payer ed25519.PrivateKey, chainID string, channel, capAmount, expiry uint64, netuids []uint) (string, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return "", err
	}
	var nets []uint32
	for _, n := range netuids {
		nets = append(nets, uint32(n))
	}
	session := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	return gateway.NewSessionToken(seed, tx.Delegate(payer, chainID, channel, session, capAmount, expiry, nets))
}
