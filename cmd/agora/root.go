package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/client/lightclient"
)

// Flag names shared by many commands.
const (
	flagHome         = "home"
	flagOutput       = "output"
	flagNode         = "node"
	flagTrustHeight  = "trust-height"
	flagTrustHash    = "trust-hash"
	flagTrustPeriod  = "trust-period"
	flagPasswordFile = "password-file"
)

// defaultNode is CometBFT's standard RPC address.
const defaultNode = "http://127.0.0.1:26657"

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "agora",
		Short: "Agora: an open network for AI — chain node, keys, transactions and queries",
		Long: `agora is the one binary of the Agora network.

Start a local network with 'agora devnet'. Manage keys with 'agora keys',
send transactions with 'agora tx', read chain state with 'agora query'.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String(flagHome, defaultHome(), "directory holding config, chain data and the keystore (env AGORA_HOME)")
	root.PersistentFlags().StringP(flagOutput, "o", "text", "output format: text or json")
	root.PersistentFlags().String(flagPasswordFile, "", "read the keystore password from this file (else env AGORA_PASSWORD, else a prompt)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })

	root.AddCommand(
		newDevnetCmd(),
		newNodeCmd(),
		newExplorerCmd(),
		newKeysCmd(),
		newTxCmd(),
		newQueryCmd(),
		newSubnetCmd(),
		newNeuronCmd(),
		newStakeCmd(),
		newWeightsCmd(),
		newChannelCmd(),
		newChainValidatorCmd(),
		newChatCmd(),
		newMinerCmd(),
		newValidatorCmd(),
		newSimCmd(),
		newModelCmd(),
		newDataCmd(),
		newGenerateCmd(),
		newBenchCmd(),
		newTestnetCmd(),
		newGenesisCmd(),
		newDocsCmd(),
	)
	return root
}

func defaultHome() string {
	if h := os.Getenv("AGORA_HOME"); h != "" {
		return h
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".agora")
	}
	return ".agora"
}

func homeDir(cmd *cobra.Command) string {
	h, _ := cmd.Flags().GetString(flagHome)
	return h
}

// outputJSON reports whether --output json was asked for, rejecting unknown formats.
func outputJSON(cmd *cobra.Command) (bool, error) {
	o, _ := cmd.Flags().GetString(flagOutput)
	switch o {
	case "json":
		return true, nil
	case "text", "":
		return false, nil
	default:
		return false, usageErrorf("unknown --output %q (want text or json)", o)
	}
}

// printResult writes v as indented JSON under --output json, else calls text.
func printResult(cmd *cobra.Command, v any, text func(w io.Writer) error) error {
	asJSON, err := outputJSON(cmd)
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	return text(w)
}

// addNodeFlag adds --node, and the light client's root of trust, to
// commands that talk to a running chain.
func addNodeFlag(cmd *cobra.Command) {
	cmd.Flags().StringSlice(flagNode, []string{defaultNode}, "CometBFT RPC URL of a node; several (comma-separated or repeated) are tried in order when one is down, and are the light client's witnesses")
	cmd.Flags().Int64(flagTrustHeight, 0, "verify proven queries with a light client from this trusted block height (with --trust-hash)")
	cmd.Flags().String(flagTrustHash, "", "hex hash of the block at --trust-height, obtained from a source you trust")
	cmd.Flags().Duration(flagTrustPeriod, lightclient.DefaultTrustPeriod, "how long a verified header stays a root of trust (below the chain's unbonding period)")
}

func nodeAddrs(cmd *cobra.Command) []string {
	n, _ := cmd.Flags().GetStringSlice(flagNode)
	return n
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("%s takes %d argument(s), got %d (see --help)", cmd.CommandPath(), n, len(args))
		}
		return nil
	}
}
