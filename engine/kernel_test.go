package engine

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

// randomQ8 makes a row of Q8_0 weight blocks (all int8 values, −128
// included) and an activation vector.
func randomQ8(cols int, seed uint64) ([]byte, []float32, []float32) {
	rng := rand.New(rand.NewPCG(seed, 7))
	nb := cols / q8Block
	w := make([]byte, nb*q8BlockBytes)
	ws := make([]float32, nb)
	for b := range nb {
		binary.LittleEndian.PutUint16(w[b*q8BlockBytes:], f32ToF16(rng.Float32()*0.01))
		ws[b] = f16ToF32(binary.LittleEndian.Uint16(w[b*q8BlockBytes:]))
		for i := range q8Block {
			w[b*q8BlockBytes+2+i] = byte(rng.IntN(256))
		}
	}
	x := make([]float32, cols)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return w, ws, x
}

// A prompt run as one batch, in single steps, or split differently must
// give bit-identical logits: Score relies on it to reproduce Generate.
func TestBatchingIsExact(t *testing.T) {
	for _, q := range []Quant{QuantF32, QuantQ8} {
		m, _ := genModel(t, "tiny", q, 5)
		tokens := m.Tokenizer().Encode("The quick brown fox jumps over the lazy dog", false, true)
		if len(tokens) < 5 {
			t.Fatalf("only %d tokens", len(tokens))
		}
		tokens = tokens[:min(len(tokens), 3+maxBatch)]
		one := m.newState(len(tokens))
		var single [][]float32
		for _, tk := range tokens {
			if err := m.forward(one, []int{tk}, nil); err != nil {
				t.Fatal(err)
			}
			single = append(single, slices.Clone(one.logits[:m.cfg.Vocab]))
		}
		all := m.newState(len(tokens))
		batched := [][]float32{}
		for _, part := range [][]int{tokens[:3], tokens[3:]} {
			logits := forwardAll(t, m, all, part)
			for j := range part {
				batched = append(batched, logits[j*m.cfg.Vocab:(j+1)*m.cfg.Vocab])
			}
		}
		for i := range single {
			if !slices.Equal(single[i], batched[i]) {
				t.Fatalf("%s: position %d differs between batched and single-step runs", q, i)
			}
		}
	}
}

// Many goroutines share one model (and its worker pool); each result must
// equal the one computed alone. Run with -race.
func TestConcurrentCalls(t *testing.T) {
	m, _ := genModel(t, "tiny-qwen2", QuantQ8, 2)
	prompt := m.Tokenizer().Encode("Anyone can ask a question", false, true)
	want, err := m.Generate(context.Background(), prompt, GenerateOptions{MaxTokens: 12, Temperature: 0.8, Seed: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for range 8 {
		wg.Go(func() {
			got, err := m.Generate(context.Background(), prompt, GenerateOptions{MaxTokens: 12, Temperature: 0.8, Seed: 1}, nil)
			if err != nil {
				errs <- err.Error()
				return
			}
			for i := range got.Tokens {
				if got.Tokens[i].ID != want.Tokens[i].ID || got.Tokens[i].Logprob != want.Tokens[i].Logprob {
					errs <- "concurrent generation differs"
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Generate(context.Background(), prompt, GenerateOptions{MaxTokens: 1}, nil); err != ErrClosed {
		t.Fatalf("generate after close: %v", err)
	}
}
