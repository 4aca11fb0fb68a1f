package engine

import (
	"encoding/binary"
	"math"

	"github.com/agoranet/agora/engine/gguf"
)

// Tile kernels for the quantized types other than Q8_0. Each decodes a
// weight block (its quants as exact float32 values and its scales) once per
// row and applies it to every token of the tile. Per token the arithmetic
// is the portable kernel's in quant.go operation for operation, in the same
// order, with one lane accumulator set per token: the tokens only share the
// decoding, which is exact. So each result equals m.dot for that token bit
// for bit, whether m.dot runs the portable kernel or an AVX2 one (those
// match the portable kernels bit for bit, TestQuantKernelsAgreeBitForBit).

// quantTileKernel returns the tile kernel for a quantized type, and false
// where the per-token dot is faster. These kernels are plain Go: they beat
// the portable per-token kernels 2–3× (BenchmarkMatmulQuant, portable CPU)
// but not the AVX2 ones, which run several times faster per token than Go
// does per decoded block, so where m.dot has an AVX2 kernel it keeps it.
// Either way each result is bit-identical to m.dot.
func quantTileKernel(t gguf.TensorType) (tileKernel, bool) {
	if simdDot(t) {
		return tileKernel{}, false
	}
	return goTileKernel(t)
}

// goTileKernel is the Go tile kernel for t, whether or not it is the
// faster choice here.
func goTileKernel(t gguf.TensorType) (tileKernel, bool) {
	switch t {
	case gguf.Q4_0:
		return tileKernel{dot: dotTokensQ4_0}, true
	case gguf.Q5_0:
		return tileKernel{dot: dotTokensQ5_0}, true
	case gguf.Q4_K:
		return tileKernel{dot: dotTokensQ4K}, true
	case gguf.Q5_K:
		return tileKernel{dot: dotTokensQ5K}, true
	case gguf.Q6_K:
		return tileKernel{dot: dotTokensQ6K}, true
	case gguf.Q8_K:
		return tileKernel{dot: dotTokensQ8K}, true
	}
	return tileKernel{}, false
}

// simdDot reports whether m.dot runs an AVX2 kernel for type t here.
func simdDot(t gguf.TensorType) bool {
	switch t {
	case gguf.Q4_0, gguf.Q5_0, gguf.Q4_K, gguf.Q6_K:
		return useAVX2
	}
	return false
}

// tileVecs is the tile's token vectors, each cut to cols.
func tileVecs(in *tileIn, t0, k, cols int) (xs [tileTokens][]float32) {
	for j := range k {
		xs[j] = in.x.vec(t0 + j)[:cols]
	}
	return xs
}

func dotTokensQ4_0(m *matrix, r int, in *tileIn, t0, k int, out *[tileTokens]float32) {
	dotTokens32(m, r, in, t0, k, out, false)
}

func dotTokensQ5_0(m *matrix, r int, in *tileIn, t0, k int, out *[tileTokens]float32) {
	dotTokens32(m, r, in, t0, k, out, true)
}

// dotTokens32 is dotQ4_0Portable (or dotQ5_0Portable if five) for each
// token of the tile.
func dotTokens32(m *matrix, r int, in *tileIn, t0, k int, out *[tileTokens]float32, five bool) {
	w := m.q[r*m.rowBytes : (r+1)*m.rowBytes]
	bytes := q40Bytes
	if five {
		bytes = q50Bytes
	}
	xs := tileVecs(in, t0, k, m.cols)
	var acc [tileTokens]kAcc
	var q [32]float32
	for b := range len(w) / bytes {
		var d float32
		if five {
			d = decodeQ5_0(w[b*bytes:], &q)
		} else {
			d = decodeQ4_0(w[b*bytes:], &q)
		}
		for j := range k {
			lanes := acc[j].even()
			if b&1 == 1 {
				lanes = acc[j].odd()
			}
			chunk32(lanes, &q, (*[32]float32)(xs[j][32*b:]), d)
		}
	}
	for j := range k {
		out[j] = acc[j].result()
	}
}

func dotTokensQ4K(m *matrix, r int, in *tileIn, t0, k int, out *[tileTokens]float32) {
	dotTokensKMin(m, r, in, t0, k, out, q4KBytes, false)
}

func dotTokensQ5K(m *matrix, r int, in *tileIn, t0, k int, out *[tileTokens]float32) {
	dotTokensKMin(m, r, in, t0, k, out, q5KBytes, true)
}

// dotTokensKMin is dotKMin for each token of the tile.
func dotTokensKMin(m *matrix, r int, in *tileIn, t0, k int, out *[tileTokens]float32, bytes int, five bool) {
	w := m.q[r*m.rowBytes : (r+1)*m.rowBytes]
	xs := tileVecs(in, t0, k, m.cols)
	var acc [tileTokens]kAcc
	var q [qkK]float32
	var ds, dm [8]float32
	for b := range len(w) / bytes {
		decodeKMin(five, w[b*bytes:], &q, &ds, &dm)
		for j := range k {
			a, x := &acc[j], xs[j][qkK*b:]
			for c := 0; c < 8; c += 2 {
				chunk32(a.even(), (*[32]float32)(q[32*c:]), (*[32]float32)(x[32*c:]), ds[c])
				xsum32(a.mins(), (*[32]float32)(x[32*c:]), dm[c])
				chunk32(a.odd(), (*[32]float32)(q[32*c+32:]), (*[32]float32)(x[32*c+32:]), ds[c+1])
				xsum32(a.mins(), (*[32]float32)(x[32*c+32:]), dm[c+1])
			}
		}
	}
	for j := range k {
		out[j] = acc[j].result()
	}
}

// dotTokensQ6K is dotQ6KPortable for each token of the tile.
func dotTokensQ6K(m *matrix, r int, in *tileIn, t0, k int, out *[tileTokens]float32) {
	w := m.q[r*m.rowBytes : (r+1)*m.rowBytes]
	xs := tileVecs(in, t0, k, m.cols)
	var acc [tileTokens]kAcc
	var q [qkK]float32
	var ds [16]float32
	for b := range len(w) / q6KBytes {
		decodeQ6K(w[b*q6KBytes:], &q, &ds)
		for j := range k {
			a, x := &acc[j], xs[j][qkK*b:]
			for c := 0; c < 8; c += 2 {
				chunk16x2(a.even(), (*[32]float32)(q[32*c:]), (*[32]float32)(x[32*c:]), ds[2*c], ds[2*c+1])
				chunk16x2(a.odd(), (*[32]float32)(q[32*c+32:]), (*[32]float32)(x[32*c+32:]), ds[2*c+2], ds[2*c+3])
			}
		}
	}
	for j := range k {
		out[j] = acc[j].result()
	}
}

// dotTokensQ8K is dotQ8KPortable for each token of the tile.
func dotTokensQ8K(m *matrix, r int, in *tileIn, t0, k int, out *[tileTokens]float32) {
	w := m.q[r*m.rowBytes : (r+1)*m.rowBytes]
	xs := tileVecs(in, t0, k, m.cols)
	var acc [tileTokens]kAcc
	var q [qkK]float32
	for b := range len(w) / q8KBytes {
		blk := w[b*q8KBytes:]
		d := math.Float32frombits(binary.LittleEndian.Uint32(blk))
		qs := (*[qkK]byte)(blk[4:260])
		for i := range q {
			q[i] = float32(int8(qs[i]))
		}
		for j := range k {
			a, x := &acc[j], xs[j][qkK*b:]
			for c := 0; c < 8; c += 2 {
				chunk32(a.even(), (*[32]float32)(q[32*c:]), (*[32]float32)(x[32*c:]), d)
				chunk32(a.odd(), (*[32]float32)(q[32*c+32:]), (*[32]float32)(x[32*c+32:]), d)
			}
		}
	}
	for j := range k {
		out[j] = acc[j].result()
	}
}
