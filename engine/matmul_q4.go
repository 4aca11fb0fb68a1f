package engine

import (
	"encoding/binary"

	"github.com/agoranet/agora/engine/gguf"
)

// Q4_0 and Q5_0 products in integers, with the weights kept compact: 4-bit
// levels two to a byte (and, for Q5_0, a plane of their fifth bits) in the
// 16-row groups of matmul_q8.go, rather than expanded to a byte each. The
// arithmetic is q8Packed's to the bit (matmul_q8.go's header): a level u
// stands for the weight d·(u − off), off 8 for Q4_0 and 16 for Q5_0, so
//
//	isum = Σ u·a − off·Σa = Σ (u − off)·a        (exact int32)
//	acc += float32(isum) · float32(ws · da)
//
// block by block in order, each operation rounded alone. The activations'
// correction c = −128·Σa (q8Acts) gives −off·Σa exactly as c/16 (Q4_0)
// or c/8 (Q5_0), an arithmetic shift of a multiple of 128.
//
// Group g's block b (q4GroupBlock or q5GroupBlock bytes) is:
//
//	bytes 64p + 4·lr + j, p = 0..3, lr = 0..15 (row), j = 0..3:
//	    low nibble:  level of weight 4p + j       (chunk p)
//	    high nibble: level of weight 16 + 4p + j  (chunk p + 4)
//	Q5_0 only, bytes 256 + 4·lr + j:
//	    bit k (k = 0..7): fifth bit of weight 4k + j (chunk k)
//
// So each 64-byte vector holds, in each of its 16 dwords (one row each), 4
// consecutive weights of the row for two chunks: masking the low nibbles gives chunk p and
// shifting the high ones down chunk p+4, in matmul_q8.go's chunk layout
// (one VPDPBUSD per chunk and token against 4 broadcast activations). A
// chunk's fifth bits sit at one bit position k of the high plane's bytes:
// one shift by 4 − k and a mask move them to bit 4 of each level. The
// nibble vectors are exactly the file's 16 qs bytes of each row, spread
// over the row's lanes; the high plane is the file's qh regrouped. Block
// scales are one float32 per row and block, as in q8Packed.
//
// Q4_0 thus takes (256 + 64)/512 = 0.625 bytes per weight and Q5_0
// (320 + 64)/512 = 0.75, against q8Packed's 1.125.
const (
	q4GroupBlock = q8Rows * q8Block / 2 // nibble bytes of one group's block
	q5GroupBlock = q4GroupBlock + q8Rows*q8Block/8
)

// q4Packed is a Q4_0 or Q5_0 matrix repacked for the integer kernels.
type q4Packed struct {
	w    []byte    // groups × blocks × groupBlock(): nibbles (+ Q5_0's high plane)
	ws   []float32 // groups × blocks × q8Rows, block scales
	five bool      // Q5_0: 5-bit levels, offset 16; else Q4_0: offset 8
}

// groupBlock is the bytes of one group's block of levels.
func (p *q4Packed) groupBlock() int {
	if p.five {
		return q5GroupBlock
	}
	return q4GroupBlock
}

// offset is the level that stands for weight zero.
func (p *q4Packed) offset() int {
	if p.five {
		return 16
	}
	return 8
}

// cShift turns the activations' −128·Σa into −offset·Σa: c >> cShift.
func (p *q4Packed) cShift() uint {
	if p.five {
		return 3
	}
	return 4
}

// bytesPerWeight is the memory the packed form takes per weight of a
// rows × cols matrix (padding of a last partial group included).
func (p *q4Packed) bytesPerWeight(rows, cols int) float64 {
	return float64(len(p.w)+4*len(p.ws)) / float64(rows*cols)
}

// packQ4 repacks rows × cols weights of type Q4_0 or Q5_0 (cols a multiple
// of 32). The rows of a last partial group are padded with zero scales and
// levels equal to the offset, so their sums are exactly zero.
func packQ4(a *arena, typ gguf.TensorType, data []byte, rows, cols int) *q4Packed {
	p := &q4Packed{five: typ == gguf.Q5_0}
	if typ != gguf.Q4_0 && typ != gguf.Q5_0 {
		panic("packQ4: " + typ.String())
	}
	nb := cols / q8Block
	groups := (rows + q8Rows - 1) / q8Rows
	gb := p.groupBlock()
	blkBytes := q40Bytes
	if p.five {
		blkBytes = q50Bytes
	}
	rowBytes := nb * blkBytes
	p.w = a.bytes(groups * nb * gb)
	p.ws = a.floats(groups * nb * q8Rows)
	pad := byte(0x88) // Q4_0: levels 8
	if p.five {
		pad = 0x00 // Q5_0: levels 16, with the fifth bits set below
	}
	for r := rows; r < groups*q8Rows; r++ {
		g, lr := r/q8Rows, r%q8Rows
		for b := range nb {
			dst := p.w[(g*nb+b)*gb:][:gb]
			for v := range 4 {
				for j := range 4 {
					dst[v*4*q8Rows+lr*4+j] = pad
				}
			}
			if p.five {
				for j := range 4 {
					dst[q4GroupBlock+lr*4+j] = 0xff
				}
			}
		}
	}
	for r := range rows {
		g, lr := r/q8Rows, r%q8Rows
		row := data[r*rowBytes:][:rowBytes]
		for b := range nb {
			blk := row[b*blkBytes:][:blkBytes]
			p.ws[(g*nb+b)*q8Rows+lr] = f16ToF32(binary.LittleEndian.Uint16(blk))
			dst := p.w[(g*nb+b)*gb:][:gb]
			qs := blk[2:18]
			if p.five {
				qs = blk[6:22]
				qh := binary.LittleEndian.Uint32(blk[2:])
				for j := range 4 {
					var h byte
					for k := range 8 {
						h |= byte(qh>>(4*k+j)&1) << k
					}
					dst[q4GroupBlock+lr*4+j] = h
				}
			}
			for v := range 4 {
				copy(dst[v*4*q8Rows+lr*4:][:4], qs[4*v:])
			}
		}
	}
	return p
}

// level is row r, column c's level u (weight = scale·(u − offset)) and its
// block scale.
func (p *q4Packed) level(r, c, nb int) (int, float32) {
	g, lr, b, i := r/q8Rows, r%q8Rows, c/q8Block, c%q8Block
	gb := p.groupBlock()
	blk := p.w[(g*nb+b)*gb:][:gb]
	ch := i / 4 // chunk
	v := blk[ch%4*4*q8Rows+lr*4+i%4]
	u := int(v & 0xf)
	if ch >= 4 {
		u = int(v >> 4)
	}
	if p.five {
		u |= int(blk[q4GroupBlock+lr*4+i%4]>>ch&1) << 4
	}
	return u, p.ws[(g*nb+b)*q8Rows+lr]
}

// row writes row r (nb blocks) dequantized into dst, as the file's
// decoders compute it: scale·float32(u − offset).
func (p *q4Packed) row(dst []float32, r, nb int) {
	off := p.offset()
	for c := range nb * q8Block {
		u, d := p.level(r, c, nb)
		dst[c] = float32(d * float32(u-off))
	}
}

// unpackQ4 expands one group's block of levels into matmul_q8.go's chunk
// layout, one byte per level: u[k*64 + lr*4 + j] is row lr's level of
// weight 4k + j.
func unpackQ4(blk []byte, five bool, u *[q8GroupBlock]byte) {
	const lo4, ones = 0x0f0f0f0f0f0f0f0f, 0x0101010101010101
	for v := range 4 {
		for m := range 8 {
			x := binary.LittleEndian.Uint64(blk[v*64+8*m:])
			l, h := x&lo4, x>>4&lo4
			if five {
				hb := binary.LittleEndian.Uint64(blk[q4GroupBlock+8*m:])
				l |= hb >> v & ones << 4
				h |= hb >> (v + 4) & ones << 4
			}
			binary.LittleEndian.PutUint64(u[v*64+8*m:], l)
			binary.LittleEndian.PutUint64(u[(v+4)*64+8*m:], h)
		}
	}
}

// q4TilePortable is q4Tile's reference: rows g·16..g·16+15 of p times the
// first k tokens of activation tile tile, written as out[j*stride+lr].
// The arithmetic is q8TilePortable's on the levels instead of its biased
// bytes: for several tokens a block is unpacked into a byte per level
// first, for one token its nibbles are unpacked on the fly.
func q4TilePortable(p *q4Packed, g, nb int, a *q8Acts, tile, k int, out []float32, stride int) {
	// As in q8TilePortable, up to three tokens share each int64 multiply
	// (packTokens): a block's Σu·a stays within 32·31·128 < 2^20.
	gb := p.groupBlock()
	shift := p.cShift()
	wg := p.w[g*nb*gb:][:nb*gb]
	sg := p.ws[g*nb*q8Rows:][:nb*q8Rows]
	base := tile * nb * q8TileTokens
	aq := a.q[base*q8Block:][:nb*q8TileBlock]
	ad := a.d[base:][:nb*q8TileTokens]
	ac := a.c[base:][:nb*q8TileTokens]
	var acc [q8TileTokens][q8Rows]float32
	var pk [3][q8Block]int64
	var w [q8GroupBlock]byte
	for b := range nb {
		packTokens(&pk, aq[b*q8TileBlock:][:q8TileBlock], k)
		blk := wg[b*gb:][:gb]
		ws := sg[b*q8Rows:][:q8Rows]
		d := ad[b*q8TileTokens:][:q8TileTokens]
		var c [q8TileTokens]int32
		for j, v := range ac[b*q8TileTokens:][:q8TileTokens] {
			c[j] = v >> shift
		}
		if k == 1 {
			// Two rows share each multiply: 8 bytes of a nibble vector hold
			// 4 levels of rows 2m and 2m+1 for two chunks, unpacked here
			// on the fly, and masking one level of each row leaves them 32
			// bits apart.
			const pair = 0x000000ff000000ff
			const lo4, ones = 0x0f0f0f0f0f0f0f0f, 0x0101010101010101
			a0 := &pk[0]
			for m := range q8Rows / 2 {
				var s int64
				var hb uint64
				if p.five {
					hb = binary.LittleEndian.Uint64(blk[q4GroupBlock+8*m:])
				}
				for v := range 4 {
					x := binary.LittleEndian.Uint64(blk[v*64+8*m:])
					l, h := x&lo4|hb>>v&ones<<4, x>>4&lo4|hb>>(v+4)&ones<<4
					pl := (*[4]int64)(a0[v*4:])
					ph := (*[4]int64)(a0[(v+4)*4:])
					s += int64(l&pair)*pl[0] + int64(l>>8&pair)*pl[1] + int64(l>>16&pair)*pl[2] + int64(l>>24&pair)*pl[3]
					s += int64(h&pair)*ph[0] + int64(h>>8&pair)*ph[1] + int64(h>>16&pair)*ph[2] + int64(h>>24&pair)*ph[3]
				}
				lo := int64(int32(s))
				hi := (s - lo) >> 32
				acc[0][2*m] += float32(float32(c[0]+int32(lo)) * float32(ws[2*m]*d[0]))
				acc[0][2*m+1] += float32(float32(c[0]+int32(hi)) * float32(ws[2*m+1]*d[0]))
			}
			continue
		}
		unpackQ4(blk, p.five, &w)
		addGroupBlock(&acc, w[:], &pk, k, ws, d, c[:])
	}
	for j := range acc[:k] {
		copy(out[j*stride:][:q8Rows], acc[j][:])
	}
}
