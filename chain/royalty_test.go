package chain

import (
	"crypto/sha256"
	"fmt"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"
	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/chain/royalty"
	"github.com/agoranet/agora/chain/state"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/dataset"
)

// checkRoyaltyPools extends the supply invariant to the royalty module:
// the pools hold exactly supply.royalty_held, open offerings exactly
// supply.offering_escrow, and no pool promises its known holders more than
// it holds.
func (w *world) checkRoyaltyPools(kv state.KVReader, s *tx.Supply) {
	w.t.Helper()
	models, err := royalty.Models(kv)
	if err != nil {
		w.t.Fatal(err)
	}
	datasets, err := royalty.Datasets(kv)
	if err != nil {
		w.t.Fatal(err)
	}
	var held, escrow uint64
	check := func(what string, p *tx.SharePool, key func(a [20]byte) []byte) {
		held += p.Held
		var owed uint64
		for a := range w.known {
			h := &tx.ShareHolding{}
			if _, err := royaltyGet(kv, key(a), h); err != nil {
				w.t.Fatal(err)
			}
			c, err := tx.Claimable(p, h, uint64(w.height))
			if err != nil {
				w.t.Fatalf("height %d: %s: %v", w.height, what, err)
			}
			owed += c
		}
		if owed > p.Held {
			w.t.Fatalf("height %d: %s owes its holders %d but holds %d", w.height, what, owed, p.Held)
		}
	}
	for _, m := range models {
		id, _ := tx.ModelIDBytes(m.Id)
		check("model "+m.Id[:8], m.Pool, func(a [20]byte) []byte { return tx.ModelHoldingKey(id, a) })
		o := &tx.Offering{}
		if ok, err := royaltyGet(kv, tx.OfferingKey(id), o); err != nil {
			w.t.Fatal(err)
		} else if ok {
			escrow += o.Raised
		}
	}
	for _, d := range datasets {
		check(fmt.Sprintf("dataset %x", d.Root[:4]), d.Pool, func(a [20]byte) []byte { return tx.DatasetHoldingKey(d.Root, a) })
	}
	if held != s.RoyaltyHeld || escrow != s.OfferingEscrow {
		w.t.Fatalf("height %d: pools hold %d and offerings %d, supply says %d and %d", w.height, held, escrow, s.RoyaltyHeld, s.OfferingEscrow)
	}
}

func royaltyGet(kv state.KVReader, key []byte, m proto.Message) (bool, error) {
	raw, err := kv.Get(key)
	if err != nil || raw == nil {
		return false, err
	}
	return true, proto.Unmarshal(raw, m)
}

// royaltyCast is the usual cast plus a dataset's two contributors, a
// second shareholder and a paying user with its gateway.
type royaltyCast struct {
	cast
	contrib1, contrib2, holder, payer, gateway testKey
}

func newRoyaltyCast() royaltyCast {
	return royaltyCast{cast: newCast(), contrib1: newKey(60), contrib2: newKey(61), holder: newKey(62), payer: newKey(50), gateway: newKey(51)}
}

func (c royaltyCast) keys() []testKey {
	return []testKey{c.owner, c.valCold, c.minerCold, c.valHot, c.contrib1, c.contrib2, c.holder, c.payer, c.gateway}
}

// testDataset is a two-file manifest contributed by two keys with weights 1 and 3.
func testDataset(a, b testKey) ([]*tx.DataLeaf, [][32]byte, [32]byte) {
	var leaves []*tx.DataLeaf
	var hashes [][32]byte
	for i, k := range []testKey{a, b} {
		f := sha256.Sum256([]byte(fmt.Sprintf("file %d", i)))
		l := &tx.DataLeaf{FileSha256: f[:], Size: 100, Contributor: k.addr[:], Weight: uint64(1 + 2*i)}
		leaves = append(leaves, l)
		hashes = append(hashes, dataset.LeafHash(l))
	}
	root, _ := dataset.Root(hashes)
	return leaves, hashes, root
}

func contributeMsg(leaves []*tx.DataLeaf, hashes [][32]byte, root [32]byte, i int) *tx.Msg {
	p, _ := dataset.Prove(hashes, i)
	proof := make([][]byte, len(p))
	for j := range p {
		proof[j] = p[j][:]
	}
	return tx.DataContribute(root[:], leaves[i], uint64(i), proof)
}

const testModelID = "00000000000000000000000000000000000000000000000000000000000000aa"

// royaltyWorld opens subnet 1 pinned to a registered model (royalty 20%,
// of which 25% to a dataset with two contributors by proof), with streams
// of stream blocks.
func royaltyWorld(t *testing.T, c royaltyCast, shares, stream uint64) (*world, [32]byte) {
	t.Helper()
	w := newWorldWith(t, fastSubnet(), func(p *GenesisParams) { p.RoyaltyStreamBlocks = stream }, c.keys()...)
	w.openSubnet(c.cast, 1_000_000_000)
	w.mustSend(c.valHot, setWeightsMsg(1, []uint32{2}, []uint32{65535}))
	leaves, hashes, root := testDataset(c.contrib1, c.contrib2)
	w.mustSend(c.owner, tx.DataRegister(&tx.MsgDataRegister{Root: root[:], Name: "two files", Files: 2, Size: 200, License: "cc-by-4.0"}))
	w.mustSend(c.payer, contributeMsg(leaves, hashes, root, 0), contributeMsg(leaves, hashes, root, 1))
	w.mustSend(c.owner, tx.ModelRegister(&tx.MsgModelRegister{ModelId: testModelID, Name: "tiny", License: "apache-2.0",
		RoyaltyBps: 2000, Shares: shares, DataBps: 2500, Citations: []*tx.Citation{{Dataset: root[:], Weight: 1}}}))
	p := fastSubnet()
	p.ModelId = testModelID
	w.mustSend(c.owner, tx.SubnetSetParams(1, p))
	return w, root
}

// pay settles amount of channel revenue on subnet 1 and returns the
// royalty event of the epoch that splits it.
func (w *world) pay(c royaltyCast, channel, amount uint64) abci.Event {
	w.t.Helper()
	w.mustSend(c.payer, openMsg(c.gateway, amount, uint64(w.height)+100))
	w.mustSend(c.gateway, claimMsg(tx.SignVoucher(c.payer.priv, testChain, channel, amount)))
	for range 20 {
		w.step()
		if ev, ok := w.lastEvent("royalty"); ok {
			return ev
		}
	}
	w.t.Fatal("no royalty event within 20 blocks")
	return abci.Event{}
}

// lastEvent finds an event of the last block's end by type.
func (w *world) lastEvent(typ string) (abci.Event, bool) {
	for _, e := range w.events {
		if e.Type == typ {
			return e, true
		}
	}
	return abci.Event{}, false
}

func attr(e abci.Event, key string) uint64 {
	for _, a := range e.Attributes {
		if a.Key == key {
			var v uint64
			fmt.Sscan(a.Value, &v)
			return v
		}
	}
	return 0
}

func (w *world) model() *tx.Model {
	w.t.Helper()
	m, _, err := royalty.GetModel(w.store.Committed(), testModelID)
	if err != nil {
		w.t.Fatal(err)
	}
	return m
}

func (w *world) dataset(root [32]byte) *tx.Dataset {
	w.t.Helper()
	d, err := royalty.GetDataset(w.store.Committed(), root[:])
	if err != nil {
		w.t.Fatal(err)
	}
	return d
}

// claimable is what k could claim from the test model (dataset root nil)
// or a dataset at the current height.
func (w *world) claimable(k testKey, root []byte) uint64 {
	w.t.Helper()
	kv := w.store.Committed()
	var pool *tx.SharePool
	var key []byte
	if root == nil {
		id, _ := tx.ModelIDBytes(testModelID)
		pool, key = w.model().Pool, tx.ModelHoldingKey(id, k.addr)
	} else {
		var r [32]byte
		copy(r[:], root)
		pool, key = w.dataset(r).Pool, tx.DatasetHoldingKey(root, k.addr)
	}
	h := &tx.ShareHolding{}
	if _, err := royaltyGet(kv, key, h); err != nil {
		w.t.Fatal(err)
	}
	c, err := tx.Claimable(pool, h, uint64(w.height))
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

// TestRoyaltyFlowsFromRevenueToHoldersAndContributors: 10 AGR of settled
// revenue pays 20% royalty at the epoch — 25% of it to the dataset, split
// 1:3 between its contributors by their proved leaves, the rest to the
// model's shareholders 3:1 — and 18% of the remaining 80% to the subnet
// owner. Each claim pays exactly what was claimable, and the supply
// reconciles after every block.
func TestRoyaltyFlowsFromRevenueToHoldersAndContributors(t *testing.T) {
	c := newRoyaltyCast()
	w, root := royaltyWorld(t, c, 1_000_000, 4)
	w.mustSend(c.owner, tx.ModelSharesTransfer(testModelID, c.holder.addr, 250_000))
	const revenue = 10_000_000_000
	ownerBefore := w.balance(c.owner)
	ev := w.pay(c, 1, revenue)
	if got, data := attr(ev, "amount"), attr(ev, "data"); got != revenue/5 || data != revenue/20 {
		t.Fatalf("royalty %d (data %d), want %d (data %d)", got, data, revenue/5, revenue/20)
	}
	// The owner's cut is 18% of what the royalty leaves (it also paid two fees).
	if gain := w.balance(c.owner) + 2*fee - ownerBefore; gain < revenue*8/10*18/100 {
		t.Fatalf("subnet owner gained %d, want at least 18%% of 80%% of the revenue", gain)
	}
	w.steps(5) // the stream of 4 blocks has fully released
	m, d := w.model(), w.dataset(root)
	if m.Pool.Earned != revenue*15/100 || d.Pool.Earned != revenue/20 || m.DataPaid != revenue/20 || d.Pool.Shares != 4 || d.Contributors != 2 {
		t.Fatalf("model earned %d (data paid %d), dataset earned %d with weight %d and %d contributors",
			m.Pool.Earned, m.DataPaid, d.Pool.Earned, d.Pool.Shares, d.Contributors)
	}
	for _, tc := range []struct {
		name string
		k    testKey
		root []byte
		want uint64
	}{
		{"owner, 75% of the model", c.owner, nil, revenue * 15 / 100 * 3 / 4},
		{"shareholder, 25% of the model", c.holder, nil, revenue * 15 / 100 / 4},
		{"contributor of weight 1", c.contrib1, root[:], revenue / 20 / 4},
		{"contributor of weight 3", c.contrib2, root[:], revenue / 20 * 3 / 4},
	} {
		got := w.claimable(tc.k, tc.root)
		// The index rounds down: at most one unit short, never over.
		if got > tc.want || got+1 < tc.want {
			t.Errorf("%s: claimable %d, want %d", tc.name, got, tc.want)
		}
		msg := tx.ModelClaim(testModelID)
		if tc.root != nil {
			msg = tx.DataClaim(tc.root)
		}
		before := w.balance(tc.k)
		r := w.send(tc.k, msg)
		// The subnet owner also earns its cut meanwhile; the others earn nothing else.
		if paid := w.balance(tc.k) + fee - before; tc.k.addr != c.owner.addr && paid != got {
			t.Errorf("%s: balance grew by %d, claimable was %d", tc.name, paid, got)
		}
		if r.Code != tx.CodeOK || len(r.Events) != 2 || r.Events[1].Type != "royalty_claim" {
			t.Fatalf("%s: claim code %d (%s), events %v", tc.name, r.Code, r.Log, r.Events)
		}
		// The claim runs one block later, when the stream is long released.
		if paid := attr(r.Events[1], "amount"); paid != got {
			t.Errorf("%s: claim paid %d, claimable was %d", tc.name, paid, got)
		}
		if r := w.send(tc.k, msg); r.Code != tx.CodeInvalid {
			t.Errorf("%s: a second claim: code %d (%s), want Invalid", tc.name, r.Code, r.Log)
		}
	}
	// Whatever rounding left stays in the pools, counted by the supply.
	if m, d := w.model(), w.dataset(root); m.Pool.Held+d.Pool.Held > 2 || m.Pool.Claimed+m.Pool.Held != m.Pool.Earned {
		t.Fatalf("dust: model holds %d, dataset %d; model claimed %d of %d", m.Pool.Held, d.Pool.Held, m.Pool.Claimed, m.Pool.Earned)
	}
}

// TestMidEpochTransferSplitsByTimeHeld: royalty streams into the index
// over the stream window, so a holder that sells halfway through it keeps
// exactly the half released while it held, and the buyer gets the rest.
func TestMidEpochTransferSplitsByTimeHeld(t *testing.T) {
	c := newRoyaltyCast()
	const stream = 10
	// 1024 shares: the index step is exact in Q64.64, so the split is to the unit.
	w, _ := royaltyWorld(t, c, 1024, stream)
	ev := w.pay(c, 1, 10_000_000_000)
	credited := uint64(w.height) // the epoch's block
	modelPart := attr(ev, "amount") - attr(ev, "data")
	w.steps(4)
	// The transfer executes in block credited+5: half the window.
	w.mustSend(c.owner, tx.ModelSharesTransfer(testModelID, c.holder.addr, 1024))
	if held := uint64(w.height) - credited; held != 5 {
		t.Fatalf("transfer %d blocks after the credit, the test expects 5", held)
	}
	w.steps(stream)
	seller, buyer := w.claimable(c.owner, nil), w.claimable(c.holder, nil)
	if seller != modelPart/2 || buyer != modelPart/2 {
		t.Fatalf("seller %d, buyer %d of %d: want exactly half each", seller, buyer, modelPart)
	}
}

// TestJustInTimeBuyerEarnsLittle: shares bought in the epoch's block and
// sold one block later earn only that block's tenth of the stream — the
// attack of holding shares only across the credit does not pay.
func TestJustInTimeBuyerEarnsLittle(t *testing.T) {
	c := newRoyaltyCast()
	const stream = 10
	w, _ := royaltyWorld(t, c, 1024, stream)
	w.mustSend(c.owner, tx.ModelSharesTransfer(testModelID, c.holder.addr, 512))
	ev := w.pay(c, 1, 10_000_000_000)
	modelPart := attr(ev, "amount") - attr(ev, "data")
	w.mustSend(c.holder, tx.ModelSharesTransfer(testModelID, c.owner.addr, 512))
	w.steps(stream)
	if got, want := w.claimable(c.holder, nil), modelPart/2/stream; got != want {
		t.Fatalf("just-in-time holder of half the shares earned %d, want one block's share %d", got, want)
	}
}
