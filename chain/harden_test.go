package chain

import (
	"context"
	"crypto/ed25519"
	"errors"
	"math"
	"strings"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/channel"
	"github.com/agoranet/agora/chain/state"
	"github.com/agoranet/agora/chain/subnet"
	"github.com/agoranet/agora/chain/tx"
)

// TestDelegatedVoucherLimitsOnChain (issue 10, hole 11): a voucher signed by
// a session key binds the delegation's expiry and subnets on chain, not only
// in the gateway that accepted it.
func TestDelegatedVoucherLimitsOnChain(t *testing.T) {
	const chID = 1
	payer, gateway := newKey(50), newKey(51)
	session := ed25519.NewKeyFromSeed(make([]byte, 32))
	delegate := func(expiry uint64, netuids ...uint32) *tx.Delegation {
		return tx.Delegate(payer.priv, testChain, chID, session.Public().(ed25519.PublicKey), 1_000_000, expiry, netuids)
	}
	voucher := func(d *tx.Delegation, amount uint64) *tx.Voucher {
		return tx.SignDelegatedVoucher(session, testChain, d, amount)
	}
	// setup opens channel 1 on subnet 1 and returns a reader of its claimed total.
	setup := func(t *testing.T) (*world, func() uint64) {
		c := newCast()
		w := newWorld(t, fastSubnet(), c.owner, c.valCold, c.minerCold, c.valHot, payer, gateway)
		w.openSubnet(c, 1_000_000_000)
		w.mustSend(payer, openMsg(gateway, 1_000_000, uint64(w.height)+200))
		return w, func() uint64 {
			ch, err := channel.Get(w.store.Committed(), chID)
			if err != nil {
				t.Fatal(err)
			}
			return ch.Claimed
		}
	}

	t.Run("in range", func(t *testing.T) {
		w, claimed := setup(t)
		// The channel's subnet is listed (or the list is empty) and the
		// claim lands before the expiry height.
		w.mustSend(gateway, claimMsg(voucher(delegate(uint64(w.height)+50, 1, 7), 100)))
		w.mustSend(gateway, claimMsg(voucher(delegate(uint64(w.height)+50), 200)))
		exp := uint64(w.height) + 2 // included at exp−1: the last block it is good for
		w.mustSend(gateway, claimMsg(voucher(delegate(exp, 1), 300)))
		if got := claimed(); got != 300 {
			t.Fatalf("in-range delegated claims settled %d, want 300", got)
		}
	})

	t.Run("subnet not in the delegation", func(t *testing.T) {
		w, claimed := setup(t)
		r := w.send(gateway, claimMsg(voucher(delegate(uint64(w.height)+50, 2, 3), 300)))
		if r.Code != tx.CodeUnauthorized || !strings.Contains(r.Log, "subnet 1") {
			t.Fatalf("delegation for subnets 2,3 claimed on subnet 1: code %d (%s)", r.Code, r.Log)
		}
		if got := claimed(); got != 0 {
			t.Fatalf("refused claim settled %d", got)
		}
	})

	t.Run("after expiry", func(t *testing.T) {
		w, claimed := setup(t)
		// The claim tx is included at height ≥ expiry_height: the boundary
		// block itself is already too late.
		exp := uint64(w.height) + 3
		short := delegate(exp, 1)
		for uint64(w.height)+1 < exp {
			w.step()
		}
		if r := w.send(gateway, claimMsg(voucher(short, 400))); r.Code != tx.CodeUnauthorized || !strings.Contains(r.Log, "expired") {
			t.Fatalf("claim included at the expiry height %d: code %d (%s)", exp, r.Code, r.Log)
		}
		w.steps(2)
		if r := w.send(gateway, claimMsg(voucher(short, 400))); r.Code != tx.CodeUnauthorized {
			t.Fatalf("claim after expiry: code %d (%s)", r.Code, r.Log)
		}
		if got := claimed(); got != 0 {
			t.Fatalf("refused claims settled %d", got)
		}
		// The payer's own signature carries no delegation limits.
		w.mustSend(gateway, claimMsg(tx.SignVoucher(payer.priv, testChain, chID, 500)))
		if got := claimed(); got != 500 {
			t.Fatalf("payer-signed claim settled %d, want 500", got)
		}
	})
}

// TestSetParamsOutOfBoundsRefused (hole 13): every hyperparameter bound,
// one row each, and the attack (free registration, 4096 × 4096,
// tempo 1) sent as a real transaction.
func TestSetParamsOutOfBoundsRefused(t *testing.T) {
	rows := []struct {
		name string
		mod  func(p *tx.SubnetParams)
	}{
		{"tempo 0", func(p *tx.SubnetParams) { p.Tempo = 0 }},
		{"tempo above max", func(p *tx.SubnetParams) { p.Tempo = subnet.MaxTempo + 1 }},
		{"max_uids 0", func(p *tx.SubnetParams) { p.MaxUids = 0 }},
		{"max_uids above limit", func(p *tx.SubnetParams) { p.MaxUids, p.Tempo = subnet.MaxUIDsLimit+1, subnet.MaxTempo }},
		{"max_validators 0", func(p *tx.SubnetParams) { p.MaxValidators = 0 }},
		{"max_validators above max_uids", func(p *tx.SubnetParams) { p.MaxUids, p.MaxValidators = 16, 17 }},
		{"max_validators above limit", func(p *tx.SubnetParams) {
			p.MaxUids, p.MaxValidators, p.Tempo = subnet.MaxUIDsLimit, subnet.MaxValidatorsLimit+1, subnet.MaxTempo
		}},
		{"big subnet, short tempo", func(p *tx.SubnetParams) { p.MaxUids, p.Tempo = subnet.MaxUIDsLimit, 15 }},
		{"immunity_period", func(p *tx.SubnetParams) { p.ImmunityPeriod = subnet.MaxPeriod + 1 }},
		{"activity_cutoff", func(p *tx.SubnetParams) { p.ActivityCutoff = math.MaxUint64 }},
		{"weights_rate_limit", func(p *tx.SubnetParams) { p.WeightsRateLimit = subnet.MaxPeriod + 1 }},
		{"serving_rate_limit", func(p *tx.SubnetParams) { p.ServingRateLimit = math.MaxUint64 }},
		{"reveal_period", func(p *tx.SubnetParams) { p.RevealPeriod = subnet.MaxRevealPeriod + 1 }},
		{"reveal_period 0 under commit-reveal", func(p *tx.SubnetParams) { p.CommitReveal, p.RevealPeriod = true, 0 }},
		{"free registration", func(p *tx.SubnetParams) { p.MinBurn = 0 }},
		{"min_burn below floor", func(p *tx.SubnetParams) { p.MinBurn = subnet.MinBurnFloor - 1 }},
		{"max_burn above the cap", func(p *tx.SubnetParams) { p.MaxBurn = subnet.MaxBurnLimit + 1 }},
		{"min_burn above max_burn", func(p *tx.SubnetParams) { p.MinBurn, p.MaxBurn = 2*subnet.MinBurnFloor, subnet.MinBurnFloor }},
		{"stake_threshold above the cap", func(p *tx.SubnetParams) { p.StakeThreshold = math.MaxUint64 }},
		{"kappa", func(p *tx.SubnetParams) { p.Kappa = 65536 }},
		{"bonds_penalty", func(p *tx.SubnetParams) { p.BondsPenalty = 65536 }},
		{"bonds_moving_average", func(p *tx.SubnetParams) { p.BondsMovingAverage = 1_000_001 }},
		{"min_allowed_weights above max_uids", func(p *tx.SubnetParams) { p.MinAllowedWeights = p.MaxUids + 1 }},
		{"yuma_version", func(p *tx.SubnetParams) { p.YumaVersion = 1 }},
		{"model_id", func(p *tx.SubnetParams) { p.ModelId = "not-a-hash" }},
	}
	if err := subnet.ValidateParams(subnet.DefaultSubnetParams()); err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			p := subnet.DefaultSubnetParams()
			r.mod(p)
			if err := subnet.ValidateParams(p); !errors.Is(err, subnet.ErrInvalid) {
				t.Fatalf("accepted (err %v)", err)
			}
		})
	}
	// The largest subnet the bounds allow is accepted (the benchmark's case).
	big := subnet.DefaultSubnetParams()
	big.MaxUids, big.MaxValidators, big.Tempo = subnet.MaxUIDsLimit, subnet.MaxValidatorsLimit, subnet.MaxUIDsLimit*subnet.MaxUIDsLimit/subnet.EpochCellsPerBlock
	if err := subnet.ValidateParams(big); err != nil {
		t.Fatalf("largest allowed subnet refused: %v", err)
	}

	owner, ownerHot := newKey(10), newKey(11)
	w := newWorld(t, fastSubnet(), owner)
	w.mustSend(owner, registerSubnetMsg(owner, ownerHot))
	attack := subnet.DefaultSubnetParams()
	attack.MinBurn, attack.MaxBurn = 0, 0
	attack.MaxUids, attack.MaxValidators, attack.Tempo = 4096, 4096, 1
	r := w.send(owner, &tx.Msg{Sum: &tx.Msg_SubnetSetParams{SubnetSetParams: &tx.MsgSubnetSetParams{Netuid: 1, Params: attack}}})
	if r.Code != tx.CodeInvalid {
		t.Fatalf("4096 UIDs × 4096 validators at tempo 1 with free registration: code %d (%s)", r.Code, r.Log)
	}
	if got := w.metagraph(1).Subnet.Params; got.MaxUids != fastSubnet().MaxUids || got.Tempo != fastSubnet().Tempo {
		t.Fatalf("refused params were written: %+v", got)
	}
}

// TestWeightsFeeGrowsWithEntries (hole 13): a weight vector pays per entry
// beyond the first tx.EntriesPerFee, so a max-size one costs far more than a
// transfer, and the flat fee alone is refused.
func TestWeightsFeeGrowsWithEntries(t *testing.T) {
	p := DefaultParams(1000).proto()
	weights := func(n int) *tx.Msg {
		uids, vals := make([]uint32, n), make([]uint32, n)
		for i := range n {
			uids[i], vals[i] = uint32(i), 1
		}
		return setWeightsMsg(1, uids, vals)
	}
	transfer, err := tx.TxFee(p, []*tx.Msg{tx.Transfer(newKey(2).addr, 1)})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		entries int
		want    uint64
	}{
		{1, p.FeeDefault},
		{tx.EntriesPerFee, p.FeeDefault},
		{tx.EntriesPerFee + 1, p.FeeDefault + (p.FeeDefault+tx.EntriesPerFee-1)/tx.EntriesPerFee},
		{tx.MaxWeights, p.FeeDefault * tx.MaxWeights / tx.EntriesPerFee},
	}
	for _, c := range cases {
		got, err := tx.TxFee(p, []*tx.Msg{weights(c.entries)})
		if err != nil || got != c.want {
			t.Errorf("%d entries: fee %d (%v), want %d", c.entries, got, err, c.want)
		}
	}
	maxFee, _ := tx.TxFee(p, []*tx.Msg{weights(tx.MaxWeights)})
	if maxFee < 60*transfer {
		t.Fatalf("a %d-entry weights message costs %d, a transfer %d", tx.MaxWeights, maxFee, transfer)
	}
	// Reveals are priced the same way.
	reveal := &tx.Msg{Sum: &tx.Msg_WeightsReveal{WeightsReveal: &tx.MsgWeightsReveal{Netuid: 1, Uids: weights(tx.MaxWeights).GetWeightsSet().Uids, Values: weights(tx.MaxWeights).GetWeightsSet().Values}}}
	if f, _ := tx.TxFee(p, []*tx.Msg{reveal}); f != maxFee {
		t.Fatalf("max-size reveal costs %d, set %d", f, maxFee)
	}

	// The chain enforces it: the flat fee for a max-size vector is refused.
	alice := newKey(1)
	h := newHarness(t, map[address.Address]uint64{alice.addr: 10_000_000_000})
	raw, err := tx.Sign(alice.priv, &tx.TxBody{ChainId: testChain, Fee: p.FeeDefault, Msgs: []*tx.Msg{weights(tx.MaxWeights)}})
	if err != nil {
		t.Fatal(err)
	}
	if r := h.check(raw); r.Code != tx.CodeFeeTooLow {
		t.Fatalf("max-size weights at the flat fee: code %d (%s)", r.Code, r.Log)
	}
	raw, _ = tx.Sign(alice.priv, &tx.TxBody{ChainId: testChain, Fee: maxFee, Msgs: []*tx.Msg{weights(tx.MaxWeights)}})
	if r := h.check(raw); r.Code == tx.CodeFeeTooLow {
		t.Fatalf("max-size weights at the per-entry fee still too low: %s", r.Log)
	}
	// Fee sums never wrap: absurd fees refuse with a code.
	huge := DefaultParams(1000).proto()
	huge.FeeDefault = math.MaxUint64 / 2
	if _, err := tx.TxFee(huge, []*tx.Msg{weights(1), weights(1), weights(1)}); err == nil {
		t.Fatal("a fee sum past 2^64 did not fail")
	}
	if tx.RequiredFee(huge, []*tx.Msg{weights(1), weights(1), weights(1)}) != math.MaxUint64 {
		t.Fatal("tx.RequiredFee wrapped instead of saturating")
	}
}

// inject writes raw state behind the app's back, as corruption or a bug would.
func inject(t *testing.T, w *world, f func(kv state.KV)) {
	t.Helper()
	blk := w.store.NewBlock()
	f(blk)
	if err := blk.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.store.Commit(); err != nil {
		t.Fatal(err)
	}
	w.height = w.store.Version()
	w.app.resetCheckState()
}

// TestInvariantHaltsOnInjectedNegative (hole 13): a claim against an escrow
// total the supply record no longer covers would wrap Escrowed; instead the
// block fails with a clear invariant message and nothing is committed.
func TestInvariantHaltsOnInjectedNegative(t *testing.T) {
	c := newCast()
	payer, gateway := newKey(50), newKey(51)
	w := newWorld(t, fastSubnet(), c.owner, c.valCold, c.minerCold, c.valHot, payer, gateway)
	w.openSubnet(c, 1_000_000_000)
	w.mustSend(payer, openMsg(gateway, 1_000_000, uint64(w.height)+100))
	inject(t, w, func(kv state.KV) {
		s, err := bank.GetSupply(kv)
		if err != nil {
			t.Fatal(err)
		}
		s.Escrowed = 10 // less than the channel's deposit
		if err := bank.SetSupply(kv, s); err != nil {
			t.Fatal(err)
		}
	})
	hash := w.store.Hash()
	acc, _ := bank.GetAccount(w.store.Committed(), gateway.addr)
	raw, err := tx.Sign(gateway.priv, &tx.TxBody{ChainId: testChain, Nonce: acc.Nonce, Fee: fee,
		Msgs: []*tx.Msg{claimMsg(tx.SignVoucher(payer.priv, testChain, 1, 500_000))}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.app.FinalizeBlock(context.Background(), &abci.RequestFinalizeBlock{Height: w.height + 1, Txs: [][]byte{raw}})
	if !errors.Is(err, bank.ErrInvariant) || !strings.Contains(err.Error(), "escrowed would go negative") {
		t.Fatalf("FinalizeBlock over a broken escrow total: %v, want an invariant violation naming escrowed", err)
	}
	if s, _ := bank.GetSupply(w.store.Committed()); s.Escrowed != 10 || string(w.store.Hash()) != string(hash) {
		t.Fatalf("state moved after the violation: escrowed %d", s.Escrowed)
	}
	// CheckTx refuses the same tx with a code instead of crashing the mempool.
	if r := w.check(raw); r.Code != tx.CodeInternal || !strings.Contains(r.Log, "invariant") {
		t.Fatalf("CheckTx over a broken escrow: code %d (%s)", r.Code, r.Log)
	}
}

// TestOverflowRefusedNotWrapped (hole 1, chain part): an amount that would
// not fit is refused with tx.CodeOverflow and changes nothing.
func TestOverflowRefusedNotWrapped(t *testing.T) {
	c := newCast()
	payer, gateway := newKey(50), newKey(51)
	const near = math.MaxUint64 - 5
	rows := []struct {
		name   string
		inject func(t *testing.T, kv state.KV)
		from   testKey
		msg    *tx.Msg
		check  func(t *testing.T, kv state.KVReader)
	}{
		{"transfer to a full balance", func(t *testing.T, kv state.KV) {
			if err := bank.SetAccount(kv, gateway.addr, &tx.Account{Balance: near}); err != nil {
				t.Fatal(err)
			}
		}, payer, tx.Transfer(gateway.addr, 10), func(t *testing.T, kv state.KVReader) {
			if a, _ := bank.GetAccount(kv, gateway.addr); a.Balance != near {
				t.Fatalf("balance %d, want %d", a.Balance, uint64(near))
			}
		}},
		{"top-up of a full channel", func(t *testing.T, kv state.KV) {
			ch, err := channel.Get(kv, 1)
			if err != nil {
				t.Fatal(err)
			}
			ch.Deposit = near
			raw, _ := tx.Marshal(ch)
			if err := kv.Set(tx.ChannelKey(1), raw); err != nil {
				t.Fatal(err)
			}
		}, payer, &tx.Msg{Sum: &tx.Msg_ChannelTopup{ChannelTopup: &tx.MsgChannelTopup{ChannelId: 1, Amount: 10}}}, func(t *testing.T, kv state.KVReader) {
			if ch, _ := channel.Get(kv, 1); ch.Deposit != near {
				t.Fatalf("deposit %d, want %d", ch.Deposit, uint64(near))
			}
		}},
		{"stake into a full pool", func(t *testing.T, kv state.KV) {
			raw, _ := tx.Marshal(&tx.StakePool{Stake: near, Shares: near})
			if err := kv.Set(tx.PoolKey(1, c.valHot.addr), raw); err != nil {
				t.Fatal(err)
			}
		}, payer, stakeMsg(1, c.valHot, 10), func(t *testing.T, kv state.KVReader) {
			if p, _ := subnet.GetPool(kv, 1, c.valHot.addr); p.Stake != near {
				t.Fatalf("pool stake %d, want %d", p.Stake, uint64(near))
			}
		}},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			w := newWorld(t, fastSubnet(), c.owner, c.valCold, c.minerCold, c.valHot, payer, gateway)
			w.openSubnet(c, 1_000_000_000)
			w.mustSend(payer, openMsg(gateway, 1_000_000, uint64(w.height)+100))
			inject(t, w, func(kv state.KV) { r.inject(t, kv) })
			before := w.balance(r.from)
			acc, _ := bank.GetAccount(w.store.Committed(), r.from.addr)
			raw, err := tx.Sign(r.from.priv, &tx.TxBody{ChainId: testChain, Nonce: acc.Nonce, Fee: fee, Msgs: []*tx.Msg{r.msg}})
			if err != nil {
				t.Fatal(err)
			}
			res := w.block(raw) // no supply check: the injected state breaks it on purpose
			if res[0].Code != tx.CodeOverflow || !strings.Contains(res[0].Log, "overflow") {
				t.Fatalf("code %d (%s), want tx.CodeOverflow", res[0].Code, res[0].Log)
			}
			if got := w.balance(r.from); got != before-fee {
				t.Fatalf("sender paid %d, want only the fee %d", before-got, uint64(fee))
			}
			r.check(t, w.store.Committed())
		})
	}
}

// TestCheckTxCheapChecksFirst (hole 13): CheckTx refuses a stale nonce or an
// unpayable fee before verifying the signature, so junk costs no ed25519
// work; a well-formed but forged tx still fails on its signature.
func TestCheckTxCheapChecksFirst(t *testing.T) {
	alice, bob := newKey(1), newKey(2)
	h := newHarness(t, map[address.Address]uint64{alice.addr: 10_000_000})
	forge := func(raw []byte) []byte {
		d, _ := tx.Decode(raw)
		out, _ := tx.Marshal(&tx.Tx{Body: d.BodyBytes, Signature: append([]byte{d.Signature[0] ^ 1}, d.Signature[1:]...)})
		return out
	}
	cases := []struct {
		name string
		raw  []byte
		code uint32
	}{
		{"forged, stale nonce", forge(signTransfer(t, alice, bob.addr, 1, 9, fee)), tx.CodeBadNonce},
		{"forged, fee too low", forge(signTransfer(t, alice, bob.addr, 1, 0, fee-1)), tx.CodeFeeTooLow},
		{"forged, cannot pay", forge(signTransfer(t, bob, alice.addr, 1, 0, fee)), tx.CodeInsufficientFunds},
		{"forged, otherwise fine", forge(signTransfer(t, alice, bob.addr, 1, 0, fee)), tx.CodeBadSignature},
	}
	for _, c := range cases {
		if r := h.check(c.raw); r.Code != c.code {
			t.Errorf("%s: code %d (%s), want %d", c.name, r.Code, r.Log, c.code)
		}
	}
	if len(h.app.verified) != 0 {
		t.Fatalf("%d forged txs entered the verified cache", len(h.app.verified))
	}
}

// TestGenesisBoundsRefused: chain-wide parameters get the same kind of
// bounds as a subnet's, so no fee sum or height + period can wrap.
func TestGenesisBoundsRefused(t *testing.T) {
	rows := []struct {
		name string
		mod  func(p *GenesisParams)
	}{
		{"block time above a day", func(p *GenesisParams) { p.TargetBlockTimeMs = 86_400_001 }},
		{"fee_default above the cap", func(p *GenesisParams) { p.FeeDefault = math.MaxUint64 }},
		{"fee_transfer above the cap", func(p *GenesisParams) { p.FeeTransfer = math.MaxUint64 }},
		{"subnet_lock_floor above the cap", func(p *GenesisParams) { p.SubnetLockFloor = math.MaxUint64 }},
		{"block_reward_base above the cap", func(p *GenesisParams) { p.BlockRewardBase = math.MaxUint64 }},
		{"subnet_immunity", func(p *GenesisParams) { p.SubnetImmunity = math.MaxUint64 }},
		{"subnet_lock_interval", func(p *GenesisParams) { p.SubnetLockInterval = subnet.MaxPeriod + 1 }},
		{"take_rate_limit", func(p *GenesisParams) { p.TakeRateLimit = math.MaxUint64 }},
		{"royalty_stream_blocks", func(p *GenesisParams) { p.RoyaltyStreamBlocks = subnet.MaxPeriod + 1 }},
		{"max_msgs_per_tx", func(p *GenesisParams) { p.MaxMsgsPerTx = math.MaxUint64 }},
		{"default subnet out of bounds", func(p *GenesisParams) { p.DefaultSubnet.MinBurn = 0 }},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			g := Genesis{Params: DefaultParams(1000)}
			if err := g.Validate(); err != nil {
				t.Fatalf("defaults refused: %v", err)
			}
			r.mod(&g.Params)
			if err := g.Validate(); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
