package chain

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/agoranet/agora/address"
)

// GenesisValidator is one chain validator (a CometBFT block producer) of the
// genesis, signed by its operator like a Cosmos gentx: an entry nobody but the
// operator could have written, so a genesis coordinator cannot enrol a key
// without its owner's consent or change a bond it was given.
type GenesisValidator struct {
	Moniker string `json:"moniker"`
	// OperatorPubKey is the operator's ed25519 account key (32 bytes); the
	// operator address derives from it.
	OperatorPubKey []byte `json:"operator_pub_key"`
	// ConsensusPubKey is the ed25519 key CometBFT signs votes with (the
	// node's priv_validator_key.json), 32 bytes.
	ConsensusPubKey []byte `json:"consensus_pub_key"`
	// Bond is the operator's self-bond in base units, taken from its genesis
	// balance. Zero makes a bootstrap validator: it produces blocks with
	// voting power 1 until bonded chain validators outrank it (the only way
	// a chain without a premine can start).
	Bond uint64 `json:"bond"`
	// Signature is the operator's ed25519 signature over GentxSignBytes.
	Signature []byte `json:"signature"`
}

// Operator is the operator's account address.
func (v GenesisValidator) Operator() address.Address {
	return address.FromPubKey(ed25519.PublicKey(v.OperatorPubKey))
}

// gentxDomain separates genesis-validator signatures from transaction and
// wire signatures made with the same key.
const gentxDomain = "agora/gentx/v1\x00"

// GentxSignBytes are the bytes an operator signs to enter the genesis of
// chainID as a chain validator.
func GentxSignBytes(chainID string, v GenesisValidator) []byte {
	var b bytes.Buffer
	b.WriteString(gentxDomain)
	writeField := func(p []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(p)))
		b.Write(n[:])
		b.Write(p)
	}
	writeField([]byte(chainID))
	writeField([]byte(v.Moniker))
	writeField(v.OperatorPubKey)
	writeField(v.ConsensusPubKey)
	var bond [8]byte
	binary.BigEndian.PutUint64(bond[:], v.Bond)
	b.Write(bond[:])
	return b.Bytes()
}

// SignGenesisValidator fills v's operator key and signature.
func SignGenesisValidator(chainID string, operator ed25519.PrivateKey, v GenesisValidator) GenesisValidator {
	v.OperatorPubKey = append([]byte(nil), operator.Public().(ed25519.PublicKey)...)
	v.Signature = ed25519.Sign(operator, GentxSignBytes(chainID, v))
	return v
}

// MaxMonikerBytes bounds a chain validator's display name.
const MaxMonikerBytes = 64

// Verify checks one entry's shape and signature for chainID.
func (v GenesisValidator) Verify(chainID string) error {
	if len(v.OperatorPubKey) != ed25519.PublicKeySize {
		return fmt.Errorf("operator_pub_key is %d bytes, want %d", len(v.OperatorPubKey), ed25519.PublicKeySize)
	}
	if len(v.ConsensusPubKey) != ed25519.PublicKeySize {
		return fmt.Errorf("consensus_pub_key is %d bytes, want %d", len(v.ConsensusPubKey), ed25519.PublicKeySize)
	}
	if len(v.Moniker) > MaxMonikerBytes {
		return fmt.Errorf("moniker is %d bytes, at most %d", len(v.Moniker), MaxMonikerBytes)
	}
	if !ed25519.Verify(ed25519.PublicKey(v.OperatorPubKey), GentxSignBytes(chainID, v), v.Signature) {
		return errors.New("signature does not verify for this chain id (each operator signs its own entry)")
	}
	return nil
}
