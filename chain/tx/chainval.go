package tx

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/agoranet/agora/address"
)

// MaxMonikerBytes bounds a chain validator's display name.
const MaxMonikerBytes = 64

// ValidateMoniker checks a chain validator's display name: valid UTF-8 of
// at most MaxMonikerBytes with no control characters, so it is safe to print
// in a terminal or a log line.
func ValidateMoniker(s string) error {
	if len(s) > MaxMonikerBytes {
		return fmt.Errorf("moniker is %d bytes, at most %d", len(s), MaxMonikerBytes)
	}
	if !utf8.ValidString(s) {
		return errors.New("moniker is not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return errors.New("moniker contains a control character")
		}
	}
	return nil
}

// ConsensusAddress is the 20-byte address CometBFT gives an ed25519
// consensus key (sha256(pubkey)[:20]): what evidence and commit votes name.
func ConsensusAddress(pub []byte) []byte {
	h := sha256.Sum256(pub)
	return h[:20]
}

// chainValidatorProofDomain separates consensus-key proofs from votes and
// every other signature.
const chainValidatorProofDomain = "agora/chain-validator-bind/v1\x00"

// ChainValidatorProofBytes are what a consensus key signs to let operator
// use it as a chain validator on chainID.
func ChainValidatorProofBytes(chainID string, operator address.Address) []byte {
	var b bytes.Buffer
	b.WriteString(chainValidatorProofDomain)
	b.WriteString(chainID)
	b.WriteByte(0)
	b.Write(operator[:])
	return b.Bytes()
}

// SignChainValidatorProof signs the consensus-key proof with consensus,
// the node's 64-byte ed25519 consensus private key.
func SignChainValidatorProof(chainID string, operator address.Address, consensus ed25519.PrivateKey) []byte {
	return ed25519.Sign(consensus, ChainValidatorProofBytes(chainID, operator))
}

// ChainValidatorCreate makes the signer a chain validator with the
// consensus key (proof: SignChainValidatorProof), bonding bond.
func ChainValidatorCreate(consensusPub []byte, proof []byte, moniker string, bond uint64) *Msg {
	return &Msg{Sum: &Msg_ChainValidatorCreate{ChainValidatorCreate: &MsgChainValidatorCreate{
		ConsensusPubKey: consensusPub, ConsensusProof: proof, Moniker: moniker, Bond: bond}}}
}

// ChainValidatorBond adds amount to the signer's bond.
func ChainValidatorBond(amount uint64) *Msg {
	return &Msg{Sum: &Msg_ChainValidatorBond{ChainValidatorBond: &MsgChainValidatorBond{Amount: amount}}}
}

// ChainValidatorUnbond starts unbonding amount of the signer's bond.
func ChainValidatorUnbond(amount uint64) *Msg {
	return &Msg{Sum: &Msg_ChainValidatorUnbond{ChainValidatorUnbond: &MsgChainValidatorUnbond{Amount: amount}}}
}

// ChainValidatorEdit renames the signer's chain validator.
func ChainValidatorEdit(moniker string) *Msg {
	return &Msg{Sum: &Msg_ChainValidatorEdit{ChainValidatorEdit: &MsgChainValidatorEdit{Moniker: moniker}}}
}

// ChainValidatorUnjail returns the signer's chain validator from downtime jail.
func ChainValidatorUnjail() *Msg {
	return &Msg{Sum: &Msg_ChainValidatorUnjail{ChainValidatorUnjail: &MsgChainValidatorUnjail{}}}
}
