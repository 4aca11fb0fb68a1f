package engine

import (
	"encoding/binary"
	"math"

	"github.com/agoranet/agora/engine/gguf"
)

// Block layouts of the GGML quantization types beyond Q8_0 (ggml-common.h).
// K-quants group 256 weights into a super-block:
//
//	Q4_0  (32):  f16 d, qs[16]                  w = d·(q−8), q 4-bit
//	Q5_0  (32):  f16 d, qh[4], qs[16]           w = d·(q−16), q 5-bit (bit 4 in qh)
//	Q4_K  (256): f16 d, f16 dmin, scales[12], qs[128]
//	             w = d·sc_i·q − dmin·m_i over 8 sub-blocks of 32, sc/m 6-bit
//	Q5_K  (256): as Q4_K plus qh[32] (bit 4) before qs
//	Q6_K  (256): ql[128], qh[64], int8 scales[16], f16 d
//	             w = d·sc_i·(q−32) over 16 sub-blocks of 16, q 6-bit
//	Q8_K  (256): f32 d, int8 qs[256], int16 bsums[16] (unused here)  w = d·q
//
// Element order inside a block is GGML's: Q4_0/Q5_0 keep element j in the
// low nibble of qs[j] and j+16 in its high nibble; Q4_K/Q5_K walk four
// 64-element chunks, the low nibbles of 32 bytes first, then their high
// nibbles; Q6_K walks two 128-element halves as four 32-element runs.
const (
	qkK      = 256
	q40Bytes = 18
	q50Bytes = 22
	q4KBytes = 144
	q5KBytes = 176
	q6KBytes = 210
	q8KBytes = 292
)

// blockType is one quantized type's block geometry and its plain
// dequantizer, the file format's meaning that the repacked forms
// (matmul_q8.go, matmul_k.go) are tested against.
type blockType struct {
	elems, bytes int
	row          func(dst []float32, w []byte)
}

var blockTypes = map[gguf.TensorType]blockType{
	gguf.Q4_0: {32, q40Bytes, rowQ4_0},
	gguf.Q5_0: {32, q50Bytes, rowQ5_0},
	gguf.Q4_K: {qkK, q4KBytes, rowQ4K},
	gguf.Q5_K: {qkK, q5KBytes, rowQ5K},
	gguf.Q6_K: {qkK, q6KBytes, rowQ6K},
	gguf.Q8_K: {qkK, q8KBytes, rowQ8K},
}

// --- block decoding: integer levels as exact float32 values plus scales ---

// scaleMinK4 unpacks the j-th 6-bit scale and min of a Q4_K/Q5_K block.
func scaleMinK4(j int, s *[12]byte) (sc, m uint8) {
	if j < 4 {
		return s[j] & 63, s[j+4] & 63
	}
	return s[j+4]&0xf | (s[j-4]>>6)<<4, s[j+4]>>4 | (s[j]>>6)<<4
}

// kScales turns a Q4_K/Q5_K block header into per-sub-block multipliers:
// weight = ds[i]·q − dm[i].
func kScales(blk []byte, ds, dm *[8]float32) {
	d := f16ToF32(binary.LittleEndian.Uint16(blk))
	dmin := f16ToF32(binary.LittleEndian.Uint16(blk[2:]))
	s := (*[12]byte)(blk[4:16])
	for i := range 8 {
		sc, m := scaleMinK4(i, s)
		ds[i] = float32(d * float32(sc))
		dm[i] = float32(dmin * float32(m))
	}
}

func decodeQ4_0(blk []byte, q *[32]float32) float32 {
	qs := (*[16]byte)(blk[2:18])
	for j := range 16 {
		q[j] = float32(int(qs[j]&0xf) - 8)
		q[j+16] = float32(int(qs[j]>>4) - 8)
	}
	return f16ToF32(binary.LittleEndian.Uint16(blk))
}

func decodeQ5_0(blk []byte, q *[32]float32) float32 {
	qh := binary.LittleEndian.Uint32(blk[2:])
	qs := (*[16]byte)(blk[6:22])
	for j := range 16 {
		q[j] = float32(int(uint32(qs[j]&0xf)|(qh>>j&1)<<4) - 16)
		q[j+16] = float32(int(uint32(qs[j]>>4)|(qh>>(j+16)&1)<<4) - 16)
	}
	return f16ToF32(binary.LittleEndian.Uint16(blk))
}

func decodeQ4K(blk []byte, q *[qkK]float32, ds, dm *[8]float32) {
	kScales(blk, ds, dm)
	qs := (*[128]byte)(blk[16:144])
	for c := range 4 {
		for l := range 32 {
			b := qs[32*c+l]
			q[64*c+l] = float32(b & 0xf)
			q[64*c+32+l] = float32(b >> 4)
		}
	}
}

func decodeQ5K(blk []byte, q *[qkK]float32, ds, dm *[8]float32) {
	kScales(blk, ds, dm)
	qh := (*[32]byte)(blk[16:48])
	qs := (*[128]byte)(blk[48:176])
	for c := range 4 {
		for l := range 32 {
			b, h := qs[32*c+l], qh[l]>>(2*c)
			q[64*c+l] = float32(b&0xf | (h&1)<<4)
			q[64*c+32+l] = float32(b>>4 | (h>>1&1)<<4)
		}
	}
}

func decodeQ6K(blk []byte, q *[qkK]float32, ds *[16]float32) {
	ql := (*[128]byte)(blk[0:128])
	qh := (*[64]byte)(blk[128:192])
	d := f16ToF32(binary.LittleEndian.Uint16(blk[208:]))
	for i := range 16 {
		ds[i] = float32(d * float32(int8(blk[192+i])))
	}
	for n := range 2 {
		for l := range 32 {
			lo, hi, h := ql[64*n+l], ql[64*n+32+l], qh[32*n+l]
			q[128*n+l] = float32(int(lo&0xf|(h&3)<<4) - 32)
			q[128*n+32+l] = float32(int(hi&0xf|(h>>2&3)<<4) - 32)
			q[128*n+64+l] = float32(int(lo>>4|(h>>4&3)<<4) - 32)
			q[128*n+96+l] = float32(int(hi>>4|(h>>6&3)<<4) - 32)
		}
	}
}

// --- row dequantization (embedding lookups, tests) ---

func rowQ4_0(dst []float32, w []byte) {
	var q [32]float32
	for b := range len(w) / q40Bytes {
		d := decodeQ4_0(w[b*q40Bytes:], &q)
		for i, v := range q {
			dst[32*b+i] = float32(d * v)
		}
	}
}

func rowQ5_0(dst []float32, w []byte) {
	var q [32]float32
	for b := range len(w) / q50Bytes {
		d := decodeQ5_0(w[b*q50Bytes:], &q)
		for i, v := range q {
			dst[32*b+i] = float32(d * v)
		}
	}
}

// decodeKMin decodes a Q5_K block if five, else a Q4_K block. (A bool, not
// a func value: through one the buffers would escape to the heap.)
func decodeKMin(five bool, blk []byte, q *[qkK]float32, ds, dm *[8]float32) {
	if five {
		decodeQ5K(blk, q, ds, dm)
	} else {
		decodeQ4K(blk, q, ds, dm)
	}
}

func rowKMin(dst []float32, w []byte, bytes int, five bool) {
	var q [qkK]float32
	var ds, dm [8]float32
	for b := range len(w) / bytes {
		decodeKMin(five, w[b*bytes:], &q, &ds, &dm)
		for i, v := range q {
			dst[qkK*b+i] = float32(float32(ds[i/32]*v) - dm[i/32])
		}
	}
}

func rowQ4K(dst []float32, w []byte) { rowKMin(dst, w, q4KBytes, false) }
func rowQ5K(dst []float32, w []byte) { rowKMin(dst, w, q5KBytes, true) }

func rowQ6K(dst []float32, w []byte) {
	var q [qkK]float32
	var ds [16]float32
	for b := range len(w) / q6KBytes {
		decodeQ6K(w[b*q6KBytes:], &q, &ds)
		for i, v := range q {
			dst[qkK*b+i] = float32(ds[i/16] * v)
		}
	}
}

func rowQ8K(dst []float32, w []byte) {
	for b := range len(w) / q8KBytes {
		blk := w[b*q8KBytes:]
		d := math.Float32frombits(binary.LittleEndian.Uint32(blk))
		for i := range qkK {
			dst[qkK*b+i] = float32(d * float32(int8(blk[4+i])))
		}
	}
}

// --- quantizers (used by Generate) ---
//
// They are simple and deterministic rather than optimal: each sub-block
// takes its scale (and min) straight from its range, the per-block scales
// are then quantized against their maximum, and the weights are rounded to
// the nearest level of the stored (already rounded) scales. llama.cpp
// searches scales iteratively for a lower error; files written here are
// still valid GGML and read by llama.cpp alike.

// nearestInt rounds half away from zero.
func nearestInt(v float32) int { return int(math.Round(float64(v))) }

func clampInt(v, lo, hi int) int { return max(lo, min(hi, v)) }

// QuantizeQ4_0 packs float32 values (a multiple of 32) into Q4_0 blocks.
// The value of largest magnitude maps to level −8, so all 16 levels are used.
func QuantizeQ4_0(x []float32) []byte {
	out := make([]byte, len(x)/32*q40Bytes)
	for b := range len(x) / 32 {
		xs, blk := x[32*b:32*b+32], out[b*q40Bytes:]
		d := signedMax(xs) / -8
		binary.LittleEndian.PutUint16(blk, f32ToF16(d))
		id := inverse(f16ToF32(binary.LittleEndian.Uint16(blk)))
		for j := range 16 {
			lo := clampInt(nearestInt(xs[j]*id)+8, 0, 15)
			hi := clampInt(nearestInt(xs[j+16]*id)+8, 0, 15)
			blk[2+j] = byte(lo | hi<<4)
		}
	}
	return out
}

// QuantizeQ5_0 packs float32 values (a multiple of 32) into Q5_0 blocks.
func QuantizeQ5_0(x []float32) []byte {
	out := make([]byte, len(x)/32*q50Bytes)
	for b := range len(x) / 32 {
		xs, blk := x[32*b:32*b+32], out[b*q50Bytes:]
		d := signedMax(xs) / -16
		binary.LittleEndian.PutUint16(blk, f32ToF16(d))
		id := inverse(f16ToF32(binary.LittleEndian.Uint16(blk)))
		var qh uint32
		for j := range 16 {
			lo := clampInt(nearestInt(xs[j]*id)+16, 0, 31)
			hi := clampInt(nearestInt(xs[j+16]*id)+16, 0, 31)
			blk[6+j] = byte(lo&0xf | (hi&0xf)<<4)
			qh |= uint32(lo>>4)<<j | uint32(hi>>4)<<(j+16)
		}
		binary.LittleEndian.PutUint32(blk[2:], qh)
	}
	return out
}

// signedMax is the value of largest magnitude (the first one on ties).
func signedMax(xs []float32) float32 {
	var m float32
	for _, v := range xs {
		if abs32(v) > abs32(m) {
			m = v
		}
	}
	return m
}

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

func inverse(d float32) float32 {
	if d == 0 {
		return 0
	}
	return 1 / d
}

// quantizeKMin fills the header of a Q4_K/Q5_K block for 256 values with
// nmax+1 levels and returns each value's level. Sub-block i covers its
// range [min(0, lo), hi] with scale (hi−lo)/nmax and min −lo; scales and
// mins are then stored as 6-bit multiples of d and dmin.
func quantizeKMin(xs []float32, nmax int, blk []byte) (L [qkK]int) {
	var scale, mins [8]float32
	var maxScale, maxMin float32
	for i := range 8 {
		lo, hi := float32(0), xs[32*i]
		for _, v := range xs[32*i : 32*i+32] {
			lo, hi = min(lo, v), max(hi, v)
		}
		scale[i], mins[i] = max(0, hi-lo)/float32(nmax), -lo
		maxScale, maxMin = max(maxScale, scale[i]), max(maxMin, mins[i])
	}
	binary.LittleEndian.PutUint16(blk, f32ToF16(maxScale/63))
	binary.LittleEndian.PutUint16(blk[2:], f32ToF16(maxMin/63))
	d := f16ToF32(binary.LittleEndian.Uint16(blk))
	dmin := f16ToF32(binary.LittleEndian.Uint16(blk[2:]))
	id, idmin := inverse(d), inverse(dmin)
	s := blk[4:16]
	clear(s)
	for i := range 8 {
		sc := clampInt(nearestInt(scale[i]*id), 0, 63)
		m := clampInt(nearestInt(mins[i]*idmin), 0, 63)
		if i < 4 {
			s[i] |= byte(sc)
			s[i+4] |= byte(m)
		} else {
			s[i+4] = byte(sc&0xf | (m&0xf)<<4)
			s[i-4] |= byte(sc>>4) << 6
			s[i] |= byte(m>>4) << 6
		}
		ds, dm := d*float32(sc), float32(dmin*float32(m)) // converted: not fused into the add below on arm64
		ids := inverse(ds)
		for j := range 32 {
			L[32*i+j] = clampInt(nearestInt((xs[32*i+j]+dm)*ids), 0, nmax)
		}
	}
	return L
}

// QuantizeQ4_K packs float32 values (a multiple of 256) into Q4_K blocks.
func QuantizeQ4_K(x []float32) []byte {
	out := make([]byte, len(x)/qkK*q4KBytes)
	for b := range len(x) / qkK {
		blk := out[b*q4KBytes:]
		L := quantizeKMin(x[qkK*b:qkK*b+qkK], 15, blk)
		for c := range 4 {
			for l := range 32 {
				blk[16+32*c+l] = byte(L[64*c+l] | L[64*c+32+l]<<4)
			}
		}
	}
	return out
}

// QuantizeQ5_K packs float32 values (a multiple of 256) into Q5_K blocks.
func QuantizeQ5_K(x []float32) []byte {
	out := make([]byte, len(x)/qkK*q5KBytes)
	for b := range len(x) / qkK {
		blk := out[b*q5KBytes:]
		L := quantizeKMin(x[qkK*b:qkK*b+qkK], 31, blk)
		for c := range 4 {
			for l := range 32 {
				lo, hi := L[64*c+l], L[64*c+32+l]
				blk[48+32*c+l] = byte(lo&0xf | (hi&0xf)<<4)
				blk[16+l] |= byte(lo>>4)<<(2*c) | byte(hi>>4)<<(2*c+1)
			}
		}
	}
	return out
}

// QuantizeQ6_K packs float32 values (a multiple of 256) into Q6_K blocks.
// Each 16-value sub-block maps its value of largest magnitude to level −32;
// the 16 sub-block scales are int8 multiples of d.
func QuantizeQ6_K(x []float32) []byte {
	out := make([]byte, len(x)/qkK*q6KBytes)
	for b := range len(x) / qkK {
		xs, blk := x[qkK*b:qkK*b+qkK], out[b*q6KBytes:]
		var scale [16]float32
		var amax float32
		for i := range 16 {
			scale[i] = signedMax(xs[16*i:16*i+16]) / -32
			amax = max(amax, abs32(scale[i]))
		}
		binary.LittleEndian.PutUint16(blk[208:], f32ToF16(amax/127))
		d := f16ToF32(binary.LittleEndian.Uint16(blk[208:]))
		id := inverse(d)
		var L [qkK]int
		for i := range 16 {
			sc := clampInt(nearestInt(scale[i]*id), -128, 127)
			blk[192+i] = byte(int8(sc))
			ids := inverse(d * float32(sc))
			for j := range 16 {
				L[16*i+j] = clampInt(nearestInt(xs[16*i+j]*ids), -32, 31) + 32
			}
		}
		for n := range 2 {
			for l := range 32 {
				q1, q2, q3, q4 := L[128*n+l], L[128*n+32+l], L[128*n+64+l], L[128*n+96+l]
				blk[64*n+l] = byte(q1&0xf | (q3&0xf)<<4)
				blk[64*n+32+l] = byte(q2&0xf | (q4&0xf)<<4)
				blk[128+32*n+l] = byte(q1>>4 | (q2>>4)<<2 | (q3>>4)<<4 | (q4>>4)<<6)
			}
		}
	}
	return out
}

// QuantizeQ8_K packs float32 values (a multiple of 256) into Q8_K blocks
// (f32 scale max|x|/127, int8 values, and the 16 sums of 16 values).
func QuantizeQ8_K(x []float32) []byte {
	out := make([]byte, len(x)/qkK*q8KBytes)
	for b := range len(x) / qkK {
		xs, blk := x[qkK*b:qkK*b+qkK], out[b*q8KBytes:]
		var amax float32
		for _, v := range xs {
			amax = max(amax, abs32(v))
		}
		d := amax / 127
		binary.LittleEndian.PutUint32(blk, math.Float32bits(d))
		id := inverse(d)
		for i := range 16 {
			sum := 0
			for j := range 16 {
				v := clampInt(nearestInt(xs[16*i+j]*id), -128, 127)
				blk[4+16*i+j] = byte(int8(v))
				sum += v
			}
			binary.LittleEndian.PutUint16(blk[260+2*i:], uint16(int16(sum)))
		}
	}
	return out
}
