package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/agoranet/agora/engine/gguf"
)

// testMatrix makes a rows × cols matrix of random F32 or Q8_0 weights.
func testMatrix(typ gguf.TensorType, rows, cols int, seed uint64) *matrix {
	m := &matrix{typ: typ, rows: rows, cols: cols}
	rng := rand.New(rand.NewPCG(seed, 11))
	switch typ {
	case gguf.F32:
		m.f32 = make([]float32, rows*cols)
		for i := range m.f32 {
			m.f32[i] = float32(rng.NormFloat64())
		}
	case gguf.Q8_0:
		for r := range rows {
			w, ws, _ := randomQ8(cols, seed*1000+uint64(r))
			m.q8 = append(m.q8, w...)
			m.q8scale = append(m.q8scale, ws...)
		}
	}
	return m
}

func testActs(n, cols int, seed uint64) *acts {
	a := newActs(n, cols)
	a.n = n
	rng := rand.New(rand.NewPCG(seed, 13))
	for i := range a.f {
		a.f[i] = float32(rng.NormFloat64())
	}
	return a
}

// Every batched product must equal the per-token dot product bit for bit,
// for every batch size (full tiles, partial tiles, odd counts), on one and
// on several threads, with and without the SIMD pair kernels: Score relies
// on it to reproduce what a miner's generation computed, whatever the CPU.
func TestMatmulTilesMatchDot(t *testing.T) {
	kernels := []struct {
		name  string
		pairs bool
	}{{"portable", false}}
	if pairKernels() {
		kernels = append(kernels, struct {
			name  string
			pairs bool
		}{"pairs", true})
	} else {
		t.Log("no AVX-512 on this machine: only the portable tile kernels run")
	}
	for _, typ := range []gguf.TensorType{gguf.F32, gguf.Q8_0} {
		// 96 rows × 1568 cols: an odd block count exercises the kernels' tails.
		for _, shape := range [][2]int{{96, 1568}, {40, 576}, {3, 32}} {
			m := testMatrix(typ, shape[0], shape[1], uint64(shape[1]))
			for _, n := range []int{1, 2, 3, 7, 8, 9, 13, 16} {
				x := testActs(n, shape[1], uint64(n))
				want := make([]float32, n*m.rows)
				for tok := range n {
					for r := range m.rows {
						want[tok*m.rows+r] = m.dot(r, x, tok)
					}
				}
				for _, k := range kernels {
					for _, workers := range []int{1, 2, 3} {
						name := fmt.Sprintf("%s/%dx%d/n%d/%s/%dworkers", typ, shape[0], shape[1], n, k.name, workers)
						got := runMatmul(t, m, x, workers, k.pairs)
						for i := range want {
							if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
								t.Fatalf("%s: element %d (token %d row %d) = %v, dot gives %v", name, i, i/m.rows, i%m.rows, got[i], want[i])
							}
						}
					}
				}
			}
		}
	}
}

// runMatmul computes m·x through the pool, with the pair kernels on or off.
func runMatmul(t *testing.T, m *matrix, x *acts, workers int, pairs bool) []float32 {
	t.Helper()
	if !pairs && pairKernels() {
		defer withoutPairKernels()()
	}
	p := newPool(workers)
	defer p.close()
	out := make([]float32, x.n*m.rows)
	for i := range out {
		out[i] = float32(math.NaN()) // every element must be written
	}
	tk := &task{}
	tk.nops = copy(tk.ops[:], []mulOp{{m, x, out}})
	p.run(tk)
	if got := tk.in[0].pairs != nil; got != (pairs && x.n > 1 && m.typ == gguf.Q8_0) {
		t.Fatalf("%s n %d: pair kernels used = %v, want %v", m.typ, x.n, got, pairs)
	}
	return out
}

// The pair kernels must agree with the portable Q8_0 kernel directly, not
// only with dotQ8 (which is itself the AVX2 kernel on such a machine).
func TestQ8PairKernelsMatchPortable(t *testing.T) {
	if !pairKernels() {
		t.Skip("no AVX-512 on this machine")
	}
	for _, cols := range []int{32, 64, 96, 576, 1568} {
		m := testMatrix(gguf.Q8_0, 5, cols, 9)
		for _, n := range []int{2, 5, 8} {
			x := testActs(n, cols, 4)
			in := tileIn{x: x, pairs: packPairs(nil, x), pairStride: 2 * cols}
			for r := range m.rows {
				var out [tileTokens]float32
				dotTokensQ8(m, r, &in, 0, n, &out)
				nb := cols / q8Block
				for j := range n {
					want := dotQ8Portable(m.q8[r*nb*q8BlockBytes:(r+1)*nb*q8BlockBytes], m.q8scale[r*nb:(r+1)*nb], x.vec(j))
					if math.Float32bits(out[j]) != math.Float32bits(want) {
						t.Fatalf("cols %d n %d row %d token %d: pair kernel %v, portable %v", cols, n, r, j, out[j], want)
					}
				}
			}
		}
	}
}

func TestPackPairs(t *testing.T) {
	x := testActs(3, 16, 1)
	p := packPairs(nil, x)
	if len(p) != 2*2*16 {
		t.Fatalf("len %d", len(p))
	}
	for _, c := range []struct{ at, tok, i int }{
		{0, 0, 0}, {7, 0, 7}, {8, 1, 0}, {15, 1, 7}, {16, 0, 8}, {24, 1, 8}, {31, 1, 15},
		{32, 2, 0}, {40, 2, 0}, {48, 2, 8}, {56, 2, 8}, // the odd token pairs with itself
	} {
		if p[c.at] != x.vec(c.tok)[c.i] {
			t.Fatalf("packed[%d] = %v, want token %d value %d", c.at, p[c.at], c.tok, c.i)
		}
	}
}
