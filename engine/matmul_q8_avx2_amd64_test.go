package engine

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The AVX2 kernels must equal the reference bit for bit on every shape the
// VNNI ones are held to (TestMatmulTilesMatchDot): full and partial tiles
// take q8x8AVX2 and q8x1AVX2, whole and partial 16-row groups both halves.
func TestQ8AVX2MatchesReference(t *testing.T) {
	restore, ok := withQ8AVX2()
	restore()
	if !ok {
		t.Skip("no AVX2")
	}
	for _, shape := range [][2]int{{96, 1568}, {40, 576}, {3, 32}} {
		rows, cols := shape[0], shape[1]
		m, raw := testQ8Matrix(rows, cols, uint64(cols))
		for _, n := range []int{1, 2, 3, 7, 8, 9, 13, 16} {
			x := testActs(n, cols, uint64(n))
			want := q8Reference(raw, rows, cols, x)
			for _, workers := range []int{1, 2, 3} {
				restore, _ := withQ8AVX2()
				got := runMatmul(t, m, x, workers, true)
				restore()
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%dx%d/n%d/%dworkers: element %d (token %d row %d) = %v, reference %v",
							rows, cols, n, workers, i, i/rows, i%rows, got[i], want[i])
					}
				}
			}
		}
	}
}

// Extreme bytes are where an emulated VPDPBUSD goes wrong: VPMADDUBSW of
// the biased weights saturates at w = 127, a = ±127, and the sign trick
// wraps if −128 lands on the signed side. Every kernel q8Tile can pick, for
// every token count of a tile, must give the sums computed here from the
// plain weights, including all-extreme blocks whose int16 pair sums are the
// largest there are. The weights and values are laid out here by hand (as
// matmul_q8.go documents), so the test holds whatever packs or quantizes.
func TestQ8KernelsExtremeValues(t *testing.T) {
	const rows, nb = 32, 8
	rng := rand.New(rand.NewPCG(1, 2))
	extremes := []int8{-128, -127, 127, 126, -1, 1, 0}
	w := make([]int8, rows*nb*q8Block)
	ws := make([]float32, rows*nb)
	for r := range rows {
		for b := range nb {
			ws[r*nb+b] = 1 + float32(rng.IntN(4))/1024
			for i := range q8Block {
				v := extremes[rng.IntN(len(extremes))]
				switch b {
				case 0:
					v = 127
				case 1:
					v = -128
				case 2:
					v = []int8{127, -128}[r%2]
				}
				w[(r*nb+b)*q8Block+i] = v
			}
		}
	}
	p := q8Packed{w: make([]byte, rows/q8Rows*nb*q8GroupBlock), ws: make([]float32, rows*nb)}
	for r := range rows {
		g, lr := r/q8Rows, r%q8Rows
		for b := range nb {
			p.ws[(g*nb+b)*q8Rows+lr] = ws[r*nb+b]
			for i := range q8Block {
				p.w[(g*nb+b)*q8GroupBlock+(i/4)*4*q8Rows+lr*4+i%4] = byte(w[(r*nb+b)*q8Block+i]) ^ 0x80
			}
		}
	}
	a := q8Acts{n: q8TileTokens, nb: nb,
		q: make([]int8, nb*q8TileBlock), d: make([]float32, nb*q8TileTokens), c: make([]int32, nb*q8TileTokens)}
	for tok := range q8TileTokens {
		for b := range nb {
			i := a.index(tok, b)
			a.d[i] = 1 + float32(tok)/8 + float32(b)/64
			var sum int32
			for e := range q8Block {
				v := []int8{127, -127}[rng.IntN(2)]
				switch {
				case b == 0 && tok%2 == 1:
					v = -127
				case b == 0:
					v = 127
				case b >= 5 && rng.IntN(4) == 0:
					v = int8(rng.IntN(255) - 127)
				}
				a.q[i*q8Block+e] = v
				sum += int32(v)
			}
			a.c[i] = -128 * sum
		}
	}

	want := make([]float32, q8TileTokens*rows)
	for tok := range q8TileTokens {
		for r := range rows {
			var acc float32
			for b := range nb {
				i := a.index(tok, b)
				var isum int32
				for e := range q8Block {
					isum += int32(w[(r*nb+b)*q8Block+e]) * int32(a.q[i*q8Block+e])
				}
				acc += float32(float32(isum) * (ws[r*nb+b] * a.d[i]))
			}
			want[tok*rows+r] = acc
		}
	}

	kernels := []struct {
		name string
		set  func() (restore func(), ok bool)
	}{
		{"fastest", func() (func(), bool) { return func() {}, true }},
		{"avx2", withQ8AVX2},
		{"portable", func() (func(), bool) { return withoutVNNI(), true }},
	}
	for _, kn := range kernels {
		restore, ok := kn.set()
		if !ok {
			restore()
			continue
		}
		for k := 1; k <= q8TileTokens; k++ {
			for g := range rows / q8Rows {
				out := make([]float32, k*q8Rows)
				q8Tile(&p, g, nb, &a, 0, k, out, q8Rows)
				for j := range k {
					for lr := range q8Rows {
						got, w := out[j*q8Rows+lr], want[j*rows+g*q8Rows+lr]
						if math.Float32bits(got) != math.Float32bits(w) {
							restore()
							t.Fatalf("%s/k%d: token %d row %d = %v, want %v", kn.name, k, j, g*q8Rows+lr, got, w)
						}
					}
				}
			}
		}
		restore()
	}
}

// The AVX2 kernel must not lose its half of the rows or its token quad when
// results are written with a stride wider than one group: out past a
// token's 16 results stays untouched.
func TestQ8AVX2StrideLeavesGaps(t *testing.T) {
	restore, ok := withQ8AVX2()
	defer restore()
	if !ok {
		t.Skip("no AVX2")
	}
	const cols = 64
	m, _ := testQ8Matrix(q8Rows, cols, 3)
	x := testActs(q8TileTokens, cols, 4)
	var a q8Acts
	a.quantize(x)
	nb := cols / q8Block
	const stride = q8Rows + 5
	for _, k := range []int{q8TileTokens, 5} {
		out := make([]float32, k*stride)
		for i := range out {
			out[i] = -7
		}
		q8Tile(&m.q8, 0, nb, &a, 0, k, out, stride)
		want := make([]float32, k*q8Rows)
		q8TilePortable(&m.q8, 0, nb, &a, 0, k, want, q8Rows)
		for i, v := range out {
			j, lr := i/stride, i%stride
			w := float32(-7)
			if lr < q8Rows {
				w = want[j*q8Rows+lr]
			}
			if math.Float32bits(v) != math.Float32bits(w) {
				t.Fatalf("k%d: out[%d] (token %d lane %d) = %v, want %v", k, i, j, lr, v, w)
			}
		}
	}
}
