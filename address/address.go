// Package address derives and formats Agora account addresses.
//
// An address is the first 20 bytes of sha256(ed25519 public key), shown as
// bech32 with the human-readable prefix "agora". Both the chain and the key
// store use this package so there is exactly one derivation.
package address

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/btcutil/bech32"
)

// HRP is the bech32 human-readable prefix of every Agora address.
const HRP = "agora"

// Len is the byte length of an address.
const Len = 20

// Address is a 20-byte account identifier.
type Address [Len]byte

// FromPubKey derives the address of an ed25519 public key.
func FromPubKey(pub ed25519.PublicKey) Address {
	sum := sha256.Sum256(pub)
	var a Address
	copy(a[:], sum[:Len])
	return a
}

// FromBytes copies a 20-byte slice into an Address.
func FromBytes(b []byte) (Address, error) {
	var a Address
	if len(b) != Len {
		return a, fmt.Errorf("address must be %d bytes, got %d", Len, len(b))
	}
	copy(a[:], b)
	return a, nil
}

// String renders the address as bech32 ("agora1…").
func (a Address) String() string {
	conv, err := bech32.ConvertBits(a[:], 8, 5, true)
	if err != nil {
		// ConvertBits only fails on out-of-range input groups, impossible for bytes.
		return fmt.Sprintf("agora-invalid-%x", a[:])
	}
	s, err := bech32.Encode(HRP, conv)
	if err != nil {
		return fmt.Sprintf("agora-invalid-%x", a[:])
	}
	return s
}

// IsZero reports whether the address is all zeroes.
func (a Address) IsZero() bool { return a == Address{} }

// MarshalText implements encoding.TextMarshaler so addresses read well in JSON.
func (a Address) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (a *Address) UnmarshalText(b []byte) error {
	p, err := Parse(string(b))
	if err != nil {
		return err
	}
	*a = p
	return nil
}

// ErrBadAddress is returned for strings that are not valid Agora addresses.
var ErrBadAddress = errors.New("invalid address")

// Parse decodes a bech32 "agora1…" string.
func Parse(s string) (Address, error) {
	var a Address
	hrp, data, err := bech32.Decode(s)
	if err != nil {
		return a, fmt.Errorf("%w %q: %v", ErrBadAddress, s, err)
	}
	if hrp != HRP {
		return a, fmt.Errorf("%w %q: prefix %q, want %q", ErrBadAddress, s, hrp, HRP)
	}
	raw, err := bech32.ConvertBits(data, 5, 8, false)
	if err != nil {
		return a, fmt.Errorf("%w %q: %v", ErrBadAddress, s, err)
	}
	if len(raw) != Len {
		return a, fmt.Errorf("%w %q: %d bytes, want %d", ErrBadAddress, s, len(raw), Len)
	}
	copy(a[:], raw)
	return a, nil
}

// Bytes returns the address as a new slice.
func (a Address) Bytes() []byte { return append([]byte(nil), a[:]...) }
