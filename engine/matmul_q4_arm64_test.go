package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/agoranet/agora/engine/gguf"
	"golang.org/x/sys/cpu"
)

// q4ARM64Kernels are the kernel choices q4Tile has on arm64 (the flags of
// q8Tile), each with the switch that selects it; ok is false where the CPU
// lacks it.
var q4ARM64Kernels = []struct {
	name string
	set  func() (restore func(), ok bool)
}{
	{"sdot", func() (func(), bool) { return func() {}, useSDOT }},
	{"neon", withQ8NEON},
	{"portable", func() (func(), bool) { return withoutVNNI(), true }},
}

// Every arm64 Q4_0 and Q5_0 kernel must give q4TilePortable's results bit
// for bit: for every 16-row group (whole and padded: 3, 33, 40 and 100
// rows), every tile and every token count k of it (1..8 of 1..9 and 13
// tokens: the SDOT path's 4-token passes, its lone-token kernel and its
// scratch for 2 or 3 left over), on random levels, all 0, all at the
// maximum and each 0 or the maximum, against normal, all-127, alternating
// and random-sign activations and extreme ones (±127, −128, 0, ±1),
// written with a stride wider than a group whose gaps must stay untouched.
func TestQ4ARM64KernelsMatchPortable(t *testing.T) {
	t.Logf("dotprod: %v", cpu.ARM64.HasASIMDDP)
	shapes := [][2]int{{16, 32}, {3, 64}, {40, 576}, {33, 1568}, {100, 96}}
	fills := []string{"random", "zero", "max", "extremes"}
	acts := []string{"normal", "ones", "alternate", "signs", "extreme"}
	const gap, sentinel = 5, float32(-7.25)
	for _, kn := range q4ARM64Kernels[:2] {
		for _, typ := range []gguf.TensorType{gguf.Q4_0, gguf.Q5_0} {
			for fi, fill := range fills {
				for si, s := range shapes {
					name := fmt.Sprintf("%s/%s/%s/%dx%d", kn.name, typ, fill, s[0], s[1])
					t.Run(name, func(t *testing.T) {
						restore, ok := kn.set()
						restore()
						if !ok {
							t.Skip("kernel not available on this CPU")
						}
						rows, cols := s[0], s[1]
						nb := cols / q8Block
						rng := rand.New(rand.NewPCG(uint64(fi), uint64(si)))
						p := packQ4(nil, typ, q4Blocks(typ, rows*nb, fill, rng), rows, cols)
						for ai, kind := range acts {
							for _, n := range []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 13} {
								var a *q8Acts
								if kind == "extreme" {
									a = armQ8Acts(n, cols, kind, rng)
								} else {
									a = &q8Acts{}
									a.quantize(q4Acts(n, cols, kind, uint64(100*ai+n)))
								}
								stride := q8Rows + gap
								for g := range (rows + q8Rows - 1) / q8Rows {
									for tile := range (n + q8TileTokens - 1) / q8TileTokens {
										for k := 1; k <= min(q8TileTokens, n-tile*q8TileTokens); k++ {
											want := make([]float32, k*q8Rows)
											q4TilePortable(p, g, nb, a, tile, k, want, q8Rows)
											got := make([]float32, k*stride)
											for i := range got {
												got[i] = sentinel
											}
											restore, _ := kn.set()
											q4Tile(p, g, nb, a, tile, k, got, stride)
											restore()
											for i, v := range got {
												j, lr := i/stride, i%stride
												w := sentinel
												if lr < q8Rows {
													w = want[j*q8Rows+lr]
												}
												if math.Float32bits(v) != math.Float32bits(w) {
													t.Fatalf("%s acts, n%d group %d tile %d k%d: token %d lane %d = %v (%#x), want %v (%#x)",
														kind, n, g, tile, k, j, lr, v, math.Float32bits(v), w, math.Float32bits(w))
												}
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
}

// Through the pool (runInt's row ranges cut groups and tiles apart, and
// partial tiles go through scratch), the whole product with each arm64
// kernel equals the portable kernel's, on one and on several workers.
func TestQ4ARM64ProductMatchesPortable(t *testing.T) {
	for _, kn := range q4ARM64Kernels[:2] {
		for _, typ := range []gguf.TensorType{gguf.Q4_0, gguf.Q5_0} {
			for _, shape := range [][2]int{{200, 576}, {40, 96}, {3, 32}} {
				rows, cols := shape[0], shape[1]
				t.Run(fmt.Sprintf("%s/%s/%dx%d", kn.name, typ, rows, cols), func(t *testing.T) {
					restore, ok := kn.set()
					restore()
					if !ok {
						t.Skip("kernel not available on this CPU")
					}
					raw := q4Blocks(typ, rows*cols/q8Block, "random", rand.New(rand.NewPCG(11, uint64(rows))))
					m := &matrix{typ: typ, rows: rows, cols: cols, q4: packQ4(nil, typ, raw, rows, cols)}
					for _, n := range []int{1, 3, 4, 8, 9, 13, 17} {
						x := testActs(n, cols, uint64(n))
						want := runMatmul(t, m, x, 1, false)
						for _, workers := range []int{1, 3} {
							restore, _ := kn.set()
							got := runMatmul(t, m, x, workers, true)
							restore()
							for i := range want {
								if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
									t.Fatalf("n%d/%dworkers: element %d (token %d row %d) = %v, portable %v",
										n, workers, i, i/rows, i%rows, got[i], want[i])
								}
							}
						}
					}
				})
			}
		}
	}
}

// BenchmarkMatmulQ4ARM64 times the 1536×576 Q4_0 and Q5_0 products of
// BenchmarkQ4VsQ8Packed on one thread with each arm64 kernel, for one
// token (decode: q4x1SDOT, q4x1NEON and their Q5_0 twins) and a full batch
// (q4x4SDOT, q5x4SDOT; NEON: one token at a time).
func BenchmarkMatmulQ4ARM64(b *testing.B) {
	const rows, cols = 1536, 576
	for _, typ := range []gguf.TensorType{gguf.Q4_0, gguf.Q5_0} {
		raw := q4Blocks(typ, rows*cols/q8Block, "random", rand.New(rand.NewPCG(1, 2)))
		m := &matrix{typ: typ, rows: rows, cols: cols, q4: packQ4(nil, typ, raw, rows, cols)}
		for _, n := range []int{1, maxBatch} {
			x := testActs(n, cols, 2)
			out := make([]float32, n*rows)
			for _, kn := range q4ARM64Kernels {
				b.Run(fmt.Sprintf("%s/%s/%dtok", typ, kn.name, n), func(b *testing.B) {
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
}
