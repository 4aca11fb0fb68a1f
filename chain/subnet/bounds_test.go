package subnet

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/state"
	"github.com/agoranet/agora/chain/tx"
)

// TestHeightPlusParamDoesNotWrap (issue 10, hole 13): every "height + period"
// comparison at the edge of uint64 (and of CometBFT's int64 heights) keeps
// its meaning instead of wrapping to a small number that ends the period.
func TestHeightPlusParamDoesNotWrap(t *testing.T) {
	const top = math.MaxUint64
	const int64Top = uint64(math.MaxInt64)
	cases := []struct {
		name                  string
		height, start, period uint64
		want                  bool
	}{
		{"ordinary, inside", 100, 90, 20, true},
		{"ordinary, at the end", 110, 90, 20, false},
		{"start+period wraps uint64", top - 1, top - 2, top, true},
		{"start+period wraps at the int64 edge", int64Top, int64Top - 1, top, true},
		{"start+period exactly 2^64", 5, top, 1, true},
		{"period 0 never holds", top, top, 0, false},
		{"height before start", 1, top, 0, true},
	}
	for _, c := range cases {
		if got := before(c.height, c.start, c.period); got != c.want {
			t.Errorf("%s: before(%d, %d, %d) = %v, want %v", c.name, c.height, c.start, c.period, got, c.want)
		}
	}

	// The functions built on it, fed state whose start + limit would wrap.
	sub := &tx.Subnet{Params: DefaultSubnetParams()}
	sub.Params.WeightsRateLimit = top
	n := &tx.Neuron{RegisteredAt: 1, LastUpdate: int64Top - 1}
	if err := checkRateLimit(sub, n, int64Top); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("weights rate limit whose end wraps: %v, want rate limited", err)
	}
	// Old code: tempo + 1 wrapped to 0 (a division by zero) and
	// height + netuid + 1 wrapped to a tiny index.
	if tx.EpochIndex(1, top, 5) != 0 || tx.EpochIndex(1, 9, top) != top/10 {
		t.Fatal("epoch index at the edge of uint64 wrapped")
	}
	if got := tx.EpochIndex(7, 9, int64Top); got != (int64Top+8)/10 {
		t.Fatalf("epoch index at the int64 edge %d", got)
	}
	if agr.SaturatingAdd(top-1, 5) != top || agr.SaturatingAdd(1, 2) != 3 {
		t.Fatal("satAdd")
	}
	reg := &tx.SubnetRegistry{LastLock: 100 * agr.Unit, LastLockBlock: top - 1}
	p := &tx.Params{SubnetLockFloor: agr.Unit, SubnetLockInterval: top}
	if got := LockCost(p, reg, top); got < 199*agr.Unit {
		t.Fatalf("lock cost one block after a lock at the uint64 edge: %d, want about double", got)
	}
}

// countingKV counts reads, to see how much work a refused message did.
type countingKV struct {
	state.KV
	gets int
}

func (c *countingKV) Get(k []byte) ([]byte, error) { c.gets++; return c.KV.Get(k) }

// TestRegistrationRefusedBeforePruneScan (hole 13): a registration that
// cannot pay, or that meets a full subnet whose every UID is immune, is
// refused before the scan over every UID (and, for subnets, every subnet's
// pools) that a replacement needs.
func TestRegistrationRefusedBeforePruneScan(t *testing.T) {
	const n = 300
	st := bigSubnet(t, n) // subnet 1: n UIDs, full, registered at block 1
	poor, rich := address.Address{7}, address.Address{8}
	// setup gives a fresh view of st, subnet 1's params changed by edit
	// first (unless nil), its read count zeroed.
	setup := func(t *testing.T, edit func(p *tx.SubnetParams)) (*Ctx, *countingKV) {
		t.Helper()
		kv := &countingKV{KV: state.NewCache(st.Committed())}
		c := &Ctx{KV: kv, Height: 10_000, ChainID: "bench", Params: &tx.Params{MaxSubnets: 1, SubnetLockFloor: 100 * agr.Unit, MaxTakeBps: 1800}}
		if err := bank.SetAccount(kv, rich, &tx.Account{Balance: 1000 * agr.Unit}); err != nil {
			t.Fatal(err)
		}
		if edit != nil {
			sub, _ := GetSubnet(c.KV, 1)
			edit(sub.Params)
			if err := putSubnet(c.KV, sub); err != nil {
				t.Fatal(err)
			}
		}
		kv.gets = 0
		return c, kv
	}
	t.Run("subnet lock unaffordable", func(t *testing.T) {
		c, kv := setup(t, nil)
		key := keyFor(9001)
		_, err := RegisterSubnet(c, poor, &tx.MsgSubnetRegister{OwnerHotkey: tx.ProveHotkey(key, "bench", NewSubnetNetuid, poor)})
		if !errors.Is(err, bank.ErrInsufficientFunds) {
			t.Fatalf("err %v, want insufficient funds", err)
		}
		if kv.gets > 10 {
			t.Fatalf("refusal read %d keys: the prune scan ran before the lock check", kv.gets)
		}
		// The same registration, paid for, does prune (and reads every pool).
		c, kv = setup(t, nil)
		if _, err := RegisterSubnet(c, rich, &tx.MsgSubnetRegister{OwnerHotkey: tx.ProveHotkey(key, "bench", NewSubnetNetuid, rich)}); err != nil {
			t.Fatal(err)
		}
		if kv.gets < n {
			t.Fatalf("a paid registration into a full chain read only %d keys", kv.gets)
		}
	})

	t.Run("neuron burn unaffordable", func(t *testing.T) {
		c, kv := setup(t, func(p *tx.SubnetParams) { p.MinBurn, p.MaxBurn, p.ImmunityPeriod = agr.Unit, agr.Unit, 0 })
		_, err := RegisterNeuron(c, poor, &tx.MsgNeuronRegister{Netuid: 1, Hotkey: tx.ProveHotkey(keyFor(9002), "bench", 1, poor)})
		if !errors.Is(err, bank.ErrInsufficientFunds) {
			t.Fatalf("err %v, want insufficient funds", err)
		}
		if kv.gets > 10 {
			t.Fatalf("refusal read %d keys", kv.gets)
		}
	})

	t.Run("every UID immune", func(t *testing.T) {
		c, kv := setup(t, func(p *tx.SubnetParams) { p.ImmunityPeriod = MaxPeriod })
		_, err := RegisterNeuron(c, rich, &tx.MsgNeuronRegister{Netuid: 1, Hotkey: tx.ProveHotkey(keyFor(9003), "bench", 1, rich)})
		if !errors.Is(err, ErrFull) {
			t.Fatalf("err %v, want full", err)
		}
		if kv.gets > 10 {
			t.Fatalf("refusal read %d keys: scanned every immune UID", kv.gets)
		}
	})

	t.Run("replacement keeps the oldest registration right", func(t *testing.T) {
		c, _ := setup(t, func(p *tx.SubnetParams) { p.ImmunityPeriod = 100 })
		// UIDs 1..n−1 registered at block 1: the first replacement scans
		// and takes UID 1; the rest stay prunable, so the next succeeds too.
		for i := range 3 {
			c.Height = 10_000 + uint64(i)
			uid, err := RegisterNeuron(c, rich, &tx.MsgNeuronRegister{Netuid: 1, Hotkey: tx.ProveHotkey(keyFor(9100+i), "bench", 1, rich)})
			if err != nil || uid != uint16(i+1) {
				t.Fatalf("replacement %d: uid %d err %v", i, uid, err)
			}
		}
		if oldest, ok, _ := oldestRegistration(c.KV, 1); !ok || oldest != 1 {
			t.Fatalf("oldest registration %d %v, want 1", oldest, ok)
		}
	})
}

// keyFor is the same deterministic hotkey bigSubnet gives UID i.
func keyFor(i int) ed25519.PrivateKey {
	s := sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(i)))
	return ed25519.NewKeyFromSeed(s[:])
}

// TestEpochBudgetDefersNotDrops: owners pick tempos, so several maximal
// subnets can have their epochs on one block. The block runs what fits in
// EpochBudgetPerBlock and the rest run in the next blocks, oldest first;
// none is lost and none runs twice.
func TestEpochBudgetDefersNotDrops(t *testing.T) {
	// Five maximal subnets whose owners chose tempos that put all their
	// boundaries on block `height`: tempo + 1 = height + netuid + 1.
	const height = 1000
	var subs []*tx.Subnet
	for netuid := uint32(1); netuid <= 5; netuid++ {
		p := DefaultSubnetParams()
		p.Tempo = height + uint64(netuid)
		subs = append(subs, &tx.Subnet{Netuid: netuid, N: MaxUIDsLimit, Params: p, RegisteredAt: 1, LastEpoch: 2})
		if !tx.EpochDue(netuid, p.Tempo, height) {
			t.Fatalf("setup: subnet %d not due at %d", netuid, height)
		}
	}
	perBlock := EpochBudgetPerBlock / (MaxUIDsLimit * MaxUIDsLimit)
	ran := map[uint32]int{}
	for h := uint64(height); h < height+5; h++ {
		run := planEpochs(subs, h)
		if len(run) > perBlock {
			t.Fatalf("block %d ran %d maximal epochs, budget %d", h, len(run), perBlock)
		}
		for _, s := range run {
			ran[s.Netuid]++
			s.LastEpoch = h
		}
	}
	for _, s := range subs {
		if ran[s.Netuid] != 1 {
			t.Fatalf("subnet %d ran %d epochs in the 5 blocks after its boundary, want 1 (ran %v)", s.Netuid, ran[s.Netuid], ran)
		}
	}
	// A small subnet never waits behind the budget when it is alone.
	small := &tx.Subnet{Netuid: 9, N: 8, Params: DefaultSubnetParams(), RegisteredAt: 1}
	for h := uint64(2); h < 2000; h++ {
		run := planEpochs([]*tx.Subnet{small}, h)
		if tx.EpochDue(9, small.Params.Tempo, h) != (len(run) == 1) {
			t.Fatalf("block %d: a lone subnet's epoch moved off its boundary", h)
		}
		if len(run) == 1 {
			small.LastEpoch = h
		}
	}
}
