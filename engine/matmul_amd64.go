package engine

import "golang.org/x/sys/cpu"

// useAVX512 selects the tiled AVX-512 Q8_0 kernels; they also need
// useAVX2, so switching that off (as the tests do) leaves only the portable
// kernel.
var useAVX512 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL

// dotQ8x8AVX512 is dotQ8AVX2 for one row and four packed token pairs; see
// matmul_amd64.s.
//
//go:noescape
func dotQ8x8AVX512(w *byte, ws *float32, xp *float32, pairStride int, nb int, out *[8]float32)

// dotQ8x2AVX512 is dotQ8AVX2 for one row and one packed token pair.
//
//go:noescape
func dotQ8x2AVX512(w *byte, ws *float32, xp *float32, nb int, out *[2]float32)

func pairKernels() bool { return useAVX512 && useAVX2 }

// dotQ8Pairs runs the pair kernels for tokens t0..t0+k-1 of in. An odd
// last token rides in a pair with its packed duplicate.
func dotQ8Pairs(w []byte, ws []float32, in *tileIn, t0, k int, out *[tileTokens]float32) int {
	nb := len(ws)
	if nb == 0 {
		return 0
	}
	// The assembly trusts its lengths: check them here once.
	_ = w[nb*q8BlockBytes-1]
	p0 := t0 / 2
	if k == tileTokens {
		_ = in.pairs[(p0+3)*in.pairStride+nb*2*q8Block-1]
		dotQ8x8AVX512(&w[0], &ws[0], &in.pairs[p0*in.pairStride], in.pairStride*4, nb, out)
		return k
	}
	j := 0
	for ; j < k; j += 2 {
		p := p0 + j/2
		_ = in.pairs[p*in.pairStride+nb*2*q8Block-1]
		dotQ8x2AVX512(&w[0], &ws[0], &in.pairs[p*in.pairStride], nb, (*[2]float32)(out[j:j+2]))
	}
	return j
}

// withoutPairKernels turns the tiled kernels off until the returned
// function restores them (tests and benchmarks compare both paths).
func withoutPairKernels() (restore func()) {
	was := useAVX512
	useAVX512 = false
	return func() { useAVX512 = was }
}
