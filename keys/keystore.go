package keys

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/scrypt"

	"github.com/agoranet/agora/address"
)

// Kind separates keys that hold funds from keys that operate neurons.
type Kind string

// The key kinds.
const (
	Coldkey Kind = "coldkey"
	Hotkey  Kind = "hotkey"
)

// ParseKind accepts "coldkey" or "hotkey".
func ParseKind(s string) (Kind, error) {
	switch k := Kind(strings.ToLower(s)); k {
	case Coldkey, Hotkey:
		return k, nil
	default:
		return "", fmt.Errorf("%w: kind %q (want coldkey or hotkey)", ErrBadName, s)
	}
}

// Errors callers branch on.
var (
	ErrNotFound      = errors.New("key not found")
	ErrExists        = errors.New("key already exists")
	ErrWrongPassword = errors.New("wrong password or corrupted key file")
	ErrBadName       = errors.New("invalid key name")
	ErrBadFile       = errors.New("invalid key file")
)

// Info is the public part of a stored key; reading it needs no password.
type Info struct {
	Name      string          `json:"name"`
	Kind      Kind            `json:"kind"`
	Address   address.Address `json:"address"`
	PubKey    HexBytes        `json:"pubkey"`
	CreatedAt time.Time       `json:"created_at"`
}

// HexBytes renders as a hex string in JSON.
type HexBytes []byte

// MarshalText implements encoding.TextMarshaler.
func (h HexBytes) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h)), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (h *HexBytes) UnmarshalText(b []byte) error {
	out, err := hex.DecodeString(string(b))
	if err != nil {
		return err
	}
	*h = out
	return nil
}

const fileVersion = 1

// Scrypt bounds: a key file is outside input, and its KDF parameters must not
// be able to make an unlock eat the machine.
const (
	defaultScryptN = 1 << 17
	maxScryptN     = 1 << 20
	maxScryptR     = 32
	maxScryptP     = 16
	maxKeyFile     = 64 << 10
)

type kdfParams struct {
	Name string   `json:"name"`
	N    int      `json:"n"`
	R    int      `json:"r"`
	P    int      `json:"p"`
	Salt HexBytes `json:"salt"`
}

type cipherParams struct {
	Name       string   `json:"name"`
	Nonce      HexBytes `json:"nonce"`
	Ciphertext HexBytes `json:"ciphertext"`
}

// keyFile is the on-disk format of one key.
type keyFile struct {
	Version int `json:"version"`
	Info
	KDF    kdfParams    `json:"kdf"`
	Cipher cipherParams `json:"cipher"`
}

// Keystore is a directory of encrypted key files.
type Keystore struct {
	dir     string
	scryptN int
}

// Option tunes a Keystore.
type Option func(*Keystore)

// WithScryptN sets the scrypt cost for keys written from now on (tests use small values).
func WithScryptN(n int) Option { return func(k *Keystore) { k.scryptN = n } }

// Open opens (creating if needed) the keystore in dir.
func Open(dir string, opts ...Option) (*Keystore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create keystore %s: %w", dir, err)
	}
	ks := &Keystore{dir: dir, scryptN: defaultScryptN}
	for _, o := range opts {
		o(ks)
	}
	return ks, nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$`)

// ValidName reports whether name can name a key (no paths, no hidden files).
func ValidName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%w %q: use 1-64 letters, digits, '.', '_' or '-', not starting with '.'", ErrBadName, name)
	}
	return nil
}

func (ks *Keystore) path(name string) string { return filepath.Join(ks.dir, name+".json") }

// Create makes a new key with a fresh 24-word mnemonic, returned once.
func (ks *Keystore) Create(name string, kind Kind, password []byte) (Info, string, error) {
	m, err := NewMnemonic()
	if err != nil {
		return Info{}, "", err
	}
	info, err := ks.Import(name, kind, m, password)
	if err != nil {
		return Info{}, "", err
	}
	return info, m, nil
}

// Import stores the key of an existing mnemonic under name.
func (ks *Keystore) Import(name string, kind Kind, mnemonic string, password []byte) (Info, error) {
	if err := ValidName(name); err != nil {
		return Info{}, err
	}
	if _, err := ParseKind(string(kind)); err != nil {
		return Info{}, err
	}
	norm, err := NormalizeMnemonic(mnemonic)
	if err != nil {
		return Info{}, err
	}
	priv, err := PrivKeyFromMnemonic(norm, "")
	if err != nil {
		return Info{}, err
	}
	pub := priv.Public().(ed25519.PublicKey)
	info := Info{Name: name, Kind: kind, Address: address.FromPubKey(pub), PubKey: HexBytes(pub), CreatedAt: time.Now().UTC().Truncate(time.Second)}
	kf := keyFile{Version: fileVersion, Info: info, KDF: kdfParams{Name: "scrypt", N: ks.scryptN, R: 8, P: 1, Salt: make([]byte, 32)}}
	if _, err := rand.Read(kf.KDF.Salt); err != nil {
		return Info{}, fmt.Errorf("salt: %w", err)
	}
	aead, err := kf.aead(password)
	if err != nil {
		return Info{}, err
	}
	kf.Cipher = cipherParams{Name: "xchacha20-poly1305", Nonce: make([]byte, chacha20poly1305.NonceSizeX)}
	if _, err := rand.Read(kf.Cipher.Nonce); err != nil {
		return Info{}, fmt.Errorf("nonce: %w", err)
	}
	kf.Cipher.Ciphertext = aead.Seal(nil, kf.Cipher.Nonce, []byte(norm), kf.aad())
	raw, err := json.MarshalIndent(kf, "", "  ")
	if err != nil {
		return Info{}, fmt.Errorf("encode key file: %w", err)
	}
	if err := writeNew(ks.path(name), raw); err != nil {
		return Info{}, err
	}
	return info, nil
}

// writeNew writes a file atomically and refuses to replace an existing one.
func writeNew(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-key-*")
	if err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write key: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	// Link fails if the target exists, so two concurrent creates cannot both win.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%w: %s", ErrExists, strings.TrimSuffix(filepath.Base(path), ".json"))
		}
		return fmt.Errorf("write key: %w", err)
	}
	return nil
}

func (kf *keyFile) aad() []byte {
	var b bytes.Buffer
	b.WriteString("agora-keystore\x00")
	b.Write(binary.BigEndian.AppendUint32(nil, uint32(kf.Version)))
	for _, s := range []string{kf.Name, string(kf.Kind), hex.EncodeToString(kf.PubKey)} {
		b.Write(binary.BigEndian.AppendUint32(nil, uint32(len(s))))
		b.WriteString(s)
	}
	return b.Bytes()
}

func (kf *keyFile) aead(password []byte) (interface {
	Seal(dst, nonce, plaintext, ad []byte) []byte
	Open(dst, nonce, ciphertext, ad []byte) ([]byte, error)
}, error) {
	k := kf.KDF
	key, err := scrypt.Key(password, k.Salt, k.N, k.R, k.P, chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("derive key: %w", err)
	}
	return chacha20poly1305.NewX(key)
}

// parseKeyFile decodes and bounds-checks a key file without decrypting it.
func parseKeyFile(raw []byte) (*keyFile, error) {
	if len(raw) > maxKeyFile {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadFile, len(raw))
	}
	var kf keyFile
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&kf); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadFile, err)
	}
	switch {
	case kf.Version != fileVersion:
		return nil, fmt.Errorf("%w: version %d", ErrBadFile, kf.Version)
	case ValidName(kf.Name) != nil:
		return nil, fmt.Errorf("%w: name %q", ErrBadFile, kf.Name)
	case kf.Kind != Coldkey && kf.Kind != Hotkey:
		return nil, fmt.Errorf("%w: kind %q", ErrBadFile, kf.Kind)
	case len(kf.PubKey) != ed25519.PublicKeySize:
		return nil, fmt.Errorf("%w: public key of %d bytes", ErrBadFile, len(kf.PubKey))
	case kf.Address != address.FromPubKey(ed25519.PublicKey(kf.PubKey)):
		return nil, fmt.Errorf("%w: address does not match public key", ErrBadFile)
	case kf.KDF.Name != "scrypt" || kf.KDF.N < 2 || kf.KDF.N > maxScryptN || kf.KDF.N&(kf.KDF.N-1) != 0 ||
		kf.KDF.R < 1 || kf.KDF.R > maxScryptR || kf.KDF.P < 1 || kf.KDF.P > maxScryptP || len(kf.KDF.Salt) < 16:
		return nil, fmt.Errorf("%w: unsupported kdf parameters", ErrBadFile)
	case kf.Cipher.Name != "xchacha20-poly1305" || len(kf.Cipher.Nonce) != chacha20poly1305.NonceSizeX ||
		len(kf.Cipher.Ciphertext) < chacha20poly1305.Overhead:
		return nil, fmt.Errorf("%w: unsupported cipher parameters", ErrBadFile)
	}
	return &kf, nil
}

func (ks *Keystore) load(name string) (*keyFile, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(ks.path(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("read key %q: %w", name, err)
	}
	kf, err := parseKeyFile(raw)
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", name, err)
	}
	if kf.Name != name {
		return nil, fmt.Errorf("key %q: %w: file names key %q", name, ErrBadFile, kf.Name)
	}
	return kf, nil
}

// Get returns a key's public info.
func (ks *Keystore) Get(name string) (Info, error) {
	kf, err := ks.load(name)
	if err != nil {
		return Info{}, err
	}
	return kf.Info, nil
}

// List returns every readable key, sorted by name.
func (ks *Keystore) List() ([]Info, error) {
	entries, err := os.ReadDir(ks.dir)
	if err != nil {
		return nil, fmt.Errorf("list keystore %s: %w", ks.dir, err)
	}
	var out []Info
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || e.IsDir() || ValidName(name) != nil {
			continue
		}
		info, err := ks.Get(name)
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Export decrypts and returns a key's mnemonic.
func (ks *Keystore) Export(name string, password []byte) (string, error) {
	kf, err := ks.load(name)
	if err != nil {
		return "", err
	}
	aead, err := kf.aead(password)
	if err != nil {
		return "", err
	}
	plain, err := aead.Open(nil, kf.Cipher.Nonce, kf.Cipher.Ciphertext, kf.aad())
	if err != nil {
		return "", fmt.Errorf("key %q: %w", name, ErrWrongPassword)
	}
	priv, err := PrivKeyFromMnemonic(string(plain), "")
	if err != nil {
		return "", fmt.Errorf("key %q: %w: %v", name, ErrBadFile, err)
	}
	if !bytes.Equal(priv.Public().(ed25519.PublicKey), kf.PubKey) {
		return "", fmt.Errorf("key %q: %w: mnemonic does not match the stored public key", name, ErrBadFile)
	}
	return string(plain), nil
}

// Unlock decrypts a key and returns its private key.
func (ks *Keystore) Unlock(name string, password []byte) (ed25519.PrivateKey, error) {
	m, err := ks.Export(name, password)
	if err != nil {
		return nil, err
	}
	return PrivKeyFromMnemonic(m, "")
}

// Delete removes a key file.
func (ks *Keystore) Delete(name string) error {
	if _, err := ks.load(name); err != nil {
		return err
	}
	if err := os.Remove(ks.path(name)); err != nil {
		return fmt.Errorf("delete key %q: %w", name, err)
	}
	return nil
}
