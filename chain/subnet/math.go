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

// exp2Neg returns x·2^(−num/den) in integers: whole halvings by shift, the
// fractional part by a fourth-order series of e^(−f·ln 2) in Q32 (error below
// 0.2%, ample for a price that decays).
func exp2Neg(x, num, den uint64) uint64 {
	if den == 0 {
		return x
	}
	k := num / den
	if k >= 64 {
		return 0
	}
	x >>= k
	f := mulDiv(num%den, 1<<32, den) // fraction in Q32
	const ln2 = 2977044472           // ln 2 in Q32
	t := mulDiv(f, ln2, 1<<32)       // t = f·ln2 in Q32, < ln 2
	// e^(−t) = 1 − t + t²/2 − t³/6 + t⁴/24
	t2 := mulDiv(t, t, 1<<32)
	t3 := mulDiv(t2, t, 1<<32)
	t4 := mulDiv(t3, t, 1<<32)
	e := (1 << 32) - t + t2/2 - t3/6 + t4/24
	return mulDiv(x, e, 1<<32)
}

// before reports whether height is earlier than start+period without
// computing start+period, which wraps for values near 2^64: a period that
// reaches past the end of the uint64 range simply never ends.
func before(height, start, period uint64) bool {
	return height < start || height-start < period
}
