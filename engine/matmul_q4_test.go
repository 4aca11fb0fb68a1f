package engine

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/agoranet/agora/engine/gguf"
)

// q4AsQ8 are the decoders that once loaded Q4_0 and Q5_0 into q8Packed
// (levels minus the offset, as int8): the expanded form the compact one
// must reproduce bit for bit.
var q4AsQ8 = map[gguf.TensorType]q8Decoder{
	gguf.Q4_0: func(row []byte, b int, q *[q8Block]int8) float32 {
		var f [32]float32
		d := decodeQ4_0(row[b*q40Bytes:], &f)
		for i, v := range f {
			q[i] = int8(v)
		}
		return d
	},
	gguf.Q5_0: func(row []byte, b int, q *[q8Block]int8) float32 {
		var f [32]float32
		d := decodeQ5_0(row[b*q50Bytes:], &f)
		for i, v := range f {
			q[i] = int8(v)
		}
		return d
	},
}

// q4Blocks makes n random blocks of typ whose levels follow fill: random,
// all 0, all at the maximum (15 or 31), or each one 0 or the maximum.
func q4Blocks(typ gguf.TensorType, n int, fill string, rng *rand.Rand) []byte {
	w := randomBlocks(typ, n, rng, 0)
	k := blockTypes[typ]
	for b := range n {
		blk := w[b*k.bytes : (b+1)*k.bytes]
		lv := blk[2:] // after the scale every bit is a level bit (Q5_0: qh, then qs)
		for i := range lv {
			switch fill {
			case "zero":
				lv[i] = 0
			case "max":
				lv[i] = 0xff
			case "extremes":
				lv[i] = []byte{0x00, 0x0f, 0xf0, 0xff}[rng.IntN(4)]
			}
		}
	}
	return w
}

// q4Acts makes n tokens of cols values: normal, all +1 (every value
// quantizes to 127), alternating ±1, or ±1 at random — the last three
// give the largest block sums there are against extreme levels.
func q4Acts(n, cols int, kind string, seed uint64) *acts {
	x := testActs(n, cols, seed)
	rng := rand.New(rand.NewPCG(seed, 5))
	for i := range x.f {
		switch kind {
		case "ones":
			x.f[i] = 1
		case "alternate":
			x.f[i] = float32(1 - 2*(i%2))
		case "signs":
			x.f[i] = float32(1 - 2*rng.IntN(2))
		}
	}
	return x
}

// Every Q4_0 and Q5_0 kernel (VNNI, AVX2, portable) computes, tile by
// tile, exactly what q8Packed computed for the same blocks (the expanded
// form and its portable kernel), over random and extreme levels and
// activations, partial 16-row groups, 1 to 9 tokens (partial tiles, and a
// second tile) and several block counts; a last group's padded rows give
// zero.
func TestQ4KernelsMatchQ8Packed(t *testing.T) {
	shapes := [][2]int{{40, 576}, {3, 32}, {16, 64}, {33, 1568}}
	fills := []string{"random", "zero", "max", "extremes"}
	kinds := []string{"normal", "ones", "alternate", "signs"}
	for _, typ := range []gguf.TensorType{gguf.Q4_0, gguf.Q5_0} {
		bt := blockTypes[typ]
		for si, shape := range shapes {
			rows, cols := shape[0], shape[1]
			nb := cols / q8Block
			groups := (rows + q8Rows - 1) / q8Rows
			for fi, fill := range fills {
				raw := q4Blocks(typ, rows*nb, fill, rand.New(rand.NewPCG(uint64(si), uint64(fi))))
				p := packQ4(nil, typ, raw, rows, cols)
				ref := packQ8(nil, raw, rows, cols, nb*bt.bytes, q4AsQ8[typ])
				for ki, kind := range kinds {
					for n := 1; n <= 9; n++ {
						var a q8Acts
						a.quantize(q4Acts(n, cols, kind, uint64(100*ki+n)))
						for _, kn := range intKernels {
							restore, ok := kn.set()
							if !ok {
								restore()
								continue
							}
							for tile := range (n + q8TileTokens - 1) / q8TileTokens {
								k := min(q8TileTokens, n-tile*q8TileTokens)
								for g := range groups {
									got := make([]float32, k*q8Rows)
									want := make([]float32, k*q8Rows)
									q4Tile(p, g, nb, &a, tile, k, got, q8Rows)
									q8TilePortable(&ref, g, nb, &a, tile, k, want, q8Rows)
									for i := range got {
										lr := i % q8Rows
										if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
											restore()
											t.Fatalf("%s/%dx%d/%s/%s/n%d/%s: tile %d token %d row %d = %v, q8Packed %v",
												typ, rows, cols, fill, kind, n, kn.name, tile, i/q8Rows, g*q8Rows+lr, got[i], want[i])
										}
										if g*q8Rows+lr >= rows && math.Float32bits(got[i]) != 0 {
											restore()
											t.Fatalf("%s/%dx%d/%s/n%d: padded row %d = %v, want 0", typ, rows, cols, kn.name, n, g*q8Rows+lr, got[i])
										}
									}
								}
							}
							restore()
						}
					}
				}
			}
		}
	}
}

// The whole product through the pool (runInt: rows split across workers,
// groups cut by a range edge computed into scratch) equals q8Packed's on
// every kernel.
func TestQ4ProductMatchesQ8Packed(t *testing.T) {
	for _, typ := range []gguf.TensorType{gguf.Q4_0, gguf.Q5_0} {
		bt := blockTypes[typ]
		for _, shape := range [][2]int{{200, 576}, {40, 96}} {
			rows, cols := shape[0], shape[1]
			raw := q4Blocks(typ, rows*cols/q8Block, "random", rand.New(rand.NewPCG(7, uint64(rows))))
			m := &matrix{typ: typ, rows: rows, cols: cols, q4: packQ4(nil, typ, raw, rows, cols)}
			ref := &matrix{typ: typ, rows: rows, cols: cols, q8: packQ8(nil, raw, rows, cols, cols/q8Block*bt.bytes, q4AsQ8[typ])}
			for _, n := range []int{1, 5, 8, 17} {
				x := testActs(n, cols, uint64(n))
				want := runMatmul(t, ref, x, 1, false)
				expectProducts(t, m, x, want, fmt.Sprintf("%s/%dx%d/n%d", typ, rows, cols, n))
			}
		}
	}
}

// The compact form takes 0.625 bytes per weight for Q4_0 and 0.75 for
// Q5_0 (levels, high plane and float32 scales), not q8Packed's 1.125, and
// newMatrix loads both types into it; its rows dequantize to the file's
// values.
func TestQ4PackedCompact(t *testing.T) {
	const rows, cols = 48, 576
	w := gguf.NewWriter()
	raws := map[gguf.TensorType][]byte{}
	for _, typ := range []gguf.TensorType{gguf.Q4_0, gguf.Q5_0} {
		raws[typ] = q4Blocks(typ, rows*cols/q8Block, "random", rand.New(rand.NewPCG(3, uint64(typ))))
		if err := w.Tensor(typ.String(), typ, []uint64{cols, rows}, raws[typ]); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "q4.gguf")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	g, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	ar := &arena{}
	defer ar.free()
	for _, c := range []struct {
		typ       gguf.TensorType
		bpw, most float64
	}{{gguf.Q4_0, 0.625, 0.66}, {gguf.Q5_0, 0.75, 0.80}} {
		m, err := newMatrix(g, ar, c.typ.String(), rows, cols)
		if err != nil {
			t.Fatal(err)
		}
		if m.q4 == nil || m.q8.w != nil || !m.integer() {
			t.Fatalf("%s: not loaded compactly", c.typ)
		}
		if got := m.q4.bytesPerWeight(rows, cols); got != c.bpw || got > c.most {
			t.Fatalf("%s: %v bytes per weight, want %v (at most %v)", c.typ, got, c.bpw, c.most)
		}
		if got, want := len(m.q4.w)+4*len(m.q4.ws), rows*cols*int(c.bpw*8)/8; got != want {
			t.Fatalf("%s: %d bytes, want %d", c.typ, got, want)
		}
		bt := blockTypes[c.typ]
		got, want := make([]float32, cols), make([]float32, cols)
		for r := range rows {
			m.row(got, r)
			bt.row(want, raws[c.typ][r*cols/q8Block*bt.bytes:][:cols/q8Block*bt.bytes])
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%s row %d col %d: %v, file %v", c.typ, r, i, got[i], want[i])
				}
			}
		}
	}
}

// The high plane holds weight 4k+j's fifth bit at bit k of byte j of its
// row's dword, and the nibble vectors the file's qs bytes: the layout the
// assembly assumes, checked byte by byte on one hand-made Q5_0 block.
func TestQ4Layout(t *testing.T) {
	blk := make([]byte, q50Bytes)
	binary.LittleEndian.PutUint16(blk, f32ToF16(1))
	binary.LittleEndian.PutUint32(blk[2:], 1<<0|1<<5|1<<31) // weights 0, 5, 31
	for i := range 16 {
		blk[6+i] = byte(i) | byte(15-i)<<4
	}
	rows := 2
	raw := append(make([]byte, 0, 2*q50Bytes), make([]byte, q50Bytes)...)
	raw = append(raw, blk...) // row 1
	p := packQ4(nil, gguf.Q5_0, raw, rows, q8Block)
	for v := range 4 {
		for j := range 4 {
			if got := p.w[v*64+4+j]; got != blk[6+4*v+j] {
				t.Fatalf("nibble vector %d byte %d = %#x, want %#x", v, j, got, blk[6+4*v+j])
			}
		}
	}
	// weight 0: chunk 0, j 0 → bit 0 of byte 0; weight 5: chunk 1, j 1 →
	// bit 1 of byte 1; weight 31: chunk 7, j 3 → bit 7 of byte 3.
	if got := [4]byte(p.w[q4GroupBlock+4 : q4GroupBlock+8]); got != [4]byte{0x01, 0x02, 0, 0x80} {
		t.Fatalf("high plane of row 1 = %#x", got)
	}
	// Padded rows 2..15: levels 16 (nibbles 0, fifth bits set), scale 0.
	if p.w[2*4] != 0 || p.w[q4GroupBlock+15*4] != 0xff || p.ws[15] != 0 {
		t.Fatalf("padding %#x %#x %v", p.w[2*4], p.w[q4GroupBlock+15*4], p.ws[15])
	}
	if p4 := packQ4(nil, gguf.Q4_0, make([]byte, q40Bytes), 1, q8Block); p4.w[4] != 0x88 || p4.w[3*64+15*4+3] != 0x88 {
		t.Fatalf("Q4_0 padding %#x %#x, want levels 8", p4.w[4], p4.w[3*64+15*4+3])
	}
	for c := range q8Block {
		u, _ := p.level(1, c, 1)
		want := int(blk[6+c%16]&0xf) | int(binary.LittleEndian.Uint32(blk[2:])>>c&1)<<4
		if c >= 16 {
			want = int(blk[6+c%16]>>4) | int(binary.LittleEndian.Uint32(blk[2:])>>c&1)<<4
		}
		if u != want {
			t.Fatalf("level %d = %d, want %d", c, u, want)
		}
	}
}

// BenchmarkQ4VsQ8Packed times one 1536×576 Q4_0 or Q5_0 product over a
// full batch (prompt) and over one token (decode) on one thread, compact
// against the expanded q8Packed form of the same blocks, per kernel.
func BenchmarkQ4VsQ8Packed(b *testing.B) {
	const rows, cols = 1536, 576
	for _, typ := range []gguf.TensorType{gguf.Q4_0, gguf.Q5_0} {
		bt := blockTypes[typ]
		raw := q4Blocks(typ, rows*cols/q8Block, "random", rand.New(rand.NewPCG(1, 2)))
		forms := []*matrix{
			{typ: typ, rows: rows, cols: cols, q4: packQ4(nil, typ, raw, rows, cols)},
			{typ: typ, rows: rows, cols: cols, q8: packQ8(nil, raw, rows, cols, cols/q8Block*bt.bytes, q4AsQ8[typ])},
		}
		for _, n := range []int{maxBatch, 1} {
			x := testActs(n, cols, 2)
			out := make([]float32, n*rows)
			for fi, m := range forms {
				for _, kn := range intKernels {
					b.Run(fmt.Sprintf("%s/%s/n%d/%s", typ, []string{"q4", "q8"}[fi], n, kn.name), func(b *testing.B) {
						restore, ok := kn.set()
						defer restore()
						if !ok {
							b.Skip("no AVX2")
						}
						benchProduct(b, m, x, out)
					})
				}
			}
		}
	}
}
