package engine

//go:noescape
func kx8VNNI(w *byte, s0, s1, mn *float32, nb int, q *int8, d *float32, clo, chi *int32, sum *float32, out *float32, stride int)

//go:noescape
func kx1VNNI(w *byte, s0, s1, mn *float32, nb int, q *int8, d *float32, clo, chi *int32, sum *float32, out *float32)

// kTile is kTilePortable with the fastest kernel the CPU has.
func kTile(p *kPacked, g, nb int, a *q8Acts, tile, k int, out []float32, stride int) {
	if !useVNNI || !useAVX2 || nb == 0 {
		kTilePortable(p, g, nb, a, tile, k, out, stride)
		return
	}
	// The assembly trusts its lengths: check them here once.
	w := p.w[g*nb*q8GroupBlock:][:nb*q8GroupBlock]
	s0 := p.s0[g*nb*q8Rows:][:nb*q8Rows]
	s1 := p.s1[g*nb*q8Rows:][:nb*q8Rows]
	mn := p.mn[g*nb*q8Rows:][:nb*q8Rows]
	clo, chi := p.corrections(a)
	base := tile * nb * q8TileTokens
	q := a.q[base*q8Block:][:nb*q8TileBlock]
	d := a.d[base:][:nb*q8TileTokens]
	lo := clo[base:][:nb*q8TileTokens]
	hi := chi[base:][:nb*q8TileTokens]
	sum := a.sum[base:][:nb*q8TileTokens]
	_ = out[(k-1)*stride+q8Rows-1]
	if k == q8TileTokens {
		kx8VNNI(&w[0], &s0[0], &s1[0], &mn[0], nb, &q[0], &d[0], &lo[0], &hi[0], &sum[0], &out[0], 4*stride)
		return
	}
	for j := range k {
		kx1VNNI(&w[0], &s0[0], &s1[0], &mn[0], nb, &q[j*q8Block], &d[j], &lo[j], &hi[j], &sum[j], &out[j*stride])
	}
}
