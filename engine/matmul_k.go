package engine

import (
	"fmt"

	"github.com/agoranet/agora/engine/gguf"
)

// K-quant products in integers: Q4_K, Q5_K and Q6_K matrices are repacked
// at load into the 16-row groups of matmul_q8.go, one unsigned byte per
// weight level, and multiplied with the same int8 activations. A K-quant
// weight is, per 32-weight block b (Q4_K/Q5_K: a sub-block; Q6_K: two
// 16-weight scale groups),
//
//	w = S0·(u − off)  (first 16)   S1·(u − off)  (last 16)   − M
//
// with u the stored level, off 32 for Q6_K and 0 otherwise, and M the
// Q4_K/Q5_K sub-block min (0 for Q6_K). For row r and token t the kernels
// compute, block by block in order and each operation rounded alone:
//
//	i0 = Σ_{first 16} u·a − off·Σ_{first 16} a       (exact int32)
//	i1 = Σ_{last 16}  u·a − off·Σ_{last 16}  a
//	acc += float32(i0) · float32(S0·da)
//	acc += float32(i1) · float32(S1·da)
//	acc −= float32(M·da) · float32(Σa)
//
// which is llama.cpp's factoring (the min against the activations' block
// sum). The scales S0, S1 and M are the file's f16 super-block scales
// times its 6- or 8-bit sub-block scales, rounded to float32 once at load.
type kPacked struct {
	w          []byte    // groups × blocks × q8GroupBlock, levels u
	s0, s1, mn []float32 // groups × blocks × q8Rows
	offset     bool      // levels carry Q6_K's offset of 32
}

// kDecoders turn one super-block of each K type into levels and scales.
var kDecoders = map[gguf.TensorType]struct {
	bytes  int
	offset bool
	decode func(blk []byte, u *[qkK]uint8, s0, s1, mn *[qkK / q8Block]float32)
}{
	gguf.Q4_K: {q4KBytes, false, func(blk []byte, u *[qkK]uint8, s0, s1, mn *[8]float32) {
		var q [qkK]float32
		decodeQ4K(blk, &q, s0, mn)
		*s1 = *s0
		levels(u, &q, 0)
	}},
	gguf.Q5_K: {q5KBytes, false, func(blk []byte, u *[qkK]uint8, s0, s1, mn *[8]float32) {
		var q [qkK]float32
		decodeQ5K(blk, &q, s0, mn)
		*s1 = *s0
		levels(u, &q, 0)
	}},
	gguf.Q6_K: {q6KBytes, true, func(blk []byte, u *[qkK]uint8, s0, s1, mn *[8]float32) {
		var q [qkK]float32
		var ds [16]float32
		decodeQ6K(blk, &q, &ds)
		for b := range 8 {
			s0[b], s1[b], mn[b] = ds[2*b], ds[2*b+1], 0
		}
		levels(u, &q, 32) // decodeQ6K returns levels minus the offset
	}},
}

// levels stores decoded integer levels (exact in float32) plus add.
func levels(u *[qkK]uint8, q *[qkK]float32, add int) {
	for i, v := range q {
		u[i] = uint8(int(v) + add)
	}
}

// packK repacks rows × cols weights of a K type (cols a multiple of 256).
func packK(a *arena, typ gguf.TensorType, data []byte, rows, cols int) (kPacked, error) {
	dec, ok := kDecoders[typ]
	if !ok {
		return kPacked{}, fmt.Errorf("no integer kernel for %s", typ)
	}
	nb, supers := cols/q8Block, cols/qkK
	groups := (rows + q8Rows - 1) / q8Rows
	p := kPacked{
		w:      a.bytes(groups * nb * q8GroupBlock),
		s0:     a.floats(groups * nb * q8Rows),
		s1:     a.floats(groups * nb * q8Rows),
		mn:     a.floats(groups * nb * q8Rows),
		offset: dec.offset,
	}
	var u [qkK]uint8
	var s0, s1, mn [qkK / q8Block]float32
	for r := range rows {
		g, lr := r/q8Rows, r%q8Rows
		for sb := range supers {
			dec.decode(data[(r*supers+sb)*dec.bytes:][:dec.bytes], &u, &s0, &s1, &mn)
			for j := range qkK / q8Block {
				b := sb*(qkK/q8Block) + j
				at := (g*nb+b)*q8Rows + lr
				p.s0[at], p.s1[at], p.mn[at] = s0[j], s1[j], mn[j]
				dst := p.w[(g*nb+b)*q8GroupBlock:]
				for k := range 8 {
					for e := range 4 {
						dst[k*4*q8Rows+lr*4+e] = u[j*q8Block+4*k+e]
					}
				}
			}
		}
	}
	return p, nil
}

// weight is row r, column c's weight, as the kernels' arithmetic sees it.
func (p *kPacked) weight(r, c, nb int) float32 {
	g, lr, b, i := r/q8Rows, r%q8Rows, c/q8Block, c%q8Block
	u := float32(p.w[(g*nb+b)*q8GroupBlock+(i/4)*4*q8Rows+lr*4+i%4])
	if p.offset {
		u -= 32
	}
	at := (g*nb+b)*q8Rows + lr
	s := p.s0[at]
	if i >= q8Block/2 {
		s = p.s1[at]
	}
	return s*u - p.mn[at]
}

// corrections returns the activations' offset terms for p's levels.
func (p *kPacked) corrections(a *q8Acts) (lo, hi []int32) {
	if p.offset {
		return a.c32lo, a.c32hi
	}
	return a.zero, a.zero
}

// kTilePortable is kTile's reference: rows g·16..g·16+15 of p times the
// first k tokens of activation tile tile, into out[j*stride+lr].
func kTilePortable(p *kPacked, g, nb int, a *q8Acts, tile, k int, out []float32, stride int) {
	clo, chi := p.corrections(a)
	wg := p.w[g*nb*q8GroupBlock:][:nb*q8GroupBlock]
	for j := range k {
		var acc [q8Rows]float32
		for b := range nb {
			i := (tile*nb+b)*q8TileTokens + j
			aq := (*[q8Block]int8)(a.q[i*q8Block:])
			w := (*[q8GroupBlock]byte)(wg[b*q8GroupBlock:])
			da, sum := a.d[i], a.sum[i]
			at := (g*nb + b) * q8Rows
			for lr := range q8Rows {
				i0, i1 := clo[i], chi[i]
				for c := range 4 {
					for e := range 4 {
						i0 += int32(w[c*4*q8Rows+lr*4+e]) * int32(aq[c*4+e])
						i1 += int32(w[(c+4)*4*q8Rows+lr*4+e]) * int32(aq[(c+4)*4+e])
					}
				}
				v := acc[lr]
				v += float32(float32(i0) * float32(p.s0[at+lr]*da))
				v += float32(float32(i1) * float32(p.s1[at+lr]*da))
				v -= float32(float32(p.mn[at+lr]*da) * sum)
				acc[lr] = v
			}
		}
		copy(out[j*stride:j*stride+q8Rows], acc[:])
	}
}
