// Package dataset describes datasets as the chain sees them: a manifest of
// contributions (a file's sha256, its size, its contributor and weight),
// the Merkle root that registers it, and inclusion proofs that credit one
// contribution on chain.
//
// The tree is RFC 6962's (Certificate Transparency): leaves and inner nodes
// are hashed with different prefixes so a node can never pass as a leaf,
// and a tree of any size has one shape, so a root names exactly one ordered
// list of contributions. It is a leaf package: it imports chain/tx for the
// leaf's wire type, address and the standard library, nothing heavy, so the
// CLI and the chain share one definition of a leaf.
package dataset

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"github.com/agoranet/agora/chain/tx"
)

// leafDomain names what a leaf hash commits to, so a leaf of this tree is
// never the hash of anything else Agora signs or stores.
const leafDomain = "agora/data/leaf/v1"

// LeafHash is the tree's hash of one contribution.
func LeafHash(l *tx.DataLeaf) [32]byte {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write([]byte(leafDomain))
	h.Write(l.FileSha256)
	h.Write(binary.BigEndian.AppendUint64(nil, l.Size))
	h.Write(l.Contributor)
	h.Write(binary.BigEndian.AppendUint64(nil, l.Weight))
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func node(l, r [32]byte) [32]byte {
	var b [65]byte
	b[0] = 1
	copy(b[1:], l[:])
	copy(b[33:], r[:])
	return sha256.Sum256(b[:])
}

// split is the size of a tree's left subtree: the largest power of two
// below n (n ≥ 2).
func split(n int) int { return 1 << (bits.Len(uint(n-1)) - 1) }

// Root is the Merkle root of leaf hashes, in order. An empty dataset has
// no root.
func Root(leaves [][32]byte) ([32]byte, error) {
	if len(leaves) == 0 {
		return [32]byte{}, errors.New("a dataset needs at least one file")
	}
	return root(leaves), nil
}

func root(leaves [][32]byte) [32]byte {
	if len(leaves) == 1 {
		return leaves[0]
	}
	k := split(len(leaves))
	return node(root(leaves[:k]), root(leaves[k:]))
}

// Prove returns the inclusion proof of leaves[index]: sibling hashes from
// the leaf up to the root.
func Prove(leaves [][32]byte, index int) ([][32]byte, error) {
	if index < 0 || index >= len(leaves) {
		return nil, fmt.Errorf("leaf %d of a %d-leaf tree", index, len(leaves))
	}
	var path [][32]byte
	for len(leaves) > 1 {
		k := split(len(leaves))
		if index < k {
			path = append(path, root(leaves[k:]))
			leaves = leaves[:k]
		} else {
			path = append(path, root(leaves[:k]))
			leaves, index = leaves[k:], index-k
		}
	}
	// Collected root-down; a proof reads leaf-up.
	for i, j := 0, len(path)-1; i < j; i, j = i+1, j-1 {
		path[i], path[j] = path[j], path[i]
	}
	return path, nil
}

// Verify reports whether proof shows leaf at index in a tree of size
// leaves with the given root (RFC 9162, section 2.1.3.2). It never panics
// on hostile input: a proof of the wrong length or for an index outside the
// tree is simply false.
func Verify(root, leaf [32]byte, index, size uint64, proof [][]byte) bool {
	if index >= size {
		return false
	}
	fn, sn := index, size-1
	r := leaf
	for _, p := range proof {
		if len(p) != 32 || sn == 0 {
			return false
		}
		var sib [32]byte
		copy(sib[:], p)
		if fn&1 == 1 || fn == sn {
			r = node(sib, r)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			r = node(r, sib)
		}
		fn >>= 1
		sn >>= 1
	}
	return sn == 0 && r == root
}
