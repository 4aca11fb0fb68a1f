package keys

import (
	"bytes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/scrypt"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/internal/atomicfile"
)

// Kind separates keys that hold funds from keys that operate neurons.
type Kind string

// The key kinds.
const (
	Coldkey Kind = "coldkey" // holds funds; keep it off machines that run neurons
	Hotkey  Kind = "hotkey"  // operates neurons (miner, validator); owned by a coldkey on chain
)

// ParseKind accepts "coldkey" or "hotkey", in any case.
func ParseKind(s string) (Kind, error) {
	switch k := Kind(strings.ToLower(strings.TrimSpace(s))); k {
	case Coldkey, Hotkey:
		return k, nil
	default:
		return "", fmt.Errorf("%w %q (want coldkey or hotkey)", ErrBadKind, s)
	}
}

// Errors callers branch on with errors.Is. Returned errors wrap them with the
// key name and the cause.
var (
	ErrNotFound      = errors.New("key not found")
	ErrExists        = errors.New("key already exists")
	ErrWrongPassword = errors.New("wrong password or corrupted key file")
	ErrBadName       = errors.New("invalid key name")
	ErrBadKind       = errors.New("invalid key kind")
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

// PublicKey returns the key's ed25519 public key.
func (i Info) PublicKey() ed25519.PublicKey { return ed25519.PublicKey(i.PubKey) }

// HexBytes is a byte slice that reads and writes as a hex string in JSON.
type HexBytes []byte

// MarshalText implements encoding.TextMarshaler.
func (h HexBytes) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h)), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (h *HexBytes) UnmarshalText(b []byte) error {
	out, err := hex.DecodeString(string(b))
	if err != nil {
		return fmt.Errorf("hex: %w", err)
	}
	*h = out
	return nil
}

// String renders the bytes as hex.
func (h HexBytes) String() string { return hex.EncodeToString(h) }

// On-disk format. Changing any of these, or the AAD layout, needs a new
// fileVersion: existing key files must keep opening.
const (
	fileVersion = 1
	kdfScrypt   = "scrypt"
	cipherXC20  = "xchacha20-poly1305"
	aadDomain   = "agora-keystore\x00"
	saltBytes   = 32
	fileSuffix  = ".json"
	tempPrefix  = ".tmp-key-"
)

// DefaultScryptN is the scrypt cost of new key files: 2^17 with r=8 takes
// 128 MiB and a fraction of a second per unlock.
const DefaultScryptN = 1 << 17

const (
	scryptR = 8
	scryptP = 1
)

// A key file is outside input: its KDF parameters must not be able to make an
// unlock exhaust memory or CPU, and its size is bounded before parsing.
const (
	maxScryptMem  = 256 << 20 // bytes: scrypt uses 128·N·r
	maxScryptWork = 1 << 22   // N·r·p, four times the default
	maxKeyFile    = 64 << 10
	maxCiphertext = 1 << 10 // a 24-word mnemonic is < 250 bytes
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

// keyFile is the on-disk format of one key: <dir>/<name>.json.
type keyFile struct {
	Version int `json:"version"`
	Info
	KDF    kdfParams    `json:"kdf"`
	Cipher cipherParams `json:"cipher"`
}

// Keystore is a directory of encrypted key files, one per key. It keeps no
// state beyond its options, so one Keystore may be used from several
// goroutines, and several processes may share a directory: creating a key
// never replaces an existing file.
type Keystore struct {
	dir     string
	scryptN int
}

// Option tunes a Keystore.
type Option func(*Keystore)

// WithScryptN sets the scrypt cost N (a power of two) for keys written from
// now on. Lower values make password guessing cheaper; tests and throwaway
// devnet keys use them to stay fast. Reading keys always uses the parameters
// stored in each file.
func WithScryptN(n int) Option { return func(k *Keystore) { k.scryptN = n } }

// Open opens the keystore in dir (conventionally <home>/keys), creating the
// directory with mode 0700 if needed.
func Open(dir string, opts ...Option) (*Keystore, error) {
	ks := &Keystore{dir: dir, scryptN: DefaultScryptN}
	for _, o := range opts {
		o(ks)
	}
	if err := checkScrypt(ks.scryptN, scryptR, scryptP); err != nil {
		return nil, fmt.Errorf("open keystore: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open keystore: %w", err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("open keystore: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("open keystore: %s is not a directory", dir)
	}
	// Key files are encrypted, but names and addresses are still nobody
	// else's business. Tightening is best effort: a read-only keystore shared
	// by an administrator must still open.
	if st.Mode().Perm()&0o077 != 0 {
		_ = os.Chmod(dir, 0o700)
	}
	return ks, nil
}

// Dir returns the keystore directory.
func (ks *Keystore) Dir() string { return ks.dir }

// ValidName reports whether name can name a key: 1–64 characters from
// [A-Za-z0-9._-], not starting with '.'. The rules keep names usable as file
// names on every platform and rule out paths and hidden files.
func ValidName(name string) error {
	ok := len(name) >= 1 && len(name) <= 64 && name[0] != '.'
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-'
	}
	if !ok {
		return fmt.Errorf("%w %q: use 1-64 letters, digits, '.', '_' or '-', not starting with '.'", ErrBadName, name)
	}
	return nil
}

func (ks *Keystore) path(name string) string { return filepath.Join(ks.dir, name+fileSuffix) }

// Exists reports whether a key file named name exists, readable or not.
func (ks *Keystore) Exists(name string) (bool, error) {
	if err := ValidName(name); err != nil {
		return false, err
	}
	_, err := os.Lstat(ks.path(name))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("key %q: %w", name, err)
	}
}

// Create makes a new key with a fresh 24-word mnemonic and stores it
// encrypted under password. The mnemonic is returned for the caller to show
// once; it can be read again only with Export and the password.
func (ks *Keystore) Create(name string, kind Kind, password []byte) (Info, string, error) {
	if _, err := ks.checkNew(name, kind); err != nil {
		return Info{}, "", err
	}
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

// checkNew validates a new key's name and kind and fails fast on a taken
// name, before any expensive key derivation.
func (ks *Keystore) checkNew(name string, kind Kind) (Kind, error) {
	if err := ValidName(name); err != nil {
		return "", err
	}
	k, err := ParseKind(string(kind))
	if err != nil {
		return "", err
	}
	exists, err := ks.Exists(name)
	if err != nil {
		return "", err
	}
	if exists {
		return "", fmt.Errorf("%w: %q", ErrExists, name)
	}
	return k, nil
}

// Import stores the key of an existing 24-word mnemonic under name, encrypted
// under password. The mnemonic is normalized (case, whitespace) and its
// checksum checked; a bad one gives ErrBadMnemonic.
func (ks *Keystore) Import(name string, kind Kind, mnemonic string, password []byte) (Info, error) {
	kind, err := ks.checkNew(name, kind)
	if err != nil {
		return Info{}, err
	}
	canon, err := NormalizeMnemonic(mnemonic)
	if err != nil {
		return Info{}, err
	}
	priv, err := PrivKeyFromMnemonic(canon, "")
	if err != nil {
		return Info{}, err
	}
	defer clear(priv)
	pub := priv.Public().(ed25519.PublicKey)
	kf := keyFile{
		Version: fileVersion,
		Info: Info{
			Name:      name,
			Kind:      kind,
			Address:   address.FromPubKey(pub),
			PubKey:    HexBytes(pub),
			CreatedAt: time.Now().UTC().Truncate(time.Second),
		},
		KDF:    kdfParams{Name: kdfScrypt, N: ks.scryptN, R: scryptR, P: scryptP, Salt: make([]byte, saltBytes)},
		Cipher: cipherParams{Name: cipherXC20, Nonce: make([]byte, chacha20poly1305.NonceSizeX)},
	}
	if _, err := rand.Read(kf.KDF.Salt); err != nil {
		return Info{}, fmt.Errorf("key %q: salt: %w", name, err)
	}
	if _, err := rand.Read(kf.Cipher.Nonce); err != nil {
		return Info{}, fmt.Errorf("key %q: nonce: %w", name, err)
	}
	aead, err := kf.aead(password)
	if err != nil {
		return Info{}, fmt.Errorf("key %q: %w", name, err)
	}
	plain := []byte(canon)
	kf.Cipher.Ciphertext = aead.Seal(nil, kf.Cipher.Nonce, plain, kf.aad())
	clear(plain)
	raw, err := json.MarshalIndent(kf, "", "  ")
	if err != nil {
		return Info{}, fmt.Errorf("key %q: encode: %w", name, err)
	}
	raw = append(raw, '\n')
	if err := writeNew(ks.dir, ks.path(name), raw); err != nil {
		return Info{}, fmt.Errorf("key %q: %w", name, err)
	}
	return kf.Info, nil
}

// writeNew writes data to path atomically, never replacing an existing file:
// the data goes to a synced temp file that is then hard-linked into place.
// Unlike rename, link fails if the target exists, so two concurrent creates
// of one name cannot both win and a crash never leaves a half-written key.
func writeNew(dir, path string, data []byte) (err error) {
	tmp, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	// CreateTemp already uses 0600; set it explicitly in case of an odd umask or platform.
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return ErrExists
		}
		return fmt.Errorf("write: %w", err)
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// aad binds the header to the ciphertext: editing the version, name, kind or
// public key (or moving a file's ciphertext into another key's file) makes
// decryption fail. The address is checked against the public key on parse.
func (kf *keyFile) aad() []byte {
	var b bytes.Buffer
	b.WriteString(aadDomain)
	b.Write(binary.BigEndian.AppendUint32(nil, uint32(kf.Version)))
	for _, s := range []string{kf.Name, string(kf.Kind), hex.EncodeToString(kf.PubKey)} {
		b.Write(binary.BigEndian.AppendUint32(nil, uint32(len(s))))
		b.WriteString(s)
	}
	return b.Bytes()
}

// aead derives the file key from password with the file's KDF parameters.
func (kf *keyFile) aead(password []byte) (cipher.AEAD, error) {
	k := kf.KDF
	key, err := scrypt.Key(password, k.Salt, k.N, k.R, k.P, chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("derive key: %w", err)
	}
	defer clear(key)
	return chacha20poly1305.NewX(key)
}

// checkScrypt bounds scrypt parameters.
func checkScrypt(n, r, p int) error {
	switch {
	case n < 2 || n&(n-1) != 0:
		return fmt.Errorf("scrypt N=%d is not a power of two ≥ 2", n)
	case r < 1 || p < 1:
		return fmt.Errorf("scrypt r=%d p=%d must be positive", r, p)
	case n > maxScryptMem/128/r:
		return fmt.Errorf("scrypt N=%d r=%d needs more than %d MiB", n, r, maxScryptMem>>20)
	case n*r > maxScryptWork/p:
		return fmt.Errorf("scrypt N=%d r=%d p=%d is too slow", n, r, p)
	}
	return nil
}

// decodeKeyFile decodes and checks a key file without decrypting it. It is
// the one parser of untrusted key files (and the fuzz target).
func decodeKeyFile(raw []byte) (*keyFile, error) {
	if len(raw) > maxKeyFile {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrBadFile, len(raw), maxKeyFile)
	}
	var kf keyFile
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&kf); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadFile, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the JSON object", ErrBadFile)
	}
	if kf.Version != fileVersion {
		return nil, fmt.Errorf("%w: version %d (this agora reads version %d)", ErrBadFile, kf.Version, fileVersion)
	}
	if err := ValidName(kf.Name); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadFile, err)
	}
	if kf.Kind != Coldkey && kf.Kind != Hotkey {
		return nil, fmt.Errorf("%w: kind %q", ErrBadFile, kf.Kind)
	}
	if len(kf.PubKey) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: public key of %d bytes", ErrBadFile, len(kf.PubKey))
	}
	if kf.Address != address.FromPubKey(kf.PublicKey()) {
		return nil, fmt.Errorf("%w: address does not match the public key", ErrBadFile)
	}
	if kf.KDF.Name != kdfScrypt {
		return nil, fmt.Errorf("%w: kdf %q", ErrBadFile, kf.KDF.Name)
	}
	if err := checkScrypt(kf.KDF.N, kf.KDF.R, kf.KDF.P); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadFile, err)
	}
	if len(kf.KDF.Salt) < 16 || len(kf.KDF.Salt) > 64 {
		return nil, fmt.Errorf("%w: salt of %d bytes", ErrBadFile, len(kf.KDF.Salt))
	}
	if kf.Cipher.Name != cipherXC20 {
		return nil, fmt.Errorf("%w: cipher %q", ErrBadFile, kf.Cipher.Name)
	}
	if len(kf.Cipher.Nonce) != chacha20poly1305.NonceSizeX {
		return nil, fmt.Errorf("%w: nonce of %d bytes", ErrBadFile, len(kf.Cipher.Nonce))
	}
	if n := len(kf.Cipher.Ciphertext); n < chacha20poly1305.Overhead || n > maxCiphertext {
		return nil, fmt.Errorf("%w: ciphertext of %d bytes", ErrBadFile, n)
	}
	return &kf, nil
}

// load reads and checks the file of key name.
func (ks *Keystore) load(name string) (*keyFile, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	raw, err := readBounded(ks.path(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", name, err)
	}
	kf, err := decodeKeyFile(raw)
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", name, err)
	}
	// A file copied or renamed onto another name is refused: the name is
	// bound into the ciphertext, and a mismatch here says which file is off.
	if kf.Name != name {
		return nil, fmt.Errorf("key %q: %w: the file holds key %q", name, ErrBadFile, kf.Name)
	}
	return kf, nil
}

// readBounded reads a regular file of at most maxKeyFile bytes.
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: not a regular file", ErrBadFile)
	}
	raw, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > maxKeyFile {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrBadFile, maxKeyFile)
	}
	return raw, nil
}

// Get returns a key's public info. It needs no password.
func (ks *Keystore) Get(name string) (Info, error) {
	kf, err := ks.load(name)
	if err != nil {
		return Info{}, err
	}
	return kf.Info, nil
}

// List returns the info of every key, sorted by name. A key file that cannot
// be read fails the whole listing, naming the file, rather than quietly
// hiding a key; Delete removes such a file.
func (ks *Keystore) List() ([]Info, error) {
	entries, err := os.ReadDir(ks.dir)
	if err != nil {
		return nil, fmt.Errorf("list keystore %s: %w", ks.dir, err)
	}
	out := []Info{}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), fileSuffix)
		if !ok || e.IsDir() || ValidName(name) != nil {
			continue // temp files, editor backups, anything that is not a key
		}
		info, err := ks.Get(name)
		if err != nil {
			return nil, fmt.Errorf("list keystore %s: %w", ks.dir, err)
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b Info) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// decrypt opens key name with password.
func (ks *Keystore) decrypt(name string, password []byte) (string, ed25519.PrivateKey, error) {
	kf, err := ks.load(name)
	if err != nil {
		return "", nil, err
	}
	m, priv, err := kf.open(password)
	if err != nil {
		return "", nil, fmt.Errorf("key %q: %w", name, err)
	}
	return m, priv, nil
}

// open decrypts the mnemonic and checks that it derives the public key in
// the header, so a file whose parts were mixed from several keys is refused
// even if it decrypts.
func (kf *keyFile) open(password []byte) (string, ed25519.PrivateKey, error) {
	aead, err := kf.aead(password)
	if err != nil {
		return "", nil, err
	}
	plain, err := aead.Open(nil, kf.Cipher.Nonce, kf.Cipher.Ciphertext, kf.aad())
	if err != nil {
		// The AEAD cannot tell a wrong password from an edited file.
		return "", nil, ErrWrongPassword
	}
	mnemonic := string(plain)
	clear(plain)
	priv, err := PrivKeyFromMnemonic(mnemonic, "")
	if err != nil {
		return "", nil, fmt.Errorf("%w: stored mnemonic: %v", ErrBadFile, err)
	}
	if !bytes.Equal(priv.Public().(ed25519.PublicKey), kf.PubKey) {
		clear(priv)
		return "", nil, fmt.Errorf("%w: mnemonic does not derive the stored public key", ErrBadFile)
	}
	return mnemonic, priv, nil
}

// Unlock decrypts key name and returns its private key. A wrong password
// gives ErrWrongPassword.
func (ks *Keystore) Unlock(name string, password []byte) (ed25519.PrivateKey, error) {
	_, priv, err := ks.decrypt(name, password)
	return priv, err
}

// Export decrypts key name and returns its mnemonic. A wrong password gives
// ErrWrongPassword.
func (ks *Keystore) Export(name string, password []byte) (string, error) {
	m, priv, err := ks.decrypt(name, password)
	clear(priv)
	return m, err
}

// Delete removes key name. It needs no password (whoever can write the
// directory can remove files anyway) and works on unreadable key files too,
// so a corrupt file can be cleared away.
func (ks *Keystore) Delete(name string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	p := ks.path(name)
	st, err := os.Lstat(p)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	if err != nil {
		return fmt.Errorf("delete key %q: %w", name, err)
	}
	if st.IsDir() {
		return fmt.Errorf("delete key %q: %w: %s is a directory", name, ErrBadFile, p)
	}
	if err := os.Remove(p); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: %q", ErrNotFound, name)
		}
		return fmt.Errorf("delete key %q: %w", name, err)
	}
	if err := atomicfile.SyncDir(ks.dir); err != nil {
		return fmt.Errorf("delete key %q: %w", name, err)
	}
	return nil
}
