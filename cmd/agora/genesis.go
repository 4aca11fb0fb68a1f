package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"
	cmttime "github.com/cometbft/cometbft/types/time"
	"github.com/spf13/cobra"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain"
	"github.com/agoranet/agora/internal/atomicfile"
	"github.com/agoranet/agora/node"
)

// maxGenesisBytes bounds a genesis or gentx file read from disk.
const maxGenesisBytes = 64 << 20

func newGenesisCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "genesis",
		Short: "Create a network's genesis: accounts, operator-signed chain validators, validation and its hash",
		Long: `genesis builds the genesis file of a new network, Cosmos-style:

  agora genesis init --chain-id agora-x --file genesis.json
  agora genesis add-account agora1… 2000agr --file genesis.json
  agora genesis gentx --from op --node-home ./n1 --bond 1000agr --moniker n1 --file genesis.json --out n1.gentx.json
  agora genesis collect n1.gentx.json n2.gentx.json … --file genesis.json
  agora genesis validate --file genesis.json
  agora genesis hash --file genesis.json     # compare out of band, then
  agora node init --home ./n1 --genesis genesis.json --peers id@host:port,…

Each operator signs its own chain validator entry with its keystore key;
the coordinator cannot enrol a consensus key or change a bond without it.`,
	}
	cmd.PersistentFlags().String("file", "genesis.json", "the genesis file")
	cmd.AddCommand(newGenesisInitCmd(), newGenesisAddAccountCmd(), newGenesisGentxCmd(), newGenesisCollectCmd(),
		newGenesisValidateCmd(), newGenesisHashCmd())
	return cmd
}

func genesisFile(cmd *cobra.Command) string {
	f, _ := cmd.Flags().GetString("file")
	return f
}

func readBoundedFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxGenesisBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(raw) > maxGenesisBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxGenesisBytes)
	}
	return raw, nil
}

// loadGenesisFile reads a genesis document and its app state (checked for
// shape, not yet for chain validators, which may still be missing).
func loadGenesisFile(path string) (*cmttypes.GenesisDoc, *chain.Genesis, error) {
	raw, err := readBoundedFile(path)
	if err != nil {
		return nil, nil, err
	}
	doc, err := cmttypes.GenesisDocFromJSON(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("genesis document %s: %w", path, err)
	}
	g, err := chain.ParseGenesis(doc.AppState)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return doc, g, nil
}

func saveGenesisFile(path string, doc *cmttypes.GenesisDoc, g *chain.Genesis) error {
	app, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		return err
	}
	doc.AppState = app
	if err := doc.ValidateAndComplete(); err != nil {
		return fmt.Errorf("genesis document: %w", err)
	}
	raw, err := encodeGenesisDoc(doc)
	if err != nil {
		return err
	}
	return atomicfile.Replace(path, raw, 0o644)
}

// encodeGenesisDoc encodes a genesis document the way CometBFT's SaveAs does.
func encodeGenesisDoc(doc *cmttypes.GenesisDoc) ([]byte, error) {
	tmp, err := os.CreateTemp("", "agora-genesis-")
	if err != nil {
		return nil, err
	}
	name := tmp.Name()
	tmp.Close()
	defer os.Remove(name)
	if err := doc.SaveAs(name); err != nil {
		return nil, fmt.Errorf("encode genesis: %w", err)
	}
	return os.ReadFile(name)
}

func newGenesisInitCmd() *cobra.Command {
	var (
		chainID   string
		blockTime time.Duration
		force     bool
	)
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write a genesis skeleton: chain id, default parameters, no accounts, no chain validators yet",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := genesisFile(cmd)
			if _, err := os.Stat(path); err == nil && !force {
				return usageErrorf("%s exists (use --force to overwrite)", path)
			}
			if blockTime < time.Millisecond {
				return usageErrorf("--block-time must be at least 1ms")
			}
			g := &chain.Genesis{Params: chain.DefaultParams(uint64(blockTime / time.Millisecond))}
			cp := cmttypes.DefaultConsensusParams()
			// As node.Init: evidence lives as long as the unbonding period.
			cp.Evidence.MaxAgeNumBlocks = int64(min(g.Params.UnbondingBlocks, math.MaxInt64))
			cp.Evidence.MaxAgeDuration = time.Duration(g.Params.UnbondingBlocks*g.Params.TargetBlockTimeMs) * time.Millisecond
			doc := &cmttypes.GenesisDoc{ChainID: chainID, GenesisTime: cmttime.Now(), InitialHeight: 1, ConsensusParams: cp}
			if err := saveGenesisFile(path, doc, g); err != nil {
				return err
			}
			return printResult(cmd, map[string]string{"file": path, "chain_id": chainID}, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "wrote %s for chain %s\n", path, chainID)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&chainID, "chain-id", "", "chain identifier (required)")
	cmd.Flags().DurationVar(&blockTime, "block-time", time.Second, "target block time")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing file")
	_ = cmd.MarkFlagRequired("chain-id")
	return cmd
}

func newGenesisAddAccountCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "add-account ADDRESS AMOUNT",
		Short: "Add a starting balance (makes the genesis a devnet genesis: a public chain has no premine)",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, err := address.Parse(args[0])
			if err != nil {
				return usageErrorf("address: %v", err)
			}
			amount, err := agr.Parse(args[1])
			if err != nil {
				return usageErrorf("amount: %v", err)
			}
			path := genesisFile(cmd)
			doc, g, err := loadGenesisFile(path)
			if err != nil {
				return err
			}
			for _, a := range g.Accounts {
				if a.Address == addr {
					return usageErrorf("%s already has a genesis balance", addr)
				}
			}
			g.Accounts = append(g.Accounts, chain.GenesisAccount{Address: addr, Balance: amount})
			g.Devnet = true
			if err := g.Validate(); err != nil {
				return err
			}
			if err := saveGenesisFile(path, doc, g); err != nil {
				return err
			}
			return printResult(cmd, map[string]any{"address": addr.String(), "balance": amount}, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "added %s with %s\n", addr, agr.Format(amount))
				return err
			})
		},
	}
}

func newGenesisGentxCmd() *cobra.Command {
	var from, nodeHome, bondText, moniker, out string
	cmd := &cobra.Command{
		Use:   "gentx --from KEY --node-home H --bond AMOUNT --moniker M",
		Short: "Sign this operator's chain validator entry for the genesis's chain id (consensus key from the node home)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			bond, err := agr.Parse(bondText)
			if err != nil {
				return usageErrorf("--bond: %v", err)
			}
			path := genesisFile(cmd)
			doc, g, err := loadGenesisFile(path)
			if err != nil {
				return err
			}
			cons, err := node.ConsensusPubKey(nodeHome)
			if err != nil {
				return err
			}
			priv, err := loadSigner(cmd, from)
			if err != nil {
				return err
			}
			v := chain.SignGenesisValidator(doc.ChainID, priv, chain.GenesisValidator{Moniker: moniker, ConsensusPubKey: cons, Bond: bond})
			if out != "" {
				raw, err := json.MarshalIndent(v, "", "  ")
				if err != nil {
					return err
				}
				if err := atomicfile.Replace(out, append(raw, '\n'), 0o644); err != nil {
					return err
				}
			} else {
				if err := addGenesisValidator(g, doc.ChainID, v); err != nil {
					return err
				}
				if err := saveGenesisFile(path, doc, g); err != nil {
					return err
				}
			}
			return printResult(cmd, v, func(w io.Writer) error {
				where := path
				if out != "" {
					where = out
				}
				_, err := fmt.Fprintf(w, "signed chain validator %s (operator %s, bond %s) into %s\n", moniker, v.Operator(), agr.Format(bond), where)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "operator key in the keystore (required)")
	cmd.Flags().StringVar(&nodeHome, "node-home", "", "home of the node whose consensus key this entry enrols (required)")
	cmd.Flags().StringVar(&bondText, "bond", "0", "self-bond taken from the operator's genesis balance (0: a bootstrap chain validator)")
	cmd.Flags().StringVar(&moniker, "moniker", "", "chain validator name (required)")
	cmd.Flags().StringVar(&out, "out", "", "write the signed entry to this file for the coordinator (default: add it to --file)")
	for _, f := range []string{"from", "node-home", "moniker"} {
		_ = cmd.MarkFlagRequired(f)
	}
	return cmd
}

// addGenesisValidator verifies v for chainID and appends it, refusing a
// genesis the chain would reject.
func addGenesisValidator(g *chain.Genesis, chainID string, v chain.GenesisValidator) error {
	if err := v.Verify(chainID); err != nil {
		return fmt.Errorf("chain validator %q: %w", v.Moniker, err)
	}
	g.Validators = append(g.Validators, v)
	if err := g.ValidateFor(chainID); err != nil {
		return err
	}
	return nil
}

func newGenesisCollectCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "collect GENTX_FILE…",
		Aliases: []string{"add-validator"},
		Short:   "Add operator-signed chain validator entries (from gentx) to the genesis, checking each signature",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := genesisFile(cmd)
			doc, g, err := loadGenesisFile(path)
			if err != nil {
				return err
			}
			for _, f := range args {
				raw, err := readBoundedFile(f)
				if err != nil {
					return err
				}
				v, err := parseGentx(raw)
				if err != nil {
					return fmt.Errorf("%s: %w", f, err)
				}
				if err := addGenesisValidator(g, doc.ChainID, v); err != nil {
					return fmt.Errorf("%s: %w", f, err)
				}
			}
			if err := saveGenesisFile(path, doc, g); err != nil {
				return err
			}
			return printResult(cmd, map[string]int{"chain_validators": len(g.Validators)}, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "%s now has %d chain validators\n", path, len(g.Validators))
				return err
			})
		},
	}
}

// parseGentx decodes one signed chain validator entry, rejecting unknown fields.
func parseGentx(raw []byte) (chain.GenesisValidator, error) {
	var v chain.GenesisValidator
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return v, fmt.Errorf("parse gentx: %w", err)
	}
	return v, nil
}

func newGenesisValidateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate",
		Short: "Check the genesis completely: document, parameters, balances, and every chain validator's signature for its chain id",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := genesisFile(cmd)
			doc, g, err := loadGenesisFile(path)
			if err != nil {
				return err
			}
			if len(doc.Validators) > 0 {
				return fmt.Errorf("%s lists CometBFT validators; Agora takes chain validators only from the signed app genesis", path)
			}
			if err := g.ValidateFor(doc.ChainID); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			res := map[string]any{"file": path, "chain_id": doc.ChainID, "accounts": len(g.Accounts), "chain_validators": len(g.Validators), "valid": true}
			return printResult(cmd, res, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "%s is valid: chain %s, %d accounts, %d chain validators\n", path, doc.ChainID, len(g.Accounts), len(g.Validators))
				return err
			})
		},
	}
}

func newGenesisHashCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "hash",
		Short: "Print the sha256 of the genesis file's bytes, the value operators compare out of band",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := genesisFile(cmd)
			raw, err := readBoundedFile(path)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(raw)
			h := hex.EncodeToString(sum[:])
			return printResult(cmd, map[string]string{"file": path, "sha256": h}, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, h)
				return err
			})
		},
	}
}
