package chain

import (
	"crypto/sha256"
	"fmt"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"
	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/chain/bank"
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
			if _, err := state.GetRecord(kv, key(a), h); err != nil {
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
		if ok, err := state.GetRecord(kv, tx.OfferingKey(id), o); err != nil {
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
	if _, err := state.GetRecord(kv, key, h); err != nil {
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

func (w *world) holding(k testKey) *tx.ShareHolding {
	w.t.Helper()
	id, _ := tx.ModelIDBytes(testModelID)
	h := &tx.ShareHolding{}
	if _, err := state.GetRecord(w.store.Committed(), tx.ModelHoldingKey(id, k.addr), h); err != nil {
		w.t.Fatal(err)
	}
	return h
}

func (w *world) offering() (*tx.Offering, bool) {
	w.t.Helper()
	id, _ := tx.ModelIDBytes(testModelID)
	o := &tx.Offering{}
	ok, err := state.GetRecord(w.store.Committed(), tx.OfferingKey(id), o)
	if err != nil {
		w.t.Fatal(err)
	}
	return o, ok
}

func offerMsg(shares, price, step, minShares, end uint64) *tx.Msg {
	return tx.ModelOffer(&tx.MsgModelOffer{ModelId: testModelID, Shares: shares, Price: price, PriceStep: step, MinShares: minShares, EndHeight: end})
}

// TestOfferingSellsOut: 100 shares on a rising curve; two buyers pay
// exactly the curve, the refusals (over max_cost, the seller itself, more
// than is left, shares on offer moved elsewhere) change nothing, and the
// purchase that sells out closes the offering at once: buyers hold their
// shares, the owner has the proceeds, nothing stays escrowed.
func TestOfferingSellsOut(t *testing.T) {
	c := newRoyaltyCast()
	w, _ := royaltyWorld(t, c, 1000, 4)
	const price, step = 1_000_000, 10_000
	w.mustSend(c.owner, offerMsg(100, price, step, 50, uint64(w.height)+50))
	if r := w.send(c.owner, tx.ModelSharesTransfer(testModelID, c.holder.addr, 901)); r.Code != tx.CodeInsufficientFunds {
		t.Fatalf("moving shares that are on offer: code %d (%s)", r.Code, r.Log)
	}
	cost40, _ := tx.OfferingCost(price, step, 0, 40)
	if want := uint64(40*price + step*(40*39/2)); cost40 != want {
		t.Fatalf("curve cost %d, want %d", cost40, want)
	}
	for _, bad := range []struct {
		name string
		k    testKey
		msg  *tx.Msg
		code uint32
	}{
		{"above max_cost", c.holder, tx.ModelBuy(testModelID, 40, cost40-1), tx.CodePriceMoved},
		{"the seller itself", c.owner, tx.ModelBuy(testModelID, 1, 0), tx.CodeInvalid},
		{"more than offered", c.holder, tx.ModelBuy(testModelID, 101, 0), tx.CodeInvalid},
		{"a second offering", c.owner, offerMsg(10, 1, 0, 0, uint64(w.height)+60), tx.CodeExists},
	} {
		before := w.balance(bad.k)
		if r := w.send(bad.k, bad.msg); r.Code != bad.code {
			t.Fatalf("%s: code %d (%s), want %d", bad.name, r.Code, r.Log, bad.code)
		}
		// (The seller is also the subnet owner, whose cut may arrive meanwhile.)
		if w.balance(bad.k)+fee < before {
			t.Fatalf("%s: a refused purchase cost more than its fee", bad.name)
		}
	}
	holderBefore, ownerBefore := w.balance(c.holder), w.balance(c.owner)
	w.mustSend(c.holder, tx.ModelBuy(testModelID, 40, cost40))
	if got := holderBefore - w.balance(c.holder) - fee; got != cost40 {
		t.Fatalf("buyer paid %d, want %d", got, cost40)
	}
	if w.holding(c.holder).Shares != 0 || w.supply().OfferingEscrow != cost40 {
		t.Fatal("a purchase delivered before the offering closed, or was not escrowed")
	}
	cost60, _ := tx.OfferingCost(price, step, 40, 60)
	buyer2 := c.contrib1
	w.mustSend(buyer2, tx.ModelBuy(testModelID, 60, 0))
	if _, open := w.offering(); open {
		t.Fatal("a sold-out offering is still open")
	}
	if h := w.holding(c.holder); h.Shares != 40 {
		t.Fatalf("buyer 1 holds %d shares, want 40", h.Shares)
	}
	if h := w.holding(buyer2); h.Shares != 60 {
		t.Fatalf("buyer 2 holds %d shares, want 60", h.Shares)
	}
	if h := w.holding(c.owner); h.Shares != 900 || h.Locked != 0 {
		t.Fatalf("owner holds %d shares (%d locked), want 900 free", h.Shares, h.Locked)
	}
	// The owner also earns its subnet's cut meanwhile: at least the proceeds, less its fees.
	if gain := w.balance(c.owner) + 4*fee - ownerBefore; gain < cost40+cost60 {
		t.Fatalf("owner gained %d, want the proceeds %d", gain, cost40+cost60)
	}
	if s := w.supply(); s.OfferingEscrow != 0 {
		t.Fatalf("%d still escrowed after the close", s.OfferingEscrow)
	}
}

// TestOfferingExpiresWithRefunds: an offering that sells below its
// minimum by its end height refunds every buyer exactly what it paid at
// the end of that block, delivers no shares and unlocks the owner's.
// Buying after the end is refused.
func TestOfferingExpiresWithRefunds(t *testing.T) {
	c := newRoyaltyCast()
	w, _ := royaltyWorld(t, c, 1000, 4)
	end := uint64(w.height) + 6
	w.mustSend(c.owner, offerMsg(100, 3_000_000, 7, 50, end))
	b1, b2 := c.holder, c.contrib1
	start1, start2 := w.balance(b1), w.balance(b2)
	w.mustSend(b1, tx.ModelBuy(testModelID, 10, 0))
	w.mustSend(b2, tx.ModelBuy(testModelID, 20, 0))
	w.mustSend(b1, tx.ModelBuy(testModelID, 5, 0)) // a buyer adding to its purchase
	o, open := w.offering()
	if !open || o.Sold != 35 || len(o.Purchases) != 2 {
		t.Fatalf("offering %+v open=%v", o, open)
	}
	for uint64(w.height) < end {
		w.step()
	}
	if _, open := w.offering(); open {
		t.Fatal("the offering is still open after its end height")
	}
	if ev, ok := w.lastEvent("offering_close"); !ok || ev.Attributes[1].Value != "refunded" {
		t.Fatalf("close event %v", ev)
	}
	if got := start1 - w.balance(b1); got != 2*fee {
		t.Fatalf("buyer 1 is out %d after the refund, want only its 2 fees", got)
	}
	if got := start2 - w.balance(b2); got != fee {
		t.Fatalf("buyer 2 is out %d after the refund, want only its fee", got)
	}
	if w.holding(b1).Shares != 0 || w.holding(b2).Shares != 0 {
		t.Fatal("a refunded buyer holds shares")
	}
	if h := w.holding(c.owner); h.Shares != 1000 || h.Locked != 0 {
		t.Fatalf("owner holds %d (%d locked), want all 1000 unlocked", h.Shares, h.Locked)
	}
	if r := w.send(b1, tx.ModelBuy(testModelID, 1, 0)); r.Code != tx.CodeNotFound {
		t.Fatalf("buying after the end: code %d (%s)", r.Code, r.Log)
	}
	// Unsold shares are free again: the owner can transfer them.
	w.mustSend(c.owner, tx.ModelSharesTransfer(testModelID, c.holder.addr, 1000))
}

// TestOfferingEndsSold: an offering past its minimum but not sold out
// delivers at its end height and returns the unsold shares to the owner.
func TestOfferingEndsSold(t *testing.T) {
	c := newRoyaltyCast()
	w, _ := royaltyWorld(t, c, 1000, 4)
	end := uint64(w.height) + 4
	w.mustSend(c.owner, offerMsg(100, 1_000, 0, 10, end))
	w.mustSend(c.holder, tx.ModelBuy(testModelID, 30, 30_000))
	for uint64(w.height) < end {
		w.step()
	}
	if h := w.holding(c.holder); h.Shares != 30 {
		t.Fatalf("buyer holds %d, want 30", h.Shares)
	}
	if h := w.holding(c.owner); h.Shares != 970 || h.Locked != 0 {
		t.Fatalf("owner holds %d (%d locked), want 970 unlocked", h.Shares, h.Locked)
	}
}

// TestDataContributeProofs: a proved leaf credits its named contributor
// once; a non-member leaf, a leaf claimed at another index, a forged
// weight and a replay are refused and credit nothing.
func TestDataContributeProofs(t *testing.T) {
	c := newRoyaltyCast()
	w := newWorld(t, fastSubnet(), c.keys()...)
	leaves, hashes, root := testDataset(c.contrib1, c.contrib2)
	w.mustSend(c.owner, tx.DataRegister(&tx.MsgDataRegister{Root: root[:], Files: 2}))
	good := contributeMsg(leaves, hashes, root, 0)
	forgedWeight := contributeMsg(leaves, hashes, root, 0)
	forgedWeight.GetDataContribute().Leaf = &tx.DataLeaf{FileSha256: leaves[0].FileSha256, Size: 100, Contributor: leaves[0].Contributor, Weight: 1000}
	thief := contributeMsg(leaves, hashes, root, 0)
	thief.GetDataContribute().Leaf = &tx.DataLeaf{FileSha256: leaves[0].FileSha256, Size: 100, Contributor: c.holder.addr[:], Weight: 1}
	wrongIndex := contributeMsg(leaves, hashes, root, 0)
	wrongIndex.GetDataContribute().Index = 1
	outside := contributeMsg(leaves, hashes, root, 0)
	outside.GetDataContribute().Index = 2
	for _, bad := range []struct {
		name string
		msg  *tx.Msg
		code uint32
	}{
		{"a forged weight", forgedWeight, tx.CodeUnauthorized},
		{"another contributor's file", thief, tx.CodeUnauthorized},
		{"the proof at another index", wrongIndex, tx.CodeUnauthorized},
		{"an index outside the tree", outside, tx.CodeInvalid},
	} {
		if r := w.send(c.holder, bad.msg); r.Code != bad.code {
			t.Fatalf("%s: code %d (%s), want %d", bad.name, r.Code, r.Log, bad.code)
		}
	}
	if d := w.dataset(root); d.Pool.Shares != 0 {
		t.Fatalf("refused proofs credited %d weight", d.Pool.Shares)
	}
	w.mustSend(c.holder, good) // anyone may submit; the leaf's contributor is credited
	if r := w.send(c.holder, good); r.Code != tx.CodeExists {
		t.Fatalf("the same leaf twice: code %d (%s)", r.Code, r.Log)
	}
	d := w.dataset(root)
	h := &tx.ShareHolding{}
	state.GetRecord(w.store.Committed(), tx.DatasetHoldingKey(root[:], c.contrib1.addr), h)
	if d.Pool.Shares != 1 || h.Shares != 1 || d.Contributors != 1 {
		t.Fatalf("dataset weight %d, contributor 1 weight %d, %d contributors", d.Pool.Shares, h.Shares, d.Contributors)
	}
}

// TestModelRulesAndAttacks: a subnet cannot pin an unregistered model; a
// model id is registered once; only the owner updates metadata or offers
// shares; nobody claims royalty that is not theirs or moves shares they
// do not hold; citations must name registered datasets.
func TestModelRulesAndAttacks(t *testing.T) {
	c := newRoyaltyCast()
	w := newWorld(t, fastSubnet(), c.keys()...)
	w.openSubnet(c.cast, 1_000_000_000)
	p := fastSubnet()
	p.ModelId = testModelID
	if r := w.send(c.owner, tx.SubnetSetParams(1, p)); r.Code != tx.CodeNotFound {
		t.Fatalf("pinning an unregistered model: code %d (%s)", r.Code, r.Log)
	}
	reg := &tx.MsgModelRegister{ModelId: testModelID, Name: "m", RoyaltyBps: 1000, Shares: 100}
	if r := w.send(c.holder, tx.ModelRegister(&tx.MsgModelRegister{ModelId: testModelID, Shares: 1,
		Citations: []*tx.Citation{{Dataset: make([]byte, 32), Weight: 1}}})); r.Code != tx.CodeNotFound {
		t.Fatalf("citing an unregistered dataset: code %d (%s)", r.Code, r.Log)
	}
	w.mustSend(c.owner, tx.ModelRegister(reg))
	w.mustSend(c.owner, tx.SubnetSetParams(1, p))
	for _, bad := range []struct {
		name string
		k    testKey
		msg  *tx.Msg
		code uint32
	}{
		{"registering the id again", c.holder, tx.ModelRegister(reg), tx.CodeExists},
		{"updating another's model", c.holder, tx.ModelUpdate(testModelID, "mine now", "", nil), tx.CodeUnauthorized},
		{"offering another's shares", c.holder, offerMsg(10, 1, 0, 0, uint64(w.height)+10), tx.CodeUnauthorized},
		{"claiming with no shares", c.holder, tx.ModelClaim(testModelID), tx.CodeInvalid},
		{"moving shares one does not hold", c.holder, tx.ModelSharesTransfer(testModelID, c.holder2(), 1), tx.CodeInsufficientFunds},
		{"moving more shares than held", c.owner, tx.ModelSharesTransfer(testModelID, c.holder.addr, 101), tx.CodeInsufficientFunds},
		{"moving shares to oneself", c.owner, tx.ModelSharesTransfer(testModelID, c.owner.addr, 1), tx.CodeInvalid},
		{"an unknown model", c.owner, tx.ModelClaim("11" + testModelID[2:]), tx.CodeNotFound},
	} {
		if r := w.send(bad.k, bad.msg); r.Code != bad.code {
			t.Fatalf("%s: code %d (%s), want %d", bad.name, r.Code, r.Log, bad.code)
		}
	}
	w.mustSend(c.owner, tx.ModelUpdate(testModelID, "renamed", "mit", []string{"https://example.org/m.gguf"}))
	if m := w.model(); m.Name != "renamed" || m.RoyaltyBps != 1000 || m.Pool.Shares != 100 {
		t.Fatalf("after update: %+v", m)
	}
}

func (c royaltyCast) holder2() address.Address { return c.gateway.addr }

// TestEmissionRoyaltyIsOptIn: with no paid traffic, emission pays no
// royalty unless the subnet owner turns royalty_on_emission on.
func TestEmissionRoyaltyIsOptIn(t *testing.T) {
	c := newRoyaltyCast()
	w, _ := royaltyWorld(t, c, 1000, 1)
	w.steps(20)
	if m := w.model(); m.Pool.Earned != 0 {
		t.Fatalf("emission paid %d royalty with royalty_on_emission off", m.Pool.Earned)
	}
	p := fastSubnet()
	p.ModelId, p.RoyaltyOnEmission = testModelID, true
	w.mustSend(c.owner, tx.SubnetSetParams(1, p))
	w.steps(20)
	if m := w.model(); m.Pool.Earned == 0 {
		t.Fatal("emission paid no royalty with royalty_on_emission on")
	}
}

// FuzzRoyaltyMessages delivers fuzzed models-and-data messages (decoded
// from protobuf bytes into each message type) to a chain with a model,
// a dataset and an open offering: whatever they say, the block commits,
// no Go error escapes, and the supply and pools reconcile after it.
func FuzzRoyaltyMessages(f *testing.F) {
	c := newRoyaltyCast()
	seed := func(m *tx.Msg) {
		kind := byte(0)
		var raw []byte
		switch s := m.Sum.(type) {
		case *tx.Msg_ModelRegister:
			kind, raw = 0, mustMarshal(s.ModelRegister)
		case *tx.Msg_ModelSharesTransfer:
			kind, raw = 2, mustMarshal(s.ModelSharesTransfer)
		case *tx.Msg_ModelBuy:
			kind, raw = 5, mustMarshal(s.ModelBuy)
		case *tx.Msg_DataContribute:
			kind, raw = 7, mustMarshal(s.DataContribute)
		}
		f.Add(kind, raw)
	}
	leaves, hashes, root := testDataset(c.contrib1, c.contrib2)
	seed(tx.ModelSharesTransfer(testModelID, c.holder.addr, 7))
	seed(tx.ModelBuy(testModelID, 3, 0))
	seed(contributeMsg(leaves, hashes, root, 1))
	seed(tx.ModelRegister(&tx.MsgModelRegister{ModelId: "bb" + testModelID[2:], Shares: 5, Citations: []*tx.Citation{{Dataset: root[:], Weight: 1}}}))
	f.Fuzz(func(t *testing.T, kind byte, raw []byte) {
		var m *tx.Msg
		var body proto.Message
		switch kind % 9 {
		case 0:
			r := &tx.MsgModelRegister{}
			m, body = tx.ModelRegister(r), r
		case 1:
			r := &tx.MsgModelUpdate{}
			m, body = &tx.Msg{Sum: &tx.Msg_ModelUpdate{ModelUpdate: r}}, r
		case 2:
			r := &tx.MsgModelSharesTransfer{}
			m, body = &tx.Msg{Sum: &tx.Msg_ModelSharesTransfer{ModelSharesTransfer: r}}, r
		case 3:
			r := &tx.MsgModelClaim{}
			m, body = &tx.Msg{Sum: &tx.Msg_ModelClaim{ModelClaim: r}}, r
		case 4:
			r := &tx.MsgModelOffer{}
			m, body = tx.ModelOffer(r), r
		case 5:
			r := &tx.MsgModelBuy{}
			m, body = &tx.Msg{Sum: &tx.Msg_ModelBuy{ModelBuy: r}}, r
		case 6:
			r := &tx.MsgDataRegister{}
			m, body = tx.DataRegister(r), r
		case 7:
			r := &tx.MsgDataContribute{}
			m, body = &tx.Msg{Sum: &tx.Msg_DataContribute{DataContribute: r}}, r
		default:
			r := &tx.MsgDataClaim{}
			m, body = &tx.Msg{Sum: &tx.Msg_DataClaim{DataClaim: r}}, r
		}
		if proto.Unmarshal(raw, body) != nil {
			return
		}
		w, _ := royaltyWorld(t, c, 1000, 3)
		w.mustSend(c.owner, offerMsg(10, 5, 1, 2, uint64(w.height)+3))
		for _, k := range []testKey{c.holder, c.owner} {
			raw, err := tx.Sign(k.priv, &tx.TxBody{ChainId: testChain, Nonce: w.nonce(k), Fee: fee, Msgs: []*tx.Msg{m}})
			if err != nil {
				t.Fatal(err)
			}
			w.step(raw) // checks the invariant
		}
		w.steps(4) // the offering closes, a stream releases
	})
}

func mustMarshal(m proto.Message) []byte {
	b, err := tx.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func (w *world) nonce(k testKey) uint64 {
	w.t.Helper()
	w.known[k.addr] = true
	acc, err := bank.GetAccount(w.store.Committed(), k.addr)
	if err != nil {
		w.t.Fatal(err)
	}
	return acc.Nonce
}
