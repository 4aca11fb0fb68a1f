package engine

import "golang.org/x/sys/cpu"

// useSDOT selects the integer kernels built on SDOT (matmul_q8_arm64.s), of
// the dot-product extension: ARMv8.2 and later, every Apple M and Graviton
// 2 onward.
var useSDOT = cpu.ARM64.HasASIMDDP

// useQ8NEON selects the plain Advanced SIMD kernel where SDOT is missing or
// switched off. Every arm64 CPU Go runs on has Advanced SIMD.
var useQ8NEON = true

//go:noescape
func q8x4SDOT(w *byte, ws *float32, nb int, q *int8, d *float32, out *float32, stride int)

//go:noescape
func q8x1SDOT(w *byte, ws *float32, nb int, q *int8, d *float32, out *float32)

//go:noescape
func q8x1NEON(w *byte, ws *float32, nb int, q *int8, d *float32, out *float32)

// q8Tile is q8TilePortable with the fastest kernel the CPU has.
//
// With SDOT, a tile's tokens go 4 at a time through q8x4SDOT, once per
// half of the group's rows (32 registers cannot hold 16 rows × 4 tokens of
// block sums and accumulators both); a lone token left over goes through
// q8x1SDOT, 2 or 3 through q8x4SDOT into scratch (the tile's padding
// tokens exist, so reading past k is safe; only k tokens are written).
// Without SDOT every token goes through q8x1NEON.
func q8Tile(p *q8Packed, g, nb int, a *q8Acts, tile, k int, out []float32, stride int) {
	if !(useSDOT || useQ8NEON) || nb == 0 {
		q8TilePortable(p, g, nb, a, tile, k, out, stride)
		return
	}
	// The assembly trusts its lengths: check them here once.
	w := p.w[g*nb*q8GroupBlock:][:nb*q8GroupBlock]
	ws := p.ws[g*nb*q8Rows:][:nb*q8Rows]
	base := tile * nb * q8TileTokens
	q := a.q[base*q8Block:][:nb*q8TileBlock]
	d := a.d[base:][:nb*q8TileTokens]
	_ = out[(k-1)*stride+q8Rows-1]
	const half = q8Rows / 2
	if !useSDOT {
		for j := range k {
			q8x1NEON(&w[0], &ws[0], nb, &q[j*q8Block], &d[j], &out[j*stride])
		}
		return
	}
	j := 0
	for ; j+4 <= k; j += 4 {
		q8x4SDOT(&w[0], &ws[0], nb, &q[j*q8Block], &d[j], &out[j*stride], 4*stride)
		q8x4SDOT(&w[half*4], &ws[half], nb, &q[j*q8Block], &d[j], &out[j*stride+half], 4*stride)
	}
	switch k - j {
	case 0:
	case 1:
		q8x1SDOT(&w[0], &ws[0], nb, &q[j*q8Block], &d[j], &out[j*stride])
	default:
		var tmp [4 * q8Rows]float32
		q8x4SDOT(&w[0], &ws[0], nb, &q[j*q8Block], &d[j], &tmp[0], 4*q8Rows)
		q8x4SDOT(&w[half*4], &ws[half], nb, &q[j*q8Block], &d[j], &tmp[half], 4*q8Rows)
		for i := range k - j {
			copy(out[(j+i)*stride:][:q8Rows], tmp[i*q8Rows:])
		}
	}
}

// withoutVNNI turns the integer SIMD kernels (SDOT and plain NEON here) off
// until the returned function restores them: tests and benchmarks compare
// them with the portable kernel.
func withoutVNNI() (restore func()) {
	sdot, neon := useSDOT, useQ8NEON
	useSDOT, useQ8NEON = false, false
	return func() { useSDOT, useQ8NEON = sdot, neon }
}

// withQ8AVX2 reports that there are no AVX2 kernels here.
func withQ8AVX2() (restore func(), ok bool) { return func() {}, false }

// withQ8NEON makes q8Tile take the plain NEON kernel, even on a CPU with
// SDOT, until restore is called; ok is false, and nothing changes, when
// the NEON kernels are off.
func withQ8NEON() (restore func(), ok bool) {
	if !useQ8NEON {
		return func() {}, false
	}
	sdot := useSDOT
	useSDOT = false
	return func() { useSDOT = sdot }, true
}

// kTile is kTilePortable: no arm64 K-quant kernel yet.
func kTile(p *kPacked, g, nb int, a *q8Acts, tile, k int, out []float32, stride int) {
	kTilePortable(p, g, nb, a, tile, k, out, stride)
}
