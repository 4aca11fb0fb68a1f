package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func sample(t testing.TB) (string, []byte) {
	t.Helper()
	w := NewWriter()
	w.Str("general.architecture", "llama")
	w.U32("llama.block_count", 2)
	w.U64("big", 1<<40)
	w.I32("neg", -7)
	w.F32("eps", 1e-5)
	w.Bool("flag", true)
	w.Strs("tokenizer.ggml.tokens", []string{"a", "b", "ü"})
	w.F32s("scores", []float32{0.5, -1})
	w.I32s("types", []int32{1, 3})
	t1 := make([]byte, 4*64)
	for i := range t1 {
		t1[i] = byte(i)
	}
	if err := w.Tensor("w1", F32, []uint64{16, 4}, t1); err != nil {
		t.Fatal(err)
	}
	t2 := make([]byte, 34*2)
	t2[0], t2[1] = 0x00, 0x3c // f16 1.0
	if err := w.Tensor("w2", Q8_0, []uint64{64}, t2); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "s.gguf")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	return path, raw
}

func TestRoundTrip(t *testing.T) {
	path, _ := sample(t)
	g, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if s, _ := g.String("general.architecture"); s != "llama" {
		t.Fatalf("arch %q", s)
	}
	if v, _ := g.Uint("big"); v != 1<<40 {
		t.Fatalf("big %d", v)
	}
	if v, ok := g.Get("neg"); !ok || v.I != -7 {
		t.Fatalf("neg %+v", v)
	}
	if v, _ := g.Float("eps"); float32(v) != 1e-5 {
		t.Fatalf("eps %v", v)
	}
	if v, _ := g.Get("flag"); !v.B {
		t.Fatal("flag")
	}
	if s, _ := g.Strings("tokenizer.ggml.tokens"); len(s) != 3 || s[2] != "ü" {
		t.Fatalf("tokens %v", s)
	}
	if v, _ := g.Get("types"); len(v.Array) != 2 || v.Array[1].I != 3 {
		t.Fatalf("types %+v", v)
	}
	w1, ok := g.Tensor("w1")
	if !ok || w1.Type != F32 || w1.Elements() != 64 || w1.Offset%DefaultAlignment != 0 {
		t.Fatalf("w1 %+v", w1)
	}
	if d := g.Data(w1); d[5] != 5 || len(d) != 256 {
		t.Fatalf("w1 data %v", d[:8])
	}
	w2, _ := g.Tensor("w2")
	if d := g.Data(w2); len(d) != 68 || d[1] != 0x3c {
		t.Fatalf("w2 data %v", d[:4])
	}
}

func TestRejectsHostileFiles(t *testing.T) {
	_, raw := sample(t)
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(raw)) }
	cases := map[string][]byte{
		"empty":         nil,
		"bad magic":     mutate(func(b []byte) []byte { b[0] = 'X'; return b }),
		"version 2":     mutate(func(b []byte) []byte { b[4] = 2; return b }),
		"truncated":     raw[:len(raw)-10],
		"header only":   raw[:30],
		"huge kv count": mutate(func(b []byte) []byte { binary.LittleEndian.PutUint64(b[16:], 1<<40); return b }),
		"huge tensors":  mutate(func(b []byte) []byte { binary.LittleEndian.PutUint64(b[8:], 1<<40); return b }),
		"huge string":   mutate(func(b []byte) []byte { binary.LittleEndian.PutUint64(b[24:], 1<<62); return b }),
	}
	for name, b := range cases {
		if _, err := Parse(b); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: err %v, want ErrFormat", name, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	_, raw := sample(f)
	f.Add(raw)
	f.Add(raw[:40])
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := Parse(b)
		if err != nil {
			return
		}
		// Whatever parses can be read without going out of bounds.
		for i := range g.Tensors {
			_ = g.Data(&g.Tensors[i])
		}
	})
}
