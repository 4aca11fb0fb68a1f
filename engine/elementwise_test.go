package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"
)

// ewKernel is one choice of element-wise kernels.
type ewKernel struct {
	name         string
	avx512, avx2 bool
}

// ewKernels lists the kernels this CPU can run, portable first.
func ewKernels() []ewKernel {
	ks := []ewKernel{{name: "portable"}}
	if useAVX2 && useAVX2Elementwise {
		ks = append(ks, ewKernel{name: "avx2", avx2: true})
	}
	if useAVX2 && useAVX512Elementwise {
		ks = append(ks, ewKernel{name: "avx512", avx512: true, avx2: useAVX2Elementwise})
	}
	return ks
}

// withEWKernel runs f with k's kernels selected: the portable code, AVX2
// (even on an AVX-512 CPU) or AVX-512.
func withEWKernel(k ewKernel, f func()) {
	a, b := useAVX512Elementwise, useAVX2Elementwise
	defer func() { useAVX512Elementwise, useAVX2Elementwise = a, b }()
	useAVX512Elementwise, useAVX2Elementwise = k.avx512, k.avx2
	f()
}

// ewSame reports whether a and b are the same float32, bit for bit; two
// NaNs count as the same, since Go fixes no NaN payload (which operand's a
// commutative operation keeps is the compiler's choice).
func ewSame(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b) || a != a && b != b
}

func checkBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		if !ewSame(got[i], want[i]) {
			t.Fatalf("%s: [%d] = %v (%#08x), want %v (%#08x)", what, i,
				got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
	}
}

// ewSpecial are values at the edges of expf, the division and the
// quantizer's rounding.
var ewSpecial = func() []float32 {
	f := func(b uint32) float32 { return math.Float32frombits(b) }
	up := func(x float32) float32 { return math.Nextafter32(x, float32(math.Inf(1))) }
	dn := func(x float32) float32 { return math.Nextafter32(x, float32(math.Inf(-1))) }
	v := []float32{
		0, float32(math.Copysign(0, -1)), 1, -1, 0.5, -0.5, 2.5, -2.5,
		f(1), f(0x80000001), f(0x007fffff), f(0x807fffff), f(0x00800000), f(0x80800000), 1e-40, -1e-40,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), f(0x7f800001), f(0xffc01234),
		math.MaxFloat32, -math.MaxFloat32, 1e30, -1e30, 1e10, -1e10,
	}
	// expf's limits and the edges of its scaling branches (k = 128, k < −126,
	// the subnormal results), with their neighbours.
	for _, x := range []float32{88.72283, -103.97208, 88.0, 88.37626, 88.7, -87.33654, -87.68, -87.3, -88.0, -100, -103.9, 87.0, 10, -10, 0.34657359, -0.34657359} {
		for _, y := range []float32{x, -x} {
			v = append(v, y, up(y), dn(y), up(up(y)), dn(dn(y)))
		}
	}
	return v
}()

// ewValues returns n values: mostly spread over many magnitudes and both
// signs, with a share of ewSpecial when special is set.
func ewValues(r *rand.Rand, n int, scale float64, special bool) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64() * scale * math.Pow(10, 2*r.Float64()-1))
		if special && r.IntN(8) == 0 {
			x[i] = ewSpecial[r.IntN(len(ewSpecial))]
		}
	}
	return x
}

var ewLengths = []int{1, 2, 3, 7, 8, 9, 15, 16, 17, 23, 24, 31, 32, 33, 40, 47, 48, 63, 64, 65, 100, 257, 576, 1536, 1541}

// The kernels' vector expf must equal expf bit for bit: over a sweep of
// all float32 bit patterns, densely over the range where expf is neither
// 0 nor +Inf, and at ewSpecial. EW_EXHAUSTIVE=1 tries every pattern.
func TestVectorExpf(t *testing.T) {
	var xs []float32
	step := uint64(4093)
	if os.Getenv("EW_EXHAUSTIVE") != "" {
		step = 1
	}
	for b := uint64(0); b < 1<<32; b += step {
		xs = append(xs, math.Float32frombits(uint32(b)))
		if len(xs) == 1<<16 || b+step >= 1<<32 {
			checkExpfs(t, xs)
			xs = xs[:0]
		}
	}
	for x := float32(-105); x < 90; x += 1.0 / 1024 {
		xs = append(xs, x, math.Nextafter32(x, 0))
	}
	xs = append(xs, ewSpecial...)
	checkExpfs(t, xs)
}

func checkExpfs(t *testing.T, xs []float32) {
	t.Helper()
	want := make([]float32, len(xs))
	for i, x := range xs {
		want[i] = expf(x)
	}
	for _, k := range ewKernels()[1:] {
		withEWKernel(k, func() {
			for _, n := range []int{len(xs), len(xs) - 1, 5} {
				if n < 1 {
					continue
				}
				got := make([]float32, n)
				done := expfsSIMD(got, xs)
				for i := range done {
					if !ewSame(got[i], want[i]) {
						t.Fatalf("%s: expf(%v [%#08x]) = %v [%#08x], want %v [%#08x]", k.name, xs[i], math.Float32bits(xs[i]),
							got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
					}
				}
			}
		})
	}
}

// siluMulOld is the loop outputAndFeedForward had before siluMul.
func siluMulOld(dst, gate, up []float32) {
	for i := range dst {
		g := gate[i]
		dst[i] = g / (1 + expf(-g)) * up[i]
	}
}

// siluMul must give the old loop's bits on every kernel and length.
func TestSiluMul(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, special := range []bool{false, true} {
		for _, scale := range []float64{1, 30} {
			for _, n := range ewLengths {
				gate, up := ewValues(r, n, scale, special), ewValues(r, n, 1, special)
				want := make([]float32, n)
				siluMulOld(want, gate, up)
				for _, k := range ewKernels() {
					got := make([]float32, n+1)
					got[n] = 42
					withEWKernel(k, func() { siluMul(got[:n], gate, up) })
					checkBits(t, fmt.Sprintf("%s n=%d special=%v", k.name, n, special), got, want)
					if got[n] != 42 {
						t.Fatalf("%s n=%d: wrote past the end", k.name, n)
					}
				}
			}
		}
	}
}

// softmaxOld is the softmax model.go had: a sequential sum.
func softmaxOld(x []float32) {
	mx := x[0]
	for _, v := range x {
		mx = max(mx, v)
	}
	var sum float32
	for i, v := range x {
		x[i] = expf(v - mx)
		sum += x[i]
	}
	for i := range x {
		x[i] /= sum
	}
}

// softmaxRef is softmax as its documentation defines it, written out
// independently of softmaxPortable.
func softmaxRef(x []float32) {
	mx := x[0]
	for _, v := range x[1:] {
		if v != v || mx != mx {
			mx = float32(math.NaN())
		} else if v > mx {
			mx = v
		}
	}
	var p [16]float32
	for i := range x {
		x[i] = expf(x[i] - mx)
		p[i%16] += x[i]
	}
	var q [8]float32
	for j := range q {
		q[j] = p[j] + p[j+8]
	}
	a := [4]float32{q[0] + q[4], q[1] + q[5], q[2] + q[6], q[3] + q[7]}
	s := (a[0] + a[2]) + (a[1] + a[3])
	for i := range x {
		x[i] /= s
	}
}

// Every softmax kernel must give softmaxRef's bits, and those stay within
// a few ulp of the old sequential sum's.
func TestSoftmax(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	lengths := append(append([]int{}, ewLengths...), 4096, 49152)
	for _, c := range []struct {
		name    string
		scale   float64
		special bool
	}{{"scores", 3, false}, {"peaked", 60, false}, {"negative", 3, false}, {"special", 10, true}} {
		for _, n := range lengths {
			x := ewValues(r, n, c.scale, c.special)
			if c.name == "negative" { // a maximum below 0, wherever it is
				for i := range x {
					x[i] = -5 - float32(math.Abs(float64(x[i])))
				}
			}
			if c.special && n > 4 && r.IntN(2) == 0 {
				// −Inf and far-below values are common (masked logits);
				// NaN or +Inf make everything NaN, so only sometimes.
				x[r.IntN(n)] = float32(math.Inf(-1))
				x[r.IntN(n)] = -1e30
			} else if c.special {
				for i := range x {
					if x[i] != x[i] || x[i] > 1e20 {
						x[i] = 1
					}
				}
			}
			want := append([]float32(nil), x...)
			softmaxRef(want)
			for _, k := range ewKernels() {
				got := append(append([]float32(nil), x...), 42)
				withEWKernel(k, func() { softmax(got[:n]) })
				checkBits(t, fmt.Sprintf("%s %s n=%d", k.name, c.name, n), got, want)
				if got[n] != 42 {
					t.Fatalf("%s n=%d: wrote past the end", k.name, n)
				}
			}
			if c.special {
				continue
			}
			old := append([]float32(nil), x...)
			softmaxOld(old)
			for i := range old {
				// The sequential sum's own error grows with n.
				if d := math.Abs(float64(old[i] - want[i])); d > (1e-6+6e-8*float64(n))*float64(old[i])+1e-38 {
					t.Fatalf("%s n=%d: [%d] = %v, old sum gave %v", c.name, n, i, want[i], old[i])
				}
			}
		}
	}
	// A NaN anywhere, or +Inf, gives NaN everywhere on every kernel.
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1))} {
		for _, n := range []int{1, 5, 16, 17, 40} {
			for _, at := range []int{0, n / 2, n - 1} {
				for _, k := range ewKernels() {
					x := ewValues(r, n, 1, false)
					x[at] = bad
					withEWKernel(k, func() { softmax(x) })
					for i, v := range x {
						if v == v {
							t.Fatalf("%s n=%d %v at %d: [%d] = %v, want NaN", k.name, n, bad, at, i, v)
						}
					}
				}
			}
		}
	}
}

// rmsNormOld is the rmsNorm model.go had: a sequential sum of squares
// (which Go may fuse into multiply-adds on arm64, one reason it went).
func rmsNormOld(out, x, w []float32, eps float32) {
	var ss float32
	for _, v := range x {
		ss += float32(v * v)
	}
	ss = ss/float32(len(x)) + eps
	inv := 1 / float32(math.Sqrt(float64(ss)))
	for i := range x {
		out[i] = w[i] * (inv * x[i])
	}
}

// sumSquaresRef is sumSquares as documented, written out on its own.
func sumSquaresRef(x []float32) float32 {
	var p [16]float32
	for i, v := range x {
		sq := float32(v * v)
		p[i%16] = p[i%16] + sq
	}
	var q [8]float32
	for j := range q {
		q[j] = p[j] + p[j+8]
	}
	a := [4]float32{q[0] + q[4], q[1] + q[5], q[2] + q[6], q[3] + q[7]}
	return (a[0] + a[2]) + (a[1] + a[3])
}

// sumSquares, mulScaled, addInto and so rmsNorm must give the same bits on
// every kernel; sumSquares those of its documented order, mulScaled and
// addInto those of the plain loops, and rmsNorm stays within a few ulp of
// the old sequential sum.
func TestRMSNormAndAdd(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	lengths := append([]int{0}, ewLengths...)
	for _, special := range []bool{false, true} {
		for _, n := range lengths {
			x, w, y := ewValues(r, n, 3, special), ewValues(r, n, 1, special), ewValues(r, n, 2, special)
			s := ewValues(r, 1, 1, special)[0]
			wantSS := sumSquaresRef(x)
			wantMS := make([]float32, n)
			wantAdd := append([]float32(nil), x...)
			for i := range x {
				wantMS[i] = w[i] * (s * x[i])
				wantAdd[i] = x[i] + y[i]
			}
			var wantNorm []float32
			for _, k := range ewKernels() {
				what := fmt.Sprintf("%s n=%d special=%v", k.name, n, special)
				ms := make([]float32, n+1)
				ms[n] = 42
				add := append(append([]float32(nil), x...), 42)
				norm := make([]float32, n+1)
				norm[n] = 42
				var ss float32
				withEWKernel(k, func() {
					ss = sumSquares(x)
					mulScaled(ms[:n], x, w, s)
					addInto(add[:n], y)
					if n > 0 {
						rmsNorm(norm[:n], x, w, 1e-5)
					}
				})
				checkBits(t, what+" sumSquares", []float32{ss}, []float32{wantSS})
				checkBits(t, what+" mulScaled", ms, wantMS)
				checkBits(t, what+" addInto", add, wantAdd)
				if ms[n] != 42 || add[n] != 42 || norm[n] != 42 {
					t.Fatalf("%s: wrote past the end", what)
				}
				if wantNorm == nil {
					wantNorm = norm[:n]
				}
				checkBits(t, what+" rmsNorm", norm, wantNorm)
			}
			if special || n == 0 {
				continue
			}
			old := make([]float32, n)
			rmsNormOld(old, x, w, 1e-5)
			for i := range old {
				if d := math.Abs(float64(old[i] - wantNorm[i])); d > (1e-6+6e-8*float64(n))*math.Abs(float64(old[i]))+1e-38 {
					t.Fatalf("n=%d: rmsNorm [%d] = %v, the old sum gave %v", n, i, wantNorm[i], old[i])
				}
			}
		}
	}
}

// quantizeBlockOld is quantizeBlock before the SIMD kernels: it differed
// only where 1/d overflows (see quantizeBlock), and there converted ±Inf or
// NaN to int32 as the CPU does.
func quantizeBlockOld(q *[q8Block]int8, x *[q8Block]float32) (float32, int32) {
	var amaxBits uint32
	for _, v := range x {
		amaxBits = max(amaxBits, math.Float32bits(v)&0x7fffffff)
	}
	if amaxBits == 0 || amaxBits >= 0x7f800000 {
		*q = [q8Block]int8{}
		return 0, 0
	}
	d := math.Float32frombits(amaxBits) / 127
	id := 1 / d
	var sum int32
	for i, v := range x {
		f := float64(float32(v * id))
		half := math.Float64frombits(0x3fe0000000000000 | math.Float64bits(f)&(1<<63))
		r := max(-127, min(127, int32(f+half)))
		q[i] = int8(r)
		sum += r
	}
	return d, -128 * sum
}

// quantBlocks returns nb blocks of 32 values, each of one kind: random at
// some scale, or built to hit an edge of the quantizer.
func quantBlocks(r *rand.Rand, nb int) []float32 {
	tiny := []float32{1e-37, 3.7e-37, 3.8e-37, 1e-36, 1.5e-36, 1e-38, 1e-42, math.Float32frombits(1)}
	x := make([]float32, 0, nb*q8Block)
	for range nb {
		var b [q8Block]float32
		switch kind := r.IntN(12); kind {
		case 0: // all zero, of either sign
			for i := range b {
				if r.IntN(2) == 0 {
					b[i] = float32(math.Copysign(0, -1))
				}
			}
		case 1: // one non-finite value
			copy(b[:], ewValues(r, q8Block, 1, false))
			b[r.IntN(q8Block)] = []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))}[r.IntN(3)]
		case 2: // ties: amax 127·2^e makes id = 2^−e, so v = (k+½)·2^e is f = k+½
			e := float32(math.Ldexp(1, r.IntN(20)-10))
			for i := range b {
				b[i] = (float32(r.IntN(254)-127) + 0.5) * e
			}
			b[r.IntN(q8Block)] = 127 * e
			b[r.IntN(q8Block)] = -126.5 * e
		case 3: // just off a tie, where f+0.5 in float32 would round up
			for i := range b {
				k := float32(r.IntN(254) - 127)
				h := k + 0.5
				if r.IntN(2) == 0 {
					b[i] = math.Nextafter32(h, 0)
				} else {
					b[i] = math.Nextafter32(h, float32(math.Inf(1)))
				}
				if r.IntN(4) == 0 {
					b[i] = []float32{0.49999997, -0.49999997, 0.50000006, -0.50000006, 126.49999, -126.49999}[r.IntN(6)]
				}
			}
			b[0] = 127
		case 4: // tiny amax: around where 1/d overflows, and subnormals
			a := tiny[r.IntN(len(tiny))]
			for i := range b {
				b[i] = a * float32(r.Float64()*2-1)
			}
			b[r.IntN(q8Block)] = a
		case 5: // amax at both signs, repeated
			for i := range b {
				b[i] = float32(r.NormFloat64())
			}
			b[3], b[17] = -4, 4
		case 6: // specials
			for i := range b {
				b[i] = ewSpecial[r.IntN(len(ewSpecial))]
			}
		default:
			copy(b[:], ewValues(r, q8Block, math.Pow(10, float64(r.IntN(9)-4)), false))
		}
		x = append(x, b[:]...)
	}
	return x
}

// The quantizer kernels must fill q8Acts exactly as the portable loop does,
// and the portable loop must round as llama.cpp's rule says (math.Round
// rounds half away from zero) and as the old quantizeBlock did wherever
// that one did not depend on the CPU.
func TestQuantizeActs(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, cols := range []int{32, 64, 96, 576, 1536} {
		for _, n := range []int{1, 3, 8, 11} {
			x := &acts{n: n, cols: cols, f: quantBlocks(r, n*cols/q8Block)}
			var want q8Acts
			withEWKernel(ewKernel{name: "portable"}, func() { want.quantize(x) })
			for _, k := range ewKernels()[1:] {
				var got q8Acts
				withEWKernel(k, func() { got.quantize(x) })
				what := fmt.Sprintf("%s cols=%d n=%d", k.name, cols, n)
				for i := range want.q {
					if got.q[i] != want.q[i] {
						t.Fatalf("%s: q[%d] = %d, want %d", what, i, got.q[i], want.q[i])
					}
				}
				checkBits(t, what+" d", got.d, want.d)
				checkBits(t, what+" sum", got.sum, want.sum)
				for i := range want.c {
					if got.c[i] != want.c[i] || got.c32lo[i] != want.c32lo[i] || got.c32hi[i] != want.c32hi[i] {
						t.Fatalf("%s: block %d sums (%d %d %d), want (%d %d %d)", what, i,
							got.c[i], got.c32lo[i], got.c32hi[i], want.c[i], want.c32lo[i], want.c32hi[i])
					}
				}
			}
			// The portable fields against quantizeBlock, the old one and
			// math.Round.
			for tok := range n {
				for b := range cols / q8Block {
					i := want.index(tok, b)
					blk := (*[q8Block]float32)(x.vec(tok)[b*q8Block:])
					var q, qOld [q8Block]int8
					d, c := quantizeBlock(&q, blk)
					dOld, cOld := quantizeBlockOld(&qOld, blk)
					if math.Float32bits(want.d[i]) != math.Float32bits(d) || want.c[i] != c || [q8Block]int8(want.q[i*q8Block:]) != q {
						t.Fatalf("cols=%d token %d block %d: quantizeToken differs from quantizeBlock", cols, tok, b)
					}
					var lo, hi int32
					for j, v := range q {
						if j < 16 {
							lo += int32(v)
						} else {
							hi += int32(v)
						}
					}
					if want.c32lo[i] != -32*lo || want.c32hi[i] != -32*hi || want.sum[i] != float32(lo+hi) {
						t.Fatalf("cols=%d token %d block %d: half sums", cols, tok, b)
					}
					if d == 0 {
						if q != ([q8Block]int8{}) || c != 0 {
							t.Fatalf("zero block with levels")
						}
						if dOld != 0 && 1/dOld <= math.MaxFloat32 {
							t.Fatalf("cols=%d token %d block %d: zero block, the old rule gave d=%v", cols, tok, b, dOld)
						}
						continue
					}
					if dOld != d || cOld != c || qOld != q {
						t.Fatalf("cols=%d token %d block %d: %v %d %v, the old rule gave %v %d %v", cols, tok, b, d, c, q, dOld, cOld, qOld)
					}
					id := 1 / d
					for j, v := range blk {
						w := max(-127, min(127, math.Round(float64(float32(v*id)))))
						if float64(q[j]) != w {
							t.Fatalf("cols=%d token %d block %d: q[%d] = %d for %v·%v, want %v", cols, tok, b, j, q[j], v, id, w)
						}
					}
				}
			}
		}
	}
}

func BenchmarkSiluMul(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	n := maxBatch * 1536
	gate, up, dst := ewValues(r, n, 1, false), ewValues(r, n, 1, false), make([]float32, n)
	for _, k := range ewKernels() {
		b.Run(k.name, func(b *testing.B) {
			withEWKernel(k, func() {
				b.SetBytes(int64(4 * n))
				for b.Loop() {
					siluMul(dst, gate, up)
				}
			})
		})
	}
}

func BenchmarkSoftmax(b *testing.B) {
	r := rand.New(rand.NewPCG(2, 2))
	for _, n := range []int{64, 1024, 49152} {
		src, x := ewValues(r, n, 3, false), make([]float32, n)
		for _, k := range ewKernels() {
			b.Run(fmt.Sprintf("%s/n=%d", k.name, n), func(b *testing.B) {
				withEWKernel(k, func() {
					b.SetBytes(int64(4 * n))
					for b.Loop() {
						copy(x, src)
						softmax(x)
					}
				})
			})
		}
	}
}

func BenchmarkQuantizeActs(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 3))
	x := &acts{n: maxBatch, cols: 1536, f: ewValues(r, maxBatch*1536, 1, false)}
	var a q8Acts
	for _, k := range ewKernels() {
		b.Run(k.name, func(b *testing.B) {
			withEWKernel(k, func() {
				b.SetBytes(int64(4 * len(x.f)))
				for b.Loop() {
					a.quantize(x)
				}
			})
		})
	}
}

func BenchmarkRMSNorm(b *testing.B) {
	r := rand.New(rand.NewPCG(4, 4))
	x, w, out := ewValues(r, 576, 1, false), ewValues(r, 576, 1, false), make([]float32, 576)
	for _, k := range ewKernels() {
		b.Run(k.name, func(b *testing.B) {
			withEWKernel(k, func() {
				for b.Loop() {
					rmsNorm(out, x, w, 1e-5)
				}
			})
		})
	}
}
