// Package keys manages Agora's ed25519 keys: BIP39 mnemonics, SLIP-10
// derivation, and an encrypted keystore with one file per named key.
//
// Coldkeys hold funds; hotkeys operate neurons. Both are ordinary ed25519
// keys, each with its own 24-word mnemonic, kept apart so a hot machine never
// needs the mnemonic of the key that holds the money.
//
// A key is derived as: mnemonic → BIP39 seed → SLIP-10 ed25519 at
// DerivationPath (m/44'/7771'/0'/0'/0'). Other wallets that implement the same
// standards recover the same key from the same mnemonic.
package keys

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// CoinType is Agora's BIP44 coin type.
const CoinType = 7771

// DerivationPath is the SLIP-10 path of every Agora key in the keystore
// (account 0). Path(account) gives the others.
const DerivationPath = "m/44'/7771'/0'/0'/0'"

// Hardened is the SLIP-10 hardened-index offset. ed25519 supports only
// hardened derivation, so every index in a path must be at least Hardened.
const Hardened uint32 = 0x80000000

// slip10Curve is the HMAC key SLIP-10 fixes for the ed25519 master key.
const slip10Curve = "ed25519 seed"

// Path returns the SLIP-10 path of an account: m/44'/7771'/account'/0'/0'.
// account must be below 2^31; larger values would collide with smaller ones
// once hardened.
func Path(account uint32) ([]uint32, error) {
	if account >= Hardened {
		return nil, fmt.Errorf("account index %d too large (max %d)", account, Hardened-1)
	}
	return []uint32{44 | Hardened, CoinType | Hardened, account | Hardened, 0 | Hardened, 0 | Hardened}, nil
}

// FormatPath renders a path in the usual notation, m/44'/7771'/0'/0'/0'.
func FormatPath(path []uint32) string {
	var b strings.Builder
	b.WriteString("m")
	for _, idx := range path {
		b.WriteByte('/')
		if idx >= Hardened {
			b.WriteString(strconv.FormatUint(uint64(idx-Hardened), 10))
			b.WriteByte('\'')
		} else {
			b.WriteString(strconv.FormatUint(uint64(idx), 10))
		}
	}
	return b.String()
}

// DeriveSLIP10 derives the ed25519 private key (a 32-byte ed25519 seed, as
// taken by ed25519.NewKeyFromSeed) and chain code at path from a BIP39 seed.
// Every index must be hardened; seeds must be 16 to 64 bytes as SLIP-10 and
// BIP32 require.
func DeriveSLIP10(seed []byte, path []uint32) (key, chainCode []byte, err error) {
	if len(seed) < 16 || len(seed) > 64 {
		return nil, nil, fmt.Errorf("SLIP-10 seed must be 16 to 64 bytes, got %d", len(seed))
	}
	for _, idx := range path {
		if idx < Hardened {
			return nil, nil, fmt.Errorf("SLIP-10 ed25519 index %d is not hardened (only hardened derivation exists for ed25519)", idx)
		}
	}
	mac := hmac.New(sha512.New, []byte(slip10Curve))
	mac.Write(seed)
	// For ed25519 every 256-bit string is a valid key, so unlike secp256k1
	// there is no retry loop for invalid master or child keys.
	i := mac.Sum(nil)
	for _, idx := range path {
		// I = HMAC-SHA512(key = parent chain code, data = 0x00 || parent key || ser32(index))
		var data [1 + 32 + 4]byte
		copy(data[1:33], i[:32])
		binary.BigEndian.PutUint32(data[33:], idx)
		mac := hmac.New(sha512.New, i[32:])
		mac.Write(data[:])
		clear(data[:])
		clear(i)
		i = mac.Sum(nil)
	}
	return i[:32:32], i[32:], nil
}

// PrivKeyFromMnemonic derives the Agora key (account 0, DerivationPath) of a
// mnemonic. bip39Passphrase is the optional BIP39 "25th word"; the keystore
// always uses "".
func PrivKeyFromMnemonic(mnemonic, bip39Passphrase string) (ed25519.PrivateKey, error) {
	return PrivKeyFromMnemonicAccount(mnemonic, bip39Passphrase, 0)
}

// PrivKeyFromMnemonicAccount derives the key of another account index of the
// same mnemonic, at Path(account).
func PrivKeyFromMnemonicAccount(mnemonic, bip39Passphrase string, account uint32) (ed25519.PrivateKey, error) {
	path, err := Path(account)
	if err != nil {
		return nil, err
	}
	seed, err := Seed(mnemonic, bip39Passphrase)
	if err != nil {
		return nil, err
	}
	defer clear(seed)
	k, cc, err := DeriveSLIP10(seed, path)
	if err != nil {
		return nil, err
	}
	defer clear(k)
	defer clear(cc)
	return ed25519.NewKeyFromSeed(k), nil
}
