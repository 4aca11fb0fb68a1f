package subnet

import "math/bits"

// mulDiv returns ⌊a·b/c⌋ using a 128-bit intermediate; c must be positive and
// the quotient must fit in 64 bits (callers guarantee a·b/c ≤ max(a, b)).
func mulDiv(a, b, c uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi >= c {
		return ^uint64(0)
	}
	q, _ := bits.Div64(hi, lo, c)
	return q
}

// mulDivCeil returns ⌈a·b/c⌉ under the same conditions.
func mulDivCeil(a, b, c uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi >= c {
		return ^uint64(0)
	}
	q, r := bits.Div64(hi, lo, c)
	if r > 0 {
		q++
	}
	return q
}

// before reports whether height is earlier than start+period without
// computing start+period, which wraps for values near 2^64: a period that
// reaches past the end of the uint64 range simply never ends.
func before(height, start, period uint64) bool {
	return height < start || height-start < period
}
