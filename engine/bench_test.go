package engine

import (
	"context"
	"fmt"
	"testing"

	"github.com/agoranet/agora/engine/gguf"
)

// BenchmarkDecodeSmolLM2 times decode steps of a smollm2-135m-shaped Q8_0
// model (go test -run - -bench Decode ./engine/).
func BenchmarkDecodeSmolLM2(b *testing.B) {
	m, _ := genModel(b, "smollm2-135m", QuantQ8, 1)
	s := m.newState(4096)
	if err := m.forward(s, []int{1}, nil); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		if s.pos >= 4000 {
			s = m.newState(4096)
		}
		if err := m.forward(s, []int{(i * 31) % m.cfg.Vocab}, nil); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// BenchmarkPromptSmolLM2 times batched prompt processing (128 tokens in
// maxBatch batches, last-token logits) of a smollm2-135m-shaped Q8_0 model:
// the path a prompt and a validator's Score take (go test -run - -bench
// Prompt -cpu 2 ./engine/).
func BenchmarkPromptSmolLM2(b *testing.B) {
	m, _ := genModel(b, "smollm2-135m", QuantQ8, 1)
	prompt := make([]int, 128)
	for i := range prompt {
		prompt[i] = (i*7919 + 11) % m.cfg.Vocab
	}
	s := m.newState(len(prompt))
	for b.Loop() {
		s.pos = 0
		for l := range s.keys {
			s.keys[l], s.vals[l] = s.keys[l][:0], s.vals[l][:0]
		}
		for i := 0; i < len(prompt); i += maxBatch {
			if err := m.forward(s, prompt[i:min(i+maxBatch, len(prompt))], nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*len(prompt))/b.Elapsed().Seconds(), "tokens/s")
}

// BenchmarkMatmulQ8 times one 1536×576 Q8_0 product over a full batch on one
// thread, with the fastest kernels the CPU has, the AVX2 ones (even on a
// VNNI CPU) and the portable one.
func BenchmarkMatmulQ8(b *testing.B) {
	m := testMatrix(gguf.Q8_0, 1536, 576, 1)
	x := testActs(maxBatch, 576, 2)
	out := make([]float32, maxBatch*m.rows)
	for _, c := range []struct {
		name string
		set  func() (restore func(), ok bool)
	}{
		{"simd", func() (func(), bool) { return func() {}, true }},
		{"avx2", withQ8AVX2},
		{"portable", func() (func(), bool) { return withoutVNNI(), true }},
	} {
		b.Run(c.name, func(b *testing.B) {
			restore, ok := c.set()
			defer restore()
			if !ok {
				b.Skip("no AVX2")
			}
			benchProduct(b, m, x, out)
		})
	}
}

// BenchmarkDecodeBatchSmolLM2 times multi-sequence decode steps (one token
// for each of N sequences per forward pass) on the smollm2-135m shape at
// Q8_0, reporting tokens/s summed over the sequences
// (go test -run - -bench DecodeBatch ./engine/).
func BenchmarkDecodeBatchSmolLM2(b *testing.B) {
	m, _ := genModel(b, "smollm2-135m", QuantQ8, 1)
	for _, n := range []int{1, 4, 16} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			o := GenerateOptions{MaxTokens: 4000, Stop: []int{-1}}
			var seqs []*Sequence
			start := func() {
				seqs = seqs[:0]
				for i := range n {
					q, err := m.StartSequence(context.Background(), []int{1 + i}, o)
					if err != nil {
						b.Fatal(err)
					}
					seqs = append(seqs, q)
				}
			}
			start()
			bt := m.NewBatch()
			steps := 0
			b.ResetTimer()
			for b.Loop() {
				if steps == 3000 {
					b.StopTimer()
					start()
					steps = 0
					b.StartTimer()
				}
				if _, _, err := bt.Sample(seqs); err != nil {
					b.Fatal(err)
				}
				if err := bt.Decode(seqs); err != nil {
					b.Fatal(err)
				}
				steps++
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

// BenchmarkMatmulInt times one product over a full batch on one thread for
// every integer-kernel type (go test -run - -bench MatmulInt ./engine/):
// the 32-block types take smollm2-135m's 1536×576 shape, the K-quants
// 576×1536 (its ffn_down, the one K-quantized tensor there). Q4_0 and
// Q5_0, with kernels of their own (matmul_q4.go), are timed on each: the
// fastest, the AVX2 one and the portable one. The K-quants too (benchK).
func BenchmarkMatmulInt(b *testing.B) {
	for _, typ := range intTypes {
		rows, cols := 1536, 576
		if bt, ok := blockTypes[typ]; ok && bt.elems == qkK {
			rows, cols = 576, 1536
		}
		m, _ := intMatrix(b, typ, rows, cols, 1)
		x := testActs(maxBatch, cols, 2)
		out := make([]float32, maxBatch*m.rows)
		if _, isK := kLayouts[typ]; isK {
			benchK(b, typ, m, x, out)
			continue
		}
		if typ != gguf.Q4_0 && typ != gguf.Q5_0 {
			b.Run(typ.String(), func(b *testing.B) {
				benchProduct(b, m, x, out)
			})
			continue
		}
		for _, c := range []struct {
			name string
			set  func() (restore func(), ok bool)
		}{
			{"simd", func() (func(), bool) { return func() {}, true }},
			{"avx2", withQ8AVX2},
			{"portable", func() (func(), bool) { return withoutVNNI(), true }},
		} {
			b.Run(typ.String()+"/"+c.name, func(b *testing.B) {
				restore, ok := c.set()
				defer restore()
				if !ok {
					b.Skip("no AVX2")
				}
				benchProduct(b, m, x, out)
			})
		}
	}
}

// benchK times a K-quant product on each of its kernels (intKernels: the fastest,
// AVX2, portable), and on the SIMD ones for a lone token too (decoding's
// case, the x1 kernels).
func benchK(b *testing.B, typ gguf.TensorType, m *matrix, x *acts, out []float32) {
	for _, kern := range intKernels {
		for _, n := range []int{x.n, 1} {
			name := typ.String() + "/" + kern.name
			if n == 1 {
				if kern.name == "portable" {
					continue
				}
				name += "-1tok"
			}
			b.Run(name, func(b *testing.B) {
				restore, ok := kern.set()
				defer restore()
				if !ok {
					b.Skip("not on this CPU")
				}
				full := x.n
				x.n = n
				defer func() { x.n = full }()
				benchProduct(b, m, x, out)
			})
		}
	}
}

// benchProduct times m·x on a one-worker pool and reports GMAC/s.
func benchProduct(b *testing.B, m *matrix, x *acts, out []float32) {
	p := newPool(1)
	defer p.close()
	tk := &task{}
	for b.Loop() {
		tk.nops = copy(tk.ops[:], []mulOp{{m, x, out}})
		p.run(tk)
	}
	b.ReportMetric(float64(b.N)*float64(m.rows*m.cols*x.n)/b.Elapsed().Seconds()/1e9, "GMAC/s")
}
