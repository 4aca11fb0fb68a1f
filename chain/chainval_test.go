package chain

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"
	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"
	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/chainval"
	"github.com/agoranet/agora/chain/proof"
	"github.com/agoranet/agora/chain/state"
	"github.com/agoranet/agora/chain/tx"
)

// cvWorld is a world whose genesis chain validators are chosen by the test
// and whose blocks carry evidence and commit votes.
type cvWorld struct {
	*world
	last *abci.ResponseFinalizeBlock
	init *abci.ResponseInitChain
}

type genVal struct {
	op, cons testKey
	bond     uint64
}

func newCVWorld(t *testing.T, tune func(*GenesisParams), vals []genVal, funded ...testKey) *cvWorld {
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
	if tune != nil {
		tune(&params)
	}
	g := Genesis{Params: params, Devnet: true}
	w := &cvWorld{world: &world{harness: &harness{t: t, app: app, store: store}, known: map[address.Address]bool{}}}
	for _, k := range funded {
		g.Accounts = append(g.Accounts, GenesisAccount{Address: k.addr, Balance: 1_000_000 * agr.Unit})
		w.known[k.addr] = true
	}
	for _, v := range vals {
		g.Validators = append(g.Validators, SignGenesisValidator(testChain, v.op.priv, GenesisValidator{
			Moniker: "gen", ConsensusPubKey: v.cons.pub(), Bond: v.bond}))
		w.known[v.op.addr] = true
	}
	raw, _ := json.Marshal(g)
	w.init, err = app.InitChain(context.Background(), &abci.RequestInitChain{ChainId: testChain, AppStateBytes: raw, InitialHeight: 1})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func (k testKey) pub() ed25519.PublicKey { return k.priv.Public().(ed25519.PublicKey) }

func (k testKey) consAddr() []byte { return tx.ConsensusAddress(k.pub()) }

// finalize runs one block with evidence and votes, commits it and checks
// the supply invariant.
func (w *cvWorld) finalize(misb []abci.Misbehavior, votes []abci.VoteInfo, txs ...[]byte) *abci.ResponseFinalizeBlock {
	w.t.Helper()
	w.height++
	res, err := w.app.FinalizeBlock(context.Background(), &abci.RequestFinalizeBlock{
		Height: w.height, Txs: txs, Misbehavior: misb, DecidedLastCommit: abci.CommitInfo{Votes: votes}})
	if err != nil {
		w.t.Fatalf("FinalizeBlock %d: %v", w.height, err)
	}
	if _, err := w.app.Commit(context.Background(), &abci.RequestCommit{}); err != nil {
		w.t.Fatal(err)
	}
	w.checkInvariant()
	w.checkChainValidatorTotals()
	w.last = res
	return res
}

func (w *cvWorld) sendCV(k testKey, msgs ...*tx.Msg) *abci.ExecTxResult {
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
	return w.finalize(nil, nil, raw).TxResults[0]
}

func (w *cvWorld) mustCV(k testKey, msgs ...*tx.Msg) {
	w.t.Helper()
	if r := w.sendCV(k, msgs...); r.Code != tx.CodeOK {
		w.t.Fatalf("height %d: code %d: %s", w.height, r.Code, r.Log)
	}
}

// checkChainValidatorTotals: the records add up to the supply's bonded and
// unbonding totals.
func (w *cvWorld) checkChainValidatorTotals() {
	w.t.Helper()
	kv := w.store.Committed()
	all, err := chainval.All(kv)
	if err != nil {
		w.t.Fatal(err)
	}
	var bonded, unbonding uint64
	for _, v := range all {
		bonded += v.Bonded
		for _, e := range v.Unbonding {
			unbonding += e.Amount
		}
	}
	s := w.supply()
	if bonded != s.Bonded || unbonding != s.Unbonding {
		w.t.Fatalf("height %d: records bonded %d unbonding %d, supply says %d and %d", w.height, bonded, unbonding, s.Bonded, s.Unbonding)
	}
}

func (w *cvWorld) cv(k testKey) *tx.ChainValidator {
	w.t.Helper()
	v, err := chainval.Get(w.store.Committed(), k.addr)
	if err != nil || v == nil {
		w.t.Fatalf("chain validator %s: %v %v", k.addr, v, err)
	}
	return v
}

func (w *cvWorld) set() map[string]uint64 {
	w.t.Helper()
	s, err := chainval.CurrentSet(w.store.Committed())
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, e := range s.Entries {
		out[string(e.ConsensusPubKey)] = e.Power
	}
	return out
}

func createMsg(op, cons testKey, bond uint64) *tx.Msg {
	return tx.ChainValidatorCreate(cons.pub(), tx.SignChainValidatorProof(testChain, op.addr, cons.priv), "node", bond)
}

func updatesOf(res *abci.ResponseFinalizeBlock) map[string]int64 {
	out := map[string]int64{}
	for _, u := range res.ValidatorUpdates {
		out[string(u.PubKey.GetEd25519())] = u.Power
	}
	return out
}

func vote(k testKey, signed bool) abci.VoteInfo {
	flag := cmtproto.BlockIDFlagCommit
	if !signed {
		flag = cmtproto.BlockIDFlagAbsent
	}
	return abci.VoteInfo{Validator: abci.Validator{Address: k.consAddr(), Power: 1}, BlockIdFlag: flag}
}

var (
	bootOp, bootCons = newKey(200), newKey(201)
	alice, bob       = newKey(1), newKey(2)
	aliceCons        = newKey(101)
	bobCons          = newKey(102)
)

func TestGenesisChainValidatorsInInitChain(t *testing.T) {
	w := newCVWorld(t, nil, []genVal{{bootOp, bootCons, 0}, {alice, aliceCons, 5 * agr.Unit}}, alice)
	got := map[string]int64{}
	for _, u := range w.init.Validators {
		got[string(u.PubKey.GetEd25519())] = u.Power
	}
	if len(got) != 2 || got[string(bootCons.pub())] != 1 || got[string(aliceCons.pub())] != 5 {
		t.Fatalf("InitChain validators %v", got)
	}
	w.finalize(nil, nil)
	if b := w.balance(alice); b != 1_000_000*agr.Unit-5*agr.Unit {
		t.Fatalf("genesis bond not taken from the balance: %d", b)
	}
	if s := w.supply(); s.Bonded != 5*agr.Unit {
		t.Fatalf("supply bonded %d", s.Bonded)
	}
}

func TestChainValidatorLifecycle(t *testing.T) {
	w := newCVWorld(t, func(p *GenesisParams) { p.UnbondingBlocks = 5 }, []genVal{{bootOp, bootCons, 0}}, alice)
	start := 1_000_000 * agr.Unit
	w.mustCV(alice, createMsg(alice, aliceCons, 3*agr.Unit))
	if u := updatesOf(w.last); u[string(aliceCons.pub())] != 3 || len(u) != 1 {
		t.Fatalf("create updates %v", u)
	}
	w.mustCV(alice, tx.ChainValidatorBond(2*agr.Unit))
	if u := updatesOf(w.last); u[string(aliceCons.pub())] != 5 {
		t.Fatalf("bond updates %v", u)
	}
	w.mustCV(alice, tx.ChainValidatorEdit("renamed"))
	if v := w.cv(alice); v.Moniker != "renamed" || v.Bonded != 5*agr.Unit || v.Power != 5 {
		t.Fatalf("after edit %+v", v)
	}
	if len(w.last.ValidatorUpdates) != 0 {
		t.Fatalf("edit changed the set: %v", w.last.ValidatorUpdates)
	}
	w.mustCV(alice, tx.ChainValidatorUnbond(5*agr.Unit))
	unbondHeight := uint64(w.height)
	if u := updatesOf(w.last); u[string(aliceCons.pub())] != 0 || len(u) != 1 {
		t.Fatalf("unbond-all must remove it: %v", u)
	}
	paidAt := unbondHeight + 5
	for uint64(w.height) < paidAt-1 {
		w.finalize(nil, nil)
	}
	before := w.balance(alice)
	if want := start - 5*agr.Unit - 4*fee; before != want {
		t.Fatalf("balance one block before maturity %d, want %d", before, want)
	}
	w.finalize(nil, nil) // height paidAt
	if got := w.balance(alice); got != before+5*agr.Unit {
		t.Fatalf("payout at exactly height %d: balance %d, want %d", paidAt, got, before+5*agr.Unit)
	}
	if v := w.cv(alice); len(v.Unbonding) != 0 {
		t.Fatalf("entry left after payout: %v", v.Unbonding)
	}
}

func TestChainValidatorRefusals(t *testing.T) {
	carol, carolCons := newKey(3), newKey(103)
	w := newCVWorld(t, func(p *GenesisParams) { p.DowntimeJailBlocks = 1000 }, []genVal{{bootOp, bootCons, 0}, {carol, carolCons, 2 * agr.Unit}}, alice, bob, carol)
	w.mustCV(alice, createMsg(alice, aliceCons, 10*agr.Unit))
	poor, poorCons := newKey(4), newKey(104)
	w.known[poor.addr] = true
	w.mustCV(alice, tx.Transfer(poor.addr, 2*agr.Unit))
	cases := []struct {
		name string
		from testKey
		msg  *tx.Msg
		code uint32
	}{
		{"create twice", alice, createMsg(alice, newKey(110), 2*agr.Unit), tx.CodeExists},
		{"duplicate consensus key", bob, createMsg(bob, aliceCons, 2*agr.Unit), tx.CodeExists},
		{"genesis consensus key reused", bob, createMsg(bob, carolCons, 2*agr.Unit), tx.CodeExists},
		// Front-running: bob claims a key whose proof names alice.
		{"someone else's consensus key proof", bob, tx.ChainValidatorCreate(bobCons.pub(), tx.SignChainValidatorProof(testChain, alice.addr, bobCons.priv), "x", 2*agr.Unit), tx.CodeUnauthorized},
		{"proof for another chain", bob, tx.ChainValidatorCreate(bobCons.pub(), tx.SignChainValidatorProof("other", bob.addr, bobCons.priv), "x", 2*agr.Unit), tx.CodeUnauthorized},
		{"bond below minimum", bob, createMsg(bob, bobCons, agr.Unit/2), tx.CodeInvalid},
		{"create bond more than balance", poor, createMsg(poor, poorCons, 5*agr.Unit), tx.CodeInsufficientFunds},
		{"bond more than balance", alice, tx.ChainValidatorBond(10_000_000 * agr.Unit), tx.CodeInsufficientFunds},
		{"unbond more than bonded", alice, tx.ChainValidatorUnbond(10*agr.Unit + 1), tx.CodeInsufficientFunds},
		{"unbond leaves dust below the minimum", alice, tx.ChainValidatorUnbond(10*agr.Unit - 1), tx.CodeInvalid},
		{"bond without a validator", bob, tx.ChainValidatorBond(agr.Unit), tx.CodeNotFound},
		{"unbond someone else's", bob, tx.ChainValidatorUnbond(agr.Unit), tx.CodeNotFound},
		{"edit someone else's", bob, tx.ChainValidatorEdit("mine"), tx.CodeNotFound},
		{"unjail when not jailed", alice, tx.ChainValidatorUnjail(), tx.CodeInvalid},
		{"control characters in moniker", alice, tx.ChainValidatorEdit("a\x1b[2Jb"), tx.CodeMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w.t = t
			before := w.supply()
			r := w.sendCV(c.from, c.msg)
			if r.Code != c.code {
				t.Fatalf("code %d (%s), want %d", r.Code, r.Log, c.code)
			}
			if after := w.supply(); after.Bonded != before.Bonded || after.Unbonding != before.Unbonding {
				t.Fatalf("refused message moved stake: %d→%d", before.Bonded, after.Bonded)
			}
		})
	}
}

func TestActiveSetTopKAndTies(t *testing.T) {
	ks := []testKey{newKey(11), newKey(12), newKey(13), newKey(14)}
	cons := []testKey{newKey(111), newKey(112), newKey(113), newKey(114)}
	w := newCVWorld(t, func(p *GenesisParams) { p.MaxChainValidators = 2 }, []genVal{{bootOp, bootCons, 0}}, ks...)
	// Equal bonds: the two lowest consensus addresses win.
	for i := range 3 {
		w.mustCV(ks[i], createMsg(ks[i], cons[i], 4*agr.Unit))
	}
	set := w.set()
	if len(set) != 2 {
		t.Fatalf("set of %d with K=2", len(set))
	}
	sorted := []testKey{cons[0], cons[1], cons[2]}
	for i := range sorted {
		for j := i + 1; j < len(sorted); j++ {
			if string(sorted[j].consAddr()) < string(sorted[i].consAddr()) {
				sorted[i], sorted[j] = sorted[j], sorted[i]
			}
		}
	}
	if set[string(sorted[0].pub())] != 4 || set[string(sorted[1].pub())] != 4 {
		t.Fatalf("tie not broken by consensus address: %v", set)
	}
	// A bigger bond displaces the weakest member: one add, one removal, in one block.
	w.mustCV(ks[3], createMsg(ks[3], cons[3], 9*agr.Unit))
	u := updatesOf(w.last)
	if len(u) != 2 || u[string(cons[3].pub())] != 9 || u[string(sorted[1].pub())] != 0 {
		t.Fatalf("displacement updates %v", u)
	}
	// The bootstrap validator (power 1) was outranked at the first create.
	if _, in := w.set()[string(bootCons.pub())]; in {
		t.Fatal("bootstrap validator still in a full set of bonded ones")
	}
}

func TestLastChainValidatorCannotLeave(t *testing.T) {
	w := newCVWorld(t, func(p *GenesisParams) { p.UnbondingBlocks = 3 }, []genVal{{alice, aliceCons, 2 * agr.Unit}}, alice)
	w.mustCV(alice, tx.ChainValidatorUnbond(2*agr.Unit))
	if len(w.last.ValidatorUpdates) != 0 {
		t.Fatalf("sent %v: would leave CometBFT with no validators", w.last.ValidatorUpdates)
	}
	kept := false
	for _, e := range w.last.Events {
		kept = kept || e.Type == "chain_validator_set_kept"
	}
	if !kept {
		t.Fatal("no chain_validator_set_kept event")
	}
	if s := w.set(); s[string(aliceCons.pub())] != 2 {
		t.Fatalf("stored set changed: %v", s)
	}
	// A newcomer then takes over, and the stale member leaves in the same update.
	w.known[bob.addr] = true
	w.mustCV(alice, tx.Transfer(bob.addr, 10*agr.Unit))
	w.mustCV(bob, createMsg(bob, bobCons, 3*agr.Unit))
	if u := updatesOf(w.last); len(u) != 2 || u[string(bobCons.pub())] != 3 || u[string(aliceCons.pub())] != 0 {
		t.Fatalf("takeover updates %v", u)
	}
}

func TestDoubleSignSlashesBondAndUnbondingOnce(t *testing.T) {
	w := newCVWorld(t, func(p *GenesisParams) { p.UnbondingBlocks = 100 }, []genVal{{bootOp, bootCons, 0}, {alice, aliceCons, 100 * agr.Unit}}, alice)
	w.mustCV(alice, tx.ChainValidatorUnbond(40*agr.Unit))
	burnedBefore := w.supply().Burned
	ev := abci.Misbehavior{Type: abci.MisbehaviorType_DUPLICATE_VOTE, Validator: abci.Validator{Address: aliceCons.consAddr(), Power: 60}, Height: 2, TotalVotingPower: 61}
	res := w.finalize([]abci.Misbehavior{ev}, nil)
	v := w.cv(alice)
	if v.Bonded != 57*agr.Unit || v.Unbonding[0].Amount != 38*agr.Unit {
		t.Fatalf("after 5%% slash: bonded %d unbonding %d", v.Bonded, v.Unbonding[0].Amount)
	}
	if !v.Tombstoned || !v.Jailed {
		t.Fatalf("not tombstoned: %+v", v)
	}
	s := w.supply()
	if s.Slashed != 5*agr.Unit || s.Burned-burnedBefore < 5*agr.Unit {
		t.Fatalf("slashed %d, burned grew %d", s.Slashed, s.Burned-burnedBefore)
	}
	if u := updatesOf(res); u[string(aliceCons.pub())] != 0 || len(u) != 1 {
		t.Fatalf("double signer not removed: %v", u)
	}
	// Replayed evidence, a light-client attack for the same key, and evidence
	// for an unknown key change nothing.
	stranger := newKey(199)
	w.finalize([]abci.Misbehavior{ev, {Type: abci.MisbehaviorType_LIGHT_CLIENT_ATTACK, Validator: abci.Validator{Address: aliceCons.consAddr()}},
		{Type: abci.MisbehaviorType_DUPLICATE_VOTE, Validator: abci.Validator{Address: stranger.consAddr()}},
		{Type: abci.MisbehaviorType_DUPLICATE_VOTE, Validator: abci.Validator{Address: []byte{1, 2, 3}}}}, nil)
	if s2 := w.supply(); s2.Slashed != s.Slashed {
		t.Fatalf("replayed evidence slashed again: %d → %d", s.Slashed, s2.Slashed)
	}
	for _, c := range []struct {
		msg  *tx.Msg
		code uint32
	}{{tx.ChainValidatorUnjail(), tx.CodeTombstoned}, {tx.ChainValidatorBond(agr.Unit), tx.CodeTombstoned}} {
		if r := w.sendCV(alice, c.msg); r.Code != c.code {
			t.Fatalf("tombstoned: code %d (%s), want %d", r.Code, r.Log, c.code)
		}
	}
	// It may still withdraw what is left.
	w.mustCV(alice, tx.ChainValidatorUnbond(57*agr.Unit))
}

func TestDowntimeJailsAtThreshold(t *testing.T) {
	w := newCVWorld(t, func(p *GenesisParams) {
		p.SignedBlocksWindow, p.MaxMissedBlocks, p.DowntimeJailBlocks, p.DowntimeSlashBps = 10, 3, 20, 100
	}, []genVal{{bootOp, bootCons, 0}, {alice, aliceCons, 100 * agr.Unit}}, alice)
	// Misses then signed blocks then misses: the early misses slide out of
	// the window, so the count that jails is the one inside the last N blocks.
	pattern := []bool{true, true, false, false, false, true, true, true, true, true, true, true, false, false, false, false}
	var history []bool
	for i, signed := range pattern {
		history = append(history, !signed)
		inWindow := 0
		for _, m := range history[max(0, len(history)-10):] {
			if m {
				inWindow++
			}
		}
		w.finalize(nil, []abci.VoteInfo{vote(bootCons, true), vote(aliceCons, signed)})
		v := w.cv(alice)
		if inWindow > 3 {
			if i != len(pattern)-1 {
				t.Fatalf("test pattern jails early at block %d", i)
			}
			break
		}
		if v.Jailed || v.Missed != uint64(inWindow) {
			t.Fatalf("block %d: jailed %v, missed %d, want not jailed with %d missed", i, v.Jailed, v.Missed, inWindow)
		}
	}
	v := w.cv(alice)
	if !v.Jailed || v.JailedUntil != uint64(w.height)+20 || v.Missed != 0 {
		t.Fatalf("not jailed at the threshold: %+v", v)
	}
	if v.Bonded != 99*agr.Unit {
		t.Fatalf("downtime slash: bonded %d", v.Bonded)
	}
	if u := updatesOf(w.last); u[string(aliceCons.pub())] != 0 {
		t.Fatalf("jailed validator not removed: %v", u)
	}
	// Votes while jailed (CometBFT keeps it two more blocks) are ignored.
	w.finalize(nil, []abci.VoteInfo{vote(aliceCons, false)})
	if r := w.sendCV(alice, tx.ChainValidatorUnjail()); r.Code != tx.CodeJailed {
		t.Fatalf("early unjail: code %d %s", r.Code, r.Log)
	}
	for uint64(w.height)+1 < v.JailedUntil {
		w.finalize(nil, nil)
	}
	w.mustCV(alice, tx.ChainValidatorUnjail())
	if u := updatesOf(w.last); u[string(aliceCons.pub())] != 99 {
		t.Fatalf("unjail did not return it: %v", u)
	}
	if v := w.cv(alice); v.Missed != 0 || v.WindowSeen != 0 || v.Jailed {
		t.Fatalf("window not reset: %+v", v)
	}
}

func TestInitChainRejectsBadGentx(t *testing.T) {
	good := func() GenesisValidator {
		return SignGenesisValidator(testChain, alice.priv, GenesisValidator{Moniker: "a", ConsensusPubKey: aliceCons.pub(), Bond: 2 * agr.Unit})
	}
	cases := []struct {
		name string
		vals func() []GenesisValidator
		want string
	}{
		{"signed for another chain", func() []GenesisValidator {
			return []GenesisValidator{SignGenesisValidator("other-chain", alice.priv, GenesisValidator{ConsensusPubKey: aliceCons.pub(), Bond: 2 * agr.Unit})}
		}, "signature"},
		{"tampered bond", func() []GenesisValidator { v := good(); v.Bond = 3 * agr.Unit; return []GenesisValidator{v} }, "signature"},
		{"tampered consensus key", func() []GenesisValidator {
			v := good()
			v.ConsensusPubKey = bobCons.pub()
			return []GenesisValidator{v}
		}, "signature"},
		{"duplicate consensus key", func() []GenesisValidator {
			return []GenesisValidator{good(), SignGenesisValidator(testChain, bob.priv, GenesisValidator{ConsensusPubKey: aliceCons.pub()})}
		}, "listed twice"},
		{"duplicate operator", func() []GenesisValidator {
			return []GenesisValidator{good(), SignGenesisValidator(testChain, alice.priv, GenesisValidator{ConsensusPubKey: bobCons.pub()})}
		}, "listed twice"},
		{"bond above balance", func() []GenesisValidator {
			return []GenesisValidator{SignGenesisValidator(testChain, bob.priv, GenesisValidator{ConsensusPubKey: bobCons.pub(), Bond: agr.Unit})}
		}, "exceeds"},
		{"no chain validators", func() []GenesisValidator { return nil }, "no chain validators"},
		{"short consensus key", func() []GenesisValidator {
			return []GenesisValidator{SignGenesisValidator(testChain, alice.priv, GenesisValidator{ConsensusPubKey: aliceCons.pub()[:31]})}
		}, "32, 32 and 64"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			store, _ := state.OpenMem(state.DefaultOptions())
			app, _ := NewApp(store, nil)
			g := Genesis{Params: DefaultParams(1000), Devnet: true, Accounts: []GenesisAccount{{Address: alice.addr, Balance: 10 * agr.Unit}}, Validators: c.vals()}
			raw, _ := json.Marshal(g)
			_, err := app.InitChain(context.Background(), &abci.RequestInitChain{ChainId: testChain, AppStateBytes: raw, InitialHeight: 1})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("InitChain error %v, want one mentioning %q", err, c.want)
			}
		})
	}
}

func TestRandomChainValidatorRun(t *testing.T) {
	a, b := randomChainValidatorRun(t, 7), randomChainValidatorRun(t, 7)
	if string(a) != string(b) {
		t.Fatalf("same run, different app hashes: %X vs %X", a, b)
	}
}

// randomChainValidatorRun mixes every chain validator message, transfers,
// evidence and missed votes at random, checking the supply invariant, the
// records' totals and the update list after every block, and returns the
// final app hash (two runs of one seed must agree: determinism).
func randomChainValidatorRun(t *testing.T, seed uint64) []byte {
	t.Helper()
	ops := make([]testKey, 6)
	cons := make([]testKey, 6)
	for i := range ops {
		ops[i], cons[i] = newKey(byte(30+i)), newKey(byte(130+i))
	}
	w := newCVWorld(t, func(p *GenesisParams) {
		p.UnbondingBlocks, p.SignedBlocksWindow, p.MaxMissedBlocks, p.DowntimeJailBlocks, p.MaxChainValidators = 4, 6, 2, 3, 3
		p.DowntimeSlashBps = 333
	}, []genVal{{bootOp, bootCons, 0}}, ops...)
	rng := rand.New(rand.NewPCG(seed, 2))
	codes := map[uint32]int{}
	for range 150 {
		i := rng.IntN(len(ops))
		amt := uint64(rng.IntN(5)+1)*agr.Unit + uint64(rng.IntN(1000))
		var m *tx.Msg
		switch rng.IntN(6) {
		case 0:
			m = createMsg(ops[i], cons[i], amt)
		case 1:
			m = tx.ChainValidatorBond(amt)
		case 2:
			m = tx.ChainValidatorUnbond(amt / 2)
		case 3:
			m = tx.ChainValidatorUnjail()
		case 4:
			m = tx.Transfer(ops[(i+1)%len(ops)].addr, amt)
		default:
			m = tx.ChainValidatorEdit("n")
		}
		acc, _ := bank.GetAccount(w.store.Committed(), ops[i].addr)
		raw, err := tx.Sign(ops[i].priv, &tx.TxBody{ChainId: testChain, Nonce: acc.Nonce, Fee: fee, Msgs: []*tx.Msg{m}})
		if err != nil {
			t.Fatal(err)
		}
		var misb []abci.Misbehavior
		if rng.IntN(25) == 0 {
			misb = append(misb, abci.Misbehavior{Type: abci.MisbehaviorType_DUPLICATE_VOTE, Validator: abci.Validator{Address: cons[rng.IntN(len(cons))].consAddr()}})
		}
		var votes []abci.VoteInfo
		for j := range cons {
			votes = append(votes, vote(cons[j], rng.IntN(3) != 0))
		}
		res := w.finalize(misb, votes, raw)
		codes[res.TxResults[0].Code]++
		seen := map[string]bool{}
		for _, u := range res.ValidatorUpdates {
			if u.Power < 0 || seen[string(u.PubKey.GetEd25519())] {
				t.Fatalf("height %d: bad update list %v", w.height, res.ValidatorUpdates)
			}
			seen[string(u.PubKey.GetEd25519())] = true
		}
		if len(w.set()) == 0 {
			t.Fatalf("height %d: empty active set stored", w.height)
		}
	}
	if codes[tx.CodeOK] < 30 || w.supply().Slashed == 0 {
		t.Fatalf("run too tame to mean anything: codes %v, slashed %d", codes, w.supply().Slashed)
	}
	return w.store.Hash()
}

func TestUnbondingEntriesBounded(t *testing.T) {
	w := newCVWorld(t, func(p *GenesisParams) { p.UnbondingBlocks = 1000 }, []genVal{{bootOp, bootCons, 0}, {alice, aliceCons, 100 * agr.Unit}}, alice)
	for range chainval.MaxUnbondingEntries {
		w.mustCV(alice, tx.ChainValidatorUnbond(agr.Unit))
	}
	if r := w.sendCV(alice, tx.ChainValidatorUnbond(agr.Unit)); r.Code != tx.CodeFull {
		t.Fatalf("entry %d: code %d (%s), want CodeFull", chainval.MaxUnbondingEntries+1, r.Code, r.Log)
	}
	// A tombstoned operator cannot come back under a fresh consensus key.
	w.finalize([]abci.Misbehavior{{Type: abci.MisbehaviorType_DUPLICATE_VOTE, Validator: abci.Validator{Address: aliceCons.consAddr()}}}, nil)
	if r := w.sendCV(alice, createMsg(alice, newKey(120), 2*agr.Unit)); r.Code != tx.CodeExists {
		t.Fatalf("re-create after tombstone: code %d (%s)", r.Code, r.Log)
	}
}

func TestChainValidatorQueries(t *testing.T) {
	w := newCVWorld(t, nil, []genVal{{bootOp, bootCons, 0}, {alice, aliceCons, 3 * agr.Unit}}, alice)
	w.finalize(nil, nil)
	for _, path := range []string{tx.QueryChainValidator + alice.addr.String(), tx.QueryChainValidator + bob.addr.String(), tx.QueryValidatorSet} {
		res, err := w.app.Query(context.Background(), &abci.RequestQuery{Path: path, Prove: true})
		if err != nil || res.Code != tx.CodeOK || res.ProofOps == nil {
			t.Fatalf("%s: %v %d %s", path, err, res.Code, res.Log)
		}
		p, err := w.store.Query(res.Key, res.Height, true)
		if err != nil {
			t.Fatal(err)
		}
		var val []byte
		if len(res.Value) > 0 {
			val = res.Value
		}
		if err := proof.Verify(w.store.Hash(), p.Proof, res.Key, val); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	res, err := w.app.Query(context.Background(), &abci.RequestQuery{Path: tx.QueryChainValidators})
	if err != nil || res.Code != tx.CodeOK {
		t.Fatalf("list: %v %d %s", err, res.Code, res.Log)
	}
	l := &tx.ChainValidatorList{}
	if err := proto.Unmarshal(res.Value, l); err != nil || len(l.Validators) != 2 || l.Height != w.height {
		t.Fatalf("list %v %v", l, err)
	}
}
