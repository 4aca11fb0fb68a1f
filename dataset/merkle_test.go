package dataset

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/agoranet/agora/chain/tx"
)

func leaves(n int) [][32]byte {
	out := make([][32]byte, n)
	for i := range out {
		f := sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(i)))
		out[i] = LeafHash(&tx.DataLeaf{FileSha256: f[:], Size: uint64(i), Contributor: make([]byte, 20), Weight: 1})
	}
	return out
}

func asBytes(p [][32]byte) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i][:]
	}
	return out
}

// TestProofsAcceptMembersRejectOthers checks every leaf of trees of every
// size up to 33 (all the odd shapes) proves, and that a wrong leaf, index,
// size or sibling does not.
func TestProofsAcceptMembersRejectOthers(t *testing.T) {
	for n := 1; n <= 33; n++ {
		ls := leaves(n)
		r, err := Root(ls)
		if err != nil {
			t.Fatal(err)
		}
		outsider := leaves(n + 1)[n]
		for i := range ls {
			p, err := Prove(ls, i)
			if err != nil {
				t.Fatal(err)
			}
			if !Verify(r, ls[i], uint64(i), uint64(n), asBytes(p)) {
				t.Fatalf("n=%d: leaf %d does not verify", n, i)
			}
			if Verify(r, outsider, uint64(i), uint64(n), asBytes(p)) {
				t.Fatalf("n=%d: a non-member verifies at %d", n, i)
			}
			if n > 1 && Verify(r, ls[i], uint64((i+1)%n), uint64(n), asBytes(p)) {
				t.Fatalf("n=%d: leaf %d verifies at another index", n, i)
			}
			if len(p) > 0 {
				bad := asBytes(p)
				bad[0] = append([]byte(nil), bad[0]...)
				bad[0][0] ^= 1
				if Verify(r, ls[i], uint64(i), uint64(n), bad) {
					t.Fatalf("n=%d: leaf %d verifies with a corrupted sibling", n, i)
				}
				if Verify(r, ls[i], uint64(i), uint64(n), asBytes(p)[:len(p)-1]) {
					t.Fatalf("n=%d: leaf %d verifies with a short proof", n, i)
				}
			}
		}
	}
	if _, err := Root(nil); err == nil {
		t.Fatal("an empty dataset has a root")
	}
}

// TestInnerNodeIsNotALeaf: presenting an inner node as a leaf of the
// registered tree (a second-preimage attempt) fails: the chain verifies
// against the registered file count, and an inner node's path is shorter.
func TestInnerNodeIsNotALeaf(t *testing.T) {
	ls := leaves(4)
	r, _ := Root(ls)
	inner, right := node(ls[0], ls[1]), node(ls[2], ls[3])
	for i := range uint64(4) {
		if Verify(r, inner, i, 4, [][]byte{right[:]}) {
			t.Fatalf("an inner node passes as leaf %d of the registered tree", i)
		}
	}
}

func FuzzVerify(f *testing.F) {
	ls := leaves(5)
	r, _ := Root(ls)
	p, _ := Prove(ls, 3)
	var flat []byte
	for _, h := range p {
		flat = append(flat, h[:]...)
	}
	f.Add(flat, uint64(3), uint64(5))
	f.Fuzz(func(t *testing.T, proof []byte, index, size uint64) {
		var hs [][]byte
		for len(proof) >= 32 && len(hs) < 70 {
			hs = append(hs, proof[:32])
			proof = proof[32:]
		}
		if len(proof) > 0 {
			hs = append(hs, proof)
		}
		// A proof does not bind the tree size by itself (the chain supplies
		// the registered file count); at the registered size, leaf 3
		// verifies at index 3 only.
		if Verify(r, ls[3], index, 5, hs) && index != 3 {
			t.Fatalf("leaf 3 of 5 verifies at index %d", index)
		}
		Verify(r, ls[3], index, size, hs) // any input: no panic
	})
}
