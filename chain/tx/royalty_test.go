package tx

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/agoranet/agora/agr"
)

// TestSharePoolNeverPromisesMoreThanCredited streams awkward amounts into
// pools of awkward sizes and settles holders at awkward heights: the sum
// of what holders are owed never exceeds what was credited, and falls
// short by less than one unit per holder settlement plus the carry.
func TestSharePoolNeverPromisesMoreThanCredited(t *testing.T) {
	for _, tc := range []struct {
		shares  []uint64
		credits []uint64
		stream  uint64
	}{
		{[]uint64{1, 1, 1}, []uint64{10, 7, 1}, 3},
		{[]uint64{333, 333, 334}, []uint64{1_000_000_007, 3}, 7},
		{[]uint64{math.MaxUint64 / 4, math.MaxUint64/4 + 3}, []uint64{21_000_000 * agr.Unit}, 1},
		{[]uint64{1}, []uint64{math.MaxUint64 / 2}, 100},
	} {
		p := &SharePool{}
		holders := make([]*ShareHolding, len(tc.shares))
		for i, s := range tc.shares {
			p.Shares += s
			holders[i] = &ShareHolding{Shares: s}
		}
		var credited, height uint64
		for _, c := range tc.credits {
			height += 2
			if err := p.Credit(height, c, tc.stream); err != nil {
				t.Fatal(err)
			}
			credited += c
			for i, h := range holders {
				height++
				if err := p.Advance(height + uint64(i)); err != nil {
					t.Fatal(err)
				}
				if err := p.Settle(h); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := p.Advance(height + tc.stream + 10); err != nil {
			t.Fatal(err)
		}
		var owed uint64
		for _, h := range holders {
			if err := p.Settle(h); err != nil {
				t.Fatal(err)
			}
			owed += h.Owed
		}
		if p.Streaming != 0 || owed > credited || p.Held != credited {
			t.Fatalf("%v: owed %d of %d credited (streaming %d, held %d)", tc.shares, owed, credited, p.Streaming, p.Held)
		}
		if settlements := uint64(len(holders) * (len(tc.credits) + 1)); credited-owed > settlements {
			t.Fatalf("%v: dust %d above one unit per settlement (%d)", tc.shares, credited-owed, settlements)
		}
	}
}

// TestSharePoolPausesWithoutHolders: a dataset credited before its first
// contributor keeps the royalty streaming for whoever joins, instead of
// releasing it to nobody.
func TestSharePoolPausesWithoutHolders(t *testing.T) {
	p := &SharePool{}
	if err := p.Credit(10, 1000, 10); err != nil {
		t.Fatal(err)
	}
	if err := p.Advance(50); err != nil {
		t.Fatal(err)
	}
	if p.Streaming != 1000 || p.StreamEnd != 60 {
		t.Fatalf("an empty pool released royalty: streaming %d, ends %d", p.Streaming, p.StreamEnd)
	}
	h := &ShareHolding{}
	if err := p.Settle(h); err != nil {
		t.Fatal(err)
	}
	h.Shares, p.Shares = 5, 5
	got, err := Claimable(p, h, 60)
	if err != nil || got != 1000 {
		t.Fatalf("first contributor can claim %d (%v), want the whole 1000", got, err)
	}
	if p.Streaming != 1000 {
		t.Fatal("Claimable changed the pool")
	}
}

func TestSettleRefusesCorruptIndex(t *testing.T) {
	p := &SharePool{Shares: 1, Index: []byte{1}}
	if err := p.Settle(&ShareHolding{Shares: 1, Index: []byte{2}}); !errors.Is(err, ErrIndex) {
		t.Fatalf("a holding ahead of its pool: %v", err)
	}
	if err := p.Settle(&ShareHolding{Shares: 1, Index: make([]byte, 33)}); !errors.Is(err, ErrIndex) {
		t.Fatalf("an oversized index: %v", err)
	}
}

func TestOfferingCost(t *testing.T) {
	for _, tc := range []struct{ price, step, sold, n, want uint64 }{
		{10, 0, 0, 5, 50},
		{10, 1, 0, 3, 10 + 11 + 12},
		{10, 1, 2, 3, 12 + 13 + 14},
		{0, 5, 1, 1, 5},
		{7, 3, 0, 0, 0},
	} {
		if got, err := OfferingCost(tc.price, tc.step, tc.sold, tc.n); err != nil || got != tc.want {
			t.Errorf("OfferingCost(%d,%d,%d,%d) = %d, %v; want %d", tc.price, tc.step, tc.sold, tc.n, got, err, tc.want)
		}
	}
	if _, err := OfferingCost(math.MaxUint64, 0, 0, 2); !errors.Is(err, agr.ErrOverflow) {
		t.Fatalf("overflowing cost: %v", err)
	}
	if _, err := OfferingCost(0, math.MaxUint64, math.MaxUint64, math.MaxUint64); !errors.Is(err, agr.ErrOverflow) {
		t.Fatalf("overflowing curve: %v", err)
	}
}

func TestRoyaltyMsgValidation(t *testing.T) {
	id := strings.Repeat("ab", 32)
	root := make([]byte, 32)
	for _, tc := range []struct {
		name string
		msg  *Msg
	}{
		{"uppercase model id", ModelClaim(strings.ToUpper(id))},
		{"short model id", ModelClaim(id[:62])},
		{"no shares", ModelRegister(&MsgModelRegister{ModelId: id})},
		{"royalty above 100%", ModelRegister(&MsgModelRegister{ModelId: id, Shares: 1, RoyaltyBps: 10_001})},
		{"data share without citations", ModelRegister(&MsgModelRegister{ModelId: id, Shares: 1, DataBps: 1})},
		{"a citation repeated", ModelRegister(&MsgModelRegister{ModelId: id, Shares: 1, Citations: []*Citation{{Dataset: root, Weight: 1}, {Dataset: root, Weight: 2}}})},
		{"a zero-weight citation", ModelRegister(&MsgModelRegister{ModelId: id, Shares: 1, Citations: []*Citation{{Dataset: root}}})},
		{"too many URLs", ModelUpdate(id, "", "", make([]string, MaxModelURLs+1))},
		{"an empty URL", ModelUpdate(id, "", "", []string{""})},
		{"a long name", ModelUpdate(id, strings.Repeat("n", MaxNameBytes+1), "", nil)},
		{"a transfer of nothing", ModelSharesTransfer(id, [20]byte{1}, 0)},
		{"an offer of nothing", ModelOffer(&MsgModelOffer{ModelId: id, EndHeight: 5})},
		{"a minimum above the offer", ModelOffer(&MsgModelOffer{ModelId: id, Shares: 1, MinShares: 2, EndHeight: 5})},
		{"buying nothing", ModelBuy(id, 0, 0)},
		{"a dataset with no files", DataRegister(&MsgDataRegister{Root: root})},
		{"a short root", DataRegister(&MsgDataRegister{Root: root[:31], Files: 1})},
		{"a zero-weight contributor", DataRegister(&MsgDataRegister{Root: root, Files: 1, Contributors: []*Contributor{{Address: make([]byte, 20)}}})},
		{"a leaf without contributor", DataContribute(root, &DataLeaf{FileSha256: root, Weight: 1}, 0, nil)},
		{"a short proof hash", DataContribute(root, &DataLeaf{FileSha256: root, Contributor: make([]byte, 20), Weight: 1}, 0, [][]byte{{1}})},
		{"an overlong proof", DataContribute(root, &DataLeaf{FileSha256: root, Contributor: make([]byte, 20), Weight: 1}, 0, make([][]byte, MaxProofHashes+1))},
		{"a short claim root", DataClaim(root[:5])},
	} {
		if err := validateMsg(tc.msg); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}
