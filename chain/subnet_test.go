package chain

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/state"
	"github.com/agoranet/agora/chain/subnet"
	"github.com/agoranet/agora/chain/tx"
)

// world drives the app block by block and checks the supply invariant after
// every block: all balances + stake + locks + undistributed emission equal
// genesis + minted − burned, to the unit.
type world struct {
	*harness
	known map[address.Address]bool
}

func newWorld(t *testing.T, sp *tx.SubnetParams, funded ...testKey) *world {
	return newWorldWith(t, sp, nil, funded...)
}

func newWorldWith(t *testing.T, sp *tx.SubnetParams, tune func(*GenesisParams), funded ...testKey) *world {
	t.Helper()
	store, err := state.OpenMem(state.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	app, err := NewApp(store, nil)
	if err != nil {
		t.Fatal(err)
	}
	params := DefaultParams(1000)
	params.DefaultSubnet = sp
	params.SubnetImmunity = 5
	if tune != nil {
		tune(&params)
	}
	g := Genesis{Params: params, Devnet: true, Validators: []GenesisValidator{bootstrapValidator(testChain)}}
	w := &world{harness: &harness{t: t, app: app, store: store}, known: map[address.Address]bool{}}
	for _, k := range funded {
		g.Accounts = append(g.Accounts, GenesisAccount{Address: k.addr, Balance: 100_000_000_000_000})
		w.known[k.addr] = true
	}
	raw, _ := json.Marshal(g)
	if _, err := app.InitChain(context.Background(), &abci.RequestInitChain{ChainId: testChain, AppStateBytes: raw, InitialHeight: 1}); err != nil {
		t.Fatal(err)
	}
	return w
}

// send executes msgs from k in the next block and returns the result.
func (w *world) send(k testKey, msgs ...*tx.Msg) *abci.ExecTxResult {
	w.t.Helper()
	w.known[k.addr] = true
	acc, err := bank.GetAccount(w.store.Committed(), k.addr)
	if err != nil {
		w.t.Fatal(err)
	}
	raw, err := tx.Sign(k.priv, &tx.TxBody{ChainId: testChain, Nonce: acc.Nonce, Fee: uint64(len(msgs)) * fee, Msgs: msgs})
	if err != nil {
		w.t.Fatal(err)
	}
	res := w.step(raw)
	return res[0]
}

func (w *world) mustSend(k testKey, msgs ...*tx.Msg) {
	w.t.Helper()
	if r := w.send(k, msgs...); r.Code != tx.CodeOK {
		w.t.Fatalf("height %d: code %d: %s", w.height, r.Code, r.Log)
	}
}

func (w *world) step(txs ...[]byte) []*abci.ExecTxResult {
	w.t.Helper()
	res := w.block(txs...)
	w.checkInvariant()
	return res
}

func (w *world) steps(n int) {
	for range n {
		w.step()
	}
}

func (w *world) checkInvariant() {
	w.t.Helper()
	kv := w.store.Committed()
	s, err := bank.GetSupply(kv)
	if err != nil {
		w.t.Fatal(err)
	}
	var balances uint64
	for a := range w.known {
		acc, _ := bank.GetAccount(kv, a)
		balances += acc.Balance
	}
	if err := bank.Reconcile(s, balances); err != nil {
		w.t.Fatalf("height %d: %v", w.height, err)
	}
	// Stake pools add up to the recorded total.
	subs, _ := subnet.Subnets(kv)
	var pending, revenue uint64
	for _, sub := range subs {
		pending += sub.PendingEmission
		revenue += sub.PendingRevenue
	}
	if pending != s.SubnetPending || revenue != s.RevenuePending {
		w.t.Fatalf("height %d: subnets hold %d pending and %d revenue, supply says %d and %d", w.height, pending, revenue, s.SubnetPending, s.RevenuePending)
	}
	w.checkRoyaltyPools(kv, s)
}

func (w *world) metagraph(netuid uint32) *tx.Metagraph {
	w.t.Helper()
	mg, err := subnet.Metagraph(w.store.Committed(), netuid)
	if err != nil {
		w.t.Fatal(err)
	}
	return mg
}

func registerSubnetMsg(owner, hot testKey) *tx.Msg {
	return &tx.Msg{Sum: &tx.Msg_SubnetRegister{SubnetRegister: &tx.MsgSubnetRegister{
		Name: "test", OwnerHotkey: tx.ProveHotkey(hot.priv, testChain, subnet.NewSubnetNetuid, owner.addr)}}}
}

func registerNeuronMsg(netuid uint32, cold, hot testKey) *tx.Msg {
	return &tx.Msg{Sum: &tx.Msg_NeuronRegister{NeuronRegister: &tx.MsgNeuronRegister{
		Netuid: netuid, Hotkey: tx.ProveHotkey(hot.priv, testChain, netuid, cold.addr)}}}
}

func stakeMsg(netuid uint32, hot testKey, amount uint64) *tx.Msg {
	return &tx.Msg{Sum: &tx.Msg_StakeAdd{StakeAdd: &tx.MsgStakeAdd{Hotkey: hot.addr[:], Netuid: netuid, Amount: amount}}}
}

func setWeightsMsg(netuid uint32, uids, values []uint32) *tx.Msg {
	return &tx.Msg{Sum: &tx.Msg_WeightsSet{WeightsSet: &tx.MsgWeightsSet{Netuid: netuid, Uids: uids, Values: values}}}
}

// cast is the usual set of keys: a subnet owner, one validator, one miner.
type cast struct{ owner, ownerHot, valCold, valHot, minerCold, m1 testKey }

func newCast() cast {
	return cast{newKey(10), newKey(11), newKey(20), newKey(21), newKey(30), newKey(31)}
}

// openSubnet registers subnet 1 with the cast's validator (staked) and
// miner, starts it, and runs past the first epoch so the validator has a permit.
func (w *world) openSubnet(c cast, stake uint64) {
	w.t.Helper()
	w.mustSend(c.owner, registerSubnetMsg(c.owner, c.ownerHot))
	w.mustSend(c.valCold, registerNeuronMsg(1, c.valCold, c.valHot))
	w.mustSend(c.minerCold, registerNeuronMsg(1, c.minerCold, c.m1))
	w.mustSend(c.valCold, stakeMsg(1, c.valHot, stake))
	w.mustSend(c.owner, &tx.Msg{Sum: &tx.Msg_SubnetStart{SubnetStart: &tx.MsgSubnetStart{Netuid: 1}}})
	w.steps(12)
}

func fastSubnet() *tx.SubnetParams {
	p := subnet.DefaultSubnetParams()
	p.Tempo = 9
	p.ImmunityPeriod = 5
	p.WeightsRateLimit = 0
	p.CommitReveal = false
	p.ActivityCutoff = 1000
	p.MaxUids = 8
	p.MaxValidators = 4
	return p
}

// TestIncentiveMachine: one validator, two honest miners and one the
// validator rates zero; after a few epochs the honest miners earn incentive,
// the validator earns dividends, the owner earns its cut, and everything reconciles.
func TestIncentiveMachine(t *testing.T) {
	owner, ownerHot := newKey(10), newKey(11)
	valCold, valHot := newKey(20), newKey(21)
	minerCold := newKey(30)
	m1, m2, m3 := newKey(31), newKey(32), newKey(33)
	w := newWorld(t, fastSubnet(), owner, valCold, minerCold, valHot)

	w.mustSend(owner, registerSubnetMsg(owner, ownerHot))
	const netuid = 1
	w.mustSend(valCold, registerNeuronMsg(netuid, valCold, valHot))
	w.mustSend(minerCold, registerNeuronMsg(netuid, minerCold, m1), registerNeuronMsg(netuid, minerCold, m2), registerNeuronMsg(netuid, minerCold, m3))
	staked := w.send(valCold, stakeMsg(netuid, valHot, 1_000_000_000_000))
	if staked.Code != tx.CodeOK || len(staked.Events) != 2 || staked.Events[1].Type != "stake_add" ||
		staked.Events[1].Attributes[0].Value != valCold.addr.String() || !staked.Events[1].Attributes[0].Index {
		t.Fatalf("stake add: code %d, events %+v; want a stake_add event indexed by coldkey", staked.Code, staked.Events)
	}
	w.mustSend(owner, &tx.Msg{Sum: &tx.Msg_SubnetStart{SubnetStart: &tx.MsgSubnetStart{Netuid: netuid}}})

	mg := w.metagraph(netuid)
	if mg.Subnet.N != 5 {
		t.Fatalf("subnet has %d UIDs, want 5 (owner, validator, 3 miners)", mg.Subnet.N)
	}
	ownerBefore := w.balance(owner)
	// Run to the first epoch: it hands out validator permits.
	for !mg.Neurons[1].ValidatorPermit {
		w.step()
		mg = w.metagraph(netuid)
		if w.height > 40 {
			t.Fatal("no validator permit after 40 blocks")
		}
	}
	if w.balance(owner) <= ownerBefore {
		t.Fatal("the owner earned no cut")
	}
	w.mustSend(valHot, setWeightsMsg(netuid, []uint32{2, 3}, []uint32{65535, 65535}))
	minerBefore := w.balance(minerCold)
	w.steps(25) // at least two epochs
	mg = w.metagraph(netuid)
	if mg.Neurons[2].Incentive == 0 || mg.Neurons[3].Incentive == 0 {
		t.Fatalf("honest miners got no incentive: %d %d", mg.Neurons[2].Incentive, mg.Neurons[3].Incentive)
	}
	if mg.Neurons[4].Incentive != 0 || mg.Neurons[4].Emission != 0 {
		t.Fatalf("unrated miner earned: incentive %d emission %d", mg.Neurons[4].Incentive, mg.Neurons[4].Emission)
	}
	if mg.Neurons[1].Dividends == 0 {
		t.Fatal("validator earned no dividends")
	}
	if w.balance(minerCold) <= minerBefore {
		t.Fatal("miner coldkey balance did not grow")
	}
	// The validator's dividends (minus take) grew its pool beyond what was staked.
	if mg.Stake[1] <= 1_000_000_000_000 {
		t.Fatalf("validator stake %d did not grow", mg.Stake[1])
	}
}

func TestDelegationAndTakeToTheUnit(t *testing.T) {
	owner, ownerHot := newKey(10), newKey(11)
	valCold, valHot := newKey(20), newKey(21)
	alice, bob := newKey(40), newKey(41)
	w := newWorld(t, fastSubnet(), owner, valCold, alice, bob)
	w.mustSend(owner, registerSubnetMsg(owner, ownerHot))
	w.mustSend(valCold, registerNeuronMsg(1, valCold, valHot))
	w.mustSend(alice, stakeMsg(1, valHot, 3_000_000))
	w.mustSend(bob, stakeMsg(1, valHot, 1_000_000))

	// Pay a dividend of 1,000,001 directly: 18% take to the owner (rounded
	// down), the rest into the pool, shared 3:1 by the delegators.
	kv := state.NewCache(w.store.Committed())
	c := &subnet.Ctx{KV: kv, Height: uint64(w.height + 1), ChainID: testChain, Params: w.app.params}
	before, _ := bank.GetAccount(kv, valCold.addr)
	staked, err := subnet.PayValidator(c, 1, valHot.addr, 1_000_001)
	if err != nil {
		t.Fatal(err)
	}
	// The epoch that calls PayValidator books the new stake in the supply
	// record; do the same, or the withdrawals below break the invariant.
	if err := bank.UpdateSupply(kv, func(s *tx.Supply) error { s.Staked += staked; return nil }); err != nil {
		t.Fatal(err)
	}
	after, _ := bank.GetAccount(kv, valCold.addr)
	take := after.Balance - before.Balance
	if take != 180_000 || staked != 820_001 {
		t.Fatalf("take %d staked %d, want 180000 and 820001", take, staked)
	}
	pool, _ := subnet.GetPool(kv, 1, valHot.addr)
	aShares, _ := subnet.GetShares(kv, 1, valHot.addr, alice.addr)
	bShares, _ := subnet.GetShares(kv, 1, valHot.addr, bob.addr)
	av, bv := subnet.StakeValue(pool, aShares), subnet.StakeValue(pool, bShares)
	if av != 3_615_000 || bv != 1_205_000 {
		t.Fatalf("alice %d bob %d, want 3615000 and 1205000", av, bv)
	}
	if av+bv > pool.Stake || pool.Stake-(av+bv) > 1 {
		t.Fatalf("pool %d vs claims %d: more than a unit of dust", pool.Stake, av+bv)
	}
	// Withdrawing everything leaves the pool empty: the last out takes the dust.
	if err := subnet.RemoveStake(c, alice.addr, &tx.MsgStakeRemove{Hotkey: valHot.addr[:], Netuid: 1, Amount: av}); err != nil {
		t.Fatal(err)
	}
	bShares, _ = subnet.GetShares(kv, 1, valHot.addr, bob.addr)
	pool, _ = subnet.GetPool(kv, 1, valHot.addr)
	if err := subnet.RemoveStake(c, bob.addr, &tx.MsgStakeRemove{Hotkey: valHot.addr[:], Netuid: 1, Amount: subnet.StakeValue(pool, bShares)}); err != nil {
		t.Fatal(err)
	}
	pool, _ = subnet.GetPool(kv, 1, valHot.addr)
	if pool.Stake != 0 || pool.Shares != 0 {
		t.Fatalf("pool not empty after everyone left: %+v", pool)
	}
	// Over-withdrawal is refused.
	if err := subnet.RemoveStake(c, bob.addr, &tx.MsgStakeRemove{Hotkey: valHot.addr[:], Netuid: 1, Amount: 1}); err == nil {
		t.Fatal("withdrew stake that was not there")
	}
}

func TestTakeRateLimit(t *testing.T) {
	owner, ownerHot := newKey(10), newKey(11)
	w := newWorld(t, fastSubnet(), owner)
	w.mustSend(owner, registerSubnetMsg(owner, ownerHot))
	setTake := func(bps uint32) *tx.Msg {
		return &tx.Msg{Sum: &tx.Msg_SetTake{SetTake: &tx.MsgSetTake{Hotkey: ownerHot.addr[:], TakeBps: bps}}}
	}
	w.mustSend(owner, setTake(1000)) // lowering is always allowed
	if r := w.send(owner, setTake(1500)); r.Code != tx.CodeRateLimited {
		t.Fatalf("raise right after a change: code %d, want rate limited", r.Code)
	}
	if r := w.send(owner, setTake(5000)); r.Code != tx.CodeInvalid {
		t.Fatalf("take above max: code %d", r.Code)
	}
	stranger := newKey(99)
	w.known[stranger.addr] = true
	w.mustSend(owner, tx.Transfer(stranger.addr, 10*fee))
	if r := w.send(stranger, setTake(100)); r.Code != tx.CodeUnauthorized {
		t.Fatalf("stranger set take: code %d", r.Code)
	}
}

func TestWeightRejections(t *testing.T) {
	owner, ownerHot := newKey(10), newKey(11)
	valCold, valHot := newKey(20), newKey(21)
	minerCold, m1 := newKey(30), newKey(31)
	w := newWorld(t, fastSubnet(), owner, valCold, minerCold, valHot, m1)
	w.mustSend(owner, registerSubnetMsg(owner, ownerHot))
	w.mustSend(valCold, registerNeuronMsg(1, valCold, valHot))
	w.mustSend(minerCold, registerNeuronMsg(1, minerCold, m1))
	w.mustSend(valCold, stakeMsg(1, valHot, 1_000_000_000))
	// No permit yet.
	if r := w.send(valHot, setWeightsMsg(1, []uint32{2}, []uint32{1})); r.Code != tx.CodeUnauthorized {
		t.Fatalf("weights without permit: code %d (%s)", r.Code, r.Log)
	}
	w.mustSend(owner, &tx.Msg{Sum: &tx.Msg_SubnetStart{SubnetStart: &tx.MsgSubnetStart{Netuid: 1}}})
	w.steps(12)
	cases := []struct {
		name string
		who  testKey
		msg  *tx.Msg
		code uint32
	}{
		{"unregistered", newKey(77), setWeightsMsg(1, []uint32{2}, []uint32{1}), tx.CodeNotFound},
		{"uid out of range", valHot, setWeightsMsg(1, []uint32{9}, []uint32{1}), tx.CodeInvalid},
		{"duplicate uid", valHot, setWeightsMsg(1, []uint32{2, 2}, []uint32{1, 1}), tx.CodeInvalid},
		{"self weight", valHot, setWeightsMsg(1, []uint32{1, 2}, []uint32{1, 1}), tx.CodeInvalid},
		{"commit on a set subnet", valHot, &tx.Msg{Sum: &tx.Msg_WeightsCommit{WeightsCommit: &tx.MsgWeightsCommit{Netuid: 1, Hash: make([]byte, 32)}}}, tx.CodeInvalid},
		{"miner has no permit", m1, setWeightsMsg(1, []uint32{1}, []uint32{1}), tx.CodeUnauthorized},
	}
	for _, c := range cases {
		if c.who.addr != valHot.addr && c.who.addr != m1.addr {
			w.known[c.who.addr] = true
			w.mustSend(owner, tx.Transfer(c.who.addr, 10*fee))
		}
		if r := w.send(c.who, c.msg); r.Code != c.code {
			t.Errorf("%s: code %d (%s), want %d", c.name, r.Code, r.Log, c.code)
		}
	}
	w.mustSend(valHot, setWeightsMsg(1, []uint32{2}, []uint32{65535}))
}

func TestCommitReveal(t *testing.T) {
	sp := fastSubnet()
	sp.CommitReveal = true
	c := newCast()
	valHot := c.valHot
	w := newWorld(t, sp, c.owner, c.valCold, c.minerCold, c.valHot)
	w.openSubnet(c, 1_000_000_000)

	salt := make([]byte, 16)
	rand.Read(salt)
	uids, vals := []uint32{2}, []uint32{65535}
	commit := func() {
		w.mustSend(valHot, &tx.Msg{Sum: &tx.Msg_WeightsCommit{WeightsCommit: &tx.MsgWeightsCommit{
			Netuid: 1, Hash: tx.WeightsHash(valHot.addr, 1, uids, vals, salt, 0)}}})
	}
	reveal := func(s []byte) *abci.ExecTxResult {
		return w.send(valHot, &tx.Msg{Sum: &tx.Msg_WeightsReveal{WeightsReveal: &tx.MsgWeightsReveal{Netuid: 1, Uids: uids, Values: vals, Salt: s}}})
	}
	if r := w.send(valHot, setWeightsMsg(1, uids, vals)); r.Code != tx.CodeInvalid {
		t.Fatalf("plain set under commit-reveal: code %d", r.Code)
	}
	commit()
	if r := reveal(salt); r.Code != tx.CodeWindow {
		t.Fatalf("early reveal: code %d (%s)", r.Code, r.Log)
	}
	// Move into the next epoch window (tempo 9: epochs every 10 blocks).
	for tx.EpochIndex(1, sp.Tempo, uint64(w.height+1)) == tx.EpochIndex(1, sp.Tempo, uint64(w.height)) {
		w.step()
	}
	w.step()
	if r := reveal([]byte("wrong salt")); r.Code != tx.CodeUnauthorized {
		t.Fatalf("wrong salt: code %d (%s)", r.Code, r.Log)
	}
	if r := reveal(salt); r.Code != tx.CodeOK {
		t.Fatalf("reveal in window: code %d (%s)", r.Code, r.Log)
	}
	w.steps(20)
	if mg := w.metagraph(1); mg.Neurons[2].Incentive == 0 {
		t.Fatal("revealed weights earned the miner nothing")
	}
	// A late reveal is refused.
	commit()
	w.steps(25)
	if r := reveal(salt); r.Code != tx.CodeWindow {
		t.Fatalf("late reveal: code %d (%s)", r.Code, r.Log)
	}
}

func TestRegistrationChurnAndPruning(t *testing.T) {
	sp := fastSubnet()
	sp.MaxUids = 3
	sp.MaxValidators = 2
	owner, ownerHot := newKey(10), newKey(11)
	cold := newKey(30)
	w := newWorld(t, sp, owner, cold)
	w.mustSend(owner, registerSubnetMsg(owner, ownerHot))
	w.mustSend(cold, registerNeuronMsg(1, cold, newKey(31)))
	w.mustSend(cold, registerNeuronMsg(1, cold, newKey(32)))
	// Full, and both miners are within their 5-block immunity.
	if r := w.send(cold, registerNeuronMsg(1, cold, newKey(33))); r.Code != tx.CodeFull {
		t.Fatalf("register into a full immune subnet: code %d (%s)", r.Code, r.Log)
	}
	// The burn rose with each registration.
	sub, _ := subnet.GetSubnet(w.store.Committed(), 1)
	if sub.Burn <= sp.MinBurn {
		t.Fatalf("burn %d did not rise above %d", sub.Burn, sp.MinBurn)
	}
	w.steps(6)
	// Now the oldest of the equal-emission miners (uid 1) is replaced.
	w.mustSend(cold, registerNeuronMsg(1, cold, newKey(33)))
	mg := w.metagraph(1)
	if got := newKey(33).addr; mustAddr(mg.Neurons[1].Hotkey) != got {
		t.Fatalf("uid 1 now %x, want the new hotkey", mg.Neurons[1].Hotkey)
	}
	if _, err := subnet.UIDOf(w.store.Committed(), 1, newKey(31).addr); err == nil {
		t.Fatal("pruned hotkey still indexed")
	}
	if mustAddr(mg.Neurons[0].Hotkey) != ownerHot.addr {
		t.Fatal("the owner's UID 0 was pruned")
	}
	// The burn decays back toward the floor with a half-life of one tempo.
	sub, _ = subnet.GetSubnet(w.store.Committed(), 1)
	if later := sub.BurnAt(uint64(w.height) + 10*sp.Tempo); later != sp.MinBurn {
		t.Fatalf("burn after 10 tempos %d, want the floor %d", later, sp.MinBurn)
	}
	sub.Params.MinBurn = 0 // look at the decay itself, not the floor
	half := sub.BurnAt(sub.BurnUpdatedAt + sp.Tempo)
	if diff := int64(half) - int64(sub.Burn/2); diff < -int64(sub.Burn/500) || diff > int64(sub.Burn/500) {
		t.Fatalf("burn after one tempo %d, want about half of %d", half, sub.Burn)
	}
}

func mustAddr(b []byte) address.Address {
	a, err := address.FromBytes(b)
	if err != nil {
		panic(fmt.Sprintf("bad address %x", b))
	}
	return a
}

func TestSubnetLockAndPruning(t *testing.T) {
	a, aHot := newKey(10), newKey(11)
	b, bHot := newKey(12), newKey(13)
	c, cHot := newKey(14), newKey(15)
	w := newWorldWith(t, fastSubnet(), func(p *GenesisParams) { p.MaxSubnets = 2 }, a, b, c)
	floor := DefaultParams(1000).SubnetLockFloor
	locked := func() uint64 {
		s, _ := bank.GetSupply(w.store.Committed())
		return s.Locked
	}
	w.mustSend(a, registerSubnetMsg(a, aHot))
	if locked() != floor {
		t.Fatalf("first lock %d, want the floor %d", locked(), floor)
	}
	// max_lock protects the registrant from a price it did not expect.
	limited := registerSubnetMsg(c, cHot)
	limited.GetSubnetRegister().MaxLock = floor
	if r := w.send(c, limited); r.Code != tx.CodePriceMoved {
		t.Fatalf("register above max_lock: code %d (%s)", r.Code, r.Log)
	}
	w.mustSend(b, registerSubnetMsg(b, bHot))
	second := locked() - floor
	if second <= floor || second > 2*floor {
		t.Fatalf("second lock %d, want just under double %d", second, 2*floor)
	}
	// Both subnets are immune: the chain is full.
	if r := w.send(c, registerSubnetMsg(c, cHot)); r.Code != tx.CodeFull {
		t.Fatalf("register into a full immune chain: code %d (%s)", r.Code, r.Log)
	}
	w.steps(6)
	// Subnet 2 has stake, subnet 1 has none: subnet 1 is pruned and its lock refunded.
	w.mustSend(b, stakeMsg(2, bHot, 1_000_000))
	before := w.balance(a)
	w.mustSend(c, registerSubnetMsg(c, cHot))
	if got := w.balance(a) - before; got != floor {
		t.Fatalf("owner of the pruned subnet got %d back, want its lock %d", got, floor)
	}
	if _, err := subnet.GetSubnet(w.store.Committed(), 1); err == nil {
		t.Fatal("subnet 1 still exists")
	}
	subs, _ := subnet.Subnets(w.store.Committed())
	if len(subs) != 2 || subs[0].Netuid != 2 || subs[1].Netuid != 3 {
		t.Fatalf("subnets after pruning: %v", subs)
	}
	// Stake on a dissolved subnet's hotkey stays withdrawable; here b's pool lives on.
	if p, _ := subnet.GetPool(w.store.Committed(), 2, bHot.addr); p.Stake != 1_000_000 {
		t.Fatalf("pool %v", p)
	}
}

func TestWeightsRateLimitAndStakeThreshold(t *testing.T) {
	sp := fastSubnet()
	sp.WeightsRateLimit = 50
	sp.StakeThreshold = 2_000_000_000
	c := newCast()
	valCold, valHot := c.valCold, c.valHot
	w := newWorld(t, sp, c.owner, c.valCold, c.minerCold, c.valHot)
	w.openSubnet(c, 3_000_000_000)
	w.mustSend(valHot, setWeightsMsg(1, []uint32{2}, []uint32{65535}))
	if r := w.send(valHot, setWeightsMsg(1, []uint32{2}, []uint32{100})); r.Code != tx.CodeRateLimited {
		t.Fatalf("second set inside the rate limit: code %d (%s)", r.Code, r.Log)
	}
	// Drop below the stake threshold: weights are refused, by the threshold
	// check itself or, once an epoch has passed, because the thresholded
	// stake no longer earns a validator permit.
	w.mustSend(valCold, &tx.Msg{Sum: &tx.Msg_StakeRemove{StakeRemove: &tx.MsgStakeRemove{Hotkey: valHot.addr[:], Netuid: 1, Amount: 2_000_000_000}}})
	w.steps(50)
	if r := w.send(valHot, setWeightsMsg(1, []uint32{2}, []uint32{100})); r.Code != tx.CodeUnauthorized || !(strings.Contains(r.Log, "threshold") || strings.Contains(r.Log, "permit")) {
		t.Fatalf("below stake threshold: code %d (%s)", r.Code, r.Log)
	}
}
