package engine

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/agoranet/agora/engine/gguf"
)

// intMatrix makes a random matrix of an integer-kernel type the way a file
// loads: random blocks, then the same repacking newMatrix does.
func intMatrix(t testing.TB, typ gguf.TensorType, rows, cols int, seed uint64) (*matrix, []byte) {
	t.Helper()
	k := blockTypes[typ]
	if typ == gguf.Q8_0 {
		return testQ8Matrix(rows, cols, seed)
	}
	raw := randomBlocks(typ, rows*cols/k.elems, rand.New(rand.NewPCG(seed, 17)), 0)
	m := &matrix{typ: typ, rows: rows, cols: cols}
	if typ == gguf.Q4_0 || typ == gguf.Q5_0 {
		m.q4 = packQ4(nil, typ, raw, rows, cols)
		return m, raw
	}
	if dec, ok := q8Decoders[typ]; ok {
		m.q8 = packQ8(nil, raw, rows, cols, cols/k.elems*k.bytes, dec)
		return m, raw
	}
	kq, err := packK(nil, typ, raw, rows, cols)
	if err != nil {
		t.Fatal(err)
	}
	m.kq = &kq
	return m, raw
}

// intReference is the documented integer product (matmul_q8.go,
// matmul_k.go) computed straight from a file's blocks with the block
// decoders, independent of the repacked layout and of the kernels.
func intReference(typ gguf.TensorType, raw []byte, rows, cols int, x *acts) []float32 {
	k := blockTypes[typ]
	if typ == gguf.Q8_0 {
		return q8Reference(raw, rows, cols, x)
	}
	rowBytes := cols / k.elems * k.bytes
	out := make([]float32, x.n*rows)
	var q [q8Block]int8
	for t := range x.n {
		for r := range rows {
			row := raw[r*rowBytes : (r+1)*rowBytes]
			var acc float32
			for b := range cols / q8Block {
				da, _ := quantizeBlock(&q, (*[q8Block]float32)(x.vec(t)[b*q8Block:]))
				var sum int32
				for _, v := range q {
					sum += int32(v)
				}
				w, s0, s1, mn := refBlock(typ, row, b)
				var i0, i1 int32
				for i := range q8Block / 2 {
					i0 += w[i] * int32(q[i])
					i1 += w[16+i] * int32(q[16+i])
				}
				switch typ {
				case gguf.Q4_0, gguf.Q5_0, gguf.Q8_K:
					acc += float32(float32(i0+i1) * float32(s0*da))
				default:
					acc += float32(float32(i0) * float32(s0*da))
					acc += float32(float32(i1) * float32(s1*da))
					acc -= float32(float32(mn*da) * float32(sum))
				}
			}
			out[t*rows+r] = acc
		}
	}
	return out
}

// refBlock decodes block b (32 weights) of a row: integer levels (offsets
// removed) and the scales of its halves and its min.
func refBlock(typ gguf.TensorType, row []byte, b int) (w [q8Block]int32, s0, s1, mn float32) {
	var f [qkK]float32
	var ds, dm [8]float32
	var ds16 [16]float32
	j := b % 8
	switch typ {
	case gguf.Q4_0, gguf.Q5_0:
		var f32 [32]float32
		if typ == gguf.Q4_0 {
			s0 = decodeQ4_0(row[b*q40Bytes:], &f32)
		} else {
			s0 = decodeQ5_0(row[b*q50Bytes:], &f32)
		}
		for i, v := range f32 {
			w[i] = int32(v)
		}
		return w, s0, s0, 0
	case gguf.Q8_K:
		blk := row[b/8*q8KBytes:]
		for i := range q8Block {
			w[i] = int32(int8(blk[4+j*q8Block+i]))
		}
		s0 = math.Float32frombits(binary.LittleEndian.Uint32(blk))
		return w, s0, s0, 0
	case gguf.Q4_K:
		decodeQ4K(row[b/8*q4KBytes:], &f, &ds, &dm)
		s0, s1, mn = ds[j], ds[j], dm[j]
	case gguf.Q5_K:
		decodeQ5K(row[b/8*q5KBytes:], &f, &ds, &dm)
		s0, s1, mn = ds[j], ds[j], dm[j]
	case gguf.Q6_K:
		decodeQ6K(row[b/8*q6KBytes:], &f, &ds16)
		s0, s1 = ds16[2*j], ds16[2*j+1]
	}
	for i := range q8Block {
		w[i] = int32(f[j*q8Block+i])
	}
	return w, s0, s1, mn
}

var intTypes = []gguf.TensorType{gguf.Q8_0, gguf.Q4_0, gguf.Q5_0, gguf.Q8_K, gguf.Q4_K, gguf.Q5_K, gguf.Q6_K}

// Every integer-kernel type's product equals the reference bit for bit for
// every batch size, thread count and kernel (SIMD or portable): a miner's
// generation and a validator's Score must agree whatever either CPU has.
func TestIntegerProductsMatchReference(t *testing.T) {
	for _, typ := range intTypes {
		elems := blockTypes[typ].elems
		if typ == gguf.Q8_0 {
			elems = q8Block
		}
		// 40 rows leave a partial 16-row group; several blocks per row
		// exercise the block loop.
		for _, shape := range [][2]int{{40, 3 * elems}, {16, elems}, {3, 2 * elems}} {
			rows, cols := shape[0], shape[1]
			if cols%q8Block != 0 || cols%elems != 0 {
				continue
			}
			m, raw := intMatrix(t, typ, rows, cols, uint64(cols+rows))
			if !m.integer() {
				t.Fatalf("%s: not on the integer kernels", typ)
			}
			for _, n := range []int{1, 3, 8, 9, 16} {
				x := testActs(n, cols, uint64(n))
				want := intReference(typ, raw, rows, cols, x)
				for _, simd := range []bool{false, true} {
					for _, workers := range []int{1, 3} {
						name := fmt.Sprintf("%s/%dx%d/n%d/simd=%v/%dworkers", typ, rows, cols, n, simd, workers)
						got := runMatmul(t, m, x, workers, simd)
						for i := range want {
							if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
								t.Fatalf("%s: element %d (token %d row %d) = %v, reference %v", name, i, i/rows, i%rows, got[i], want[i])
							}
						}
					}
				}
			}
		}
	}
}

// The integer products stay close to the float product of the exactly
// dequantized weights with unquantized activations, and the repacked rows
// dequantize to the file's values.
func TestIntegerProductsNearFloat(t *testing.T) {
	for _, typ := range intTypes {
		const rows, cols = 16, 1536
		m, raw := intMatrix(t, typ, rows, cols, 3)
		x := testActs(2, cols, 4)
		got := intReference(typ, raw, rows, cols, x)
		deq := make([]float32, cols)
		file := make([]float32, cols)
		k := blockTypes[typ]
		for r := range rows {
			m.row(deq, r)
			if typ == gguf.Q8_0 {
				file = deq // TestQ8ProductNearFloat checks Q8_0 rows
			} else {
				k.row(file, raw[r*cols/k.elems*k.bytes:(r+1)*cols/k.elems*k.bytes])
			}
			for c := range cols {
				if deq[c] != file[c] {
					t.Fatalf("%s row %d col %d: repacked %v, file %v", typ, r, c, deq[c], file[c])
				}
			}
			for tok := range 2 {
				var want, mag float64
				for c := range cols {
					p := float64(file[c]) * float64(x.vec(tok)[c])
					want += p
					mag += math.Abs(p)
				}
				if d := math.Abs(float64(got[tok*rows+r]) - want); d > 0.01*mag {
					t.Errorf("%s token %d row %d: integer %v, float %v (Σ|·| %v)", typ, tok, r, got[tok*rows+r], want, mag)
				}
			}
		}
	}
}

// kExtremeBlocks makes n random super-blocks of a K type, each drawn from a
// mix of the hard cases: every level and 6-bit scale and min at its
// maximum (Q6_K's scales at −128), the largest and negative super-scales,
// levels mixing 0, the maximum and random values, Q6_K's scales at ±127,
// ±1 and −128, and zero scales.
func kExtremeBlocks(typ gguf.TensorType, n int, rng *rand.Rand) []byte {
	k := blockTypes[typ]
	out := make([]byte, 0, n*k.bytes)
	for range n {
		mode := rng.IntN(6)
		blk := randomBlocks(typ, 1, rng, map[int]int{0: 0, 1: 1, 2: 4, 3: 0, 4: 3, 5: 1}[mode])
		switch mode {
		case 2, 3: // extreme level bytes under random or negative scales
			lv, scales := blk[16:], blk[4:16] // Q4_K/Q5_K: 6-bit scales and mins, then levels
			if typ == gguf.Q6_K {
				lv, scales = blk[:192], blk[192:208]
			}
			for i := range lv {
				lv[i] = []byte{0x00, 0xff, byte(rng.IntN(256))}[rng.IntN(3)]
			}
			for i := range scales {
				if typ == gguf.Q6_K {
					scales[i] = byte([]int8{-128, 127, -127, -1, 1, 0}[rng.IntN(6)])
				} else if mode == 2 {
					scales[i] = 0xff // every scale and min 63
				}
			}
		case 5: // maximal levels and scales, random super-scales
			if typ == gguf.Q6_K {
				binary.LittleEndian.PutUint16(blk[208:], f32ToF16((rng.Float32()*2-1)*0.05))
			} else {
				binary.LittleEndian.PutUint16(blk, f32ToF16((rng.Float32()*2-1)*0.05))
				binary.LittleEndian.PutUint16(blk[2:], f32ToF16((rng.Float32()*2-1)*0.05))
			}
		}
		out = append(out, blk...)
	}
	return out
}

// kActs is n tokens of cols values with the activation quantizer's edges
// mixed in: tokens of ±1 only (every value quantizes to ±127, the largest
// VPMADDUBSW products), a lone large value among tiny ones, zeros, and
// Gaussian tokens.
func kActs(n, cols int, seed uint64) *acts {
	x := testActs(n, cols, seed)
	rng := rand.New(rand.NewPCG(seed, 29))
	for t := range n {
		v := x.vec(t)
		switch t % 4 {
		case 1:
			for i := range v {
				v[i] = float32(1 - 2*rng.IntN(2))
			}
		case 2:
			for i := range v {
				v[i] *= 1e-3
			}
			v[rng.IntN(cols)] = 100
		case 3:
			if t == 3 {
				clear(v[:q8Block])
			}
		}
	}
	return x
}

// Every K kernel (AVX-512 VNNI, AVX2, portable) gives the documented
// integer product bit for bit, on random and extreme super-blocks, for
// rows that fill 16-row groups or not, 1 to 9 and 16 tokens (partial and
// whole tiles) and several super-blocks a row; and the repacked rows still
// dequantize to the file's values.
func TestKKernelsMatchReference(t *testing.T) {
	for _, c := range []struct {
		typ        gguf.TensorType
		rows, cols int
		extreme    bool
	}{
		{gguf.Q4_K, 40, 768, false},
		{gguf.Q4_K, 16, 256, true},
		{gguf.Q4_K, 35, 1280, true},
		{gguf.Q5_K, 40, 768, false},
		{gguf.Q5_K, 16, 256, true},
		{gguf.Q5_K, 35, 1280, true},
		{gguf.Q6_K, 40, 768, false},
		{gguf.Q6_K, 16, 256, true},
		{gguf.Q6_K, 35, 1280, true},
		{gguf.Q6_K, 3, 512, true},
	} {
		k := blockTypes[c.typ]
		rng := rand.New(rand.NewPCG(uint64(c.rows*c.cols), 5))
		n := c.rows * c.cols / qkK
		raw := randomBlocks(c.typ, n, rng, 0)
		if c.extreme {
			raw = kExtremeBlocks(c.typ, n, rng)
		}
		kq, err := packK(nil, c.typ, raw, c.rows, c.cols)
		if err != nil {
			t.Fatal(err)
		}
		m := &matrix{typ: c.typ, rows: c.rows, cols: c.cols, kq: &kq}
		deq, file := make([]float32, c.cols), make([]float32, c.cols)
		rowBytes := c.cols / qkK * k.bytes
		for r := range c.rows {
			m.row(deq, r)
			k.row(file, raw[r*rowBytes:(r+1)*rowBytes])
			for i := range deq {
				if math.Float32bits(deq[i]) != math.Float32bits(file[i]) && deq[i] != file[i] {
					t.Fatalf("%s row %d col %d: repacked %v, file %v", c.typ, r, i, deq[i], file[i])
				}
			}
		}
		for _, ntok := range []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 16} {
			x := kActs(ntok, c.cols, uint64(ntok))
			want := intReference(c.typ, raw, c.rows, c.cols, x)
			expectProducts(t, m, x, want, fmt.Sprintf("%s/%dx%d/extreme=%v/n%d", c.typ, c.rows, c.cols, c.extreme, ntok))
		}
	}
	for _, kern := range intKernels {
		if restore, ok := kern.set(); !ok {
			t.Logf("no %s on this CPU: not compared", kern.name)
		} else {
			restore()
		}
	}
}

// The packed K types stay close to the file's size: 4-bit nibbles, the
// higher bits in planes, and per super-block the file's f16 super-scales
// and byte sub-scales. Q6_K's are the file's bytes exactly; Q4_K's and
// Q5_K's 6-bit sub-scales and mins take a byte each, 4 bytes a row and
// super-block (1/64 byte a weight) more than the file's 12.
func TestKPackedBytesPerWeight(t *testing.T) {
	for _, c := range []struct {
		typ       gguf.TensorType
		want, max float64
	}{
		{gguf.Q4_K, 0.578125, 0.58},   // (2048 + 320) / 4096
		{gguf.Q5_K, 0.703125, 0.705},  // (2048 + 512 + 320) / 4096
		{gguf.Q6_K, 0.8203125, 0.825}, // (2048 + 1024 + 288) / 4096
	} {
		const rows, cols = 64, 1024
		k := blockTypes[c.typ]
		raw := randomBlocks(c.typ, rows*cols/qkK, rand.New(rand.NewPCG(1, 2)), 0)
		p, err := packK(nil, c.typ, raw, rows, cols)
		if err != nil {
			t.Fatal(err)
		}
		got := float64(len(p.w)+len(p.h)+len(p.sc)) / (rows * cols)
		file := float64(k.bytes) / qkK
		if got != c.want || got > c.max || got != p.bytesPerWeight() {
			t.Errorf("%s: %v bytes/weight packed (layout says %v), want %v ≤ %v (file %v)", c.typ, got, p.bytesPerWeight(), c.want, c.max, file)
		}
		t.Logf("%s: %.4f bytes/weight packed, file %.4f", c.typ, got, file)
	}
}
