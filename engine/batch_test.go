package engine

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

// batchEntry is a sequence that joins a batch run at step join.
type batchEntry struct {
	prompt string
	o      GenerateOptions
	join   int
}

// runBatched decodes entries together, each joining at its step and
// leaving when it finishes, and returns their results in entry order.
func runBatched(t *testing.T, m *Model, entries []batchEntry) []*Result {
	t.Helper()
	ctx := context.Background()
	b := m.NewBatch()
	seqs := make([]*Sequence, len(entries))
	var active []*Sequence
	for step := 0; ; step++ {
		joined := 0
		for i, e := range entries {
			if e.join == step {
				q, err := m.StartSequence(ctx, m.Tokenizer().Encode(e.prompt, false, true), e.o)
				if err != nil {
					t.Fatal(err)
				}
				seqs[i] = q
				active = append(active, q)
			}
			if e.join <= step {
				joined++
			}
		}
		if joined == len(entries) && len(active) == 0 {
			break
		}
		if _, _, err := b.Sample(active); err != nil {
			t.Fatal(err)
		}
		next := active[:0]
		for _, q := range active {
			if !q.Done() {
				next = append(next, q)
			}
		}
		active = next
		if err := b.Decode(active); err != nil {
			t.Fatal(err)
		}
	}
	out := make([]*Result, len(seqs))
	for i, q := range seqs {
		out[i] = q.Result()
	}
	return out
}

func sameTokens(a, b []Token) bool {
	return slices.EqualFunc(a, b, func(x, y Token) bool {
		return x.ID == y.ID && x.Text == y.Text && x.Logprob == y.Logprob && slices.Equal(x.Top, y.Top)
	})
}

// Sequences decoded together, joining and leaving at different steps, must
// give exactly the tokens and logprobs Generate gives each alone.
func TestBatchMatchesGenerate(t *testing.T) {
	greedy := GenerateOptions{MaxTokens: 12, Stop: []int{-1}}
	entries := []batchEntry{
		{"The quick brown fox", greedy, 0},
		{"jumps over the lazy dog and keeps running far away", GenerateOptions{MaxTokens: 20, Temperature: 0.8, TopP: 0.9, Seed: 7, TopLogprobs: 3}, 0},
		{"a", GenerateOptions{MaxTokens: 5, Temperature: 1, Seed: 2}, 2},
		{strings.Repeat("long prompt words ", 6), GenerateOptions{MaxTokens: 9, TopLogprobs: 2}, 3},
		{"late joiner", GenerateOptions{MaxTokens: 14, Temperature: 0.5, Seed: 11}, 9},
		{"The quick brown fox", greedy, 9}, // same as the first: identical caches side by side
	}
	for _, tc := range []struct {
		shape string
		q     Quant
		pairs bool
	}{
		{"tiny", QuantF32, true},
		{"tiny", QuantQ8, true},
		{"tiny", QuantQ8, false},
		{"tiny-qwen2", QuantQ8, true}, // biases, tied output, NEOX rope
		{"tiny-llama3", QuantQ8, true},
		{"tiny-k", QuantQ4KM, true},
	} {
		t.Run(tc.shape+"-"+string(tc.q), func(t *testing.T) {
			if !tc.pairs {
				defer withoutVNNI()()
			}
			m, _ := genModel(t, tc.shape, tc.q, 3)
			var want []*Result
			for _, e := range entries {
				r, err := m.Generate(context.Background(), m.Tokenizer().Encode(e.prompt, false, true), e.o, nil)
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, r)
			}
			got := runBatched(t, m, entries)
			for i := range entries {
				if len(want[i].Tokens) == 0 {
					t.Fatalf("entry %d: Generate produced no tokens; the test checks nothing", i)
				}
				if !sameTokens(got[i].Tokens, want[i].Tokens) || got[i].FinishReason != want[i].FinishReason {
					t.Errorf("entry %d: batched %d tokens (%s), alone %d (%s); tokens differ", i,
						len(got[i].Tokens), got[i].FinishReason, len(want[i].Tokens), want[i].FinishReason)
				}
			}
		})
	}
}

func TestBatchMisuse(t *testing.T) {
	m, _ := genModel(t, "tiny", QuantQ8, 1)
	ctx := context.Background()
	prompt := m.Tokenizer().Encode("hello there", false, true)
	q, err := m.StartSequence(ctx, prompt, GenerateOptions{MaxTokens: 4, Stop: []int{-1}})
	if err != nil {
		t.Fatal(err)
	}
	b := m.NewBatch()
	if err := b.Decode([]*Sequence{q}); err == nil {
		t.Error("Decode before Next succeeded")
	}
	if _, ok := q.Next(); !ok {
		t.Fatal("no first token")
	}
	if _, ok := q.Next(); ok {
		t.Error("a second Next before Decode sampled stale logits")
	}
	if err := b.Decode([]*Sequence{q, q}); err == nil {
		t.Error("a sequence twice in one batch was accepted")
	}
	if _, err := m.StartSequence(ctx, nil, GenerateOptions{MaxTokens: 1}); err == nil {
		t.Error("empty prompt accepted")
	}
	if n, err := m.KVTokens(prompt, GenerateOptions{MaxTokens: 1 << 20}); err != nil || n != m.cfg.Context {
		t.Errorf("KVTokens with max tokens over the context = %d, %v; want the context %d", n, err, m.cfg.Context)
	}
	m.Close()
	if err := b.Decode([]*Sequence{q}); !errors.Is(err, ErrClosed) {
		t.Errorf("Decode on a closed model: %v, want ErrClosed", err)
	}
	if _, _, err := b.Sample([]*Sequence{q}); !errors.Is(err, ErrClosed) {
		t.Errorf("Sample on a closed model: %v, want ErrClosed", err)
	}
}
