package engine

import (
	"encoding/binary"
	"math"
)

// Q8_0 products in integers. As llama.cpp does, the activations are
// quantized too — per token, per 32-value block, to int8 with a float32
// scale — so a block's dot product is an exact int32 sum and only one
// float multiply and add per block remain. That is what lets SIMD integer
// dot-product instructions (AVX-512 VNNI's VPDPBUSD does 64 multiply-adds
// in one instruction) run at full width, and it keeps every kernel
// bit-identical to the portable one for free: integer sums have no order.
//
// The one float order that matters is fixed here: for row r and token t,
//
//	acc = 0
//	for each block b, in order:
//	    isum = Σ w[r,b,i] · a[t,b,i]                (exact int32)
//	    acc += float32(isum) · float32(ws[r,b] · da[t,b])
//
// every multiply and add rounded on its own. The SIMD kernels compute 16
// rows at once, one row per lane, each lane doing exactly this.
//
// Weights are repacked at load into groups of q8Rows rows. Within a group,
// block b holds 8 chunks of 4 consecutive weights; chunk k carries, for
// each of the 16 rows, weights 4k..4k+3 of the block — one 64-byte vector
// per chunk, so one VPDPBUSD multiplies a chunk of 16 rows by 4 broadcast
// activations. Weights are stored biased, u = w + 128 (VPDPBUSD multiplies
// unsigned by signed bytes); the bias is taken back exactly by starting
// each block's sum at −128·Σa, which the activation quantizer stores.

const (
	q8Rows       = 16                     // rows per interleaved group (one 16-lane vector)
	q8GroupBlock = q8Rows * q8Block       // bytes of one group's block: 8 chunks × 16 rows × 4
	q8TileTokens = tileTokens             // tokens per quantized-activation tile
	q8TileBlock  = q8TileTokens * q8Block // bytes of one tile's block
)

// q8Packed is a Q8_0 matrix repacked for the integer kernels.
type q8Packed struct {
	w  []byte    // groups × blocks × q8GroupBlock, biased weights
	ws []float32 // groups × blocks × q8Rows, block scales
}

// packQ8 repacks rows × cols Q8_0 blocks as read from a file. A last
// partial group is padded with zero-scale rows.
func packQ8(data []byte, rows, cols int) q8Packed {
	nb := cols / q8Block
	groups := (rows + q8Rows - 1) / q8Rows
	p := q8Packed{
		w:  make([]byte, groups*nb*q8GroupBlock),
		ws: make([]float32, groups*nb*q8Rows),
	}
	for i := range p.w {
		p.w[i] = 0x80 // a padded row's weights are zero
	}
	for r := range rows {
		g, lr := r/q8Rows, r%q8Rows
		for b := range nb {
			blk := data[(r*nb+b)*q8BlockBytes:][:q8BlockBytes]
			p.ws[(g*nb+b)*q8Rows+lr] = f16ToF32(binary.LittleEndian.Uint16(blk))
			dst := p.w[(g*nb+b)*q8GroupBlock:]
			for k := range 8 {
				for j := range 4 {
					dst[k*4*q8Rows+lr*4+j] = blk[2+4*k+j] ^ 0x80
				}
			}
		}
	}
	return p
}

// weight is row r, column c's int8 weight and its block scale.
func (p *q8Packed) weight(r, c, nb int) (int8, float32) {
	g, lr, b, i := r/q8Rows, r%q8Rows, c/q8Block, c%q8Block
	u := p.w[(g*nb+b)*q8GroupBlock+(i/4)*4*q8Rows+lr*4+i%4]
	return int8(u ^ 0x80), p.ws[(g*nb+b)*q8Rows+lr]
}

// q8Acts is a batch of activations quantized for the integer kernels, laid
// out in tiles of q8TileTokens tokens: within a tile, block b holds each
// token's 32 int8 values in turn, so a kernel walks the tile's tokens at
// fixed offsets. Tokens past n in the last tile are zero and give zero.
type q8Acts struct {
	n, nb int
	q     []int8    // tiles × blocks × q8TileTokens × 32
	d     []float32 // tiles × blocks × q8TileTokens: block scales
	c     []int32   // tiles × blocks × q8TileTokens: −128·Σ of the block's values
}

// quantize fills a from x, reusing a's buffers when large enough.
func (a *q8Acts) quantize(x *acts) {
	nb := x.cols / q8Block
	tiles := (x.n + q8TileTokens - 1) / q8TileTokens
	a.n, a.nb = x.n, nb
	a.q = grow(a.q, tiles*nb*q8TileBlock)
	a.d = grow(a.d, tiles*nb*q8TileTokens)
	a.c = grow(a.c, tiles*nb*q8TileTokens)
	clear(a.q)
	clear(a.d)
	clear(a.c)
	for t := range x.n {
		v := x.vec(t)
		for b := range nb {
			i := a.index(t, b)
			a.d[i], a.c[i] = quantizeBlock(a.q[i*q8Block:][:q8Block], v[b*q8Block:][:q8Block])
		}
	}
}

// index is the position of token t's block b among a's scales (times 32:
// among its values).
func (a *q8Acts) index(t, b int) int {
	tile, j := t/q8TileTokens, t%q8TileTokens
	return (tile*a.nb+b)*q8TileTokens + j
}

// quantizeBlock writes round(x/d) with d = max|x|/127 (llama.cpp's Q8_0
// activation rule, rounding half away from zero) and returns d and the
// bias correction −128·Σq. Non-finite inputs give a zero block, so no
// CPU-specific float-to-int conversion is ever reached.
func quantizeBlock(q []int8, x []float32) (float32, int32) {
	var amax float32
	for _, v := range x {
		amax = max(amax, float32(math.Abs(float64(v))))
	}
	if amax == 0 || math.IsInf(float64(amax), 0) || math.IsNaN(float64(amax)) {
		clear(q)
		return 0, 0
	}
	d := amax / 127
	id := 1 / d
	var sum int32
	for i, v := range x {
		f := float64(float32(v * id))
		r := math.Trunc(f + math.Copysign(0.5, f)) // exact in float64: |f| ≤ 127.5
		r = max(-127, min(127, r))
		q[i] = int8(r)
		sum += int32(q[i])
	}
	return d, -128 * sum
}

// grow returns s resized to n, reallocating only when it is too small.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// q8TilePortable is the integer kernel's work unit: rows g·16..g·16+15 of
// p (nb blocks a row) times the first k tokens of activation tile tile,
// written as out[j*stride+lr] for token j of the tile and lane lr. Every
// q8Tile kernel computes exactly this.
func q8TilePortable(p *q8Packed, g, nb int, a *q8Acts, tile, k int, out []float32, stride int) {
	wg := p.w[g*nb*q8GroupBlock:][:nb*q8GroupBlock]
	sg := p.ws[g*nb*q8Rows:][:nb*q8Rows]
	for j := range k {
		for lr := range q8Rows {
			var acc float32
			for b := range nb {
				i := (tile*nb+b)*q8TileTokens + j
				isum := a.c[i]
				aq := a.q[i*q8Block:][:q8Block]
				w := wg[b*q8GroupBlock:][:q8GroupBlock]
				for c := range 8 {
					for e := range 4 {
						isum += int32(w[c*4*q8Rows+lr*4+e]) * int32(aq[c*4+e])
					}
				}
				s := sg[b*q8Rows+lr] * a.d[i]
				acc += float32(float32(isum) * s)
			}
			out[j*stride+lr] = acc
		}
	}
}

// runQ8 computes rows [lo, hi) of a Q8_0 product for every token. Work
// is split on group boundaries where it can be; a group cut by a range edge
// is computed whole into scratch and only the range's rows are kept.
func runQ8(m *matrix, a *q8Acts, lo, hi int, out []float32) {
	nb, rows := m.cols/q8Block, m.rows
	tiles := (a.n + q8TileTokens - 1) / q8TileTokens
	var tmp [q8TileTokens * q8Rows]float32
	for g := lo / q8Rows; g*q8Rows < hi; g++ {
		r0, r1 := max(lo, g*q8Rows), min(hi, (g+1)*q8Rows)
		whole := r0 == g*q8Rows && r1 == (g+1)*q8Rows
		for tile := range tiles {
			k := min(q8TileTokens, a.n-tile*q8TileTokens)
			dst := out[tile*q8TileTokens*rows:]
			if whole && k == q8TileTokens {
				q8Tile(&m.q8, g, nb, a, tile, k, dst[r0:], rows)
				continue
			}
			q8Tile(&m.q8, g, nb, a, tile, k, tmp[:], q8Rows)
			for j := range k {
				copy(dst[j*rows+r0:j*rows+r1], tmp[j*q8Rows+r0-g*q8Rows:])
			}
		}
	}
}
