package snapshot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/agoranet/agora/chain/state"
)

// fill commits versions 1..n of a store with keys spread across versions.
func fill(t *testing.T, st *state.Store, versions, keysPer int) {
	t.Helper()
	for v := 1; v <= versions; v++ {
		blk := st.NewBlock()
		for k := range keysPer {
			if err := blk.Set(fmt.Appendf(nil, "key-%03d-%05d", k%7, v*keysPer+k), bytes.Repeat([]byte{byte(v)}, 1+k%50)); err != nil {
				t.Fatal(err)
			}
		}
		if err := blk.Flush(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.Commit(); err != nil {
			t.Fatal(err)
		}
	}
}

func memStore(t *testing.T) *state.Store {
	t.Helper()
	st, err := state.OpenMem(state.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func makeSnapshot(t *testing.T, chunkSize int) (*Store, Info, []byte) {
	t.Helper()
	src := memStore(t)
	fill(t, src, 5, 400)
	ss, err := Open(t.TempDir(), Options{Interval: 5, ChunkSize: chunkSize})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ss.Close)
	exp, err := src.Export(5)
	if err != nil {
		t.Fatal(err)
	}
	info, err := ss.Create(context.Background(), exp)
	if err != nil {
		t.Fatal(err)
	}
	return ss, info, src.Hash()
}

func chunks(t *testing.T, ss *Store, in Info) [][]byte {
	t.Helper()
	var out [][]byte
	for i := range in.Chunks {
		c, err := ss.LoadChunk(in.Height, in.Format, i)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

func TestSnapshotRoundTrip(t *testing.T) {
	ss, info, root := makeSnapshot(t, 4096)
	if info.Chunks < 3 {
		t.Fatalf("want several chunks, got %d", info.Chunks)
	}
	dst := memStore(t)
	r, err := NewRestorer(dst, info, root)
	if err != nil {
		t.Fatal(err)
	}
	cs := chunks(t, ss, info)
	for i, c := range cs {
		done, err := r.Apply(uint32(i), c)
		if err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
		if done != (i == len(cs)-1) {
			t.Fatalf("chunk %d: done=%v", i, done)
		}
	}
	if !bytes.Equal(dst.Hash(), root) || dst.Version() != 5 {
		t.Fatalf("restored %X at %d, want %X at 5", dst.Hash(), dst.Version(), root)
	}
	v, err := dst.Committed().Get([]byte("key-001-02001"))
	if err != nil || len(v) == 0 {
		t.Fatalf("restored key missing: %v %v", v, err)
	}
	// The restored store keeps committing like any other.
	fill(t, dst, 1, 10)
	if dst.Version() != 6 {
		t.Fatalf("version after restore+commit %d", dst.Version())
	}
}

// TestRestoreAttacks performs the attacks a lying peer can mount against
// a restoring node, each against a fresh empty store.
func TestRestoreAttacks(t *testing.T) {
	ss, info, root := makeSnapshot(t, 4096)
	cs := chunks(t, ss, info)

	t.Run("flipped chunk bytes are refused and the chunk refetched", func(t *testing.T) {
		dst := memStore(t)
		r, err := NewRestorer(dst, info, root)
		if err != nil {
			t.Fatal(err)
		}
		bad := bytes.Clone(cs[0])
		bad[len(bad)/2] ^= 0xff
		if _, err := r.Apply(0, bad); !errors.Is(err, ErrChunkHash) {
			t.Fatalf("flipped chunk: %v", err)
		}
		for i, c := range cs { // the honest retry still completes
			if _, err := r.Apply(uint32(i), c); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(dst.Hash(), root) {
			t.Fatal("restore after retry has the wrong root")
		}
	})

	t.Run("consistent snapshot of other state is rejected and discarded", func(t *testing.T) {
		other := memStore(t)
		fill(t, other, 5, 300) // different content, same height
		ss2, err := Open(t.TempDir(), Options{ChunkSize: 4096})
		if err != nil {
			t.Fatal(err)
		}
		defer ss2.Close()
		exp, err := other.Export(5)
		if err != nil {
			t.Fatal(err)
		}
		lie, err := ss2.Create(context.Background(), exp)
		if err != nil {
			t.Fatal(err)
		}
		dst := memStore(t)
		r, err := NewRestorer(dst, lie, root) // root is the trusted app hash
		if err != nil {
			t.Fatal(err)
		}
		var last error
		for i, c := range chunks(t, ss2, lie) {
			if _, last = r.Apply(uint32(i), c); last != nil {
				break
			}
		}
		if !errors.Is(last, ErrAppHash) {
			t.Fatalf("want ErrAppHash, got %v", last)
		}
		if dst.Version() != 0 {
			t.Fatalf("rejected import left version %d", dst.Version())
		}
		// The next (honest) snapshot restores into the same store.
		r, err = NewRestorer(dst, info, root)
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range cs {
			if _, err := r.Apply(uint32(i), c); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(dst.Hash(), root) {
			t.Fatal("second restore has the wrong root")
		}
	})

	t.Run("garbage chunk that matches forged metadata is rejected", func(t *testing.T) {
		junk, err := compress([]byte{0x05, 0x00, 0x01}) // version 0
		if err != nil {
			t.Fatal(err)
		}
		md := Metadata{Root: root, ChunkHashes: [][32]byte{sha256.Sum256(junk)}}.Encode()
		forged := Info{Height: 5, Format: Format, Chunks: 1, Hash: Hash(md), Metadata: md}
		dst := memStore(t)
		r, err := NewRestorer(dst, forged, root)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Apply(0, junk); !errors.Is(err, ErrBadChunk) {
			t.Fatalf("want ErrBadChunk, got %v", err)
		}
		if dst.Version() != 0 {
			t.Fatal("bad chunk left state")
		}
	})

	bad := func(mut func(*Info)) Info {
		in := info
		in.Metadata = bytes.Clone(info.Metadata)
		mut(&in)
		return in
	}
	for _, tc := range []struct {
		name string
		in   Info
		want error
	}{
		{"unknown format", bad(func(i *Info) { i.Format = 2 }), ErrFormat},
		{"height 0", bad(func(i *Info) { i.Height = 0 }), ErrBadMetadata},
		{"absurd height", bad(func(i *Info) { i.Height = 1 << 62 }), ErrBadMetadata},
		{"absurd chunk count", bad(func(i *Info) { i.Chunks = 1 << 31 }), ErrBadMetadata},
		{"zero chunks", bad(func(i *Info) { i.Chunks = 0 }), ErrBadMetadata},
		{"hash not of metadata", bad(func(i *Info) { i.Hash = make([]byte, 32) }), ErrBadMetadata},
		{"truncated metadata", bad(func(i *Info) { i.Metadata = i.Metadata[:len(i.Metadata)-1]; i.Hash = Hash(i.Metadata) }), ErrBadMetadata},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewRestorer(memStore(t), tc.in, root); !errors.Is(err, tc.want) {
				t.Fatalf("want %v, got %v", tc.want, err)
			}
		})
	}

	t.Run("out of order chunk", func(t *testing.T) {
		dst := memStore(t)
		r, err := NewRestorer(dst, info, root)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Apply(1, cs[1]); !errors.Is(err, ErrBadChunk) {
			t.Fatalf("want ErrBadChunk, got %v", err)
		}
	})

	t.Run("restore into a store with state is refused", func(t *testing.T) {
		dst := memStore(t)
		fill(t, dst, 1, 1)
		if _, err := NewRestorer(dst, info, root); !errors.Is(err, state.ErrNotEmpty) {
			t.Fatalf("want ErrNotEmpty, got %v", err)
		}
	})
}

func TestStoreServesBoundedAndPrunes(t *testing.T) {
	src := memStore(t)
	dir := t.TempDir()
	// A crash left a half-written snapshot: it must vanish and never list.
	if err := os.MkdirAll(filepath.Join(dir, tmpPrefix+"crash", "0"), 0o700); err != nil {
		t.Fatal(err)
	}
	ss, err := Open(dir, Options{Interval: 2, Keep: 2, ChunkSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, tmpPrefix+"crash")); !os.IsNotExist(err) {
		t.Fatal("partial snapshot survived Open")
	}
	for v := 1; v <= 8; v++ {
		fill(t, src, 1, 50)
		ss.AfterCommit(src, src.Version())
		ss.Wait()
	}
	list, err := ss.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Height != 8 || list[1].Height != 6 {
		t.Fatalf("kept %+v, want heights 8 and 6", list)
	}
	for _, tc := range []struct {
		h   int64
		f   uint32
		idx uint32
	}{{8, 1, list[0].Chunks}, {8, 1, 1 << 31}, {4, 1, 0}, {8, 2, 0}, {0, 1, 0}, {-1, 1, 0}} {
		if _, err := ss.LoadChunk(tc.h, tc.f, tc.idx); !errors.Is(err, ErrNotFound) {
			t.Errorf("LoadChunk(%d,%d,%d) = %v, want ErrNotFound", tc.h, tc.f, tc.idx, err)
		}
	}
	ss.Close()
	// Closing the snapshot store left no export pinning the state store.
	done := make(chan error, 1)
	go func() { done <- src.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("state store Close blocked on an export")
	}
}

// TestSnapshotDuringCommitsAndClose writes a snapshot on the store's
// goroutine while blocks keep committing and pruning, then closes mid-way:
// run under -race.
func TestSnapshotDuringCommitsAndClose(t *testing.T) {
	st, err := state.OpenMem(state.Options{KeepRecent: 1})
	if err != nil {
		t.Fatal(err)
	}
	fill(t, st, 100, 20)
	ss, err := Open(t.TempDir(), Options{Interval: 100, ChunkSize: 512})
	if err != nil {
		t.Fatal(err)
	}
	ss.AfterCommit(st, 100)
	fill(t, st, 101, 5) // version 200 prunes to 199 unless 100 is pinned
	ss.Close()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}

func FuzzDecodeChunk(f *testing.F) {
	c, _ := compress(appendNode(nil, state.Node{Key: []byte("k"), Value: []byte("v"), Version: 1}))
	f.Add(c)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		nodes, err := DecodeChunk(b)
		if err == nil && len(nodes) == 0 {
			t.Fatal("no error and no nodes")
		}
	})
}

func FuzzDecodeMetadata(f *testing.F) {
	f.Add(Metadata{Root: make([]byte, 32), ChunkHashes: make([][32]byte, 2)}.Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMetadata(b)
		if err != nil {
			return
		}
		// Varints may arrive overlong, so compare decoded forms.
		m2, err := DecodeMetadata(m.Encode())
		if err != nil || !bytes.Equal(m2.Root, m.Root) || len(m2.ChunkHashes) != len(m.ChunkHashes) {
			t.Fatal("re-encoded metadata does not decode to the same")
		}
	})
}

// FuzzRestoreChunk feeds arbitrary chunk content, under forged metadata
// that matches it, to a real importer: it must fail cleanly, never panic.
func FuzzRestoreChunk(f *testing.F) {
	c, _ := compress(appendNode(nil, state.Node{Key: []byte("k"), Value: []byte("v"), Version: 1}))
	f.Add(c)
	f.Fuzz(func(t *testing.T, raw []byte) {
		chunk, err := compress(raw)
		if err != nil {
			t.Skip()
		}
		md := Metadata{ChunkHashes: [][32]byte{sha256.Sum256(chunk)}}.Encode()
		st, err := state.OpenMem(state.DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		r, err := NewRestorer(st, Info{Height: 3, Format: Format, Chunks: 1, Hash: Hash(md), Metadata: md}, make([]byte, 32))
		if err != nil {
			t.Fatal(err)
		}
		if done, err := r.Apply(0, chunk); done || err == nil {
			t.Fatal("restored to an all-zero app hash")
		}
	})
}
