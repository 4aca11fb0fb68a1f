package engine

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/agoranet/agora/engine/gguf"
)

// FuzzLoadMatrix feeds arbitrary block bytes of every quantized type the
// engine repacks through newMatrix, as a downloaded model file would: any
// bytes are valid blocks, so loading must succeed, every repacked row must
// equal the file's own decoding bit for bit (NaN scales give NaN either
// way), and a product over it must not fail.
func FuzzLoadMatrix(f *testing.F) {
	f.Add(uint8(0), uint8(3), uint8(0), []byte{1, 2, 3})
	f.Add(uint8(4), uint8(17), uint8(2), []byte{0xff, 0x7b, 0x00, 0x80})
	f.Add(uint8(6), uint8(1), uint8(1), []byte{0x00, 0x7c, 0xff})
	types := []gguf.TensorType{gguf.Q8_0, gguf.Q4_0, gguf.Q5_0, gguf.Q8_K, gguf.Q4_K, gguf.Q5_K, gguf.Q6_K}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, ti, rowsIn, supers uint8, seed []byte) {
		typ := types[int(ti)%len(types)]
		rows, cols := 1+int(rowsIn)%40, qkK*(1+int(supers)%3)
		bt, ok := blockTypes[typ]
		if !ok { // Q8_0: an f16 scale and 32 int8 values
			bt = blockType{q8Block, q8BlockBytes, func(dst []float32, w []byte) {
				for b := range len(dst) / q8Block {
					blk := w[b*q8BlockBytes:]
					d := f16ToF32(uint16(blk[0]) | uint16(blk[1])<<8)
					for i := range q8Block {
						dst[b*q8Block+i] = d * float32(int8(blk[2+i]))
					}
				}
			}}
		}
		rowBytes := cols / bt.elems * bt.bytes
		raw := make([]byte, rows*rowBytes)
		for i := range raw {
			if len(seed) > 0 {
				raw[i] = seed[i%len(seed)] ^ byte(i*131>>3)
			}
		}
		w := gguf.NewWriter()
		if err := w.Tensor("w", typ, []uint64{uint64(cols), uint64(rows)}, raw); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "f.gguf")
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
		m, err := newMatrix(g, ar, "w", rows, cols)
		if err != nil {
			t.Fatalf("%s %d×%d: %v", typ, rows, cols, err)
		}
		got, want := make([]float32, cols), make([]float32, cols)
		for r := range rows {
			m.row(got, r)
			bt.row(want, raw[r*rowBytes:][:rowBytes])
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) && !(got[i] != got[i] && want[i] != want[i]) {
					t.Fatalf("%s row %d col %d: repacked %v, file %v", typ, r, i, got[i], want[i])
				}
			}
		}
		x := newActs(9, cols)
		for i := range x.f {
			x.f[i] = float32(i%7) - 3
		}
		x.n = 9
		var qa q8Acts
		qa.quantize(x)
		runInt(m, &qa, 0, rows, make([]float32, 9*rows))
	})
}
