package engine

import (
	"encoding/binary"
	"fmt"

	"github.com/agoranet/agora/engine/gguf"
)

// K-quant products in integers: Q4_K, Q5_K and Q6_K matrices are repacked
// at load into the 16-row groups of matmul_q8.go and multiplied with the
// same int8 activations. A K-quant weight is, per 32-weight block b
// (Q4_K/Q5_K: a sub-block; Q6_K: two 16-weight scale groups),
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
// sum). The scales are the file's f16 super-block scale d (or dmin) times
// its 6- or 8-bit sub-block scale, S = float32(f32(d)·sc): d is kept as
// the file's f16 and widened exactly at run time (f16ToF32 here, VCVTPH2PS
// in the amd64 kernels), both factors are exact in float32, so the one
// rounded product the kernels compute is the value decodeQ4K, decodeQ5K
// and decodeQ6K return. Q6_K has no
// min, and its last step is skipped: acc is never −0 (it starts at +0 and
// only a sum of two −0 is −0), so subtracting the ±0 it would be changes
// nothing.
//
// The packed form keeps the file's size, give or take the sub-scales'
// widening to bytes (bytes per weight: Q4_K 0.578125, Q5_K 0.703125, Q6_K
// 0.8203125, against the file's 0.5625, 0.6875, 0.8203125). Per group and
// block (kNibBytes bytes):
//
//	nibble vector v (v = 0..3, 64 bytes at 64v): byte 4·lr + e holds row
//	lr's weight 4v+e (chunk v) in its low nibble and weight 16+4v+e
//	(chunk v+4) in its high nibble
//
// so one 64-byte load, masked and shifted, gives two of the chunks that
// matmul_q8.go's VPDPBUSD layout wants, the low nibbles the block's first
// half and the high nibbles its second. Levels wider than 4 bits keep the
// rest in a plane per group and block, byte 4·lr + e again matching a
// chunk's byte:
//
//	Q5_K (64 bytes):  bit c = bit 4 of chunk c's level
//	Q6_K (128 bytes): byte 64·(c/4) + 4·lr + e, bits 2(c%4)..2(c%4)+1 =
//	                  bits 4–5 of chunk c's level
//
// and per group and super-block a scale record of rec bytes:
//
//	Q4_K/Q5_K (320): d[16] at 0, dmin[16] at 32 (the file's f16, 2 bytes
//	                 each), then for sub-block j at 64+32j: sc[16] then
//	                 m[16] (6-bit)
//	Q6_K (288):      d[16] (f16), then for block j at 32+32j: the int8
//	                 scales of its halves, sc[2j][16] then sc[2j+1][16]
//
// each indexed by the row in the group. A last partial group is zero: zero
// levels and scales, results the callers drop.
type kPacked struct {
	kLayout
	w  []byte // groups × blocks × kNibBytes: low 4 bits of the levels
	h  []byte // groups × blocks × high: the levels' higher bits
	sc []byte // groups × super-blocks × rec: scale records
}

const (
	kSubs     = qkK / q8Block    // 32-weight blocks per super-block
	kNibBytes = q8GroupBlock / 2 // a group's block of 4-bit levels
)

// kLayout is a K type's file block and packed geometry.
type kLayout struct {
	bytes int  // file bytes per super-block
	high  int  // plane bytes per group and block: 0, 64 (Q5_K) or 128 (Q6_K)
	rec   int  // scale record bytes per group and super-block
	sub   int  // offset of the sub-block scales in a record
	q6    bool // Q6_K: levels offset by 32, two signed scales a block, no min
}

var kLayouts = map[gguf.TensorType]kLayout{
	gguf.Q4_K: {bytes: q4KBytes, rec: 320, sub: 64},
	gguf.Q5_K: {bytes: q5KBytes, high: 64, rec: 320, sub: 64},
	gguf.Q6_K: {bytes: q6KBytes, high: 128, rec: 288, sub: 32, q6: true},
}

// bytesPerWeight is the packed size of a matrix of whole groups.
func (l kLayout) bytesPerWeight() float64 {
	return float64(kSubs*(kNibBytes+l.high)+l.rec) / float64(q8Rows*qkK)
}

// decodeKSuper reads one super-block of a K type: levels (Q6_K's with its
// offset 32, so all are unsigned), the f16 super-scales (their bits, as in
// the file) and the 16 small sub-scale bytes in the record's order
// (Q4_K/Q5_K: scale and min of each sub-block in turn; Q6_K: its 16 int8
// scales).
func decodeKSuper(q6, five bool, blk []byte, u *[qkK]uint8, s8 *[16]byte) (d, dmin uint16) {
	var q [qkK]float32
	if q6 {
		var ds [16]float32
		decodeQ6K(blk, &q, &ds)
		for i, v := range q {
			u[i] = uint8(int(v) + 32) // decodeQ6K returns levels minus the offset
		}
		copy(s8[:], blk[192:208])
		return binary.LittleEndian.Uint16(blk[208:]), 0
	}
	var ds, dm [8]float32
	decodeKMin(five, blk, &q, &ds, &dm)
	for i, v := range q {
		u[i] = uint8(v)
	}
	for j := range kSubs {
		s8[2*j], s8[2*j+1] = scaleMinK4(j, (*[12]byte)(blk[4:16]))
	}
	return binary.LittleEndian.Uint16(blk), binary.LittleEndian.Uint16(blk[2:])
}

// packK repacks rows × cols weights of a K type (cols a multiple of 256).
func packK(a *arena, typ gguf.TensorType, data []byte, rows, cols int) (kPacked, error) {
	l, ok := kLayouts[typ]
	if !ok {
		return kPacked{}, fmt.Errorf("no integer kernel for %s", typ)
	}
	nb, supers := cols/q8Block, cols/qkK
	groups := (rows + q8Rows - 1) / q8Rows
	p := kPacked{
		kLayout: l,
		w:       a.bytes(groups * nb * kNibBytes),
		h:       a.bytes(groups * nb * l.high),
		sc:      a.bytes(groups * supers * l.rec),
	}
	var u [qkK]uint8
	var s8 [16]byte
	for r := range rows {
		g, lr := r/q8Rows, r%q8Rows
		for sb := range supers {
			d, dmin := decodeKSuper(l.q6, typ == gguf.Q5_K, data[(r*supers+sb)*l.bytes:][:l.bytes], &u, &s8)
			rec := p.sc[(g*supers+sb)*l.rec:][:l.rec]
			binary.LittleEndian.PutUint16(rec[2*lr:], d)
			if !l.q6 {
				binary.LittleEndian.PutUint16(rec[32+2*lr:], dmin)
			}
			for i, s := range s8 {
				rec[l.sub+16*i+lr] = s
			}
			for j := range kSubs {
				b := sb*kSubs + j
				for i, v := range u[j*q8Block : (j+1)*q8Block] {
					p.setLevel(g*nb+b, lr, i, v)
				}
			}
		}
	}
	return p, nil
}

// setLevel stores level v of weight i (0..31) of row lr in group block gb
// (the group's index times nb plus the block's).
func (p *kPacked) setLevel(gb, lr, i int, v uint8) {
	c, at := i/4, 4*lr+i%4
	p.w[gb*kNibBytes+64*(c%4)+at] |= (v & 15) << (4 * (c / 4))
	switch p.high {
	case 64:
		p.h[gb*64+at] |= (v >> 4 & 1) << c
	case 128:
		p.h[gb*128+64*(c/4)+at] |= (v >> 4 & 3) << (2 * (c % 4))
	}
}

// level is the stored level of weight i (0..31) of row lr in group block gb.
func (p *kPacked) level(gb, lr, i int) uint8 {
	c, at := i/4, 4*lr+i%4
	v := p.w[gb*kNibBytes+64*(c%4)+at] >> (4 * (c / 4)) & 15
	switch p.high {
	case 64:
		v |= (p.h[gb*64+at] >> c & 1) << 4
	case 128:
		v |= (p.h[gb*128+64*(c/4)+at] >> (2 * (c % 4)) & 3) << 4
	}
	return v
}

// scales are row lr's S0, S1 and M of block b in group g (nb blocks a
// row), computed as the kernels do.
func (p *kPacked) scales(g, b, nb, lr int) (s0, s1, mn float32) {
	rec := p.sc[(g*(nb/kSubs)+b/kSubs)*p.rec:][:p.rec]
	f32 := func(off int) float32 { return f16ToF32(binary.LittleEndian.Uint16(rec[off:])) }
	d := f32(2 * lr)
	lo, hi := rec[p.sub+32*(b%kSubs)+lr], rec[p.sub+32*(b%kSubs)+16+lr]
	if p.q6 {
		return float32(d * float32(int8(lo))), float32(d * float32(int8(hi))), 0
	}
	s := float32(d * float32(lo))
	return s, s, float32(f32(32+2*lr) * float32(hi))
}

// weight is row r, column c's weight, as the kernels' arithmetic sees it.
func (p *kPacked) weight(r, c, nb int) float32 {
	g, lr, b, i := r/q8Rows, r%q8Rows, c/q8Block, c%q8Block
	u := float32(p.level(g*nb+b, lr, i))
	if p.q6 {
		u -= 32
	}
	s0, s1, mn := p.scales(g, b, nb, lr)
	if i >= q8Block/2 {
		s0 = s1
	}
	return float32(float32(s0*u) - mn)
}

// corrections returns the activations' offset terms for p's levels.
func (p *kPacked) corrections(a *q8Acts) (lo, hi []int32) {
	if p.q6 {
		return a.c32lo, a.c32hi
	}
	return a.zero, a.zero
}

// unpack writes the levels of group block gb, row by row.
func (p *kPacked) unpack(gb int, u *[q8Rows][q8Block]int64) {
	w := (*[kNibBytes]byte)(p.w[gb*kNibBytes:])
	for lr := range q8Rows {
		ul := &u[lr]
		for v := range 4 {
			x := (*[4]byte)(w[64*v+4*lr:])
			lo, hi := (*[4]int64)(ul[4*v:]), (*[4]int64)(ul[16+4*v:])
			lo[0], lo[1], lo[2], lo[3] = int64(x[0]&15), int64(x[1]&15), int64(x[2]&15), int64(x[3]&15)
			hi[0], hi[1], hi[2], hi[3] = int64(x[0]>>4), int64(x[1]>>4), int64(x[2]>>4), int64(x[3]>>4)
		}
	}
	switch p.high {
	case 64:
		h := (*[64]byte)(p.h[gb*64:])
		for lr := range q8Rows {
			ul, x := &u[lr], (*[4]byte)(h[4*lr:])
			for c := range 8 {
				ch := (*[4]int64)(ul[4*c:])
				ch[0] |= int64(x[0]>>c&1) << 4
				ch[1] |= int64(x[1]>>c&1) << 4
				ch[2] |= int64(x[2]>>c&1) << 4
				ch[3] |= int64(x[3]>>c&1) << 4
			}
		}
	case 128:
		h := (*[128]byte)(p.h[gb*128:])
		for lr := range q8Rows {
			ul := &u[lr]
			for c := range 8 {
				x, s := (*[4]byte)(h[64*(c/4)+4*lr:]), 2*(c%4)
				ch := (*[4]int64)(ul[4*c:])
				ch[0] |= int64(x[0]>>s&3) << 4
				ch[1] |= int64(x[1]>>s&3) << 4
				ch[2] |= int64(x[2]>>s&3) << 4
				ch[3] |= int64(x[3]>>s&3) << 4
			}
		}
	}
}

// kTilePortable is kTile's reference: rows g·16..g·16+15 of p times the
// first k tokens of activation tile tile, into out[j*stride+lr].
func kTilePortable(p *kPacked, g, nb int, a *q8Acts, tile, k int, out []float32, stride int) {
	// As in q8TilePortable, up to three tokens share each int64 multiply
	// (packTokens): a half-block's Σu·a stays within 16·63·127 < 2^20.
	clo, chi := p.corrections(a)
	base := tile * nb * q8TileTokens
	var acc [q8TileTokens][q8Rows]float32
	var u [q8Rows][q8Block]int64
	var pk [3][q8Block]int64
	np := (k + 2) / 3
	for b := range nb {
		p.unpack(g*nb+b, &u)
		at := base + b*q8TileTokens
		q := a.q[at*q8Block:][:q8TileBlock]
		packTokens(&pk, q, k)
		for lr := range q8Rows {
			s0, s1, mn := p.scales(g, b, nb, lr)
			ul := &u[lr]
			var isum [2][3 * 3]int32
			for l := range np {
				pl := &pk[l]
				var x [2]int64
				for i := range q8Block / 2 {
					x[0] += ul[i] * pl[i]
					x[1] += ul[16+i] * pl[16+i]
				}
				for h, s := range x {
					isum[h][3*l], isum[h][3*l+1], isum[h][3*l+2] = unpackFields(s)
				}
			}
			for j := range k {
				i := at + j
				da := a.d[i]
				v := acc[j][lr]
				v += float32(float32(isum[0][j]+clo[i]) * float32(s0*da))
				v += float32(float32(isum[1][j]+chi[i]) * float32(s1*da))
				if !p.q6 {
					v -= float32(float32(mn*da) * a.sum[i])
				}
				acc[j][lr] = v
			}
		}
	}
	for j := range k {
		copy(out[j*stride:j*stride+q8Rows], acc[j][:])
	}
}
