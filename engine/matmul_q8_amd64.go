package engine

import "golang.org/x/sys/cpu"

// useVNNI selects the AVX-512 VNNI integer kernels (matmul_q8_amd64.s).
var useVNNI = cpu.X86.HasAVX512F && cpu.X86.HasAVX512VNNI

// useQ8AVX2 selects the AVX2 integer kernels (matmul_q8_avx2_amd64.s) where
// VNNI is missing or switched off.
var useQ8AVX2 = cpu.X86.HasAVX2

//go:noescape
func q8x8VNNI(w *byte, ws *float32, nb int, q *int8, d *float32, c *int32, out *float32, stride int)

//go:noescape
func q8x1VNNI(w *byte, ws *float32, nb int, q *int8, d *float32, c *int32, out *float32)

//go:noescape
func q8x8AVX2(w *byte, ws *float32, nb int, q *int8, d *float32, c *int32, out *float32, stride int)

//go:noescape
func q8x1AVX2(w *byte, ws *float32, nb int, q *int8, d *float32, c *int32, out *float32)

// q8Tile is q8TilePortable with the fastest kernel the CPU has.
func q8Tile(p *q8Packed, g, nb int, a *q8Acts, tile, k int, out []float32, stride int) {
	vnni := useVNNI && useAVX2
	if !(vnni || useQ8AVX2 && useAVX2) || nb == 0 {
		q8TilePortable(p, g, nb, a, tile, k, out, stride)
		return
	}
	// The assembly trusts its lengths: check them here once.
	w := p.w[g*nb*q8GroupBlock:][:nb*q8GroupBlock]
	ws := p.ws[g*nb*q8Rows:][:nb*q8Rows]
	base := tile * nb * q8TileTokens
	q := a.q[base*q8Block:][:nb*q8TileBlock]
	d := a.d[base:][:nb*q8TileTokens]
	c := a.c[base:][:nb*q8TileTokens]
	_ = out[(k-1)*stride+q8Rows-1]
	switch {
	case k == q8TileTokens && vnni:
		q8x8VNNI(&w[0], &ws[0], nb, &q[0], &d[0], &c[0], &out[0], 4*stride)
	case k == q8TileTokens:
		q8x8AVX2(&w[0], &ws[0], nb, &q[0], &d[0], &c[0], &out[0], 4*stride)
	case vnni:
		for j := range k {
			q8x1VNNI(&w[0], &ws[0], nb, &q[j*q8Block], &d[j], &c[j], &out[j*stride])
		}
	default:
		for j := range k {
			q8x1AVX2(&w[0], &ws[0], nb, &q[j*q8Block], &d[j], &c[j], &out[j*stride])
		}
	}
}

// withoutVNNI turns the integer SIMD kernels (VNNI and AVX2, of q8Tile and
// kTile alike) off until the returned function restores them: tests and
// benchmarks compare them with the portable kernels.
func withoutVNNI() (restore func()) {
	vnni, avx2 := useVNNI, useQ8AVX2
	useVNNI, useQ8AVX2 = false, false
	return func() { useVNNI, useQ8AVX2 = vnni, avx2 }
}

// withQ8AVX2 makes q8Tile and kTile take the AVX2 kernels, even on a VNNI
// CPU, until restore is called; ok is false, and nothing changes, without
// AVX2.
func withQ8AVX2() (restore func(), ok bool) {
	if !useQ8AVX2 || !useAVX2 {
		return func() {}, false
	}
	vnni := useVNNI
	useVNNI = false
	return func() { useVNNI = vnni }, true
}
