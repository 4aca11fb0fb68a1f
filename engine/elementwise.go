package engine

// Element-wise work of a forward pass — SiLU·up, softmax, RMS norm's sum
// of squares and scaling, residual adds, and activation quantization
// (quantizeToken, whose portable reference is quantizeBlock in
// matmul_q8.go) — with SIMD kernels (elementwise_amd64.s) that must give
// the same bits as the portable code on every CPU. Each kernel computes
// exactly the float32 operations its portable twin does, each rounded on
// its own (no fused multiply-adds: the explicit float32 conversions below
// forbid Go from fusing them, which it otherwise does on arm64), in the
// same order; where the order of a sum is a choice, it is fixed here and
// documented. The dispatch is in elementwise_amd64.go, with flags tests
// switch to compare the AVX-512, AVX2 and portable paths.

// siluMul sets dst[i] = silu(gate[i])·up[i] = gate[i]/(1+e^−gate[i])·up[i]
// for every i < len(dst), with expf and each operation rounded alone:
// e = expf(−g), t = 1+e, q = g/t, dst = q·up.
func siluMul(dst, gate, up []float32) {
	gate, up = gate[:len(dst)], up[:len(dst)]
	if len(dst) == 0 {
		return
	}
	if n := siluMulSIMD(dst, gate, up); n < len(dst) {
		siluMulPortable(dst[n:], gate[n:], up[n:])
	}
}

// siluMulPortable is siluMul in Go.
func siluMulPortable(dst, gate, up []float32) {
	gate, up = gate[:len(dst)], up[:len(dst)]
	for i, g := range gate {
		e := expf(-g)
		t := float32(1 + e)
		q := float32(g / t)
		dst[i] = float32(q * up[i])
	}
}

// softmax replaces x (len(x) ≥ 1) by e^(x[i]−m)/s, m = max x, s = Σ e^(x[j]−m):
// expf of each difference, then a true division by s. The sum has a fixed
// order, shared by every kernel: sixteen partial sums p[0..15] start at
// +0, element i is added to p[i%16] in increasing i, and then
// p[j] += p[j+8] (j < 8), p[j] += p[j+4] (j < 4), p[j] += p[j+2] (j < 2)
// and s = p[0] + p[1]. If any x is NaN every result is NaN.
func softmax(x []float32) {
	if !softmaxSIMD(x) {
		softmaxPortable(x)
	}
}

// softmaxPortable is softmax in Go.
func softmaxPortable(x []float32) {
	mx := x[0]
	for _, v := range x {
		mx = max(mx, v) // NaN if any is NaN
	}
	var p [16]float32
	for i, v := range x {
		e := expf(v - mx)
		x[i] = e
		p[i%16] += e
	}
	s := sum16(&p)
	for i := range x {
		x[i] /= s
	}
}

// sum16 combines sixteen partial sums in the fixed order softmax and
// sumSquares document.
func sum16(p *[16]float32) float32 {
	for j := range 8 {
		p[j] += p[j+8]
	}
	for j := range 4 {
		p[j] += p[j+4]
	}
	for j := range 2 {
		p[j] += p[j+2]
	}
	return p[0] + p[1]
}

// sumSquares is Σ x[i]², each square rounded before it is added, in
// softmax's order: sixteen partial sums, x[i]² added to p[i%16] in
// increasing i, combined p[j] += p[j+8], p[j] += p[j+4], p[j] += p[j+2],
// p[0] + p[1].
func sumSquares(x []float32) float32 {
	if s, ok := sumSquaresSIMD(x); ok {
		return s
	}
	return sumSquaresPortable(x)
}

// sumSquaresPortable is sumSquares in Go.
func sumSquaresPortable(x []float32) float32 {
	var p [16]float32
	for i, v := range x {
		p[i%16] += float32(v * v)
	}
	return sum16(&p)
}

// mulScaled sets out[i] = w[i]·(s·x[i]) for i < len(out), both products
// rounded.
func mulScaled(out, x, w []float32, s float32) {
	x, w = x[:len(out)], w[:len(out)]
	if n := mulScaledSIMD(out, x, w, s); n < len(out) {
		mulScaledPortable(out[n:], x[n:], w[n:], s)
	}
}

// mulScaledPortable is mulScaled in Go.
func mulScaledPortable(out, x, w []float32, s float32) {
	x, w = x[:len(out)], w[:len(out)]
	for i, v := range x {
		out[i] = float32(w[i] * float32(s*v))
	}
}

// addInto adds src to dst element by element.
func addInto(dst, src []float32) {
	src = src[:len(dst)]
	if n := addIntoSIMD(dst, src); n < len(dst) {
		addIntoPortable(dst[n:], src[n:])
	}
}

// addIntoPortable is addInto in Go.
func addIntoPortable(dst, src []float32) {
	src = src[:len(dst)]
	for i, v := range src {
		dst[i] += v
	}
}
