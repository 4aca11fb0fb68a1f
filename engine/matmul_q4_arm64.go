package engine

//go:noescape
func q4x4SDOT(w *byte, ws *float32, nb int, q *int8, d *float32, c *int32, out *float32, stride int)

//go:noescape
func q5x4SDOT(w *byte, ws *float32, nb int, q *int8, d *float32, c *int32, out *float32, stride int)

//go:noescape
func q4x1SDOT(w *byte, ws *float32, nb int, q *int8, d *float32, c *int32, out *float32)

//go:noescape
func q5x1SDOT(w *byte, ws *float32, nb int, q *int8, d *float32, c *int32, out *float32)

//go:noescape
func q4x1NEON(w *byte, ws *float32, nb int, q *int8, d *float32, c *int32, out *float32)

//go:noescape
func q5x1NEON(w *byte, ws *float32, nb int, q *int8, d *float32, c *int32, out *float32)

// q4Tile is q4TilePortable with the fastest kernel the CPU has, chosen by
// the flags q8Tile uses (so withoutVNNI and withQ8NEON switch it too), and
// split into calls as q8Tile splits its own: with SDOT, 4 tokens at a time
// through q4x4SDOT or q5x4SDOT, once per half of the group's rows; a lone
// token left over through q4x1SDOT or q5x1SDOT, 2 or 3 through the 4-token
// kernel into scratch (the tile's padding tokens exist: values, scales and
// corrections zero). Without SDOT every token goes through q4x1NEON or
// q5x1NEON.
func q4Tile(p *q4Packed, g, nb int, a *q8Acts, tile, k int, out []float32, stride int) {
	if !(useSDOT || useQ8NEON) || nb == 0 {
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
	five := p.five
	if !useSDOT {
		for j := range k {
			if five {
				q5x1NEON(&w[0], &ws[0], nb, &q[j*q8Block], &d[j], &c[j], &out[j*stride])
			} else {
				q4x1NEON(&w[0], &ws[0], nb, &q[j*q8Block], &d[j], &c[j], &out[j*stride])
			}
		}
		return
	}
	j := 0
	for ; j+4 <= k; j += 4 {
		q4x4Halves(five, w, ws, nb, &q[j*q8Block], &d[j], &c[j], &out[j*stride], &out[j*stride+q8Rows/2], stride)
	}
	switch k - j {
	case 0:
	case 1:
		if five {
			q5x1SDOT(&w[0], &ws[0], nb, &q[j*q8Block], &d[j], &c[j], &out[j*stride])
		} else {
			q4x1SDOT(&w[0], &ws[0], nb, &q[j*q8Block], &d[j], &c[j], &out[j*stride])
		}
	default:
		var tmp [4 * q8Rows]float32
		q4x4Halves(five, w, ws, nb, &q[j*q8Block], &d[j], &c[j], &tmp[0], &tmp[q8Rows/2], q8Rows)
		for i := range k - j {
			copy(out[(j+i)*stride:][:q8Rows], tmp[i*q8Rows:])
		}
	}
}

// q4x4Halves runs the 4-token kernel of the type over both halves of a
// group's rows, the 8 results of rows 0–7 of token i going to lo + i·stride
// and those of rows 8–15 to hi + i·stride (stride in floats). Direct calls
// only: through a func value out (often runInt's stack scratch) would
// escape to the heap.
func q4x4Halves(five bool, w []byte, ws []float32, nb int, q *int8, d *float32, c *int32, lo, hi *float32, stride int) {
	const half = q8Rows / 2
	if five {
		q5x4SDOT(&w[0], &ws[0], nb, q, d, c, lo, 4*stride)
		q5x4SDOT(&w[half*4], &ws[half], nb, q, d, c, hi, 4*stride)
		return
	}
	q4x4SDOT(&w[0], &ws[0], nb, q, d, c, lo, 4*stride)
	q4x4SDOT(&w[half*4], &ws[half], nb, q, d, c, hi, 4*stride)
}
