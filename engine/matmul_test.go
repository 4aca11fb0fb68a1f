package engine

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/agoranet/agora/engine/gguf"
)

// testMatrix makes a rows × cols matrix of random F32 or Q8_0 weights.
func testMatrix(typ gguf.TensorType, rows, cols int, seed uint64) *matrix {
	if typ == gguf.Q8_0 {
		m, _ := testQ8Matrix(rows, cols, seed)
		return m
	}
	m := &matrix{typ: typ, rows: rows, cols: cols}
	rng := rand.New(rand.NewPCG(seed, 11))
	m.f32 = make([]float32, rows*cols)
	for i := range m.f32 {
		m.f32[i] = float32(rng.NormFloat64())
	}
	return m
}

// testQ8Matrix makes a random Q8_0 matrix and returns its blocks as a file
// holds them too.
func testQ8Matrix(rows, cols int, seed uint64) (*matrix, []byte) {
	var raw []byte
	for r := range rows {
		w, _, _ := randomQ8(cols, seed*1000+uint64(r))
		raw = append(raw, w...)
	}
	return &matrix{typ: gguf.Q8_0, rows: rows, cols: cols, q8: packQ8(nil, raw, rows, cols, cols/q8Block*q8BlockBytes, q8Decoders[gguf.Q8_0])}, raw
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

// Every batched product must equal the per-token reference bit for bit,
// for every batch size (full tiles, partial tiles, odd counts), on one and
// on several threads, with and without the SIMD kernels: Score relies on it
// to reproduce what a miner's generation computed, whatever the CPU. For
// F32 the reference is m.dot; for Q8_0 it is q8Reference, computed from the
// file's blocks without the repacked layout.
func TestMatmulTilesMatchDot(t *testing.T) {
	for _, typ := range []gguf.TensorType{gguf.F32, gguf.Q8_0} {
		// 96 rows × 1568 cols: an odd block count exercises the kernels' tails;
		// 40 and 3 rows leave a partial 16-row group.
		for _, shape := range [][2]int{{96, 1568}, {40, 576}, {3, 32}} {
			rows, cols := shape[0], shape[1]
			m, raw := testMatrix(typ, rows, cols, uint64(cols)), []byte(nil)
			if typ == gguf.Q8_0 {
				m, raw = testQ8Matrix(rows, cols, uint64(cols))
			}
			for _, n := range []int{1, 2, 3, 7, 8, 9, 13, 16} {
				x := testActs(n, cols, uint64(n))
				var want []float32
				if typ == gguf.Q8_0 {
					want = q8Reference(raw, rows, cols, x)
				} else {
					want = make([]float32, n*rows)
					for tok := range n {
						for r := range rows {
							want[tok*rows+r] = m.dot(r, x, tok)
						}
					}
				}
				for _, simd := range []bool{false, true} {
					for _, workers := range []int{1, 2, 3} {
						name := fmt.Sprintf("%s/%dx%d/n%d/simd=%v/%dworkers", typ, rows, cols, n, simd, workers)
						got := runMatmul(t, m, x, workers, simd)
						for i := range want {
							if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
								t.Fatalf("%s: element %d (token %d row %d) = %v, reference %v", name, i, i/rows, i%rows, got[i], want[i])
							}
						}
					}
				}
			}
		}
	}
}

// q8Reference is the documented Q8_0 product (matmul_q8.go) computed
// straight from the file's blocks: quantize each token's blocks, sum each
// block in int32, then acc += float32(isum)·(ws·da) block by block.
func q8Reference(raw []byte, rows, cols int, x *acts) []float32 {
	nb := cols / q8Block
	out := make([]float32, x.n*rows)
	var q [q8Block]int8
	for t := range x.n {
		for r := range rows {
			var acc float32
			for b := range nb {
				da, _ := quantizeBlock(&q, (*[q8Block]float32)(x.vec(t)[b*q8Block:]))
				blk := raw[(r*nb+b)*q8BlockBytes:]
				var isum int32
				for i := range q8Block {
					isum += int32(int8(blk[2+i])) * int32(q[i])
				}
				s := f16ToF32(binary.LittleEndian.Uint16(blk)) * da
				acc += float32(float32(isum) * s)
			}
			out[t*rows+r] = acc
		}
	}
	return out
}

// runMatmul computes m·x through the pool, with the SIMD kernels on or off.
func runMatmul(t *testing.T, m *matrix, x *acts, workers int, simd bool) []float32 {
	t.Helper()
	if !simd {
		defer withoutVNNI()()
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
	return out
}

// The integer Q8_0 product stays close to the float product of the same
// weights and unquantized activations (activation quantization costs about
// 0.5% of a random dot's magnitude), and its quantizer handles the edges.
func TestQ8ProductNearFloat(t *testing.T) {
	m, raw := testQ8Matrix(16, 1536, 5)
	x := testActs(3, 1536, 6)
	got := q8Reference(raw, 16, 1536, x)
	nb := 1536 / q8Block
	for tok := range 3 {
		for r := range 16 {
			var want, mag float64
			for c := range 1536 {
				blk := raw[(r*nb+c/q8Block)*q8BlockBytes:]
				w := float64(f16ToF32(binary.LittleEndian.Uint16(blk))) * float64(int8(blk[2+c%q8Block]))
				want += w * float64(x.vec(tok)[c])
				mag += math.Abs(w * float64(x.vec(tok)[c]))
			}
			if d := math.Abs(float64(got[tok*16+r]) - want); d > 0.01*mag {
				t.Errorf("token %d row %d: integer %v, float %v (|Σ| %v)", tok, r, got[tok*16+r], want, mag)
			}
			dst := make([]float32, 1536)
			m.row(dst, r)
			for c := range 1536 {
				blk := raw[(r*nb+c/q8Block)*q8BlockBytes:]
				if want := f16ToF32(binary.LittleEndian.Uint16(blk)) * float32(int8(blk[2+c%q8Block])); dst[c] != want {
					t.Fatalf("row %d col %d: repacked %v, file %v", r, c, dst[c], want)
				}
			}
		}
	}
}

func TestQuantizeBlock(t *testing.T) {
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	for _, c := range []struct {
		name string
		x    []float32
		q    []int8
		d    float32
	}{
		{"zero", []float32{0, 0}, []int8{0, 0}, 0},
		{"amax maps to 127", []float32{2.54, -1.27, 0.01, 0.03}, []int8{127, -64, 1, 2}, 0.02},
		{"half away from zero", []float32{-127, 0.5, -0.5, 1.5}, []int8{-127, 1, -1, 2}, 1},
		{"infinity gives zeros", []float32{inf, 1}, []int8{0, 0}, 0},
		{"NaN gives zeros", []float32{nan, 1}, []int8{0, 0}, 0},
	} {
		var x [q8Block]float32
		var qa [q8Block]int8
		copy(x[:], c.x)
		d, corr := quantizeBlock(&qa, &x)
		q := qa[:len(c.x)]
		var sum int32
		for _, v := range q {
			sum += int32(v)
		}
		if !slices.Equal(q, c.q) || math.Abs(float64(d-c.d)) > 1e-7 || corr != -128*sum {
			t.Errorf("%s: q %v d %v corr %d, want q %v d %v corr %d", c.name, q, d, corr, c.q, c.d, -128*sum)
		}
	}
}

// intKernels are the integer kernel sets a test can force on this CPU: the
// fastest it has, AVX2 (even where VNNI is present) and portable.
var intKernels = []struct {
	name string
	set  func() (restore func(), ok bool)
}{
	{"fastest", func() (func(), bool) { return func() {}, true }},
	{"avx2", withQ8AVX2},
	{"portable", func() (func(), bool) { return withoutVNNI(), true }},
}

// expectProducts checks m·x against want bit for bit with every kernel set
// of intKernels, on 1 and 3 workers.
func expectProducts(t *testing.T, m *matrix, x *acts, want []float32, what string) {
	t.Helper()
	for _, kern := range intKernels {
		restore, ok := kern.set()
		if !ok {
			restore()
			continue
		}
		for _, workers := range []int{1, 3} {
			got := runMatmul(t, m, x, workers, true)
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					restore()
					t.Fatalf("%s/%s/%dworkers: element %d (token %d row %d) = %v, want %v",
						what, kern.name, workers, i, i/m.rows, i%m.rows, got[i], want[i])
				}
			}
		}
		restore()
	}
}
