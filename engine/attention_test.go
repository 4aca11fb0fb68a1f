package engine

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// attnPath is one choice of attention kernels.
type attnPath struct {
	name         string
	avx512, avx2 bool
}

// attnPaths lists the paths this CPU can run, portable first.
func attnPaths() []attnPath {
	paths := []attnPath{{name: "portable"}}
	if useAVX2Attention {
		paths = append(paths, attnPath{name: "avx2", avx2: true})
	}
	if useAVX512Attention {
		paths = append(paths, attnPath{name: "avx512", avx512: true, avx2: useAVX2Attention})
	}
	return paths
}

// withAttnPath runs f with p's kernels selected.
func withAttnPath(p attnPath, f func()) {
	a, b := useAVX512Attention, useAVX2Attention
	defer func() { useAVX512Attention, useAVX2Attention = a, b }()
	useAVX512Attention, useAVX2Attention = p.avx512, p.avx2
	f()
}

// attnRand returns n values spread over many magnitudes and both signs,
// with some zeros of either sign and some large values, so that any change
// in the order of the arithmetic shows in the bits.
func attnRand(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		v := r.NormFloat64() * math.Pow(10, 4*r.Float64()-2)
		switch r.IntN(40) {
		case 0:
			v = 0
		case 1:
			v = math.Copysign(0, -1)
		case 2:
			v *= 1e4
		}
		x[i] = float32(v)
	}
	return x
}

// Head sizes: the ones the task names plus sizes that exercise partial
// chunks and several column blocks.
var attnHeadDims = []int{16, 48, 64, 80, 128, 1, 7, 33, 100, 136, 200}

const attnMaxPos = 300

// attnLayout is a cache whose rows are longer than a head and whose head
// does not start on a row boundary, so stride and offset bugs show.
func attnLayout(hd int) (kvDim, kvOff int) { return 3*hd + 5, hd + 3 }

func sameBits(a, b []float32) int {
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return i
		}
	}
	return -1
}

func TestAttendScoresKernelsMatchPortable(t *testing.T) {
	paths := attnPaths()
	if len(paths) == 1 {
		t.Skip("no attention kernels on this CPU")
	}
	r := rand.New(rand.NewPCG(1, 2))
	const scale = 0.1234567
	for _, hd := range attnHeadDims {
		kvDim, kvOff := attnLayout(hd)
		keys := attnRand(r, (attnMaxPos-1)*kvDim+kvOff+hd)
		q := attnRand(r, hd)
		for n := 1; n <= attnMaxPos; n++ {
			cache := keys[:(n-1)*kvDim+kvOff+hd] // ends where the last row does
			want := make([]float32, n)
			withAttnPath(paths[0], func() { attnScores(want, q, cache, kvDim, kvOff, scale) })
			for _, p := range paths[1:] {
				buf := attnRand(r, n+8)
				sentinel := append([]float32(nil), buf[n:]...)
				got := buf[:n]
				withAttnPath(p, func() { attnScores(got, q, cache, kvDim, kvOff, scale) })
				if i := sameBits(got, want); i >= 0 {
					t.Fatalf("%s hd=%d n=%d: score %d = %g (%08x), portable %g (%08x)", p.name, hd, n, i,
						got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
				}
				if sameBits(buf[n:], sentinel) >= 0 {
					t.Fatalf("%s hd=%d n=%d: wrote past the scores", p.name, hd, n)
				}
			}
		}
	}
}

func TestAttendValuesKernelsMatchPortable(t *testing.T) {
	paths := attnPaths()
	if len(paths) == 1 {
		t.Skip("no attention kernels on this CPU")
	}
	r := rand.New(rand.NewPCG(3, 4))
	for _, hd := range attnHeadDims {
		kvDim, kvOff := attnLayout(hd)
		vals := attnRand(r, (attnMaxPos-1)*kvDim+kvOff+hd)
		att := attnRand(r, attnMaxPos)
		for n := 1; n <= attnMaxPos; n++ {
			cache := vals[:(n-1)*kvDim+kvOff+hd]
			want := attnRand(r, hd) // the result must not depend on o's old contents
			withAttnPath(paths[0], func() { attnValues(want, att[:n], cache, kvDim, kvOff) })
			for _, p := range paths[1:] {
				buf := attnRand(r, hd+20)
				sentinel := append([]float32(nil), buf[hd:]...)
				got := buf[:hd]
				withAttnPath(p, func() { attnValues(got, att[:n], cache, kvDim, kvOff) })
				if i := sameBits(got, want); i >= 0 {
					t.Fatalf("%s hd=%d n=%d: o[%d] = %g (%08x), portable %g (%08x)", p.name, hd, n, i,
						got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
				}
				if sameBits(buf[hd:], sentinel) >= 0 {
					t.Fatalf("%s hd=%d n=%d: wrote past o", p.name, hd, n)
				}
			}
		}
	}
}

// TestAttendHeadMatchesFloat64 checks every path against attention done
// in float64. Each output element's error is measured against Σ p_t·|v_t|,
// the size of what it sums, so cancellation does not make it meaningless.
func TestAttendHeadMatchesFloat64(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	normal := func(n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		return x
	}
	for _, hd := range attnHeadDims {
		kvDim, kvOff := attnLayout(hd)
		scale := float32(1 / math.Sqrt(float64(hd)))
		for _, n := range []int{1, 2, 3, 17, 64, 129, attnMaxPos} {
			size := (n-1)*kvDim + kvOff + hd
			keys, vals, q := normal(size), normal(size), normal(hd)
			p := make([]float64, n)
			mx := math.Inf(-1)
			for i := range p {
				for j := range hd {
					p[i] += float64(keys[i*kvDim+kvOff+j]) * float64(q[j])
				}
				p[i] *= float64(scale)
				mx = max(mx, p[i])
			}
			var sum float64
			for i := range p {
				p[i] = math.Exp(p[i] - mx)
				sum += p[i]
			}
			want, mag := make([]float64, hd), make([]float64, hd)
			for i := range p {
				p[i] /= sum
				for j := range hd {
					v := float64(vals[i*kvDim+kvOff+j])
					want[j] += p[i] * v
					mag[j] += p[i] * math.Abs(v)
				}
			}
			for _, path := range attnPaths() {
				o, att := make([]float32, hd), make([]float32, n)
				withAttnPath(path, func() { attendHead(o, att, q, keys, vals, kvDim, kvOff, scale) })
				for j := range o {
					if d := math.Abs(float64(o[j]) - want[j]); d > 1e-5*mag[j] {
						t.Fatalf("%s hd=%d n=%d: o[%d] = %g, float64 %g (relative error %.2g)",
							path.name, hd, n, j, o[j], want[j], d/mag[j])
					}
				}
			}
		}
	}
}

func TestAttendHeadChecksCache(t *testing.T) {
	const hd, n = 64, 10
	kvDim, kvOff := attnLayout(hd)
	size := (n-1)*kvDim + kvOff + hd
	full := make([]float32, size+1)
	for _, path := range attnPaths() {
		for _, short := range []string{"keys", "vals"} {
			keys, vals := full[:size], full[:size]
			if short == "keys" {
				keys = keys[:size-1]
			} else {
				vals = vals[:size-1]
			}
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("%s: %s one float short did not panic", path.name, short)
					}
				}()
				withAttnPath(path, func() {
					attendHead(make([]float32, hd), make([]float32, n), make([]float32, hd), keys, vals, kvDim, kvOff, 1)
				})
			}()
		}
	}
}

// TestAttentionPathsGiveSameLogits runs whole prompts through models with
// each attention path: the logits must be the same bits, as they must be
// on CPUs that have only some of the kernels.
func TestAttentionPathsGiveSameLogits(t *testing.T) {
	paths := attnPaths()
	if len(paths) == 1 {
		t.Skip("no attention kernels on this CPU")
	}
	for _, shape := range []string{"tiny", "tiny-llama3"} { // heads of 16 and 8
		m, _ := genModel(t, shape, QuantF32, 9)
		tokens := m.Tokenizer().Encode("The quick brown fox jumps over the lazy dog, twice over and again", false, true)
		var want []float32
		for _, p := range paths {
			s := m.newState(len(tokens))
			var got []float32
			withAttnPath(p, func() {
				for rest := tokens; len(rest) > 0; {
					n := min(len(rest), maxBatch)
					got = append(got, forwardAll(t, m, s, rest[:n])...)
					rest = rest[n:]
				}
			})
			if want == nil {
				want = slices.Clone(got)
			} else if i := sameBits(got, want); i >= 0 {
				t.Fatalf("%s %s: logit %d of token %d differs from the portable path", shape, p.name, i%m.cfg.Vocab, i/m.cfg.Vocab)
			}
		}
	}
}

// BenchmarkAttendHead is one head of a smollm2-135m-shaped model (head 64,
// three KV heads) attending over 128 cached positions.
func BenchmarkAttendHead(b *testing.B) {
	const hd, n, kvDim, kvOff = 64, 128, 3 * 64, 64
	r := rand.New(rand.NewPCG(7, 8))
	normal := func(n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		return x
	}
	keys, vals, q := normal(n*kvDim), normal(n*kvDim), normal(hd)
	o, att := make([]float32, hd), make([]float32, n)
	for _, path := range attnPaths() {
		b.Run(path.name, func(b *testing.B) {
			withAttnPath(path, func() {
				for b.Loop() {
					attendHead(o, att, q, keys, vals, kvDim, kvOff, 0.125)
				}
			})
		})
	}
}
