package dataset

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/internal/atomicfile"
)

// ManifestFile is the manifest's default name inside the dataset directory.
// Build never lists it, so rebuilding a directory that holds its own
// manifest gives the same root.
const ManifestFile = ".agora-dataset.json"

// ManifestVersion is the manifest format this package writes and reads.
const ManifestVersion = 1

// Errors a caller may branch on.
var (
	// ErrNotInManifest: the path asked for is not one of the manifest's files.
	ErrNotInManifest = errors.New("not in the manifest")
	// ErrChanged: a file's contents are no longer what the manifest recorded.
	ErrChanged = errors.New("file changed since the manifest was built")
	// ErrProof: a proof does not show its leaf under its root.
	ErrProof = errors.New("proof does not verify")
)

// Hash is a sha256 digest, written in JSON as 64 lowercase hex digits.
type Hash [32]byte

// MarshalText implements encoding.TextMarshaler.
func (h Hash) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h[:])), nil }

// UnmarshalText implements encoding.TextUnmarshaler: exactly 32 bytes of hex.
func (h *Hash) UnmarshalText(b []byte) error {
	if len(b) != 2*len(h) {
		return fmt.Errorf("hash %q: want %d hex digits", b, 2*len(h))
	}
	if _, err := hex.Decode(h[:], b); err != nil {
		return fmt.Errorf("hash %q: %w", b, err)
	}
	return nil
}

func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Entry is one file of a manifest: one leaf of the dataset's tree.
type Entry struct {
	Path        string          `json:"path"` // slash-separated, relative to the dataset directory
	SHA256      Hash            `json:"sha256"`
	Size        uint64          `json:"size"`
	Contributor address.Address `json:"contributor"`
	Weight      uint64          `json:"weight"`
}

// Leaf is the entry as the tree (and the chain) sees it: without its path.
func (e Entry) Leaf() Leaf {
	return Leaf{FileSHA256: e.SHA256, Size: e.Size, Contributor: e.Contributor, Weight: e.Weight}
}

// Manifest lists a dataset's contributions in tree order and names their root.
type Manifest struct {
	Version int     `json:"version"`
	Root    Hash    `json:"root"`
	Files   uint64  `json:"files"`
	Size    uint64  `json:"size"` // total bytes
	Entries []Entry `json:"entries"`

	// Dir is the dataset directory Proof re-reads files from: the directory
	// built, or the manifest's own directory after Load. Callers whose
	// manifest lives elsewhere set it.
	Dir string `json:"-"`
}

// BuildOptions say who contributed each file and what it weighs.
type BuildOptions struct {
	// Contributor is credited with every file no prefix in Contributors covers.
	Contributor address.Address
	// Contributors maps a slash-separated path prefix to the address that
	// contributed the files under it; the longest matching prefix wins. A
	// prefix matches whole path elements: "a/b" covers "a/b" and "a/b/c",
	// not "a/bc"; "" or "." covers everything.
	Contributors map[string]address.Address
	// WeightBySize weighs a file by its size in bytes (an empty file weighs
	// 1, since the chain credits only positive weights); else every file
	// weighs 1.
	WeightBySize bool
	// Skip lists further slash-separated paths, relative to the directory,
	// to leave out (a manifest written inside it under another name).
	Skip []string
}

// Build walks dir and makes its manifest: every regular file except the
// manifest itself, in sorted path order, hashed. Symbolic links and other
// non-regular files are left out, so the manifest names only bytes it read.
func Build(dir string, o BuildOptions) (*Manifest, error) {
	return BuildContext(context.Background(), dir, o)
}

// BuildContext is Build that stops, between files, when ctx ends: hashing
// a large dataset takes long enough to be interrupted.
func BuildContext(ctx context.Context, dir string, o BuildOptions) (*Manifest, error) {
	prefixes, err := normPrefixes(o.Contributors)
	if err != nil {
		return nil, err
	}
	skip := map[string]bool{ManifestFile: true}
	for _, s := range o.Skip {
		skip[path.Clean(filepath.ToSlash(s))] = true
	}
	var paths []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel = filepath.ToSlash(rel); !skip[rel] {
			paths = append(paths, rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk dataset %s: %w", dir, err)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("dataset %s has no files", dir)
	}
	// WalkDir's order is per directory ("a/b" before "a-c"); the manifest's
	// is the plain sort of whole paths, which anyone can reproduce.
	sort.Strings(paths)
	m := &Manifest{Version: ManifestVersion, Dir: dir, Entries: make([]Entry, 0, len(paths))}
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("build dataset %s: %w", dir, err)
		}
		sum, size, err := hashFile(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil {
			return nil, err
		}
		who, ok := contributorOf(p, prefixes, o.Contributor)
		if !ok {
			return nil, fmt.Errorf("file %s: no contributor (give a default or a prefix covering it)", p)
		}
		w := uint64(1)
		if o.WeightBySize && size > 0 {
			w = size
		}
		m.Entries = append(m.Entries, Entry{Path: p, SHA256: sum, Size: size, Contributor: who, Weight: w})
	}
	if err := m.seal(); err != nil {
		return nil, err
	}
	return m, nil
}

// seal computes the manifest's counts and root from its entries.
func (m *Manifest) seal() error {
	m.Files = uint64(len(m.Entries))
	m.Size = 0
	for _, e := range m.Entries {
		if e.Size > math.MaxUint64-m.Size {
			return errors.New("dataset size overflows 64 bits")
		}
		m.Size += e.Size
	}
	r, err := Root(m.Leaves())
	if err != nil {
		return err
	}
	m.Root = r
	return nil
}

type prefix struct {
	p    string
	addr address.Address
}

// normPrefixes cleans the prefixes and orders them longest first, so the
// first match is the longest.
func normPrefixes(in map[string]address.Address) ([]prefix, error) {
	out := make([]prefix, 0, len(in))
	seen := make(map[string]bool, len(in))
	for p, a := range in {
		c := path.Clean(strings.TrimPrefix(filepath.ToSlash(p), "/"))
		if c == "." {
			c = ""
		}
		if strings.HasPrefix(c, "../") || c == ".." {
			return nil, fmt.Errorf("contributor prefix %q leaves the dataset", p)
		}
		if seen[c] {
			return nil, fmt.Errorf("contributor prefix %q given twice", p)
		}
		seen[c] = true
		out = append(out, prefix{c, a})
	}
	sort.Slice(out, func(i, j int) bool {
		if len(out[i].p) != len(out[j].p) {
			return len(out[i].p) > len(out[j].p)
		}
		return out[i].p < out[j].p
	})
	return out, nil
}

func contributorOf(p string, prefixes []prefix, def address.Address) (address.Address, bool) {
	for _, x := range prefixes {
		if x.p == "" || p == x.p || strings.HasPrefix(p, x.p+"/") {
			return x.addr, true
		}
	}
	return def, !def.IsZero()
}

// ParseContributors reads a contributors file: one "PATH ADDRESS" per line,
// the address last (so a path may hold spaces); blank lines and lines
// starting with # are ignored.
func ParseContributors(r io.Reader) (map[string]address.Address, error) {
	out := make(map[string]address.Address)
	s := bufio.NewScanner(r)
	for n := 1; s.Scan(); n++ {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexAny(line, " \t")
		if i < 0 {
			return nil, fmt.Errorf("contributors line %d: want PATH ADDRESS", n)
		}
		p, who := strings.TrimSpace(line[:i]), line[i+1:]
		a, err := address.Parse(who)
		if err != nil {
			return nil, fmt.Errorf("contributors line %d: %w", n, err)
		}
		if _, dup := out[p]; dup {
			return nil, fmt.Errorf("contributors line %d: path %q given twice", n, p)
		}
		out[p] = a
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("read contributors: %w", err)
	}
	return out, nil
}

func hashFile(p string) (Hash, uint64, error) {
	f, err := os.Open(p)
	if err != nil {
		return Hash{}, 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return Hash{}, 0, fmt.Errorf("hash %s: %w", p, err)
	}
	var out Hash
	h.Sum(out[:0])
	return out, uint64(n), nil
}

// Leaves are the tree's leaf hashes, in manifest order.
func (m *Manifest) Leaves() [][32]byte {
	out := make([][32]byte, len(m.Entries))
	for i, e := range m.Entries {
		out[i] = LeafHash(e.Leaf().ToLeaf())
	}
	return out
}

// Contribution is a contributor's summed weight over a manifest.
type Contribution struct {
	Address address.Address `json:"address"`
	Weight  uint64          `json:"weight"`
}

// Contributors sums each contributor's weight, in order of first appearance.
func (m *Manifest) Contributors() ([]Contribution, error) {
	var out []Contribution
	at := make(map[address.Address]int)
	for _, e := range m.Entries {
		i, ok := at[e.Contributor]
		if !ok {
			at[e.Contributor] = len(out)
			out = append(out, Contribution{Address: e.Contributor, Weight: e.Weight})
			continue
		}
		if e.Weight > math.MaxUint64-out[i].Weight {
			return nil, fmt.Errorf("weight of %s overflows 64 bits", e.Contributor)
		}
		out[i].Weight += e.Weight
	}
	return out, nil
}

// check reports whether the manifest is consistent: a known version, sane
// entries in strictly sorted order, and counts and root that match them,
// so a hand-edited manifest cannot register a root it does not describe.
func (m *Manifest) check() error {
	if m.Version != ManifestVersion {
		return fmt.Errorf("manifest version %d, want %d", m.Version, ManifestVersion)
	}
	if len(m.Entries) == 0 {
		return errors.New("manifest lists no files")
	}
	for i, e := range m.Entries {
		switch {
		case e.Path == "" || path.Clean(e.Path) != e.Path || path.IsAbs(e.Path) || e.Path == ".." || strings.HasPrefix(e.Path, "../"):
			return fmt.Errorf("entry %d: path %q is not a clean relative path", i, e.Path)
		case i > 0 && m.Entries[i-1].Path >= e.Path:
			return fmt.Errorf("entry %d: path %q out of order or repeated", i, e.Path)
		case e.Contributor.IsZero():
			return fmt.Errorf("entry %d (%s): no contributor", i, e.Path)
		case e.Weight == 0:
			return fmt.Errorf("entry %d (%s): weight 0", i, e.Path)
		}
	}
	want := *m
	if err := want.seal(); err != nil {
		return err
	}
	switch {
	case want.Files != m.Files:
		return fmt.Errorf("manifest says %d files, lists %d", m.Files, want.Files)
	case want.Size != m.Size:
		return fmt.Errorf("manifest says %d bytes, its files sum to %d", m.Size, want.Size)
	case want.Root != m.Root:
		return fmt.Errorf("manifest root %s is not its entries' root %s", m.Root, want.Root)
	}
	return nil
}

// Save writes the manifest as indented JSON, atomically (a crash leaves the
// old file or the new).
func (m *Manifest) Save(file string) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	return atomicfile.Replace(file, append(b, '\n'), 0o644)
}

// Load reads and checks a manifest; its Dir is the file's directory.
func Load(file string) (*Manifest, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	m := &Manifest{}
	if err := json.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", file, err)
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", file, err)
	}
	m.Dir = filepath.Dir(file)
	return m, nil
}

// Leaf is a contribution in a proof, as JSON.
type Leaf struct {
	FileSHA256  Hash            `json:"file_sha256"`
	Size        uint64          `json:"size"`
	Contributor address.Address `json:"contributor"`
	Weight      uint64          `json:"weight"`
}

// ToLeaf is the leaf's wire form.
func (l Leaf) ToLeaf() *tx.DataLeaf {
	return &tx.DataLeaf{FileSha256: l.FileSHA256[:], Size: l.Size, Contributor: l.Contributor.Bytes(), Weight: l.Weight}
}

// Proof shows one contribution is in a dataset: what data_contribute sends.
type Proof struct {
	Root  Hash   `json:"root"`
	Files uint64 `json:"files"`
	Index uint64 `json:"index"`
	Leaf  Leaf   `json:"leaf"`
	Proof []Hash `json:"proof"` // sibling hashes, leaf to root
}

// Proof proves the file at p (a manifest path) after re-reading it from
// m.Dir: a file whose bytes changed since the build is refused with
// ErrChanged, because its proof would credit contents no longer there.
func (m *Manifest) Proof(p string) (*Proof, error) {
	p = path.Clean(filepath.ToSlash(p))
	i := sort.Search(len(m.Entries), func(i int) bool { return m.Entries[i].Path >= p })
	if i == len(m.Entries) || m.Entries[i].Path != p {
		return nil, fmt.Errorf("%s: %w", p, ErrNotInManifest)
	}
	e := m.Entries[i]
	sum, size, err := hashFile(filepath.Join(m.Dir, filepath.FromSlash(p)))
	if err != nil {
		return nil, err
	}
	if sum != e.SHA256 || size != e.Size {
		return nil, fmt.Errorf("%s: %w (rebuild the manifest)", p, ErrChanged)
	}
	sibs, err := Prove(m.Leaves(), i)
	if err != nil {
		return nil, err
	}
	pr := &Proof{Root: m.Root, Files: m.Files, Index: uint64(i), Leaf: e.Leaf(), Proof: make([]Hash, len(sibs))}
	for j, s := range sibs {
		pr.Proof[j] = s
	}
	return pr, nil
}

// ProofBytes is the proof's sibling hashes in wire form.
func (p *Proof) ProofBytes() [][]byte {
	out := make([][]byte, len(p.Proof))
	for i := range p.Proof {
		out[i] = p.Proof[i][:]
	}
	return out
}

// Verify checks the proof offline, as the chain will: the leaf at Index of
// a Files-leaf tree hashes up to Root.
func (p *Proof) Verify() error {
	switch {
	case len(p.Proof) > tx.MaxProofHashes:
		return fmt.Errorf("%w: %d hashes, limit %d", ErrProof, len(p.Proof), tx.MaxProofHashes)
	case p.Leaf.Weight == 0 || p.Leaf.Contributor.IsZero():
		return fmt.Errorf("%w: the leaf needs a contributor and a positive weight", ErrProof)
	case !Verify(p.Root, LeafHash(p.Leaf.ToLeaf()), p.Index, p.Files, p.ProofBytes()):
		return fmt.Errorf("%w: leaf %d of %d does not hash to root %s", ErrProof, p.Index, p.Files, p.Root)
	}
	return nil
}

// ParseProof decodes a proof's JSON strictly: unknown fields and trailing
// data are errors, so a misspelt field is never read as zero.
func ParseProof(b []byte) (*Proof, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	p := &Proof{}
	if err := dec.Decode(p); err != nil {
		return nil, fmt.Errorf("decode proof: %w", err)
	}
	if dec.More() {
		return nil, errors.New("decode proof: data after the proof")
	}
	if p.Files == 0 || p.Index >= p.Files {
		return nil, fmt.Errorf("decode proof: leaf %d of a %d-leaf tree", p.Index, p.Files)
	}
	return p, nil
}

// LoadProof reads a proof file.
func LoadProof(file string) (*Proof, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	p, err := ParseProof(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return p, nil
}

// Save writes the proof as indented JSON.
func (p *Proof) Save(file string) error {
	b, err := p.MarshalIndent()
	if err != nil {
		return err
	}
	return atomicfile.Replace(file, b, 0o644)
}

// MarshalIndent is the proof's file form: indented JSON and a newline.
func (p *Proof) MarshalIndent() ([]byte, error) {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode proof: %w", err)
	}
	return append(b, '\n'), nil
}
