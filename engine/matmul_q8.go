package engine

import (
	"encoding/binary"
	"math"

	"github.com/agoranet/agora/engine/gguf"
)

// Q8_0 products in integers (and Q8_K ones, repacked losslessly into the
// same form; Q4_0 and Q5_0 ones compute exactly this from a compact form,
// matmul_q4.go). As llama.cpp does, the activations are
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

// q8Packed is a Q8_0 or Q8_K matrix repacked for the integer kernels.
type q8Packed struct {
	w  []byte    // groups × blocks × q8GroupBlock, biased weights
	ws []float32 // groups × blocks × q8Rows, block scales
}

// packQ8 repacks rows × cols weights whose every 32-weight block has one
// scale and int8 levels: Q8_0 and, losslessly, Q8_K (one scale per 256).
// (Q4_0 and Q5_0 levels minus their offset are int8 values too, but those
// types load into the compact q4Packed.) decode reads block b of a row of rowBytes bytes. A last
// partial group is padded with zero-scale rows.
func packQ8(a *arena, data []byte, rows, cols, rowBytes int, decode q8Decoder) q8Packed {
	nb := cols / q8Block
	groups := (rows + q8Rows - 1) / q8Rows
	p := q8Packed{
		w:  a.bytes(groups * nb * q8GroupBlock),
		ws: a.floats(groups * nb * q8Rows),
	}
	for i := range p.w {
		p.w[i] = 0x80 // a padded row's weights are zero
	}
	var q [q8Block]int8
	for r := range rows {
		g, lr := r/q8Rows, r%q8Rows
		row := data[r*rowBytes : (r+1)*rowBytes]
		for b := range nb {
			p.ws[(g*nb+b)*q8Rows+lr] = decode(row, b, &q)
			dst := p.w[(g*nb+b)*q8GroupBlock:]
			for k := range 8 {
				for j := range 4 {
					dst[k*4*q8Rows+lr*4+j] = byte(q[4*k+j]) ^ 0x80
				}
			}
		}
	}
	return p
}

// q8Decoder reads block b (32 weights) of a row: its levels and scale.
type q8Decoder func(row []byte, b int, q *[q8Block]int8) float32

// q8Decoders are the types packQ8 takes.
var q8Decoders = map[gguf.TensorType]q8Decoder{
	gguf.Q8_0: func(row []byte, b int, q *[q8Block]int8) float32 {
		blk := row[b*q8BlockBytes:]
		for i := range q8Block {
			q[i] = int8(blk[2+i])
		}
		return f16ToF32(binary.LittleEndian.Uint16(blk))
	},
	gguf.Q8_K: func(row []byte, b int, q *[q8Block]int8) float32 {
		blk := row[b/8*q8KBytes:]
		for i := range q8Block {
			q[i] = int8(blk[4+b%8*q8Block+i])
		}
		return math.Float32frombits(binary.LittleEndian.Uint32(blk))
	},
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
	// For the K-quant kernels (matmul_k.go), per block again: −32·Σ of
	// each 16-value half (Q6_K's level offset), Σ as a float (the Q4_K/Q5_K
	// min term), and zeros (the offset of types without one).
	c32lo, c32hi, zero []int32
	sum                []float32
}

// reset sizes a for x: n tokens of x.cols values. The padding tokens of
// the last tile are zeroed; quantizeToken must then fill every token.
func (a *q8Acts) reset(x *acts) {
	nb := x.cols / q8Block
	tiles := (x.n + q8TileTokens - 1) / q8TileTokens
	a.n, a.nb = x.n, nb
	a.q = grow(a.q, tiles*nb*q8TileBlock)
	a.d = grow(a.d, tiles*nb*q8TileTokens)
	a.c = grow(a.c, tiles*nb*q8TileTokens)
	a.c32lo = grow(a.c32lo, tiles*nb*q8TileTokens)
	a.c32hi = grow(a.c32hi, tiles*nb*q8TileTokens)
	a.sum = grow(a.sum, tiles*nb*q8TileTokens)
	a.zero = grow(a.zero, tiles*nb*q8TileTokens) // never written, so reuse keeps it zero
	for t := x.n; t < tiles*q8TileTokens; t++ {
		for b := range nb {
			i := a.index(t, b)
			clear(a.q[i*q8Block : (i+1)*q8Block])
			a.d[i], a.c[i], a.c32lo[i], a.c32hi[i], a.sum[i] = 0, 0, 0, 0, 0
		}
	}
}

// quantizeToken quantizes token t of x into a (tokens are independent, so
// workers may quantize different tokens at once).
func (a *q8Acts) quantizeToken(x *acts, t int) {
	v := x.vec(t)
	if quantizeTokenSIMD(a, v, t) { // the loop below in assembly, same bits
		return
	}
	for b := range a.nb {
		i := a.index(t, b)
		q := (*[q8Block]int8)(a.q[i*q8Block:])
		a.d[i], a.c[i] = quantizeBlock(q, (*[q8Block]float32)(v[b*q8Block:]))
		var lo int32
		for _, v := range q[:q8Block/2] {
			lo += int32(v)
		}
		hi := a.c[i]/-128 - lo
		a.c32lo[i], a.c32hi[i], a.sum[i] = -32*lo, -32*hi, float32(lo+hi)
	}
}

// quantize fills a from x on the calling goroutine.
func (a *q8Acts) quantize(x *acts) {
	a.reset(x)
	for t := range x.n {
		a.quantizeToken(x, t)
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
// bias correction −128·Σq. Non-finite inputs give a zero block, and so do
// blocks whose 1/d is +Inf (all zero, or max|x| below about 3.7e-37, where
// d underflows), so no CPU-specific float-to-int conversion of ±Inf or NaN
// is ever reached. It is the reference of the SIMD quantizers
// (elementwise_amd64.s).
func quantizeBlock(q *[q8Block]int8, x *[q8Block]float32) (float32, int32) {
	var amaxBits uint32
	for _, v := range x {
		amaxBits = max(amaxBits, math.Float32bits(v)&0x7fffffff)
	}
	d := math.Float32frombits(amaxBits) / 127
	id := 1 / d
	if amaxBits >= 0x7f800000 || id > math.MaxFloat32 { // infinite or NaN; zero or tiny
		*q = [q8Block]int8{}
		return 0, 0
	}
	var sum int32
	for i, v := range x {
		// |f| ≤ 127.00002, so f ± 0.5 is exact in float64 and truncation
		// rounds half away from zero; the clamp only guards the bound.
		f := float64(float32(v * id))
		half := math.Float64frombits(0x3fe0000000000000 | math.Float64bits(f)&(1<<63))
		r := max(-127, min(127, int32(f+half)))
		q[i] = int8(r)
		sum += r
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
	// Up to three tokens share each int64 multiply (packTokens).
	wg := p.w[g*nb*q8GroupBlock:][:nb*q8GroupBlock]
	sg := p.ws[g*nb*q8Rows:][:nb*q8Rows]
	base := tile * nb * q8TileTokens
	aq := a.q[base*q8Block:][:nb*q8TileBlock]
	ad := a.d[base:][:nb*q8TileTokens]
	ac := a.c[base:][:nb*q8TileTokens]
	var acc [q8TileTokens][q8Rows]float32
	var pk [3][q8Block]int64
	for b := range nb {
		packTokens(&pk, aq[b*q8TileBlock:][:q8TileBlock], k)
		w := wg[b*q8GroupBlock:][:q8GroupBlock]
		ws := sg[b*q8Rows:][:q8Rows]
		d := ad[b*q8TileTokens:][:q8TileTokens]
		c := ac[b*q8TileTokens:][:q8TileTokens]
		if k == 1 {
			// A lone token leaves nothing to pack, so two rows share each
			// multiply instead: 8 loaded bytes hold 4 weights of rows 2m
			// and 2m+1, and masking one weight of each leaves them 32 bits
			// apart, room enough for a field sum.
			const pair = 0x000000ff000000ff
			a0 := &pk[0]
			for m := range q8Rows / 2 {
				var s int64
				for ch := range 8 {
					x := binary.LittleEndian.Uint64(w[ch*4*q8Rows+m*8:])
					p0 := (*[4]int64)(a0[ch*4:])
					s += int64(x&pair)*p0[0] + int64(x>>8&pair)*p0[1] + int64(x>>16&pair)*p0[2] + int64(x>>24&pair)*p0[3]
				}
				lo := int64(int32(s))
				hi := (s - lo) >> 32
				acc[0][2*m] += float32(float32(c[0]+int32(lo)) * float32(ws[2*m]*d[0]))
				acc[0][2*m+1] += float32(float32(c[0]+int32(hi)) * float32(ws[2*m+1]*d[0]))
			}
			continue
		}
		addGroupBlock(&acc, w, &pk, k, ws, d, c)
	}
	for j := range acc[:k] {
		copy(out[j*stride:][:q8Rows], acc[j][:])
	}
}

// runInt computes rows [lo, hi) of a product on integer weights (m.q8,
// m.q4 or m.kq) for every token. Work is split on group boundaries where it can
// be; a group cut by a range edge is computed whole into scratch and only
// the range's rows are kept.
func runInt(m *matrix, a *q8Acts, lo, hi int, out []float32) {
	nb, rows := m.cols/q8Block, m.rows
	tiles := (a.n + q8TileTokens - 1) / q8TileTokens
	// No func value for the kernel choice: passing tmp through one would
	// move it to the heap on every call, and the garbage grows the heap.
	tileFn := func(g, tile, k int, out []float32, stride int) {
		switch {
		case m.kq != nil:
			kTile(m.kq, g, nb, a, tile, k, out, stride)
		case m.q4 != nil:
			q4Tile(m.q4, g, nb, a, tile, k, out, stride)
		default:
			q8Tile(&m.q8, g, nb, a, tile, k, out, stride)
		}
	}
	var tmp [q8TileTokens * q8Rows]float32
	for g := lo / q8Rows; g*q8Rows < hi; g++ {
		r0, r1 := max(lo, g*q8Rows), min(hi, (g+1)*q8Rows)
		whole := r0 == g*q8Rows && r1 == (g+1)*q8Rows
		for tile := range tiles {
			k := min(q8TileTokens, a.n-tile*q8TileTokens)
			dst := out[tile*q8TileTokens*rows:]
			if whole && k == q8TileTokens {
				tileFn(g, tile, k, dst[r0:], rows)
				continue
			}
			tileFn(g, tile, k, tmp[:], q8Rows)
			for j := range k {
				copy(dst[j*rows+r0:j*rows+r1], tmp[j*q8Rows+r0-g*q8Rows:])
			}
		}
	}
}

// addGroupBlock adds one block of a 16-row group to acc for k ≥ 2 tokens:
// w in the q8Packed chunk layout (stored bytes u), pk the tokens packed
// three to an int64 (packTokens), and for token j the exact sum c[j]+Σu·a
// scaled by ws[lr]·d[j].
func addGroupBlock(acc *[q8TileTokens][q8Rows]float32, w []byte, pk *[3][q8Block]int64, k int, ws, d []float32, c []int32) {
	np := (k + 2) / 3
	w = w[:q8GroupBlock]
	for lr := range q8Rows {
		var s0, s1, s2 int64
		switch np {
		case 1:
			for ch := range 8 {
				wc := (*[4]byte)(w[ch*4*q8Rows+lr*4:])
				pa := (*[4]int64)(pk[0][ch*4:])
				u := int64(wc[0])
				s0 += u * pa[0]
				u = int64(wc[1])
				s0 += u * pa[1]
				u = int64(wc[2])
				s0 += u * pa[2]
				u = int64(wc[3])
				s0 += u * pa[3]
			}
		case 2:
			for ch := range 8 {
				wc := (*[4]byte)(w[ch*4*q8Rows+lr*4:])
				pa := (*[4]int64)(pk[0][ch*4:])
				pb := (*[4]int64)(pk[1][ch*4:])
				u := int64(wc[0])
				s0 += u * pa[0]
				s1 += u * pb[0]
				u = int64(wc[1])
				s0 += u * pa[1]
				s1 += u * pb[1]
				u = int64(wc[2])
				s0 += u * pa[2]
				s1 += u * pb[2]
				u = int64(wc[3])
				s0 += u * pa[3]
				s1 += u * pb[3]
			}
		default:
			for ch := range 8 {
				wc := (*[4]byte)(w[ch*4*q8Rows+lr*4:])
				pa := (*[4]int64)(pk[0][ch*4:])
				pb := (*[4]int64)(pk[1][ch*4:])
				pc := (*[4]int64)(pk[2][ch*4:])
				u := int64(wc[0])
				s0 += u * pa[0]
				s1 += u * pb[0]
				s2 += u * pc[0]
				u = int64(wc[1])
				s0 += u * pa[1]
				s1 += u * pb[1]
				s2 += u * pc[1]
				u = int64(wc[2])
				s0 += u * pa[2]
				s1 += u * pb[2]
				s2 += u * pc[2]
				u = int64(wc[3])
				s0 += u * pa[3]
				s1 += u * pb[3]
				s2 += u * pc[3]
			}
		}
		var isum [9]int32
		for l, s := range [3]int64{s0, s1, s2} {
			isum[3*l], isum[3*l+1], isum[3*l+2] = unpackFields(s)
		}
		for j := range acc[:k] {
			sc := float32(ws[lr] * d[j])
			acc[j][lr] += float32(float32(c[j]+isum[j]) * sc)
		}
	}
}

// packField is how far apart packTokens puts tokens in an int64.
const packField = 21

// packTokens packs the k tokens of one tile block q (32 int8 values each)
// three to an int64, packField bits apart: a stored weight u times a packed
// value adds u·a to each token's field, and as long as a field's sum stays
// within ±2^20 (32·255·128 < 2^20 for the widest, Q8_0's biased bytes) the
// fields never spill into one another, so each token's exact int32 sum is
// read back (unpackFields) at the block's end. The portable kernels thus
// do three tokens' multiplies in one.
func packTokens(pk *[3][q8Block]int64, q []int8, k int) {
	const field = packField
	for l := range (k + 2) / 3 {
		pl := &pk[l]
		*pl = [q8Block]int64{}
		for i := range min(3, k-3*l) {
			for e, v := range q[(3*l+i)*q8Block:][:q8Block] {
				pl[e] += int64(v) << (field * i)
			}
		}
	}
}

// unpackFields reads back the three signed field sums of a packed product.
func unpackFields(s int64) (int32, int32, int32) {
	const field = packField
	f0 := s << (64 - field) >> (64 - field)
	s = (s - f0) >> field
	f1 := s << (64 - field) >> (64 - field)
	return int32(f0), int32(f1), int32((s - f1) >> field)
}
