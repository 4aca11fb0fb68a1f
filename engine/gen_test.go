package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/agoranet/agora/engine/gguf"
)

// Every metadata value type, nested arrays included, and tensors of each
// storage type survive write → mmap read unchanged.
func TestGGUFRoundTripAllTypes(t *testing.T) {
	w := gguf.NewWriter()
	vals := map[string]gguf.Value{
		"u8":  {Type: gguf.TypeUint8, U: 200, I: int64(int8(-56))},
		"i8":  {Type: gguf.TypeInt8, U: 0xf9, I: -7},
		"u16": {Type: gguf.TypeUint16, U: 60000, I: int64(int16(-5536))},
		"i16": {Type: gguf.TypeInt16, U: 0xfffe, I: -2},
		"u32": {Type: gguf.TypeUint32, U: 4e9, I: int64(int32(-294967296))},
		"i32": {Type: gguf.TypeInt32, U: uint64(uint32(0xffffff85)), I: -123},
		"u64": {Type: gguf.TypeUint64, U: 1 << 60, I: 1 << 60},
		"i64": {Type: gguf.TypeInt64, U: math.MaxUint64, I: -1},
		"f32": {Type: gguf.TypeFloat32, F: float64(float32(1.5e-5))},
		"f64": {Type: gguf.TypeFloat64, F: math.Pi},
		"yes": {Type: gguf.TypeBool, U: 1, I: 1, B: true},
		"str": {Type: gguf.TypeString, S: "héllo 🙂"},
		"arr": {Type: gguf.TypeArray, ArrayType: gguf.TypeArray, Array: []gguf.Value{
			{Type: gguf.TypeArray, ArrayType: gguf.TypeInt16, Array: []gguf.Value{{Type: gguf.TypeInt16, U: 0xfffe, I: -2}}},
			{Type: gguf.TypeArray, ArrayType: gguf.TypeInt16, Array: []gguf.Value{}},
		}},
	}
	for k, v := range vals {
		w.Set(k, v)
	}
	w.Set("general.alignment", gguf.Value{Type: gguf.TypeUint32, U: 64, I: 64})
	f32 := make([]float32, 64)
	for i := range f32 {
		f32[i] = float32(i) - 31.5
	}
	if err := addTensor(w, "a.f32", QuantF32, 2, 32, f32); err != nil {
		t.Fatal(err)
	}
	if err := addTensor(w, "b.f16", QuantF16, 2, 32, f32); err != nil {
		t.Fatal(err)
	}
	if err := addTensor(w, "c.q8", QuantQ8, 2, 32, f32); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "all.gguf")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	g, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for k, want := range vals {
		got, ok := g.Get(k)
		if !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %+v, want %+v", k, got, want)
		}
	}
	if g.Alignment != 64 {
		t.Fatalf("alignment %d", g.Alignment)
	}
	for _, c := range []struct {
		name string
		typ  gguf.TensorType
		tol  float32
	}{{"a.f32", gguf.F32, 0}, {"b.f16", gguf.F16, 0}, {"c.q8", gguf.Q8_0, 0.13}} {
		ti, ok := g.Tensor(c.name)
		if !ok || ti.Type != c.typ || !reflect.DeepEqual(ti.Dims, []uint64{32, 2}) || ti.Offset%64 != 0 {
			t.Fatalf("%s: %+v", c.name, ti)
		}
		m, err := newMatrix(g, nil, c.name, 2, 32)
		if err != nil {
			t.Fatal(err)
		}
		row := make([]float32, 32)
		for r := range 2 {
			m.row(row, r)
			for i, v := range row {
				if d := float32(math.Abs(float64(v - f32[r*32+i]))); d > c.tol {
					t.Fatalf("%s[%d,%d] = %v, want %v", c.name, r, i, v, f32[r*32+i])
				}
			}
		}
	}
	// Q8_0 layout: f16 scale max|x|/127 then round(x/d).
	q, _ := g.Tensor("c.q8")
	blk := g.Data(q)[:34]
	if d := f16ToF32(binary.LittleEndian.Uint16(blk)); d != f16ToF32(f32ToF16(31.5/127)) || int8(blk[2]) != -127 || int8(blk[33]) != -2 {
		t.Fatalf("q8 block %v", blk)
	}
}

// model gen → load gives the shape asked for, and the generator is
// deterministic in its seed.
func TestGenRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for name, shape := range map[string]Shape{"tiny-qwen2": Shapes["tiny-qwen2"], "tiny-llama3": Shapes["tiny-llama3"]} {
		a, b, c := filepath.Join(dir, name+"a"), filepath.Join(dir, name+"b"), filepath.Join(dir, name+"c")
		for i, p := range []string{a, b, c} {
			if err := Generate(p, shape, QuantQ8, uint64(1+i/2)); err != nil {
				t.Fatal(err)
			}
		}
		ra, _ := os.ReadFile(a)
		rb, _ := os.ReadFile(b)
		rc, _ := os.ReadFile(c)
		if !bytes.Equal(ra, rb) || bytes.Equal(ra, rc) {
			t.Fatalf("%s: same seed must give the same file, another seed another", name)
		}
		m, err := Load(a)
		if err != nil {
			t.Fatal(err)
		}
		in, err := m.Info()
		m.Close()
		if err != nil {
			t.Fatal(err)
		}
		if in.Arch != shape.Arch || in.Dim != shape.Dim || in.Hidden != shape.Hidden || in.Layers != shape.Layers ||
			in.Heads != shape.Heads || in.KVHeads != shape.KVHeads || in.Vocab != shape.Vocab || in.Context != shape.Context ||
			in.RopeBase != shape.RopeBase || in.TiedOutput != shape.Tied || in.Biases != (shape.Arch == "qwen2") ||
			in.WeightType != "Q8_0" || in.TensorTypes["Q8_0"] == 0 || len(in.ID) != 64 {
			t.Fatalf("%s: info %+v", name, in)
		}
	}
}

// Q4_K_M and Q6_K models generate, load with the tensor mix llama.cpp
// gives them, generate, and Score reproduces the generation. Their logits
// follow the F32 model of the same seed (the weights are the same before
// quantization) within each quantization's error.
func TestGenQuantizedModels(t *testing.T) {
	for _, c := range []struct {
		shape string
		q     Quant
		types map[string]int // weight matrices per type (embedding included)
		tol   float64        // RMS(Δlogit) / std(F32 logits)
	}{
		// tiny-k, 3 layers: attn_v and ffn_down of the last layer and the
		// (untied) output head at Q6_K, the rest Q4_K.
		{"tiny-k", QuantQ4KM, map[string]int{"Q4_K": 1 + 3*7 - 2, "Q6_K": 2 + 1}, 0.3},
		{"tiny-k", QuantQ6K, map[string]int{"Q6_K": 2 + 3*7}, 0.08},
		// 64-wide rows fall back as in llama.cpp: Q4_K → Q5_0, Q6_K → Q8_0;
		// Of 2 layers, the last one's attn_v and ffn_down get more bits.
		{"tiny", QuantQ4KM, map[string]int{"Q5_0": 1 + 2*7 - 2, "Q8_0": 2 + 1}, 0.3},
		{"tiny-qwen2", QuantQ6K, map[string]int{"Q8_0": 1 + 2*7}, 0.08},
	} {
		t.Run(c.shape+"/"+string(c.q), func(t *testing.T) {
			m, _ := genModel(t, c.shape, c.q, 9)
			in, err := m.Info()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(in.TensorTypes, c.types) {
				t.Fatalf("tensor types %v, want %v", in.TensorTypes, c.types)
			}
			prompt := m.Tokenizer().Encode("where is the station?", false, true)
			res, err := m.Generate(context.Background(), prompt, GenerateOptions{MaxTokens: 16, Temperature: 0.8, Seed: 2, Stop: []int{-1}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Tokens) != 16 {
				t.Fatalf("%d tokens", len(res.Tokens))
			}
			ids := make([]int, len(res.Tokens))
			for i, tk := range res.Tokens {
				ids[i] = tk.ID
			}
			scores, err := m.Score(context.Background(), prompt, ids)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range scores {
				if s.ID != ids[i] || s.Logprob != res.Tokens[i].Logprob {
					t.Fatalf("token %d: score %+v, generated %+v", i, s, res.Tokens[i])
				}
			}
			ref, _ := genModel(t, c.shape, QuantF32, 9)
			seq := append(slices.Clone(prompt), ids...)
			got, want := m.newState(len(seq)), ref.newState(len(seq))
			if err := m.prefill(context.Background(), got, seq); err != nil {
				t.Fatal(err)
			}
			if err := ref.prefill(context.Background(), want, seq); err != nil {
				t.Fatal(err)
			}
			lg, lw := got.logits[:m.cfg.Vocab], want.logits[:m.cfg.Vocab]
			var mean, sq, se float64
			for _, v := range lw {
				mean += float64(v)
			}
			mean /= float64(len(lw))
			for i, v := range lw {
				sq += (float64(v) - mean) * (float64(v) - mean)
				se += float64(lg[i]-v) * float64(lg[i]-v)
			}
			// Unrelated logits would be ~1.4 apart in these units.
			if r := math.Sqrt(se / sq); r > c.tol {
				t.Fatalf("last logits differ from the F32 model's by %.3g of their spread (RMS), bound %g", r, c.tol)
			} else {
				t.Logf("last logits %.3g of the F32 model's spread (RMS) away", r)
			}
		})
	}
}
