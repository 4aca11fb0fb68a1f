package engine

// Attention kernels. Every path (AVX-512, AVX2, portable) returns the same
// bits: the score dot below has a fixed lane layout and reduction tree that
// a SIMD unit of any width can reproduce, and the value sum is element by
// element, so its width does not matter at all.

// attnRows checks that rows 0..n-1 of width hd, starting kvOff floats into
// rows of kvDim floats, all lie inside cache, and returns cache from row
// 0's first element to row n-1's last. The kernels step through rows by
// kvDim and trust these bounds; with kvDim ≥ 0 the first and the last row
// bound all the others.
func attnRows(cache []float32, n, kvDim, kvOff, hd int) []float32 {
	if n <= 0 || hd <= 0 {
		return nil
	}
	if kvDim < 0 || kvOff < 0 {
		panic("engine: bad attention cache layout")
	}
	end := (n-1)*kvDim + kvOff + hd
	_ = cache[end-1] // against len: slicing alone would only check cap
	return cache[kvOff:end]
}

// attnScores sets att[t] = scoreDot(row t of keys, q)·scale for every
// cached position t, rows of len(q) floats at kvOff in rows of kvDim.
func attnScores(att, q, keys []float32, kvDim, kvOff int, scale float32) {
	rows := attnRows(keys, len(att), kvDim, kvOff, len(q))
	if rows == nil {
		clear(att)
		return
	}
	if attnScoresSIMD(att, q, rows, kvDim, scale) {
		return
	}
	attnScoresPortable(att, q, rows, kvDim, scale)
}

// attnScoresPortable is attnScores on rows from attnRows.
func attnScoresPortable(att, q, rows []float32, kvDim int, scale float32) {
	hd := len(q)
	for t := range att {
		att[t] = scoreDot(rows[t*kvDim:t*kvDim+hd], q) * scale
	}
}

// scoreDot is the attention score's dot product, defined for 16 lanes so
// that one ZMM register (or two YMM) holds the partial sums: lane j
// accumulates k[e]·q[e] for e ≡ j (mod 16) in increasing e, each product
// and sum rounded on its own (lanes with no element stay +0), and the
// lanes then reduce as a fixed tree: s[j] += s[j+8] for j < 8, s[j] +=
// s[j+4] for j < 4, s[j] += s[j+2] for j < 2, and s[0] + s[1]. It is not
// dotF32, whose four-lane order is another definition.
func scoreDot(k, q []float32) float32 {
	k = k[:len(q)]
	var s [16]float32
	i := 0
	for ; i+16 <= len(q); i += 16 {
		kk, qq := k[i:i+16], q[i:i+16]
		for j := range s {
			s[j] += float32(kk[j] * qq[j])
		}
	}
	for j := range len(q) - i {
		s[j] += float32(k[i+j] * q[i+j])
	}
	for j := range 8 {
		s[j] += s[j+8]
	}
	for j := range 4 {
		s[j] += s[j+4]
	}
	s[0] += s[2]
	s[1] += s[3]
	return s[0] + s[1]
}

// attnValues sets o = Σ_t att[t]·(row t of vals), rows of len(o) floats at
// kvOff in rows of kvDim, summing each element over t in order from +0:
// o[j] = (…(0 + att[0]·v0[j]) + att[1]·v1[j]…), each product and sum
// rounded, which is clear(o) followed by axpyPortable for each t.
func attnValues(o, att, vals []float32, kvDim, kvOff int) {
	rows := attnRows(vals, len(att), kvDim, kvOff, len(o))
	if rows == nil {
		clear(o)
		return
	}
	if attnValuesSIMD(o, att, rows, kvDim) {
		return
	}
	attnValuesPortable(o, att, rows, kvDim)
}

// attnValuesPortable is attnValues on rows from attnRows.
func attnValuesPortable(o, att, rows []float32, kvDim int) {
	hd := len(o)
	clear(o)
	for t, a := range att {
		axpyPortable(o, a, rows[t*kvDim:t*kvDim+hd])
	}
}
