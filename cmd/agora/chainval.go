package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	cmtjson "github.com/cometbft/cometbft/libs/json"
	"github.com/cometbft/cometbft/privval"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/chainval"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/node"
)

func newChainValidatorCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "chain-validator",
		Short: "Run a chain validator (a CometBFT block producer): bond, unbond, unjail, list",
		Long: `Chain validators produce the chain's blocks. Anyone may become one by bonding
AGR against a node's consensus key; the top max_chain_validators by bond form
the active set, with one vote per whole bonded AGR. Unbonded AGR is paid out
after unbonding_blocks. Double signing burns double_sign_slash_bps of the bond
and unbonding entries and tombstones the chain validator forever; missing more
than max_missed_blocks of the last signed_blocks_window blocks burns
downtime_slash_bps and jails it for downtime_jail_blocks, after which
'unjail' returns it.

(A plain "validator" in Agora is a subnet validator that scores miners; see
'agora validator'.)`,
	}
	cmd.AddCommand(txCommands(chainValCreate, chainValBond, chainValUnbond, chainValEdit, chainValUnjail)...)
	cmd.AddCommand(newChainValidatorListCmd(), newChainValidatorShowCmd())
	return cmd
}

// consensusKeyFile reads a node home's CometBFT consensus key.
func consensusKeyFile(home string) (ed25519.PrivateKey, error) {
	path := node.DefaultConfig(home, node.InitOptions{}).PrivValidatorKeyFile()
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read consensus key: %w", err)
	}
	var k privval.FilePVKey
	if err := cmtjson.Unmarshal(raw, &k); err != nil {
		return nil, fmt.Errorf("parse consensus key %s: %w", path, err)
	}
	if k.PrivKey == nil || len(k.PrivKey.Bytes()) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("consensus key %s is not an ed25519 key", path)
	}
	return ed25519.PrivateKey(k.PrivKey.Bytes()), nil
}

// decodeKeyBytes accepts hex or base64 (as CometBFT prints keys).
func decodeKeyBytes(s string, n int) ([]byte, bool) {
	if b, err := hex.DecodeString(s); err == nil && len(b) == n {
		return b, true
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) == n {
		return b, true
	}
	return nil, false
}

var (
	chainValCreate = txSpec{
		use:   "create BOND --from OPERATOR (--node-home DIR | --consensus-pubkey KEY --consensus-proof SIG) [--moniker NAME]",
		short: "Become a chain validator with a node's consensus key, bonding BOND",
		long: `create registers the node whose consensus key is given as a chain validator
operated by --from, bonding BOND from its balance. The consensus key must
sign the operator's address for this chain (so no one can claim another
node's key, which is usable once ever): with --node-home the key file of that
node is read and signs here; otherwise give the public key and a proof made
where the key lives (ed25519 over "agora/chain-validator-bind/v1", 0x00,
the chain id, 0x00 and the 20-byte operator address).`,
		example: "agora chain-validator create 1000agr --from op --node-home ~/.agora/node --moniker my-node",
		args:    1,
		from:    "operator key (pays the bond and signs every later chain-validator command)",
		flags: func(f *pflag.FlagSet) {
			f.String("node-home", "", "home of the node whose consensus key (config/priv_validator_key.json) to use")
			f.String("consensus-pubkey", "", "consensus public key, hex or base64 (instead of --node-home)")
			f.String("consensus-proof", "", "the consensus key's signature binding it to the operator, hex or base64 (with --consensus-pubkey)")
			f.String("moniker", "", "display name")
		},
		build: func(r *txRun, a []string) []*tx.Msg {
			bond := r.amount(a[0])
			home, pubText, proofText := r.flag("node-home"), r.flag("consensus-pubkey"), r.flag("consensus-proof")
			if (home == "") == (pubText == "") {
				r.usagef("give exactly one of --node-home and --consensus-pubkey")
			}
			var pub, proof []byte
			if pubText != "" {
				var ok bool
				if pub, ok = decodeKeyBytes(pubText, ed25519.PublicKeySize); !ok {
					r.usagef("--consensus-pubkey must be a 32-byte key in hex or base64")
				}
				if proof, ok = decodeKeyBytes(proofText, ed25519.SignatureSize); !ok {
					r.usagef("--consensus-proof must be a 64-byte signature in hex or base64")
				}
			}
			signer := r.sign("from")
			chainID := r.chainID()
			if r.err != nil {
				return nil
			}
			if home != "" {
				consensus, err := consensusKeyFile(home)
				if !r.fail(err) {
					return nil
				}
				pub = consensus.Public().(ed25519.PublicKey)
				proof = tx.SignChainValidatorProof(chainID, address.FromPubKey(signer.Public().(ed25519.PublicKey)), consensus)
			}
			return msgs(tx.ChainValidatorCreate(pub, proof, r.flag("moniker"), bond))
		},
	}
	chainValBond = oneArgTx("bond AMOUNT --from OPERATOR", "Add AMOUNT to your chain validator's bond",
		"operator key", (*txRun).amount, tx.ChainValidatorBond)
	chainValUnbond = oneArgTx("unbond AMOUNT --from OPERATOR", "Start unbonding AMOUNT (paid out after unbonding_blocks; slashable until then)",
		"operator key", (*txRun).amount, tx.ChainValidatorUnbond)
	chainValEdit = oneArgTx("edit MONIKER --from OPERATOR", "Rename your chain validator",
		"operator key", func(_ *txRun, s string) string { return s }, tx.ChainValidatorEdit)
	chainValUnjail = txSpec{
		use: "unjail --from OPERATOR", short: "Return your chain validator to the candidates after a downtime jail",
		from: "operator key",
		build: func(r *txRun, _ []string) []*tx.Msg {
			r.sign("from")
			return msgs(tx.ChainValidatorUnjail())
		},
	}
)

type chainValidatorOut struct {
	Operator         string `json:"operator"`
	Moniker          string `json:"moniker"`
	ConsensusPubKey  string `json:"consensus_pub_key"`
	ConsensusAddress string `json:"consensus_address"`
	Bonded           uint64 `json:"bonded"`
	Power            uint64 `json:"power"`  // in the set last sent to CometBFT
	Status           string `json:"status"` // active, candidate, jailed, tombstoned
	Missed           uint64 `json:"missed"` // in the downtime window
	JailedUntil      uint64 `json:"jailed_until,omitempty"`
	Unbonding        uint64 `json:"unbonding"`
	Slashed          uint64 `json:"slashed"`
	Bootstrap        bool   `json:"bootstrap,omitempty"`
}

func chainValidatorView(v *tx.ChainValidator) chainValidatorOut {
	status := "candidate"
	switch {
	case v.Tombstoned:
		status = "tombstoned"
	case v.Jailed:
		status = "jailed"
	case v.Power > 0:
		status = "active"
	case chainval.Power(v) == 0:
		status = "unbonded"
	}
	var unbonding uint64
	for _, e := range v.Unbonding {
		unbonding += e.Amount
	}
	out := chainValidatorOut{
		Operator: addrString(v.Operator), Moniker: v.Moniker, ConsensusPubKey: fmt.Sprintf("%X", v.ConsensusPubKey),
		ConsensusAddress: fmt.Sprintf("%X", tx.ConsensusAddress(v.ConsensusPubKey)),
		Bonded:           v.Bonded, Power: v.Power, Status: status, Missed: v.Missed, Unbonding: unbonding, Slashed: v.Slashed, Bootstrap: v.Bootstrap,
	}
	if v.Jailed && !v.Tombstoned {
		out.JailedUntil = v.JailedUntil
	}
	return out
}

func newChainValidatorListCmd() *cobra.Command {
	var prove bool
	return readCommand(&cobra.Command{
		Use:   "list",
		Short: "List chain validators with bond, power, status and missed blocks",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return show(cmd, func(ctx context.Context, c *client.Client) ([]chainValidatorOut, error) {
				l, err := c.ChainValidators(ctx, prove)
				if err != nil {
					return nil, err
				}
				out := make([]chainValidatorOut, 0, len(l.Validators))
				for _, v := range l.Validators {
					out = append(out, chainValidatorView(v))
				}
				return out, nil
			}, func(w io.Writer, vs []chainValidatorOut) error {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "OPERATOR\tMONIKER\tSTATUS\tPOWER\tBONDED\tMISSED")
				for _, v := range vs {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\n", v.Operator, sanitize(v.Moniker), v.Status, v.Power, agr.Format(v.Bonded), v.Missed)
				}
				return tw.Flush()
			})
		},
	}, &prove)
}

func newChainValidatorShowCmd() *cobra.Command {
	var prove bool
	return readCommand(&cobra.Command{
		Use:   "show OPERATOR|KEY",
		Short: "Show one chain validator",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			op, err := resolveAddress(cmd, args[0])
			if err != nil {
				return err
			}
			return show(cmd, func(ctx context.Context, c *client.Client) (chainValidatorOut, error) {
				v, _, err := c.ChainValidator(ctx, op, prove)
				if err != nil {
					return chainValidatorOut{}, err
				}
				return chainValidatorView(v), nil
			}, func(w io.Writer, v chainValidatorOut) error {
				_, err := fmt.Fprintf(w, "operator           %s\nmoniker            %s\nstatus             %s\npower              %d\nbonded             %s\nunbonding          %s\nslashed            %s\nmissed             %d\nconsensus address  %s\nconsensus key      %s\n",
					v.Operator, sanitize(v.Moniker), v.Status, v.Power, agr.Format(v.Bonded), agr.Format(v.Unbonding), agr.Format(v.Slashed), v.Missed, v.ConsensusAddress, v.ConsensusPubKey)
				if err == nil && v.JailedUntil > 0 {
					_, err = fmt.Fprintf(w, "jailed until       %d\n", v.JailedUntil)
				}
				return err
			})
		},
	}, &prove)
}

// sanitize keeps a chain-supplied name from writing terminal escapes (the
// chain already refuses control characters; a lying node might not).
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
