package engine

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/agoranet/agora/engine/gguf"
	"golang.org/x/sys/cpu"
)

// q8ARM64Kernels are the kernel choices q8Tile has on arm64, each with the
// switch that selects it; ok is false where the CPU lacks it.
var q8ARM64Kernels = []struct {
	name string
	set  func() (restore func(), ok bool)
}{
	{"sdot", func() (func(), bool) { return func() {}, useSDOT }},
	{"neon", withQ8NEON},
	{"portable", func() (func(), bool) { return withoutVNNI(), true }},
}

// armQ8Weights makes rows × cols Q8_0 blocks (as a file holds them) whose
// levels follow mode: every byte ("uniform"), only the extremes and their
// neighbours ("extreme", so biased bytes 0, 1, 255 and 254 all occur), or
// one value throughout ("max": 127, "min": −128).
func armQ8Weights(rows, cols int, mode string, rng *rand.Rand) []byte {
	nb := cols / q8Block
	raw := make([]byte, rows*nb*q8BlockBytes)
	extremes := []int8{-128, -127, 127, 126, -1, 0, 1}
	for r := range rows {
		for b := range nb {
			blk := raw[(r*nb+b)*q8BlockBytes:][:q8BlockBytes]
			binary.LittleEndian.PutUint16(blk, f32ToF16(0.001+rng.Float32()*0.01))
			for i := range q8Block {
				var v int8
				switch mode {
				case "uniform":
					v = int8(rng.IntN(256) - 128)
				case "extreme":
					v = extremes[rng.IntN(len(extremes))]
				case "max":
					v = 127
				case "min":
					v = -128
				}
				blk[2+i] = byte(v)
			}
		}
	}
	return raw
}

// armQ8Acts quantizes n random tokens of cols values; mode "extreme" then
// overwrites every value with ±127 (and some −128, 0 and ±1: −128 never
// comes out of the quantizer, but the kernels' sums are exact for it too),
// keeping each block's correction c consistent.
func armQ8Acts(n, cols int, mode string, rng *rand.Rand) *q8Acts {
	x := testActs(n, cols, rng.Uint64())
	a := &q8Acts{}
	a.quantize(x)
	if mode != "extreme" {
		return a
	}
	for t := range n {
		for b := range a.nb {
			i := a.index(t, b)
			var sum int32
			for e := range q8Block {
				v := []int8{127, -127, 127, -127, -128, 0, 1, -1}[rng.IntN(8)]
				a.q[i*q8Block+e] = v
				sum += int32(v)
			}
			a.c[i] = -128 * sum
			a.d[i] = 0.5 + rng.Float32()
		}
	}
	return a
}

// Every arm64 kernel must give q8TilePortable's results bit for bit: for
// every 16-row group (whole and padded: 3, 40 and 100 rows), every tile and
// every token count k of it (1..8: the SDOT path's 4-token passes, its
// lone-token kernel and its scratch for 2 or 3 left over), on random and
// extreme weights and values, written with a stride wider than a group
// whose gaps must stay untouched.
func TestQ8ARM64KernelsMatchPortable(t *testing.T) {
	t.Logf("dotprod: %v", cpu.ARM64.HasASIMDDP)
	type shape struct{ rows, cols int }
	shapes := []shape{{16, 32}, {3, 64}, {40, 576}, {100, 1568}, {32, 96}}
	cases := []struct {
		weights, acts string
	}{
		{"uniform", "quantized"},
		{"extreme", "quantized"},
		{"extreme", "extreme"},
		{"max", "extreme"},
		{"min", "extreme"},
		{"uniform", "extreme"},
	}
	const gap, sentinel = 3, float32(-7.25)
	for _, kn := range q8ARM64Kernels[:2] {
		for ci, c := range cases {
			for si, s := range shapes {
				name := fmt.Sprintf("%s/%s-weights/%s-acts/%dx%d", kn.name, c.weights, c.acts, s.rows, s.cols)
				t.Run(name, func(t *testing.T) {
					restore, ok := kn.set()
					restore()
					if !ok {
						t.Skip("kernel not available on this CPU")
					}
					rng := rand.New(rand.NewPCG(uint64(ci), uint64(si)))
					raw := armQ8Weights(s.rows, s.cols, c.weights, rng)
					nb := s.cols / q8Block
					p := packQ8(nil, raw, s.rows, s.cols, nb*q8BlockBytes, q8Decoders[gguf.Q8_0])
					for _, n := range []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 13} {
						a := armQ8Acts(n, s.cols, c.acts, rng)
						stride := q8Rows + gap
						for g := range (s.rows + q8Rows - 1) / q8Rows {
							for tile := range (n + q8TileTokens - 1) / q8TileTokens {
								for k := 1; k <= min(q8TileTokens, n-tile*q8TileTokens); k++ {
									want := make([]float32, k*q8Rows)
									q8TilePortable(&p, g, nb, a, tile, k, want, q8Rows)
									got := make([]float32, k*stride)
									for i := range got {
										got[i] = sentinel
									}
									restore, _ := kn.set()
									q8Tile(&p, g, nb, a, tile, k, got, stride)
									restore()
									for i, v := range got {
										j, lr := i/stride, i%stride
										w := sentinel
										if lr < q8Rows {
											w = want[j*q8Rows+lr]
										}
										if math.Float32bits(v) != math.Float32bits(w) {
											t.Fatalf("n%d group %d tile %d k%d: token %d lane %d = %v (%#x), want %v (%#x)",
												n, g, tile, k, j, lr, v, math.Float32bits(v), w, math.Float32bits(w))
										}
									}
								}
							}
						}
					}
				})
			}
		}
	}
}

// Through the pool (runInt's row ranges cut groups and tiles apart), each
// arm64 kernel must match the documented reference computed from the
// file's blocks, on one and on several workers.
func TestQ8ARM64ProductMatchesReference(t *testing.T) {
	for _, kn := range q8ARM64Kernels {
		for _, shape := range [][2]int{{96, 1568}, {40, 576}, {3, 32}} {
			rows, cols := shape[0], shape[1]
			t.Run(fmt.Sprintf("%s/%dx%d", kn.name, rows, cols), func(t *testing.T) {
				restore, ok := kn.set()
				restore()
				if !ok {
					t.Skip("kernel not available on this CPU")
				}
				m, raw := testQ8Matrix(rows, cols, uint64(cols))
				for _, n := range []int{1, 3, 4, 8, 9, 16} {
					x := testActs(n, cols, uint64(n))
					want := q8Reference(raw, rows, cols, x)
					for _, workers := range []int{1, 3} {
						restore, _ := kn.set()
						got := runMatmul(t, m, x, workers, true)
						restore()
						for i := range want {
							if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
								t.Fatalf("n%d/%dworkers: element %d (token %d row %d) = %v, reference %v",
									n, workers, i, i/rows, i%rows, got[i], want[i])
							}
						}
					}
				}
			})
		}
	}
}

// The switches must do what the tests above rely on: withoutVNNI turns
// both arm64 kernels off and withQ8NEON only SDOT, each restoring the
// flags as they were; withQ8AVX2 never applies here.
func TestQ8ARM64Switches(t *testing.T) {
	sdot, neon := useSDOT, useQ8NEON
	restore := withoutVNNI()
	if useSDOT || useQ8NEON {
		t.Errorf("withoutVNNI left sdot %v neon %v", useSDOT, useQ8NEON)
	}
	restore()
	r, ok := withQ8NEON()
	if !ok || useSDOT || !useQ8NEON {
		t.Errorf("withQ8NEON: ok %v sdot %v neon %v", ok, useSDOT, useQ8NEON)
	}
	r()
	if _, ok := withQ8AVX2(); ok {
		t.Error("withQ8AVX2 ok on arm64")
	}
	if useSDOT != sdot || useQ8NEON != neon {
		t.Errorf("flags not restored: sdot %v neon %v, were %v %v", useSDOT, useQ8NEON, sdot, neon)
	}
	if useSDOT != cpu.ARM64.HasASIMDDP {
		t.Errorf("useSDOT %v, CPU dotprod %v", useSDOT, cpu.ARM64.HasASIMDDP)
	}
}

// BenchmarkMatmulQ8ARM64 times the 1536×576 Q8_0 product of
// BenchmarkMatmulQ8 on one thread with each arm64 kernel, for one token
// (decode: q8x1SDOT, q8x1NEON) and a full batch (q8x4SDOT).
func BenchmarkMatmulQ8ARM64(b *testing.B) {
	m := testMatrix(gguf.Q8_0, 1536, 576, 1)
	for _, n := range []int{1, maxBatch} {
		x := testActs(n, 576, 2)
		out := make([]float32, n*m.rows)
		for _, kn := range q8ARM64Kernels {
			b.Run(fmt.Sprintf("%s/%dtok", kn.name, n), func(b *testing.B) {
				restore, ok := kn.set()
				defer restore()
				if !ok {
					b.Skip("kernel not available on this CPU")
				}
				benchProduct(b, m, x, out)
			})
		}
	}
}
