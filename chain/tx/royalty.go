package tx

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"

	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
)

// Royalty accounting: the arithmetic of a SharePool, shared by the chain
// (which applies it) and clients (which compute a holder's claimable amount
// at a height from two proven records, the pool and the holding).
//
// A pool's index is the cumulative royalty per share in Q64.64 fixed point.
// Crediting a pool and settling a holder are O(1) whatever the number of
// holders: a holder's earnings since it last settled are
// shares × (index − its index) / 2^64, rounded down. The index step rounds
// down too, with the remainder carried into the next step, so the index
// never promises more than the pool was credited; what holders' rounding
// leaves behind (dust, under one base unit per settlement) stays in the
// pool's `held` and is counted by the supply.
//
// A credit does not reach the index at once: it streams in linearly over
// royalty_stream_blocks, so a holder earns in proportion to the blocks it
// held the shares, and buying just before a credit and selling just after
// earns almost nothing.

// MaxIndexBytes bounds a stored index (2^256): the index grows by at most
// the credited amount × 2^64 per share, and all money is below 2^55.
const MaxIndexBytes = 32

// ErrIndex marks a stored index that cannot be right: longer than
// MaxIndexBytes, or a holding ahead of its pool.
var ErrIndex = errors.New("royalty index corrupt")

func indexOf(b []byte) (*big.Int, error) {
	if len(b) > MaxIndexBytes {
		return nil, fmt.Errorf("%w: %d bytes", ErrIndex, len(b))
	}
	return new(big.Int).SetBytes(b), nil
}

// advance releases the pool's stream up to height into the index. A pool
// with no shares (a dataset before its first contributor) pauses its
// stream instead, so nothing is released to nobody.
func (p *SharePool) advance(height uint64) error {
	if height <= p.StreamFrom {
		return nil
	}
	if p.Shares == 0 {
		if p.StreamEnd > p.StreamFrom {
			end, err := agr.Add(p.StreamEnd, height-p.StreamFrom)
			if err != nil {
				return fmt.Errorf("royalty stream end: %w", err)
			}
			p.StreamEnd = end
		}
		p.StreamFrom = height
		return nil
	}
	release := p.Streaming
	if height < p.StreamEnd {
		var err error
		// height−from < end−from here, so release < streaming.
		if release, err = agr.MulDiv(p.Streaming, height-p.StreamFrom, p.StreamEnd-p.StreamFrom); err != nil {
			return fmt.Errorf("royalty stream: %w", err)
		}
	}
	p.StreamFrom = height
	if release == 0 {
		return nil
	}
	p.Streaming -= release
	idx, err := indexOf(p.Index)
	if err != nil {
		return err
	}
	num := new(big.Int).Lsh(new(big.Int).SetUint64(release), 64)
	num.Add(num, new(big.Int).SetUint64(p.Carry))
	step, rem := new(big.Int).QuoRem(num, new(big.Int).SetUint64(p.Shares), new(big.Int))
	idx.Add(idx, step)
	if len(idx.Bytes()) > MaxIndexBytes {
		return fmt.Errorf("%w: index overflows %d bytes", agr.ErrOverflow, MaxIndexBytes)
	}
	p.Index, p.Carry = idx.Bytes(), rem.Uint64() // rem < shares ≤ 2^64−1
	return nil
}

// Advance brings the pool to height: the part of its stream due by then is
// released to the index. Every change of a pool's shares or holdings
// advances it first, so earnings up to that block follow the old shares.
func (p *SharePool) Advance(height uint64) error { return p.advance(height) }

// Credit adds amount of royalty at height. It streams in over streamBlocks
// (0 counts as 1) from height; what was still streaming is spread over the
// same new window.
func (p *SharePool) Credit(height, amount, streamBlocks uint64) error {
	if err := p.advance(height); err != nil {
		return err
	}
	var err error
	if p.Streaming, err = agr.Add(p.Streaming, amount); err != nil {
		return fmt.Errorf("royalty streaming: %w", err)
	}
	if p.Held, err = agr.Add(p.Held, amount); err != nil {
		return fmt.Errorf("royalty held: %w", err)
	}
	p.Earned = agr.SaturatingAdd(p.Earned, amount) // a statistic, never spent
	if p.StreamEnd, err = agr.Add(height, max(streamBlocks, 1)); err != nil {
		return fmt.Errorf("royalty stream end: %w", err)
	}
	p.StreamFrom = height
	return nil
}

// Settle moves what h earned since its last settlement into h.Owed and
// brings it to the pool's index. The pool must have been advanced to the
// current height.
func (p *SharePool) Settle(h *ShareHolding) error {
	pi, err := indexOf(p.Index)
	if err != nil {
		return err
	}
	hi, err := indexOf(h.Index)
	if err != nil {
		return err
	}
	d := new(big.Int).Sub(pi, hi)
	if d.Sign() < 0 {
		return fmt.Errorf("%w: holding index ahead of its pool", ErrIndex)
	}
	d.Mul(d, new(big.Int).SetUint64(h.Shares))
	d.Rsh(d, 64)
	if !d.IsUint64() {
		return fmt.Errorf("%w: royalty owed exceeds 64 bits", agr.ErrOverflow)
	}
	if h.Owed, err = agr.Add(h.Owed, d.Uint64()); err != nil {
		return fmt.Errorf("royalty owed: %w", err)
	}
	h.Index = p.Index
	return nil
}

// Claimable is what h could claim at height: its owed amount plus its
// earnings since it last settled, with the pool's stream advanced to
// height. Neither record is changed.
func Claimable(p *SharePool, h *ShareHolding, height uint64) (uint64, error) {
	pc, hc := proto.Clone(p).(*SharePool), proto.Clone(h).(*ShareHolding)
	if err := pc.advance(height); err != nil {
		return 0, err
	}
	if err := pc.Settle(hc); err != nil {
		return 0, err
	}
	return hc.Owed, nil
}

// OfferingCost is what n shares cost in an offering that has sold `sold`:
// the k-th share (from 0) costs price + k × step, so n shares cost
// n × price + step × (n × sold + n(n−1)/2). Overflow is an error, never a wrap.
func OfferingCost(price, step, sold, n uint64) (uint64, error) {
	t := new(big.Int).Mul(new(big.Int).SetUint64(n), new(big.Int).SetUint64(sold))
	tri := new(big.Int).SetUint64(n)
	if n > 0 {
		tri.Mul(tri, new(big.Int).SetUint64(n-1))
		tri.Rsh(tri, 1)
	}
	t.Add(t, tri)
	t.Mul(t, new(big.Int).SetUint64(step))
	t.Add(t, new(big.Int).Mul(new(big.Int).SetUint64(n), new(big.Int).SetUint64(price)))
	if !t.IsUint64() {
		return 0, fmt.Errorf("%w: %d shares at %d + %d per share sold", agr.ErrOverflow, n, price, step)
	}
	return t.Uint64(), nil
}

// Royalty limits, checked when a message is decoded.
const (
	MaxModelURLs     = 8
	MaxURLBytes      = 512
	MaxNameBytes     = 128
	MaxLicenseBytes  = 64
	MaxCitations     = 16
	MaxContributors  = 64
	MaxProofHashes   = 64 // a tree of up to 2^64 leaves
	MaxOfferPurchase = 256
)

// ModelIDBytes decodes a model id (sha256 hex of the GGUF file).
func ModelIDBytes(id string) ([]byte, error) {
	b, err := hex.DecodeString(id)
	if err != nil || len(b) != 32 || hex.EncodeToString(b) != id {
		return nil, fmt.Errorf("model id %q is not a lowercase sha256 in hex", id)
	}
	return b, nil
}

// ParseDatasetRoot decodes a dataset id (its Merkle root in hex).
func ParseDatasetRoot(s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("dataset root %q is not 32 bytes in hex", s)
	}
	return b, nil
}

// State keys of the royalty module, 0x40–0x4f.
const (
	prefixModel          = 0x40 // model id (32 bytes) → Model
	prefixModelHolding   = 0x41 // model id, holder → ShareHolding
	prefixOffering       = 0x42 // model id → Offering
	prefixModelSeq       = 0x43 // seq (uint64 BE) → model id
	prefixRoyaltyReg     = 0x44 // → RoyaltyRegistry
	prefixDataset        = 0x45 // root → Dataset
	prefixDatasetHolding = 0x46 // root, contributor → ShareHolding
	prefixDatasetSeq     = 0x47 // seq → root
	prefixDataLeaf       = 0x48 // root, leaf index → marker: credited
	prefixOfferingQueue  = 0x49 // height → ModelIDList closing then
)

// ModelKey is the state key of a model record; id must be valid (ModelIDBytes).
func ModelKey(id []byte) []byte { return append([]byte{prefixModel}, id...) }

// ModelHoldingKey is the state key of holder's shares in a model.
func ModelHoldingKey(id []byte, holder address.Address) []byte {
	return append(append([]byte{prefixModelHolding}, id...), holder[:]...)
}

// OfferingKey is the state key of a model's open offering.
func OfferingKey(id []byte) []byte { return append([]byte{prefixOffering}, id...) }

// ModelSeqKey maps a registration number to its model id.
func ModelSeqKey(seq uint64) []byte { return be64([]byte{prefixModelSeq}, seq) }

// RoyaltyRegistryKey is the state key of the model and dataset counters.
func RoyaltyRegistryKey() []byte { return []byte{prefixRoyaltyReg} }

// DatasetKey is the state key of a dataset record.
func DatasetKey(root []byte) []byte { return append([]byte{prefixDataset}, root...) }

// DatasetHoldingKey is the state key of a contributor's weight in a dataset.
func DatasetHoldingKey(root []byte, holder address.Address) []byte {
	return append(append([]byte{prefixDatasetHolding}, root...), holder[:]...)
}

// DatasetSeqKey maps a registration number to its dataset root.
func DatasetSeqKey(seq uint64) []byte { return be64([]byte{prefixDatasetSeq}, seq) }

// DataLeafKey marks a dataset leaf as credited.
func DataLeafKey(root []byte, index uint64) []byte {
	return be64(append([]byte{prefixDataLeaf}, root...), index)
}

// OfferingQueueKey lists the offerings that close at the end of height.
func OfferingQueueKey(height uint64) []byte { return be64([]byte{prefixOfferingQueue}, height) }

func be64(b []byte, v uint64) []byte {
	return append(b, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}
