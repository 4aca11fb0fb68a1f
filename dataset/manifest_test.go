package dataset

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/agoranet/agora/address"
)

func addr(b byte) address.Address {
	var a address.Address
	a[0], a[19] = b, b
	return a
}

// writeTree creates files (slash path → contents) under a new directory.
func writeTree(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, body := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestBuildContributorsWeightsAndOrder(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"a-c":          "1",
		"a/b":          "22",
		"a/bc":         "333",
		"a/b2/x":       "4444",
		"a/b2/deep/y":  "",
		ManifestFile:   "{}",
		"other.json":   "skipped too",
		"z/readme.txt": "z",
	})
	if err := os.Symlink(filepath.Join(dir, "a-c"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	contribs, err := ParseContributors(strings.NewReader(fmt.Sprintf("# who gave what\n\na %s\na/b2 %s\n./z\t%s\n", addr(2), addr(3), addr(4))))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Build(dir, BuildOptions{Contributor: addr(1), Contributors: contribs, WeightBySize: true, Skip: []string{"other.json"}})
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		path string
		who  address.Address
		w    uint64
	}
	want := []row{ // sorted whole paths: '-' sorts before '/'
		{"a-c", addr(1), 1},
		{"a/b", addr(2), 2},
		{"a/b2/deep/y", addr(3), 1}, // empty: weight 1, not 0
		{"a/b2/x", addr(3), 4},
		{"a/bc", addr(2), 3},
		{"z/readme.txt", addr(4), 1},
	}
	var got []row
	for _, e := range m.Entries {
		got = append(got, row{e.Path, e.Contributor, e.Weight})
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("entries\n got %v\nwant %v", got, want)
	}
	if m.Files != 6 || m.Size != 1+2+0+4+3+1 {
		t.Fatalf("files %d size %d", m.Files, m.Size)
	}
	if sum := sha256.Sum256([]byte("4444")); m.Entries[3].SHA256 != sum {
		t.Fatal("entry hash is not the file's sha256")
	}
	sums, err := m.Contributors()
	if err != nil {
		t.Fatal(err)
	}
	if want := []Contribution{{addr(1), 1}, {addr(2), 5}, {addr(3), 5}, {addr(4), 1}}; !reflect.DeepEqual(sums, want) {
		t.Fatalf("contributors %v, want %v", sums, want)
	}

	// Without a default, a file no prefix covers is an error.
	if _, err := Build(dir, BuildOptions{Contributors: contribs}); err == nil || !strings.Contains(err.Error(), "a-c") {
		t.Fatalf("uncovered file: %v", err)
	}
	// Weight 1 per file by default.
	m1, err := Build(dir, BuildOptions{Contributor: addr(1)})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range m1.Entries {
		if e.Weight != 1 {
			t.Fatalf("%s weight %d by file count", e.Path, e.Weight)
		}
	}
	if m1.Root == m.Root {
		t.Fatal("different contributors and weights gave the same root")
	}
}

func TestParseContributorsRejects(t *testing.T) {
	for _, in := range []string{
		"onlyapath\n",
		"a agora1notanaddress\n",
		fmt.Sprintf("a %s\na %s\n", addr(1), addr(2)),
	} {
		if _, err := ParseContributors(strings.NewReader(in)); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestManifestRoundTripAndProofs(t *testing.T) {
	for _, n := range []int{1, 2, 7, 1000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			files := make(map[string]string, n)
			for i := range n {
				files[fmt.Sprintf("d%d/f%04d.txt", i%3, i)] = fmt.Sprint("file ", i)
			}
			dir := writeTree(t, files)
			m, err := Build(dir, BuildOptions{Contributor: addr(9)})
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(dir, ManifestFile)
			if err := m.Save(file); err != nil {
				t.Fatal(err)
			}
			back, err := Load(file)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, m) {
				t.Fatal("manifest did not round-trip")
			}
			// Rebuilding a directory that holds its own manifest gives the same root.
			again, err := Build(dir, BuildOptions{Contributor: addr(9)})
			if err != nil || again.Root != m.Root {
				t.Fatalf("rebuild: %v, root changed: %v", err, again.Root != m.Root)
			}
			for _, i := range []int{0, n / 2, n - 1} {
				p, err := back.Proof(m.Entries[i].Path)
				if err != nil {
					t.Fatal(err)
				}
				if p.Index != uint64(i) || p.Root != m.Root || p.Files != uint64(n) {
					t.Fatalf("proof %+v", p)
				}
				b, err := p.MarshalIndent()
				if err != nil {
					t.Fatal(err)
				}
				parsed, err := ParseProof(b)
				if err != nil {
					t.Fatal(err)
				}
				if err := parsed.Verify(); err != nil {
					t.Fatalf("member %d: %v", i, err)
				}
			}
		})
	}
}

func TestProofRefusesNonMembersAndChanges(t *testing.T) {
	dir := writeTree(t, map[string]string{"a": "alpha", "b": "beta", "c": "gamma"})
	m, err := Build(dir, BuildOptions{Contributor: addr(1)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Proof("nope"); !errors.Is(err, ErrNotInManifest) {
		t.Fatalf("non-member: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "b"), []byte("BETA"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Proof("b"); !errors.Is(err, ErrChanged) {
		t.Fatalf("changed file: %v", err)
	}
	good, err := m.Proof("a")
	if err != nil {
		t.Fatal(err)
	}
	other := writeTree(t, map[string]string{"x": "x", "y": "y", "z": "z"})
	om, err := Build(other, BuildOptions{Contributor: addr(1)})
	if err != nil {
		t.Fatal(err)
	}
	tampered := []struct {
		name string
		edit func(p *Proof)
	}{
		{"weight", func(p *Proof) { p.Leaf.Weight++ }},
		{"contributor", func(p *Proof) { p.Leaf.Contributor = addr(2) }},
		{"size", func(p *Proof) { p.Leaf.Size++ }},
		{"file hash", func(p *Proof) { p.Leaf.FileSHA256[0] ^= 1 }},
		{"index", func(p *Proof) { p.Index = 1 }},
		{"files", func(p *Proof) { p.Files = 2 }}, // (4 would verify: the root alone does not bind the size; the chain checks its registered count)
		{"sibling", func(p *Proof) { p.Proof[0][5] ^= 1 }},
		{"short proof", func(p *Proof) { p.Proof = p.Proof[:1] }},
		{"other root", func(p *Proof) { p.Root = om.Root }},
		{"zero weight", func(p *Proof) { p.Leaf.Weight = 0 }},
	}
	for _, c := range tampered {
		p := *good
		p.Proof = append([]Hash(nil), good.Proof...)
		c.edit(&p)
		if err := p.Verify(); !errors.Is(err, ErrProof) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

func TestLoadRejectsEditedManifest(t *testing.T) {
	dir := writeTree(t, map[string]string{"a": "alpha", "b": "beta"})
	m, err := Build(dir, BuildOptions{Contributor: addr(1)})
	if err != nil {
		t.Fatal(err)
	}
	edits := map[string]func(m *Manifest){
		"weight":  func(m *Manifest) { m.Entries[0].Weight = 5 },
		"files":   func(m *Manifest) { m.Files = 3 },
		"size":    func(m *Manifest) { m.Size++ },
		"order":   func(m *Manifest) { m.Entries[0], m.Entries[1] = m.Entries[1], m.Entries[0] },
		"version": func(m *Manifest) { m.Version = 2 },
		"path":    func(m *Manifest) { m.Entries[0].Path = "../a" },
		"empty":   func(m *Manifest) { m.Entries = nil },
	}
	for name, edit := range edits {
		c := *m
		c.Entries = append([]Entry(nil), m.Entries...)
		edit(&c)
		file := filepath.Join(t.TempDir(), "m.json")
		if err := c.Save(file); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(file); err == nil {
			t.Errorf("%s: edited manifest loaded", name)
		}
	}
}

func TestParseProofStrict(t *testing.T) {
	for _, in := range []string{
		`{"root":"00","files":1,"index":0,"leaf":{},"proof":[]}`,
		`{"roots":"` + strings.Repeat("0", 64) + `","files":1}`,
		`{"root":"` + strings.Repeat("0", 64) + `","files":2,"index":2}`,
		`{"root":"` + strings.Repeat("0", 64) + `","files":1} {}`,
	} {
		if _, err := ParseProof([]byte(in)); err == nil {
			t.Errorf("%s parsed", in)
		}
	}
}

// FuzzLoadProof feeds arbitrary bytes to the proof parser and verifier:
// neither may panic, and a proof that parses re-encodes to one that
// parses equal and verifies the same way.
func FuzzLoadProof(f *testing.F) {
	dir := writeTree(f, map[string]string{"a": "alpha", "b": "beta", "c": "gamma"})
	m, err := Build(dir, BuildOptions{Contributor: addr(1)})
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range m.Entries {
		p, err := m.Proof(e.Path)
		if err != nil {
			f.Fatal(err)
		}
		b, err := p.MarshalIndent()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"files":1}`))
	f.Add([]byte(`{"root":"` + strings.Repeat("ab", 32) + `","files":18446744073709551615,"index":18446744073709551614,"proof":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseProof(b)
		if err != nil {
			return
		}
		verr := p.Verify()
		enc, err := p.MarshalIndent()
		if err != nil {
			t.Fatal(err)
		}
		q, err := ParseProof(enc)
		if err != nil {
			t.Fatalf("re-encoded proof does not parse: %v", err)
		}
		if p.Root != q.Root || p.Files != q.Files || p.Index != q.Index || p.Leaf != q.Leaf || len(p.Proof) != len(q.Proof) {
			t.Fatalf("round trip changed the proof: %+v → %+v", p, q)
		}
		if (verr == nil) != (q.Verify() == nil) {
			t.Fatal("verification changed in a round trip")
		}
	})
}

func TestBuildStopsWhenCancelled(t *testing.T) {
	dir := writeTree(t, map[string]string{"a": "a", "b": "b"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := BuildContext(ctx, dir, BuildOptions{Contributor: addr(1)}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled build: %v", err)
	}
}
