package engine

// Batched matrix products. A prompt (or a validator's teacher-forced
// sequence) goes through each weight matrix as a block of tokens, so a
// weight row is loaded and decoded once for several tokens instead of once
// per token. Quantized weights take the integer kernels (matmul_q8.go,
// matmul_k.go); float weights the pairwise dot below.
//
// Determinism: every kernel returns, for each token, exactly the value the
// same kernel returns for that token alone (same operations in the same
// order, only shared across tokens), so a product does not depend on the
// batch size, the tile shape, the thread count or the instruction set, and
// Score reproduces Generate bit for bit.

// tileTokens is the most tokens one kernel call handles.
const tileTokens = 8

// dotTokensF32 computes row r of a float matrix against tokens t0..t0+k-1
// of x, sharing each weight load between two tokens; per token it is
// dotF32's arithmetic exactly.
func dotTokensF32(m *matrix, r int, x *acts, t0, k int, out *[tileTokens]float32) {
	w := m.f32[r*m.cols : (r+1)*m.cols]
	j := 0
	for ; j+2 <= k; j += 2 {
		out[j], out[j+1] = dotF32x2(w, x.vec(t0+j), x.vec(t0+j+1))
	}
	for ; j < k; j++ {
		out[j] = dotF32(w, x.vec(t0+j))
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

// prepare quantizes the activations of ops on integer weights once (ops
// that share an input share the quantization), across p.
func (t *task) prepare(p *pool) {
	for i := range t.nops {
		op := &t.ops[i]
		t.qa[i] = nil
		if !op.m.integer() {
			continue
		}
		for j := range i {
			if t.ops[j].x == op.x && t.qa[j] != nil {
				t.qa[i] = t.qa[j]
				break
			}
		}
		if t.qa[i] == nil {
			qa, x := &t.quant[i], op.x
			qa.reset(x)
			p.each(t, x.n, func(tok int) { qa.quantizeToken(x, tok) })
			t.qa[i] = qa
		}
	}
}

// runOp computes rows [a, b) of op i for every token, row by row so that a
// weight row stays in the nearest cache while all the batch's tiles use it.
func (t *task) runOp(i, a, b int) {
	op := &t.ops[i]
	if t.qa[i] != nil {
		runInt(op.m, t.qa[i], a, b, op.out)
		return
	}
	n, rows := op.x.n, op.m.rows
	if n == 1 {
		for r := a; r < b; r++ {
			op.out[r] = op.m.dot(r, op.x, 0)
		}
		return
	}
	var res [tileTokens]float32
	for r := a; r < b; r++ {
		for t0 := 0; t0 < n; t0 += tileTokens {
			k := min(tileTokens, n-t0)
			dotTokensF32(op.m, r, op.x, t0, k, &res)
			for j := range k {
				op.out[(t0+j)*rows+r] = res[j]
			}
		}
	}
}
