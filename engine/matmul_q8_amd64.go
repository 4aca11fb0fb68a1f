package engine

import "golang.org/x/sys/cpu"

// useVNNI selects the AVX-512 VNNI integer kernels (matmul_q8_amd64.s).
var useVNNI = cpu.X86.HasAVX512F && cpu.X86.HasAVX512VNNI

//go:noescape
func q8x8VNNI(w *byte, ws *float32, nb int, q *int8, d *float32, c *int32, out *float32, stride int)

//go:noescape
func q8x1VNNI(w *byte, ws *float32, nb int, q *int8, d *float32, c *int32, out *float32)

// q8Tile is q8TilePortable with the fastest kernel the CPU has.
func q8Tile(p *q8Packed, g, nb int, a *q8Acts, tile, k int, out []float32, stride int) {
	if !useVNNI || !useAVX2 || nb == 0 {
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
	if k == q8TileTokens {
		q8x8VNNI(&w[0], &ws[0], nb, &q[0], &d[0], &c[0], &out[0], 4*stride)
		return
	}
	for j := range k {
		q8x1VNNI(&w[0], &ws[0], nb, &q[j*q8Block], &d[j], &c[j], &out[j*stride])
	}
}

// withoutVNNI turns the VNNI kernels off until the returned function
// restores them (tests and benchmarks compare both paths).
func withoutVNNI() (restore func()) {
	was := useVNNI
	useVNNI = false
	return func() { useVNNI = was }
}
