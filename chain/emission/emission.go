// Package emission computes AGR's per-block issuance: a halving curve driven
// by how much of the hard cap has been issued, not by block count, so the cap
// is approached asymptotically and never exceeded.
package emission

import (
	"math"
	"math/bits"

	"github.com/agoranet/agora/agr"
)

// Cap is the hard cap of 21,000,000 AGR in base units.
const Cap uint64 = 21_000_000 * agr.Unit

// DailyEmission is the target emission per day before any halving.
const DailyEmission uint64 = 7_200 * agr.Unit

const msPerDay = 86_400_000

// BaseReward is the pre-halving reward per block that emits DailyEmission per
// day at the given target block time.
func BaseReward(targetBlockTimeMs uint64) uint64 {
	if targetBlockTimeMs == 0 {
		return 0
	}
	// 7,200 AGR × block time overflows 64 bits past about 42 minutes a
	// block, so the product is taken over 128 bits; a quotient that does not
	// fit saturates (BlockReward clamps it to what remains under the cap).
	hi, lo := bits.Mul64(DailyEmission, targetBlockTimeMs)
	if hi >= msPerDay {
		return math.MaxUint64
	}
	q, _ := bits.Div64(hi, lo, msPerDay)
	return q
}

// Halvings is k = floor(log2(cap / (cap − issued))): how many times the base
// reward has halved once `issued` of `cap` is out. It is 0 below half the cap,
// 1 below three quarters, and so on.
func Halvings(capacity, issued uint64) uint {
	if issued >= capacity {
		return 64
	}
	remaining := capacity - issued
	var k uint
	// remaining·2^(k+1) ≤ cap ⇔ remaining ≤ ⌊cap / 2^(k+1)⌋ for integers; no overflow.
	for k < 63 && remaining <= capacity>>(k+1) {
		k++
	}
	return k
}

// BlockReward is the emission of the next block: base / 2^k, never more than
// what remains under the cap.
func BlockReward(base, capacity, issued uint64) uint64 {
	if issued >= capacity {
		return 0
	}
	k := Halvings(capacity, issued)
	reward := uint64(0)
	if k < 64 {
		reward = base >> k
	}
	if rem := capacity - issued; reward > rem {
		reward = rem
	}
	return reward
}
