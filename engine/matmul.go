package engine

import "github.com/agoranet/agora/engine/gguf"

// Batched matrix products. A prompt (or a validator's teacher-forced
// sequence) goes through each weight matrix as a block of tokens: a tile
// kernel takes one weight row and up to tileTokens tokens, so the row is
// loaded and decoded once for all of them instead of once per token.
//
// Determinism: every tile kernel returns, for each token, exactly the value
// m.dot returns for that token alone (same operations in the same order,
// only shared across tokens), so a product does not depend on the batch
// size, the tile shape, the thread count or the instruction set, and Score
// reproduces Generate bit for bit.

// tileTokens is the most tokens one tile kernel call handles.
const tileTokens = 8

// tileIn is a batch of activations as the tile kernels read them: the plain
// vectors and, for kernels that ask for it, a copy packed in token pairs
// (see packPairs).
type tileIn struct {
	x          *acts
	pairs      []float32 // nil unless the op's kernel wants pairs
	pairStride int       // floats from one pair to the next
}

// tileKernel is one weight type's batched dot product: dot sets out[j] to
// row r of m dotted with token t0+j of in, for j < k ≤ tileTokens, and must
// equal m.dot(r, in.x, t0+j) bit for bit. t0 is a multiple of tileTokens.
// pairs asks for in.pairs. A new weight type plugs in by adding a case to
// kernelFor; without one it falls back to m.dot per token.
type tileKernel struct {
	dot   func(m *matrix, r int, in *tileIn, t0, k int, out *[tileTokens]float32)
	pairs bool
}

// kernelFor returns the tile kernel for m's storage type.
func kernelFor(m *matrix) tileKernel {
	switch {
	case m.f32 != nil:
		return tileKernel{dot: dotTokensF32}
	case m.typ == gguf.Q8_0:
		return tileKernel{dot: dotTokensQ8, pairs: pairKernels()}
	case m.q != nil:
		if k, ok := quantTileKernel(m.typ); ok {
			return k
		}
	}
	return tileKernel{dot: dotTokensEach}
}

// dotTokensEach is the fallback tile: one m.dot per token.
func dotTokensEach(m *matrix, r int, in *tileIn, t0, k int, out *[tileTokens]float32) {
	for j := range k {
		out[j] = m.dot(r, in.x, t0+j)
	}
}

// dotTokensF32 shares each weight load between two tokens; per token it is
// dotF32's arithmetic exactly.
func dotTokensF32(m *matrix, r int, in *tileIn, t0, k int, out *[tileTokens]float32) {
	w := m.f32[r*m.cols : (r+1)*m.cols]
	j := 0
	for ; j+2 <= k; j += 2 {
		out[j], out[j+1] = dotF32x2(w, in.x.vec(t0+j), in.x.vec(t0+j+1))
	}
	for ; j < k; j++ {
		out[j] = dotF32(w, in.x.vec(t0+j))
	}
}

// dotF32x2 is dotF32(w, x) and dotF32(w, y) in one pass over w.
func dotF32x2(w, x, y []float32) (float32, float32) {
	x, y = x[:len(w)], y[:len(w)]
	var s0, s1, s2, s3, u0, u1, u2, u3 float32
	i := 0
	for ; i+4 <= len(w); i += 4 {
		w0, w1, w2, w3 := w[i], w[i+1], w[i+2], w[i+3]
		s0 += float32(w0 * x[i])
		s1 += float32(w1 * x[i+1])
		s2 += float32(w2 * x[i+2])
		s3 += float32(w3 * x[i+3])
		u0 += float32(w0 * y[i])
		u1 += float32(w1 * y[i+1])
		u2 += float32(w2 * y[i+2])
		u3 += float32(w3 * y[i+3])
	}
	for ; i < len(w); i++ {
		s0 += float32(w[i] * x[i])
		u0 += float32(w[i] * y[i])
	}
	return (s0 + s1) + (s2 + s3), (u0 + u1) + (u2 + u3)
}

// dotTokensQ8 is the Q8_0 tile: the SIMD pair kernels where the CPU has
// them (see matmul_amd64.s), dotQ8 for the tokens they leave.
func dotTokensQ8(m *matrix, r int, in *tileIn, t0, k int, out *[tileTokens]float32) {
	nb := m.cols / q8Block
	w := m.q8[r*nb*q8BlockBytes : (r+1)*nb*q8BlockBytes]
	ws := m.q8scale[r*nb : (r+1)*nb]
	j := 0
	if in.pairs != nil {
		j = dotQ8Pairs(w, ws, in, t0, k, out)
	}
	for ; j < k; j++ {
		out[j] = dotQ8(w, ws, in.x.vec(t0+j))
	}
}

// packPairs lays x out for the pair kernels: for tokens 2p and 2p+1, each
// 8-value chunk of the first is followed by the same chunk of the second,
// so one 16-lane register holds the two tokens' chunks. An odd last token
// is paired with itself (the duplicate's result is never used). dst is
// reused when large enough.
func packPairs(dst []float32, x *acts) []float32 {
	np := (x.n + 1) / 2
	need := np * 2 * x.cols
	if cap(dst) < need {
		dst = make([]float32, need)
	}
	dst = dst[:need]
	for p := range np {
		a := x.vec(2 * p)
		b := a
		if 2*p+1 < x.n {
			b = x.vec(2*p + 1)
		}
		d := dst[p*2*x.cols:]
		for c := 0; c+8 <= x.cols; c += 8 {
			copy(d[2*c:2*c+8], a[c:c+8])
			copy(d[2*c+8:2*c+16], b[c:c+8])
		}
	}
	return dst
}

// prepare picks each op's tile kernel and packs its activations once
// (ops that share an input share the packing).
func (t *task) prepare() {
	for i := range t.nops {
		op := &t.ops[i]
		t.kern[i] = kernelFor(op.m)
		in := &t.in[i]
		in.x, in.pairs = op.x, nil
		if op.x.n < 2 || !t.kern[i].pairs {
			continue
		}
		for j := range i {
			if t.ops[j].x == op.x && t.in[j].pairs != nil {
				in.pairs, in.pairStride = t.in[j].pairs, t.in[j].pairStride
				break
			}
		}
		if in.pairs == nil {
			t.pack[i] = packPairs(t.pack[i], op.x)
			in.pairs, in.pairStride = t.pack[i], 2*op.x.cols
		}
	}
}

// runOp computes rows [a, b) of op i for every token, row by row so that a
// weight row stays in the nearest cache while all the batch's tiles use it.
func (t *task) runOp(i, a, b int) {
	op := &t.ops[i]
	n, rows := op.x.n, op.m.rows
	if n == 1 {
		for r := a; r < b; r++ {
			op.out[r] = op.m.dot(r, op.x, 0)
		}
		return
	}
	kern, in := t.kern[i].dot, &t.in[i]
	var res [tileTokens]float32
	for r := a; r < b; r++ {
		for t0 := 0; t0 < n; t0 += tileTokens {
			k := min(tileTokens, n-t0)
			kern(op.m, r, in, t0, k, &res)
			for j := range k {
				op.out[(t0+j)*rows+r] = res[j]
			}
		}
	}
}
