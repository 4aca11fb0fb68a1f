package chain

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"slices"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/proof"
	"github.com/agoranet/agora/chain/state"
	"github.com/agoranet/agora/chain/tx"
)

const testChain = "agora-test"

type testKey struct {
	priv ed25519.PrivateKey
	addr address.Address
}

func newKey(seed byte) testKey {
	s := make([]byte, 32)
	s[0] = seed
	priv := ed25519.NewKeyFromSeed(s)
	return testKey{priv: priv, addr: address.FromPubKey(priv.Public().(ed25519.PublicKey))}
}

type harness struct {
	t      *testing.T
	app    *App
	store  *state.Store
	height int64
	events []abci.Event // the last block's end-block events
}

func newHarness(t *testing.T, balances map[address.Address]uint64) *harness {
	t.Helper()
	store, err := state.OpenMem(state.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	return newHarnessOn(t, store, balances)
}

func newHarnessOn(t *testing.T, store *state.Store, balances map[address.Address]uint64) *harness {
	t.Helper()
	app, err := NewApp(store, nil)
	if err != nil {
		t.Fatal(err)
	}
	g := Genesis{Params: DefaultParams(1000), Devnet: true, Validators: []GenesisValidator{bootstrapValidator(testChain)}}
	for k, b := range balances {
		g.Accounts = append(g.Accounts, GenesisAccount{Address: k, Balance: b})
	}
	raw, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.InitChain(context.Background(), &abci.RequestInitChain{ChainId: testChain, AppStateBytes: raw, InitialHeight: 1}); err != nil {
		t.Fatalf("InitChain: %v", err)
	}
	return &harness{t: t, app: app, store: store}
}

// block finalizes and commits one block of txs, returning their results.
func (h *harness) block(txs ...[]byte) []*abci.ExecTxResult {
	h.t.Helper()
	h.height++
	res, err := h.app.FinalizeBlock(context.Background(), &abci.RequestFinalizeBlock{Height: h.height, Txs: txs})
	if err != nil {
		h.t.Fatalf("FinalizeBlock %d: %v", h.height, err)
	}
	if _, err := h.app.Commit(context.Background(), &abci.RequestCommit{}); err != nil {
		h.t.Fatalf("Commit %d: %v", h.height, err)
	}
	if !bytes.Equal(res.AppHash, h.store.Hash()) {
		h.t.Fatalf("FinalizeBlock app hash %X != committed root %X", res.AppHash, h.store.Hash())
	}
	h.events = res.Events
	return res.TxResults
}

func (h *harness) check(raw []byte) *abci.ResponseCheckTx {
	h.t.Helper()
	res, err := h.app.CheckTx(context.Background(), &abci.RequestCheckTx{Tx: raw, Type: abci.CheckTxType_New})
	if err != nil {
		h.t.Fatalf("CheckTx returned a Go error: %v", err)
	}
	return res
}

func (h *harness) balance(k testKey) uint64 {
	h.t.Helper()
	acc, err := bank.GetAccount(h.store.Committed(), k.addr)
	if err != nil {
		h.t.Fatal(err)
	}
	return acc.Balance
}

func (h *harness) supply() *tx.Supply {
	h.t.Helper()
	s, err := loadSupply(h.store.Committed())
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func signTransfer(t *testing.T, from testKey, to address.Address, amount, nonce, fee uint64) []byte {
	t.Helper()
	raw, err := tx.Sign(from.priv, &tx.TxBody{ChainId: testChain, Nonce: nonce, Fee: fee, Msgs: []*tx.Msg{tx.Transfer(to, amount)}})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

const fee = 1_000_000

// bootstrapValidator is a genesis chain validator with no bond, so a test
// chain can start; its keys are outside every test's key range.
func bootstrapValidator(chainID string) GenesisValidator {
	op, cons := newKey(250), newKey(251)
	return SignGenesisValidator(chainID, op.priv, GenesisValidator{Moniker: "bootstrap", ConsensusPubKey: cons.priv.Public().(ed25519.PublicKey)})
}

func TestTransferChargesFeeAndMoves(t *testing.T) {
	alice, bob := newKey(1), newKey(2)
	h := newHarness(t, map[address.Address]uint64{alice.addr: 10_000_000})
	res := h.block(signTransfer(t, alice, bob.addr, 4_000_000, 0, fee))
	if res[0].Code != tx.CodeOK {
		t.Fatalf("transfer failed: %d %s", res[0].Code, res[0].Log)
	}
	if got := h.balance(alice); got != 10_000_000-4_000_000-fee {
		t.Fatalf("alice balance %d", got)
	}
	if got := h.balance(bob); got != 4_000_000 {
		t.Fatalf("bob balance %d", got)
	}
	if s := h.supply(); s.Burned != fee {
		t.Fatalf("burned %d, want %d", s.Burned, fee)
	}
}

func TestRejections(t *testing.T) {
	alice, bob := newKey(1), newKey(2)
	wrongChain, _ := tx.Sign(alice.priv, &tx.TxBody{ChainId: "other", Fee: fee, Msgs: []*tx.Msg{tx.Transfer(bob.addr, 1)}})
	badSig := signTransfer(t, alice, bob.addr, 1, 0, fee)
	d, _ := tx.Decode(badSig)
	forged, _ := tx.Marshal(&tx.Tx{Body: d.BodyBytes, Signature: append([]byte{d.Signature[0] ^ 1}, d.Signature[1:]...)})
	cases := []struct {
		name string
		raw  []byte
		code uint32
	}{
		{"garbage", []byte{0xff, 0x01, 0x02}, tx.CodeMalformed},
		{"empty", nil, tx.CodeMalformed},
		{"bad signature", forged, tx.CodeBadSignature},
		{"wrong chain", wrongChain, tx.CodeWrongChain},
		{"future nonce", signTransfer(t, alice, bob.addr, 1, 5, fee), tx.CodeBadNonce},
		{"fee too low", signTransfer(t, alice, bob.addr, 1, 0, fee-1), tx.CodeFeeTooLow},
		{"cannot pay fee", signTransfer(t, bob, alice.addr, 1, 0, fee), tx.CodeInsufficientFunds},
		{"insufficient funds", signTransfer(t, alice, bob.addr, 50_000_000, 0, fee), tx.CodeInsufficientFunds},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, map[address.Address]uint64{alice.addr: 10_000_000})
			if got := h.check(c.raw); got.Code != c.code || got.Log == "" {
				t.Fatalf("CheckTx code %d (%q), want %d with a log", got.Code, got.Log, c.code)
			}
		})
	}
}

func TestReplayRejected(t *testing.T) {
	alice, bob := newKey(1), newKey(2)
	h := newHarness(t, map[address.Address]uint64{alice.addr: 10_000_000})
	raw := signTransfer(t, alice, bob.addr, 1_000, 0, fee)
	if r := h.block(raw); r[0].Code != tx.CodeOK {
		t.Fatalf("first: %d %s", r[0].Code, r[0].Log)
	}
	if got := h.check(raw); got.Code != tx.CodeBadNonce {
		t.Fatalf("replay CheckTx code %d, want %d", got.Code, tx.CodeBadNonce)
	}
	// A byzantine proposer could still include it: execution must refuse too.
	if r := h.block(raw); r[0].Code != tx.CodeBadNonce {
		t.Fatalf("replay in block code %d, want %d", r[0].Code, tx.CodeBadNonce)
	}
	if got := h.balance(bob); got != 1_000 {
		t.Fatalf("bob balance %d after replay, want 1000", got)
	}
}

func TestFailedMessageStillPaysFee(t *testing.T) {
	alice, bob := newKey(1), newKey(2)
	h := newHarness(t, map[address.Address]uint64{alice.addr: 10_000_000})
	// Passes the fee check but the transfer itself overdraws.
	r := h.block(signTransfer(t, alice, bob.addr, 9_500_000, 0, fee))
	if r[0].Code != tx.CodeInsufficientFunds {
		t.Fatalf("code %d, want insufficient funds", r[0].Code)
	}
	if got := h.balance(alice); got != 10_000_000-fee {
		t.Fatalf("alice %d, want fee charged only", got)
	}
	if got := h.balance(bob); got != 0 {
		t.Fatalf("bob %d, want 0", got)
	}
	// The nonce advanced, so nonce 1 is next.
	if r := h.block(signTransfer(t, alice, bob.addr, 1, 1, fee)); r[0].Code != tx.CodeOK {
		t.Fatalf("next nonce: %d %s", r[0].Code, r[0].Log)
	}
}

func TestCheckTxPendingView(t *testing.T) {
	alice, bob := newKey(1), newKey(2)
	h := newHarness(t, map[address.Address]uint64{alice.addr: 10_000_000})
	var txs [][]byte
	for n := uint64(0); n < 5; n++ {
		raw := signTransfer(t, alice, bob.addr, 100_000, n, fee)
		if r := h.check(raw); r.Code != tx.CodeOK {
			t.Fatalf("nonce %d: %d %s", n, r.Code, r.Log)
		}
		txs = append(txs, raw)
	}
	// The pending view already spent 5.5M; 5M more does not fit.
	if r := h.check(signTransfer(t, alice, bob.addr, 5_000_000, 5, fee)); r.Code != tx.CodeInsufficientFunds {
		t.Fatalf("overspend across pending txs: code %d", r.Code)
	}
	for i, r := range h.block(txs...) {
		if r.Code != tx.CodeOK {
			t.Fatalf("tx %d: %d %s", i, r.Code, r.Log)
		}
	}
	if got := h.balance(bob); got != 500_000 {
		t.Fatalf("bob %d", got)
	}
}

func TestEmissionAndSupplyReconcile(t *testing.T) {
	alice, bob := newKey(1), newKey(2)
	h := newHarness(t, map[address.Address]uint64{alice.addr: 10_000_000})
	base := DefaultParams(1000).BlockRewardBase
	for n := uint64(0); n < 10; n++ {
		h.block(signTransfer(t, alice, bob.addr, 1, n, fee))
		s := h.supply()
		if s.LastBlockEmission != base {
			t.Fatalf("block emission %d, want %d", s.LastBlockEmission, base)
		}
		// Every base unit is accounted for: balances + pending pool = genesis + minted − burned.
		total := h.balance(alice) + h.balance(bob) + s.PendingEmission
		if total != s.Genesis+s.Minted-s.Burned {
			t.Fatalf("height %d: balances+pending %d != genesis+minted-burned %d", h.height, total, s.Genesis+s.Minted-s.Burned)
		}
	}
	if s := h.supply(); s.Minted != 10*base {
		t.Fatalf("minted %d, want %d", s.Minted, 10*base)
	}
}

func TestRestartKeepsState(t *testing.T) {
	alice, bob := newKey(1), newKey(2)
	dir := t.TempDir()
	store, err := state.Open(dir, state.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	h := newHarnessOn(t, store, map[address.Address]uint64{alice.addr: 10_000_000})
	h.block(signTransfer(t, alice, bob.addr, 7, 0, fee))
	h.block()
	hash, height := store.Hash(), store.Version()
	// Uncommitted work must vanish on restart: persist only in Commit.
	if _, err := h.app.FinalizeBlock(context.Background(), &abci.RequestFinalizeBlock{Height: 3, Txs: [][]byte{signTransfer(t, alice, bob.addr, 9, 1, fee)}}); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	store2, err := state.Open(dir, state.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer store2.Close()
	app2, err := NewApp(store2, nil)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := app2.Info(context.Background(), &abci.RequestInfo{})
	if info.LastBlockHeight != height || !bytes.Equal(info.LastBlockAppHash, hash) {
		t.Fatalf("after restart: height %d hash %X, want %d %X", info.LastBlockHeight, info.LastBlockAppHash, height, hash)
	}
	acc, _ := bank.GetAccount(store2.Committed(), bob.addr)
	if acc.Balance != 7 {
		t.Fatalf("bob %d after restart, want 7", acc.Balance)
	}
	if app2.chainID != testChain {
		t.Fatalf("chain id %q after restart", app2.chainID)
	}
}

// TestDeterministicAppHash runs the same blocks on two independent apps.
func TestDeterministicAppHash(t *testing.T) {
	keys := []testKey{newKey(1), newKey(2), newKey(3), newKey(4)}
	bal := map[address.Address]uint64{}
	for _, k := range keys {
		bal[k.addr] = 1_000_000_000
	}
	a, b := newHarness(t, bal), newHarness(t, bal)
	for round := uint64(0); round < 5; round++ {
		var txs [][]byte
		for i, k := range keys {
			to := keys[(i+1+int(round))%len(keys)].addr
			txs = append(txs, signTransfer(t, k, to, 1000*(round+1), round, fee))
		}
		a.block(txs...)
		b.block(txs...)
		if !bytes.Equal(a.store.Hash(), b.store.Hash()) {
			t.Fatalf("round %d: app hashes diverge", round)
		}
	}
}

func TestQueryWithProof(t *testing.T) {
	alice, bob := newKey(1), newKey(2)
	h := newHarness(t, map[address.Address]uint64{alice.addr: 10_000_000})
	h.block(signTransfer(t, alice, bob.addr, 5, 0, fee))
	for _, path := range []string{tx.QueryAccount + alice.addr.String(), tx.QueryAccount + newKey(9).addr.String(), tx.QuerySupply, tx.QueryParams} {
		res, err := h.app.Query(context.Background(), &abci.RequestQuery{Path: path, Prove: true})
		if err != nil || res.Code != tx.CodeOK {
			t.Fatalf("%s: %v %d %s", path, err, res.Code, res.Log)
		}
		p, err := h.store.Query(res.Key, res.Height, true)
		if err != nil {
			t.Fatal(err)
		}
		var val []byte
		if len(res.Value) > 0 {
			val = res.Value
		}
		if err := proof.Verify(h.store.Hash(), p.Proof, res.Key, val); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		// A tampered value must not verify.
		bad := append(append([]byte(nil), val...), 1)
		if proof.Verify(h.store.Hash(), p.Proof, res.Key, bad) == nil {
			t.Fatalf("%s: tampered value verified", path)
		}
	}
	res, _ := h.app.Query(context.Background(), &abci.RequestQuery{Path: "/nope"})
	if res.Code != tx.CodeUnknownQuery {
		t.Fatalf("unknown path code %d", res.Code)
	}
}

func FuzzCheckTx(f *testing.F) {
	alice, bob := newKey(1), newKey(2)
	f.Add([]byte{})
	f.Add(signTransfer(&testing.T{}, alice, bob.addr, 5, 0, fee))
	f.Add(binary.AppendUvarint(nil, 1<<40))
	store, _ := state.OpenMem(state.DefaultOptions())
	h := newHarnessOn(&testing.T{}, store, map[address.Address]uint64{alice.addr: 10_000_000})
	f.Fuzz(func(t *testing.T, raw []byte) {
		res, err := h.app.CheckTx(context.Background(), &abci.RequestCheckTx{Tx: raw, Type: abci.CheckTxType_New})
		if err != nil {
			t.Fatalf("CheckTx returned a Go error: %v", err)
		}
		if res.Code != tx.CodeOK && res.Log == "" {
			t.Fatalf("rejection without a log message (code %d)", res.Code)
		}
	})
}

// TestSignerEvent: every fee-paying transaction, failed or not, carries an
// indexed tx.signer event (what the explorer's account page searches), and
// a failed one reports no events of the messages whose writes it dropped.
func TestSignerEvent(t *testing.T) {
	alice, bob := newKey(1), newKey(2)
	h := newHarness(t, map[address.Address]uint64{alice.addr: 10_000_000})
	ok := tx.Transfer(bob.addr, 1_000)
	overdraw := tx.Transfer(bob.addr, 50_000_000)
	failed, err := tx.Sign(alice.priv, &tx.TxBody{ChainId: testChain, Nonce: 1, Fee: 2 * fee, Msgs: []*tx.Msg{ok, overdraw}})
	if err != nil {
		t.Fatal(err)
	}
	res := h.block(signTransfer(t, alice, bob.addr, 1_000, 0, fee), failed)
	for i, want := range []struct {
		code   uint32
		events []string
	}{{tx.CodeOK, []string{"tx", "transfer"}}, {tx.CodeInsufficientFunds, []string{"tx"}}} {
		if res[i].Code != want.code {
			t.Fatalf("tx %d: code %d (%s), want %d", i, res[i].Code, res[i].Log, want.code)
		}
		var types []string
		for _, e := range res[i].Events {
			types = append(types, e.Type)
		}
		if !slices.Equal(types, want.events) {
			t.Fatalf("tx %d: events %v, want %v", i, types, want.events)
		}
		signer := res[i].Events[0].Attributes[0]
		if signer.Key != "signer" || signer.Value != alice.addr.String() || !signer.Index {
			t.Fatalf("tx %d: signer attribute %+v", i, signer)
		}
	}
}
