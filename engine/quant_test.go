package engine

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/agoranet/agora/engine/gguf"
)

// --- an independent float64 dequantization, element by element from the
// GGML block layouts. Each weight comes back as a − b (b is the K-quant
// min term, 0 for the other types) so tolerances can scale with both. ---

func refScaleMin(j int, s []byte) (float64, float64) {
	if j < 4 {
		return float64(s[j] & 63), float64(s[j+4] & 63)
	}
	return float64(s[j+4]&15 | (s[j-4]>>6)<<4), float64(s[j+4]>>4 | (s[j]>>6)<<4)
}

func refDequant(t gguf.TensorType, blk []byte, i int) (a, b float64) {
	half := func(off int) float64 { return halfToFloat(binary.LittleEndian.Uint16(blk[off:])) }
	nib := func(v byte, high bool) int {
		if high {
			return int(v >> 4)
		}
		return int(v & 15)
	}
	switch t {
	case gguf.Q4_0:
		return half(0) * float64(nib(blk[2+i%16], i >= 16)-8), 0
	case gguf.Q5_0:
		qh := binary.LittleEndian.Uint32(blk[2:])
		q := nib(blk[6+i%16], i >= 16) | int(qh>>i&1)<<4
		return half(0) * float64(q-16), 0
	case gguf.Q4_K, gguf.Q5_K:
		sc, m := refScaleMin(i/32, blk[4:16])
		c, l, high := i/64, i%32, i%64 >= 32
		var q int
		if t == gguf.Q4_K {
			q = nib(blk[16+32*c+l], high)
		} else {
			shift := 2 * c
			if high {
				shift++
			}
			q = nib(blk[48+32*c+l], high) | int(blk[16+l]>>shift&1)<<4
		}
		return half(0) * sc * float64(q), half(2) * m
	case gguf.Q6_K:
		n, r := i/128, i%128
		l, quarter := r%32, r/32
		lo := nib(blk[64*n+32*(quarter&1)+l], quarter >= 2)
		hi := int(blk[128+32*n+l]>>(2*quarter)) & 3
		return half(208) * float64(int8(blk[192+i/16])) * float64(lo|hi<<4-32), 0
	case gguf.Q8_K:
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(blk))) * float64(int8(blk[4+i])), 0
	}
	panic("no reference for " + t.String())
}

var quantTypes = []struct {
	typ      gguf.TensorType
	quantize func([]float32) []byte
	rms      float64 // round-trip bound: RMS error / RMS value on Gaussian rows
	maxErr   float64 // round-trip bound: largest |error| / max |value| of the row's block
}{
	{gguf.Q4_0, QuantizeQ4_0, 0.100, 1.0 / 8},
	{gguf.Q5_0, QuantizeQ5_0, 0.050, 1.0 / 16},
	{gguf.Q4_K, QuantizeQ4_K, 0.090, 1.0 / 12},
	{gguf.Q5_K, QuantizeQ5_K, 0.045, 1.0 / 24},
	{gguf.Q6_K, QuantizeQ6_K, 0.025, 1.0 / 48},
	{gguf.Q8_K, QuantizeQ8_K, 0.009, 1.0 / 254},
}

// randomBlocks makes n blocks of type t with every quant bit random and
// finite scales; edge picks extreme headers and quants instead.
func randomBlocks(t gguf.TensorType, n int, rng *rand.Rand, edge int) []byte {
	k := blockTypes[t]
	w := make([]byte, n*k.bytes)
	for i := range w {
		w[i] = byte(rng.IntN(256))
	}
	scale := func() uint16 {
		switch edge {
		case 1:
			return 0x7bff // largest half, 65504
		case 2:
			return 0x0001 // smallest subnormal
		case 3:
			return 0 // zero scale
		case 4:
			return f32ToF16(-0.02) // negative scale
		}
		return f32ToF16((rng.Float32()*2 - 1) * 0.05)
	}
	for b := range n {
		blk := w[b*k.bytes : (b+1)*k.bytes]
		if edge == 1 {
			for i := range blk {
				blk[i] = 0xff // every quant and every 6-bit scale/min at its maximum
			}
		}
		switch t {
		case gguf.Q4_0, gguf.Q5_0:
			binary.LittleEndian.PutUint16(blk, scale())
		case gguf.Q4_K, gguf.Q5_K:
			binary.LittleEndian.PutUint16(blk, scale())
			binary.LittleEndian.PutUint16(blk[2:], scale())
		case gguf.Q6_K:
			binary.LittleEndian.PutUint16(blk[208:], scale())
			if edge == 1 {
				for i := range 16 {
					blk[192+i] = 0x80 // int8 −128
				}
			}
		case gguf.Q8_K:
			binary.LittleEndian.PutUint32(blk, math.Float32bits(f16ToF32(scale())))
		}
	}
	return w
}

func randomActs(n int, rng *rand.Rand) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

// Each type's dequantization and its repacked integer form match a float64
// dequantization of the same blocks, extreme headers included: a
// dequantized weight is one rounding away (the scale products are exact in
// float32), so within 2⁻²³(|a|+|b|); the integer product with quantized
// activations stays within activation rounding (1% of Σ(|a·x|+|b·x|)).
func TestQuantTypesMatchFloat64(t *testing.T) {
	for _, qt := range quantTypes {
		k := blockTypes[qt.typ]
		for _, cols := range []int{k.elems, 2 * k.elems, 3 * k.elems, 4096} {
			for edge := range 5 {
				t.Run(fmt.Sprintf("%s/cols%d/edge%d", qt.typ, cols, edge), func(t *testing.T) {
					rng := rand.New(rand.NewPCG(uint64(cols), uint64(edge)))
					w := randomBlocks(qt.typ, cols/k.elems, rng, edge)
					x := randomActs(cols, rng)
					row := make([]float32, cols)
					k.row(row, w)
					var want, mag float64
					for i := range cols {
						blk := w[i/k.elems*k.bytes:]
						a, b := refDequant(qt.typ, blk, i%k.elems)
						want += (a - b) * float64(x[i])
						mag += (math.Abs(a) + math.Abs(b)) * math.Abs(float64(x[i]))
						if d := math.Abs(float64(row[i]) - (a - b)); d > 0x1p-23*(math.Abs(a)+math.Abs(b)) {
							t.Fatalf("element %d: dequantized %v, float64 %v", i, row[i], a-b)
						}
					}
					m := packedRow(t, qt.typ, w, cols)
					packed := make([]float32, cols)
					m.row(packed, 0)
					for i := range cols {
						if packed[i] != row[i] {
							t.Fatalf("element %d: repacked %v, dequantized %v", i, packed[i], row[i])
						}
					}
					xs := newActs(1, cols)
					xs.n = 1
					copy(xs.f, x)
					got := float64(runMatmul(t, m, xs, 1, true)[0])
					if math.Abs(got-want) > 0.01*mag || math.IsNaN(got) {
						t.Fatalf("integer product %g, float64 %g (magnitude %g)", got, want, mag)
					}
				})
			}
		}
	}
}

// Quantize → dequantize stays within each type's error bound, on Gaussian
// rows and on rows with outliers and all-equal or all-zero blocks.
func TestQuantizeRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const cols = 4096
	rows := map[string][]float32{"gauss": randomActs(cols, rng), "outliers": randomActs(cols, rng), "flat": make([]float32, cols)}
	for i := 0; i < cols; i += 97 {
		rows["outliers"][i] *= 20
	}
	for i := range rows["flat"] {
		if i >= cols/2 {
			rows["flat"][i] = -0.75
		}
	}
	for _, qt := range quantTypes {
		k := blockTypes[qt.typ]
		for name, x := range rows {
			w := qt.quantize(x)
			if len(w) != cols/k.elems*k.bytes {
				t.Fatalf("%s: %d bytes", qt.typ, len(w))
			}
			y := make([]float32, cols)
			k.row(y, w)
			var se, sx float64
			for b := 0; b < cols; b += k.elems {
				var amax float64
				for _, v := range x[b : b+k.elems] {
					amax = math.Max(amax, math.Abs(float64(v)))
				}
				for i := b; i < b+k.elems; i++ {
					e := float64(y[i] - x[i])
					se += e * e
					sx += float64(x[i]) * float64(x[i])
					if math.Abs(e) > qt.maxErr*amax*1.0001 {
						t.Fatalf("%s %s: element %d is %v, was %v (block max %v)", qt.typ, name, i, y[i], x[i], amax)
					}
				}
			}
			if name == "gauss" {
				if r := math.Sqrt(se / sx); r > qt.rms {
					t.Errorf("%s: relative RMS error %.4f, bound %.4f", qt.typ, r, qt.rms)
				} else {
					t.Logf("%s: relative RMS error %.4f (bound %.4f)", qt.typ, r, qt.rms)
				}
			}
		}
	}
}

// A K-quant row too short for a super-block, or a file type the engine
// cannot compute with, is refused at load with a clear error.
func TestQuantTypeSelection(t *testing.T) {
	for _, c := range []struct {
		q      Quant
		name   string
		layer  int
		cols   int
		output bool
		want   gguf.TensorType
	}{
		{QuantQ4KM, "blk.0.attn_q.weight", 0, 256, false, gguf.Q4_K},
		{QuantQ4KM, "blk.0.attn_v.weight", 0, 256, false, gguf.Q4_K},
		{QuantQ4KM, "blk.2.attn_v.weight", 2, 256, false, gguf.Q6_K},   // last eighth of 3 layers
		{QuantQ4KM, "blk.2.ffn_down.weight", 2, 512, false, gguf.Q6_K}, // last eighth
		{QuantQ4KM, "blk.1.ffn_down.weight", 1, 512, false, gguf.Q4_K},
		{QuantQ4KM, "token_embd.weight", -1, 256, true, gguf.Q6_K},
		{QuantQ4KM, "token_embd.weight", -1, 256, false, gguf.Q4_K},
		{QuantQ4KM, "blk.0.attn_q.weight", 0, 576, false, gguf.Q5_0}, // no whole super-block: llama.cpp's fallback
		{QuantQ4KM, "blk.2.attn_v.weight", 2, 576, false, gguf.Q8_0}, // Q6_K's fallback
		{QuantQ6K, "blk.0.attn_q.weight", 0, 256, false, gguf.Q6_K},
		{QuantQ6K, "blk.0.attn_q.weight", 0, 48, false, gguf.F32},
	} {
		got, err := c.q.tensorType(c.name, c.layer, 3, c.cols, c.output)
		if err != nil || got != c.want {
			t.Errorf("%s %s cols %d: %v %v, want %v", c.q, c.name, c.cols, got, err, c.want)
		}
	}
	if _, err := Quant("q3_k").tensorType("x", 0, 1, 256, false); err == nil {
		t.Fatal("unknown quant accepted")
	}
}

// packedRow loads one row of blocks the way newMatrix does.
func packedRow(t *testing.T, typ gguf.TensorType, w []byte, cols int) *matrix {
	t.Helper()
	m := &matrix{typ: typ, rows: 1, cols: cols}
	if typ == gguf.Q4_0 || typ == gguf.Q5_0 {
		m.q4 = packQ4(nil, typ, w, 1, cols)
		return m
	}
	if dec, ok := q8Decoders[typ]; ok {
		m.q8 = packQ8(nil, w, 1, cols, len(w), dec)
		return m
	}
	kq, err := packK(nil, typ, w, 1, cols)
	if err != nil {
		t.Fatal(err)
	}
	m.kq = &kq
	return m
}
