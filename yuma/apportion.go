package yuma

import (
	"math/bits"
	"slices"
)

// largestRemainder splits total in proportion to weights, exactly: each part
// gets ⌊total·w_i/Σw⌋ and the units left over go one each to the largest
// fractional remainders, ties to the lower index. All zero weights: nothing
// is allocated (the caller decides where such emission goes).
func largestRemainder(total uint64, weights []uint64) []uint64 {
	out := make([]uint64, len(weights))
	sum := sumU64(weights)
	if sum == 0 || total == 0 {
		return out
	}
	rems := make([]uint64, len(weights))
	var given uint64
	for i, w := range weights {
		hi, lo := bits.Mul64(total, w)
		q, r := bits.Div64(hi, lo, sum) // hi < sum since w ≤ sum
		out[i], rems[i] = q, r
		given += q
	}
	idx := make([]int, len(weights))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case rems[a] > rems[b]:
			return -1
		case rems[a] < rems[b]:
			return 1
		}
		return a - b
	})
	for k := uint64(0); k < total-given; k++ {
		out[idx[k]]++
	}
	return out
}
