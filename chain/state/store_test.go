package state

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/agoranet/agora/chain/proof"
)

func TestCacheIsolationAndSortedFlush(t *testing.T) {
	s, err := OpenMem(DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	blk := s.NewBlock()
	txc := NewCache(blk)
	txc.Set([]byte("b"), []byte("2"))
	txc.Set([]byte("a"), []byte("1"))
	if v, _ := blk.Get([]byte("a")); v != nil {
		t.Fatal("uncommitted tx cache leaked into the block")
	}
	txc.Discard()
	if v, _ := txc.Get([]byte("a")); v != nil {
		t.Fatal("discard kept a write")
	}
	txc.Set([]byte("z"), []byte("26"))
	txc.Set([]byte("a"), []byte("1"))
	if err := txc.WriteTo(blk); err != nil {
		t.Fatal(err)
	}
	if err := blk.Flush(); err != nil {
		t.Fatal(err)
	}
	h1, _, err := s.Commit()
	if err != nil {
		t.Fatal(err)
	}
	// Same writes in another order must give the same root.
	s2, _ := OpenMem(DefaultOptions())
	blk2 := s2.NewBlock()
	blk2.Set([]byte("a"), []byte("1"))
	blk2.Set([]byte("z"), []byte("26"))
	blk2.Flush()
	h2, _, _ := s2.Commit()
	if !bytes.Equal(h1, h2) {
		t.Fatalf("roots differ: %X vs %X", h1, h2)
	}
}

func TestCommittedViewIgnoresWorkingWrites(t *testing.T) {
	s, _ := OpenMem(DefaultOptions())
	blk := s.NewBlock()
	blk.Set([]byte("k"), []byte("v1"))
	blk.Flush()
	s.Commit()
	blk = s.NewBlock()
	blk.Set([]byte("k"), []byte("v2"))
	blk.Flush()
	if v, _ := s.Committed().Get([]byte("k")); string(v) != "v1" {
		t.Fatalf("committed view saw %q before commit", v)
	}
	if v, _ := s.Get([]byte("k")); string(v) != "v2" {
		t.Fatalf("working view %q", v)
	}
}

func TestQueryProofsAndHistory(t *testing.T) {
	s, _ := OpenMem(Options{KeepRecent: 100})
	var roots [][]byte
	for v := 1; v <= 250; v++ {
		blk := s.NewBlock()
		blk.Set([]byte(fmt.Sprintf("key-%03d", v)), []byte(fmt.Sprint(v)))
		blk.Flush()
		h, _, err := s.Commit()
		if err != nil {
			t.Fatal(err)
		}
		roots = append(roots, h)
	}
	p, err := s.Query([]byte("key-010"), 200, true)
	if err != nil {
		t.Fatal(err)
	}
	if string(p.Value) != "10" || !bytes.Equal(p.Root, roots[199]) {
		t.Fatalf("historical query: %q root %X", p.Value, p.Root)
	}
	if err := proof.Verify(p.Root, p.Proof, []byte("key-010"), p.Value); err != nil {
		t.Fatal(err)
	}
	if err := proof.Verify(roots[198], p.Proof, []byte("key-010"), p.Value); err == nil {
		t.Fatal("proof verified against the wrong root")
	}
	absent, err := s.Query([]byte("key-999"), 0, true)
	if err != nil || absent.Value != nil {
		t.Fatalf("absent key: %v %v", absent.Value, err)
	}
	if err := proof.Verify(absent.Root, absent.Proof, []byte("key-999"), nil); err != nil {
		t.Fatal(err)
	}
	if err := proof.Verify(absent.Root, absent.Proof, []byte("key-010"), nil); err == nil {
		t.Fatal("non-membership proof verified for a present key")
	}
	// Versions older than KeepRecent are pruned (in batches of 100).
	if _, err := s.Query([]byte("key-010"), 50, false); !errors.Is(err, ErrVersionUnavailable) {
		t.Fatalf("pruned version query err = %v", err)
	}
	if _, err := s.Query([]byte("key-010"), 999, false); !errors.Is(err, ErrVersionUnavailable) {
		t.Fatalf("future version query err = %v", err)
	}
}
