package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/agoranet/agora/engine/gguf"
)

// quantMatrix makes a rows × cols matrix of random blocks of type typ.
func quantMatrix(typ gguf.TensorType, rows, cols int, seed uint64) *matrix {
	k := quantKernels[typ]
	rng := rand.New(rand.NewPCG(seed, 17))
	m := &matrix{typ: typ, rows: rows, cols: cols, kern: k, rowBytes: cols / k.elems * k.bytes}
	m.q = randomBlocks(typ, rows*cols/k.elems, rng, 0)
	return m
}

var tileQuantTypes = []gguf.TensorType{gguf.Q4_0, gguf.Q5_0, gguf.Q4_K, gguf.Q5_K, gguf.Q6_K, gguf.Q8_K}

// Every quantized type's batched product equals m.dot per token bit for
// bit, for every batch size and thread count, with the Go tile kernels and
// with whatever kernelFor picks on this CPU, against m.dot on the SIMD
// kernels and on the portable ones: a miner's generation and a validator's
// Score must agree whatever either CPU has.
func TestQuantTilesMatchDot(t *testing.T) {
	modes := []bool{false} // useAVX2 while the product runs
	if useAVX2 {
		modes = append(modes, true)
	}
	each := reflect.ValueOf(dotTokensEach).Pointer()
	for _, typ := range tileQuantTypes {
		elems := quantKernels[typ].elems
		withAVX2(false, func() {
			if k := kernelFor(quantMatrix(typ, 1, elems, 1)); k.dot == nil || reflect.ValueOf(k.dot).Pointer() == each {
				t.Fatalf("%s: no tile kernel without AVX2", typ)
			}
		})
		// An odd block count exercises the even/odd accumulator split.
		for _, shape := range [][2]int{{37, 3 * 512}, {5, 7 * elems}, {3, elems}} {
			m := quantMatrix(typ, shape[0], shape[1], uint64(shape[1]))
			for n := 1; n <= 16; n++ {
				x := testActs(n, shape[1], uint64(n))
				wants := map[bool][]float32{}
				for _, avx := range modes {
					withAVX2(avx, func() { wants[avx] = quantDots(m, x) })
				}
				for _, want := range wants {
					for _, avx := range modes {
						for _, workers := range []int{1, 2, 3} {
							name := fmt.Sprintf("%s/%dx%d/n%d/avx2=%v/%dworkers", typ, shape[0], shape[1], n, avx, workers)
							var got []float32
							withAVX2(avx, func() { got = runMatmul(t, m, x, workers, avx) })
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
}

// withAVX2 runs f with the AVX2 kernels on or off (off only, without AVX2).
func withAVX2(on bool, f func()) {
	if !on && useAVX2 {
		setAVX2(false)
		defer setAVX2(true)
	}
	f()
}

// quantDots is m·x by m.dot per token.
func quantDots(m *matrix, x *acts) []float32 {
	want := make([]float32, x.n*m.rows)
	for tok := range x.n {
		for r := range m.rows {
			want[tok*m.rows+r] = m.dot(r, x, tok)
		}
	}
	return want
}
