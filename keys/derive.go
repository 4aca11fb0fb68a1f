// Package keys manages Agora's ed25519 keys: BIP39 mnemonics, SLIP-10
// derivation, and an encrypted keystore with one file per named key.
//
// Coldkeys hold funds; hotkeys operate neurons. Both are ordinary ed25519
// keys with their own mnemonics, kept apart so a hot machine never needs the
// mnemonic of the key that holds the money.
package keys

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	bip39 "github.com/cosmos/go-bip39"
)

// CoinType is Agora's BIP44 coin type in the derivation path.
const CoinType = 7771

// hardened marks a SLIP-10 index as hardened; ed25519 supports no other kind.
const hardened = 0x80000000

// Path is the SLIP-10 path of account index i: m/44'/7771'/i'/0'/0'.
func Path(account uint32) []uint32 {
	return []uint32{44 | hardened, CoinType | hardened, account | hardened, 0 | hardened, 0 | hardened}
}

// ErrBadMnemonic is returned for mnemonics with unknown words or a bad checksum.
var ErrBadMnemonic = errors.New("invalid mnemonic")

// NewMnemonic returns a fresh 24-word BIP39 mnemonic (256 bits of entropy).
func NewMnemonic() (string, error) {
	entropy, err := bip39.NewEntropy(256)
	if err != nil {
		return "", fmt.Errorf("entropy: %w", err)
	}
	m, err := bip39.NewMnemonic(entropy)
	if err != nil {
		return "", fmt.Errorf("mnemonic: %w", err)
	}
	return m, nil
}

// NormalizeMnemonic lowercases and collapses whitespace, then checks words and checksum.
func NormalizeMnemonic(m string) (string, error) {
	norm := strings.Join(strings.Fields(strings.ToLower(m)), " ")
	if n := len(strings.Fields(norm)); n != 12 && n != 15 && n != 18 && n != 21 && n != 24 {
		return "", fmt.Errorf("%w: %d words (want 24, or 12–21 for imported keys)", ErrBadMnemonic, n)
	}
	if _, err := bip39.MnemonicToByteArray(norm); err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadMnemonic, err)
	}
	return norm, nil
}

// Seed is the BIP39 seed: PBKDF2-HMAC-SHA512(mnemonic, "mnemonic"+passphrase, 2048).
func Seed(mnemonic, passphrase string) ([]byte, error) {
	norm, err := NormalizeMnemonic(mnemonic)
	if err != nil {
		return nil, err
	}
	return bip39.NewSeed(norm, passphrase), nil
}

// DeriveSLIP10 derives the ed25519 private key seed and chain code at path.
// Every index must be hardened.
func DeriveSLIP10(seed []byte, path []uint32) (key, chainCode []byte, err error) {
	mac := hmac.New(sha512.New, []byte("ed25519 seed"))
	mac.Write(seed)
	sum := mac.Sum(nil)
	key, chainCode = sum[:32], sum[32:]
	for _, idx := range path {
		if idx < hardened {
			return nil, nil, fmt.Errorf("SLIP-10 ed25519 index %d is not hardened", idx)
		}
		data := make([]byte, 0, 37)
		data = append(data, 0)
		data = append(data, key...)
		data = binary.BigEndian.AppendUint32(data, idx)
		mac := hmac.New(sha512.New, chainCode)
		mac.Write(data)
		sum := mac.Sum(nil)
		key, chainCode = sum[:32], sum[32:]
	}
	return key, chainCode, nil
}

// PrivKeyFromMnemonic derives the account-0 Agora key of a mnemonic.
func PrivKeyFromMnemonic(mnemonic, bip39Passphrase string) (ed25519.PrivateKey, error) {
	seed, err := Seed(mnemonic, bip39Passphrase)
	if err != nil {
		return nil, err
	}
	k, _, err := DeriveSLIP10(seed, Path(0))
	if err != nil {
		return nil, err
	}
	return ed25519.NewKeyFromSeed(k), nil
}
