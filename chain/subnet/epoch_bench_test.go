package subnet

import (
	"testing"

	"github.com/agoranet/agora/chain/bank"
	"github.com/agoranet/agora/chain/state"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/yuma"
)

// worstSubnet builds the most expensive epoch the hyperparameter bounds
// allow: n UIDs, v of them permitted validators with stake whose weight rows
// cover every UID, and a full bond row on every UID (bonds of former
// validators decay but stay stored, so all n rows can hold n bonds).
func worstSubnet(tb testing.TB, n, v int) *state.Store {
	tb.Helper()
	st := bigSubnet(tb, n)
	blk := st.NewBlock()
	sub, err := GetSubnet(blk, 1)
	if err != nil {
		tb.Fatal(err)
	}
	sub.Params.MaxValidators = uint32(v)
	sub.Params.CommitReveal = false
	sub.Params.ActivityCutoff = 1 << 40
	sub.Params.YumaVersion = 3
	sub.Started = true
	const emission = 1_000_000_000_000
	sub.PendingEmission = emission
	if err := putSubnet(blk, sub); err != nil {
		tb.Fatal(err)
	}
	if err := bank.SetSupply(blk, &tx.Supply{SubnetPending: emission}); err != nil {
		tb.Fatal(err)
	}
	full := &tx.WeightRow{}
	bonds := &tx.BondRow{}
	for j := range n {
		full.Uids = append(full.Uids, uint32(j))
		full.Values = append(full.Values, uint32(1+j%65535))
		bonds.Uids = append(bonds.Uids, uint32(j))
		bonds.Values = append(bonds.Values, uint64(yuma.One)/uint64(n+j+1))
	}
	for uid := range uint16(n) {
		nr, err := GetNeuron(blk, 1, uid)
		if err != nil {
			tb.Fatal(err)
		}
		if int(uid) < v {
			nr.ValidatorPermit = true
			nr.LastUpdate = 1
			hot := addrOf(nr.Hotkey)
			if err := put(blk, poolKey(1, hot), &tx.StakePool{Stake: 1_000_000 + uint64(uid), Shares: 1_000_000 + uint64(uid)}); err != nil {
				tb.Fatal(err)
			}
			if err := put(blk, weightsKey(1, uid), full); err != nil {
				tb.Fatal(err)
			}
		}
		if err := put(blk, neuronKey(1, uid), nr); err != nil {
			tb.Fatal(err)
		}
		if err := put(blk, bondsKey(1, uid), bonds); err != nil {
			tb.Fatal(err)
		}
	}
	commitBlock(tb, st, blk)
	return st
}

// commitBlock flushes blk into st and commits a version.
func commitBlock(tb testing.TB, st *state.Store, blk *state.Block) {
	tb.Helper()
	if err := blk.Flush(); err != nil {
		tb.Fatal(err)
	}
	if _, _, err := st.Commit(); err != nil {
		tb.Fatal(err)
	}
}

// runWorstEpoch runs one epoch over st the way FinalizeBlock does (block
// buffer, flush into the tree, root hash) and rolls it back.
func runWorstEpoch(tb testing.TB, st *state.Store) {
	blk := st.NewBlock()
	sub, err := GetSubnet(blk, 1)
	if err != nil {
		tb.Fatal(err)
	}
	c := &Ctx{KV: blk, Height: uint64(st.Version()) + 1, ChainID: "bench", Params: &tx.Params{MaxSubnets: 1, MaxTakeBps: 1800}}
	if _, err := runEpoch(c, sub); err != nil {
		tb.Fatal(err)
	}
	if err := blk.Flush(); err != nil {
		tb.Fatal(err)
	}
	_ = st.WorkingHash()
	st.Rollback()
}

// BenchmarkEpochWorstCase is one epoch at the largest subnet the bounds
// allow (MaxUIDsLimit UIDs, MaxValidatorsLimit validators, every bond row
// full), state reads, Yuma, state writes and the IAVL root included. It
// reports the figure as ms/epoch; it must stay well under the 1 s devnet
// block time on 2 cores.
func BenchmarkEpochWorstCase(b *testing.B) {
	st := worstSubnet(b, MaxUIDsLimit, MaxValidatorsLimit)
	for b.Loop() {
		runWorstEpoch(b, st)
	}
	ms := float64(b.Elapsed().Microseconds()) / 1000 / float64(b.N)
	b.ReportMetric(ms, "ms/epoch")
	b.Logf("worst-case epoch: %d UIDs × %d validators, %d bond rows of %d: %.0f ms", MaxUIDsLimit, MaxValidatorsLimit, MaxUIDsLimit, MaxUIDsLimit, ms)
}
