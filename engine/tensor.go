package engine

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/agoranet/agora/engine/gguf"
)

// f16ToF32 converts an IEEE half to float32.
func f16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal
		for mant&0x400 == 0 {
			mant <<= 1
			exp--
		}
		exp++
		mant &= 0x3ff
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}

// f32ToF16 converts float32 to the nearest IEEE half (round to nearest even).
func f32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint32(14 - e)
		half := mant >> shift
		rem := mant & (1<<shift - 1)
		mid := uint32(1) << (shift - 1)
		if rem > mid || (rem == mid && half&1 == 1) {
			half++
		}
		return sign | uint16(half)
	}
	half := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && half&1 == 1) {
		half++
	}
	return sign | uint16(half)
}

// matrix is a weight matrix of rows × cols (cols = GGUF ne[0]).
type matrix struct {
	typ        gguf.TensorType
	rows, cols int
	f32        []float32 // F32 and F16 (widened at load)
	q8         []byte    // Q8_0 blocks, as in the file
	q8scale    []float32 // Q8_0 block scales, widened once at load
}

func newMatrix(g *gguf.File, name string, rows, cols int) (*matrix, error) {
	t, ok := g.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("tensor %s missing", name)
	}
	if len(t.Dims) > 2 || t.Dims[0] != uint64(cols) || (len(t.Dims) == 2 && t.Dims[1] != uint64(rows)) || (len(t.Dims) == 1 && rows != 1) {
		return nil, fmt.Errorf("tensor %s has dims %v, want [%d %d]", name, t.Dims, cols, rows)
	}
	m := &matrix{typ: t.Type, rows: rows, cols: cols}
	data := g.Data(t)
	switch t.Type {
	case gguf.F32:
		m.f32 = make([]float32, rows*cols)
		for i := range m.f32 {
			m.f32[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		}
	case gguf.F16:
		m.f32 = make([]float32, rows*cols)
		for i := range m.f32 {
			m.f32[i] = f16ToF32(binary.LittleEndian.Uint16(data[2*i:]))
		}
	case gguf.Q8_0:
		m.q8 = data
		m.q8scale = make([]float32, len(data)/34)
		for b := range m.q8scale {
			m.q8scale[b] = f16ToF32(binary.LittleEndian.Uint16(data[b*34:]))
		}
	default:
		return nil, fmt.Errorf("tensor %s: type %s not supported by the engine (F32, F16, Q8_0)", name, t.Type)
	}
	return m, nil
}

func vector(g *gguf.File, name string, n int) ([]float32, error) {
	m, err := newMatrix(g, name, 1, n)
	if err != nil {
		return nil, err
	}
	if m.f32 == nil {
		return nil, fmt.Errorf("tensor %s: vectors must be F32 or F16", name)
	}
	return m.f32, nil
}

// row writes row r of m into dst, dequantized.
func (m *matrix) row(dst []float32, r int) {
	if m.f32 != nil {
		copy(dst, m.f32[r*m.cols:(r+1)*m.cols])
		return
	}
	blocks := m.cols / 32
	base := r * blocks * 34
	for b := range blocks {
		blk := m.q8[base+b*34 : base+b*34+34]
		d := f16ToF32(binary.LittleEndian.Uint16(blk))
		for i := range 32 {
			dst[b*32+i] = d * float32(int8(blk[2+i]))
		}
	}
}

// dotRow is row r of m dotted with x.
func (m *matrix) dotRow(r int, x []float32) float32 {
	if m.f32 != nil {
		w := m.f32[r*m.cols : (r+1)*m.cols]
		x = x[:len(w)]
		var s0, s1, s2, s3 float32
		i := 0
		for ; i+4 <= len(w); i += 4 {
			s0 += w[i] * x[i]
			s1 += w[i+1] * x[i+1]
			s2 += w[i+2] * x[i+2]
			s3 += w[i+3] * x[i+3]
		}
		for ; i < len(w); i++ {
			s0 += w[i] * x[i]
		}
		return (s0 + s1) + (s2 + s3)
	}
	blocks := m.cols / 32
	q := m.q8[r*blocks*34 : (r+1)*blocks*34]
	ws := m.q8scale[r*blocks : (r+1)*blocks]
	var sum float32
	// Fixed-size array views let the compiler drop bounds checks in the hot loop.
	for b := range blocks {
		wq := (*[34]byte)(q[b*34:])
		xs := (*[32]float32)(x[b*32:])
		var s0, s1, s2, s3 float32
		for i := 0; i < 32; i += 4 {
			s0 += float32(int8(wq[2+i])) * xs[i]
			s1 += float32(int8(wq[3+i])) * xs[i+1]
			s2 += float32(int8(wq[4+i])) * xs[i+2]
			s3 += float32(int8(wq[5+i])) * xs[i+3]
		}
		sum += ws[b] * ((s0 + s1) + (s2 + s3))
	}
	return sum
}

// matVec computes out = m·x, splitting rows across workers. Each row is
// summed by one worker in a fixed order, so results do not depend on scheduling.
func (m *matrix) matVec(out, x []float32) {
	workers := runtime.GOMAXPROCS(0)
	if m.rows*m.cols < 1<<15 || workers == 1 {
		for r := range m.rows {
			out[r] = m.dotRow(r, x)
		}
		return
	}
	var wg sync.WaitGroup
	chunk := (m.rows + workers - 1) / workers
	for lo := 0; lo < m.rows; lo += chunk {
		hi := min(lo+chunk, m.rows)
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			for r := lo; r < hi; r++ {
				out[r] = m.dotRow(r, x)
			}
		}(lo, hi)
	}
	wg.Wait()
}

// QuantizeQ8_0 packs float32 values (a multiple of 32) into Q8_0 blocks:
// per block an f16 scale d = max|x|/127 and 32 int8 values round(x/d).
func QuantizeQ8_0(x []float32) []byte {
	out := make([]byte, len(x)/32*34)
	for b := 0; b < len(x)/32; b++ {
		xs := x[b*32 : b*32+32]
		var amax float32
		for _, v := range xs {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		d := amax / 127
		inv := float32(0)
		if d != 0 {
			inv = 1 / d
		}
		blk := out[b*34:]
		binary.LittleEndian.PutUint16(blk, f32ToF16(d))
		for i, v := range xs {
			blk[2+i] = byte(int8(math.Round(float64(v * inv))))
		}
	}
	return out
}
