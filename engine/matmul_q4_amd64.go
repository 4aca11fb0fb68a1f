package engine

//go:noescape
func q4x8VNNI(w *byte, ws *float32, nb int, q *int8, d *float32, c *int32, out *float32, stride int)

//go:noescape
func q4x1VNNI(w *byte, ws *float32, nb int, q *int8, d *float32, c *int32, out *float32)

//go:noescape
func q5x8VNNI(w *byte, ws *float32, nb int, q *int8, d *float32, c *int32, out *float32, stride int)

//go:noescape
func q5x1VNNI(w *byte, ws *float32, nb int, q *int8, d *float32, c *int32, out *float32)

//go:noescape
func q4x8AVX2(w *byte, ws *float32, nb int, q *int8, d *float32, c *int32, out *float32, stride int)

//go:noescape
func q4x1AVX2(w *byte, ws *float32, nb int, q *int8, d *float32, c *int32, out *float32)

//go:noescape
func q5x8AVX2(w *byte, ws *float32, nb int, q *int8, d *float32, c *int32, out *float32, stride int)

//go:noescape
func q5x1AVX2(w *byte, ws *float32, nb int, q *int8, d *float32, c *int32, out *float32)

// q4Tile is q4TilePortable with the fastest kernel the CPU has, chosen by
// the flags q8Tile uses (so withoutVNNI and withQ8AVX2 switch it too).
func q4Tile(p *q4Packed, g, nb int, a *q8Acts, tile, k int, out []float32, stride int) {
	vnni := useVNNI && useAVX2
	if !(vnni || useQ8AVX2 && useAVX2) || nb == 0 {
		q4TilePortable(p, g, nb, a, tile, k, out, stride)
		return
	}
	// The assembly trusts its lengths: check them here once.
	gb := p.groupBlock()
	w := p.w[g*nb*gb:][:nb*gb]
	ws := p.ws[g*nb*q8Rows:][:nb*q8Rows]
	base := tile * nb * q8TileTokens
	q := a.q[base*q8Block:][:nb*q8TileBlock]
	d := a.d[base:][:nb*q8TileTokens]
	c := a.c[base:][:nb*q8TileTokens]
	_ = out[(k-1)*stride+q8Rows-1]
	// Direct calls only: through a func value out (often runInt's stack
	// scratch) would escape to the heap.
	switch {
	case k == q8TileTokens && vnni && p.five:
		q5x8VNNI(&w[0], &ws[0], nb, &q[0], &d[0], &c[0], &out[0], 4*stride)
	case k == q8TileTokens && vnni:
		q4x8VNNI(&w[0], &ws[0], nb, &q[0], &d[0], &c[0], &out[0], 4*stride)
	case k == q8TileTokens && p.five:
		q5x8AVX2(&w[0], &ws[0], nb, &q[0], &d[0], &c[0], &out[0], 4*stride)
	case k == q8TileTokens:
		q4x8AVX2(&w[0], &ws[0], nb, &q[0], &d[0], &c[0], &out[0], 4*stride)
	default:
		for j := range k {
			switch {
			case vnni && p.five:
				q5x1VNNI(&w[0], &ws[0], nb, &q[j*q8Block], &d[j], &c[j], &out[j*stride])
			case vnni:
				q4x1VNNI(&w[0], &ws[0], nb, &q[j*q8Block], &d[j], &c[j], &out[j*stride])
			case p.five:
				q5x1AVX2(&w[0], &ws[0], nb, &q[j*q8Block], &d[j], &c[j], &out[j*stride])
			default:
				q4x1AVX2(&w[0], &ws[0], nb, &q[j*q8Block], &d[j], &c[j], &out[j*stride])
			}
		}
	}
}
