package tx

import "math/bits"

// BurnAt is the subnet's registration price at height: the last price set,
// halving every tempo since it was set, clamped to the subnet's bounds. It
// is consensus (neuron registration burns it) and public (clients and the
// explorer show it), so it lives with the record it reads.
func (s *Subnet) BurnAt(height uint64) uint64 {
	p := s.Params
	var since uint64
	if height > s.BurnUpdatedAt {
		since = height - s.BurnUpdatedAt
	}
	b := exp2Neg(s.Burn, since, p.Tempo)
	return min(max(b, p.MinBurn), p.MaxBurn)
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
	f := mulDivQ32(num%den, 1<<32, den) // fraction in Q32
	const ln2 = 2977044472              // ln 2 in Q32
	t := mulDivQ32(f, ln2, 1<<32)       // t = f·ln2 in Q32, < ln 2
	// e^(−t) = 1 − t + t²/2 − t³/6 + t⁴/24
	t2 := mulDivQ32(t, t, 1<<32)
	t3 := mulDivQ32(t2, t, 1<<32)
	t4 := mulDivQ32(t3, t, 1<<32)
	e := (1 << 32) - t + t2/2 - t3/6 + t4/24
	return mulDivQ32(x, e, 1<<32)
}

// mulDivQ32 is ⌊a·b/c⌋ with a 128-bit intermediate, saturating; every call
// above has a·b/c ≤ max(a, b).
func mulDivQ32(a, b, c uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi >= c {
		return ^uint64(0)
	}
	q, _ := bits.Div64(hi, lo, c)
	return q
}
