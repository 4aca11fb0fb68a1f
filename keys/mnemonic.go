package keys

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"strings"

	bip39 "github.com/cosmos/go-bip39"
	"golang.org/x/text/unicode/norm"
)

// MnemonicWords is the length of every Agora mnemonic: 24 words encode 256
// bits of entropy plus an 8-bit checksum.
//
// Shorter BIP39 mnemonics are refused on import as well: Agora never makes
// them, and accepting them would let a 24-word mnemonic truncated to 12 words
// pass its 4-bit checksum one time in sixteen and silently import a stranger's
// key.
const MnemonicWords = 24

const (
	entropyBytes = 32
	bitsPerWord  = 11
	// seedRounds and seedSaltPrefix are fixed by BIP39.
	seedRounds     = 2048
	seedSaltPrefix = "mnemonic"
)

// ErrBadMnemonic is returned for mnemonics with the wrong length, words
// outside the BIP39 English wordlist, or a bad checksum.
var ErrBadMnemonic = errors.New("invalid mnemonic")

// The BIP39 English wordlist comes from the pinned go-bip39 module; only the
// list is used from it. A test checks it against the SHA-256 of the official
// english.txt, so a tampered or reordered list cannot slip in. Copies are
// taken at init because the library exposes the list as a mutable variable.
var (
	wordList  = append([]string(nil), bip39.EnglishWordList...)
	wordIndex = func() map[string]uint16 {
		m := make(map[string]uint16, len(wordList))
		for i, w := range wordList {
			m[w] = uint16(i)
		}
		return m
	}()
)

// errWordList guards every use of the list so a broken dependency fails
// cleanly instead of indexing out of range.
func errWordList() error {
	if len(wordList) != 1<<bitsPerWord || len(wordIndex) != 1<<bitsPerWord {
		return fmt.Errorf("BIP39 wordlist has %d distinct words, want %d", len(wordIndex), 1<<bitsPerWord)
	}
	return nil
}

// NewMnemonic returns a fresh 24-word BIP39 mnemonic (256 bits of entropy
// from crypto/rand).
func NewMnemonic() (string, error) {
	entropy := make([]byte, entropyBytes)
	defer clear(entropy)
	if _, err := rand.Read(entropy); err != nil {
		return "", fmt.Errorf("new mnemonic: read entropy: %w", err)
	}
	return MnemonicFromEntropy(entropy)
}

// MnemonicFromEntropy encodes 32 bytes of entropy as a 24-word mnemonic.
func MnemonicFromEntropy(entropy []byte) (string, error) {
	if err := errWordList(); err != nil {
		return "", err
	}
	if len(entropy) != entropyBytes {
		return "", fmt.Errorf("mnemonic entropy must be %d bytes, got %d", entropyBytes, len(entropy))
	}
	sum := sha256.Sum256(entropy)
	// 256 entropy bits followed by 8 checksum bits: 264 bits, 24 words of 11.
	data := make([]byte, 0, entropyBytes+1)
	data = append(data, entropy...)
	data = append(data, sum[0])
	defer clear(data)

	words := make([]string, 0, MnemonicWords)
	var acc uint32
	var n uint
	for _, b := range data {
		acc = acc<<8 | uint32(b)
		n += 8
		if n >= bitsPerWord {
			n -= bitsPerWord
			words = append(words, wordList[(acc>>n)&(1<<bitsPerWord-1)])
		}
	}
	return strings.Join(words, " "), nil
}

// EntropyFromMnemonic checks a mnemonic's words and checksum and returns the
// 32 bytes of entropy it encodes. Case and whitespace do not matter.
func EntropyFromMnemonic(mnemonic string) ([]byte, error) {
	if err := errWordList(); err != nil {
		return nil, err
	}
	words := strings.Fields(strings.ToLower(mnemonic))
	if len(words) != MnemonicWords {
		return nil, fmt.Errorf("%w: %d words, want %d", ErrBadMnemonic, len(words), MnemonicWords)
	}
	data := make([]byte, 0, entropyBytes+1)
	var acc uint32
	var n uint
	for i, w := range words {
		idx, ok := wordIndex[w]
		if !ok {
			// The word itself is part of a secret, so only its position is reported.
			return nil, fmt.Errorf("%w: word %d is not in the BIP39 English wordlist", ErrBadMnemonic, i+1)
		}
		acc = acc<<bitsPerWord | uint32(idx)
		n += bitsPerWord
		for n >= 8 {
			n -= 8
			data = append(data, byte(acc>>n))
		}
	}
	entropy := data[:entropyBytes]
	if sum := sha256.Sum256(entropy); data[entropyBytes] != sum[0] {
		clear(data)
		return nil, fmt.Errorf("%w: checksum mismatch (a word is wrong or out of order)", ErrBadMnemonic)
	}
	return entropy, nil
}

// NormalizeMnemonic validates a mnemonic and returns its canonical form:
// lower case, words separated by single spaces.
func NormalizeMnemonic(mnemonic string) (string, error) {
	entropy, err := EntropyFromMnemonic(mnemonic)
	if err != nil {
		return "", err
	}
	defer clear(entropy)
	return MnemonicFromEntropy(entropy)
}

// Seed validates a mnemonic and returns its 64-byte BIP39 seed,
// PBKDF2-HMAC-SHA512(mnemonic, "mnemonic"+passphrase, 2048 rounds). Both are
// NFKD-normalized as BIP39 requires, so a passphrase typed with composed or
// decomposed accents gives the same seed.
func Seed(mnemonic, passphrase string) ([]byte, error) {
	canon, err := NormalizeMnemonic(mnemonic)
	if err != nil {
		return nil, err
	}
	salt := []byte(seedSaltPrefix + norm.NFKD.String(passphrase))
	defer clear(salt)
	seed, err := pbkdf2.Key(sha512.New, norm.NFKD.String(canon), salt, seedRounds, 64)
	if err != nil {
		return nil, fmt.Errorf("bip39 seed: %w", err)
	}
	return seed, nil
}
