package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// GenerateOptions control decoding.
type GenerateOptions struct {
	MaxTokens   int
	Temperature float32 // 0: greedy
	TopP        float32 // 0 or 1: no nucleus cut
	Seed        uint64
	TopLogprobs int   // alternatives reported per token (0..20)
	Stop        []int // extra stop tokens; EOS and end-of-turn always stop
}

// Alternative is a candidate token with its log-probability.
type Alternative struct {
	ID      int     `json:"id"`
	Text    string  `json:"text"`
	Logprob float32 `json:"logprob"`
}

// Token is one generated token.
type Token struct {
	ID      int           `json:"id"`
	Text    string        `json:"text"`
	Logprob float32       `json:"logprob"` // under the model's distribution (temperature 1)
	Top     []Alternative `json:"top_logprobs,omitempty"`
}

// Result summarizes a generation.
type Result struct {
	Tokens       []Token       `json:"tokens"`
	PromptTokens int           `json:"prompt_tokens"`
	FinishReason string        `json:"finish_reason"` // "stop" or "length"
	TimeToFirst  time.Duration `json:"time_to_first_token"`
	Duration     time.Duration `json:"duration"`
}

// Generate continues prompt. onToken, if set, sees each token as it is
// produced; returning an error stops generation with that error. The prompt
// is processed in batches; generation stops at an end-of-sequence or
// end-of-turn token (not included in the result), a token in o.Stop,
// o.MaxTokens, or the end of the model's context (finish reason "length").
// A cancelled ctx stops the token loop with ctx's error.
func (m *Model) Generate(ctx context.Context, prompt []int, o GenerateOptions, onToken func(Token) error) (*Result, error) {
	if err := m.acquire(); err != nil {
		return nil, err
	}
	defer m.release()
	if len(prompt) == 0 {
		return nil, errors.New("empty prompt")
	}
	if o.MaxTokens <= 0 {
		return nil, errors.New("max tokens must be positive")
	}
	if o.Temperature < 0 || o.TopP < 0 || o.TopP > 1 || o.TopLogprobs < 0 || o.TopLogprobs > MaxTopLogprobs ||
		math.IsNaN(float64(o.Temperature)) || math.IsNaN(float64(o.TopP)) {
		return nil, fmt.Errorf("invalid sampling options: temperature %v, top_p %v, top_logprobs %d", o.Temperature, o.TopP, o.TopLogprobs)
	}
	if len(prompt) >= m.cfg.Context {
		return nil, fmt.Errorf("prompt of %d tokens fills the context of %d", len(prompt), m.cfg.Context)
	}
	// The context bounds the answer; the caller learns it from FinishReason.
	maxTokens := min(o.MaxTokens, m.cfg.Context-len(prompt))
	start := time.Now()
	s := m.newState(len(prompt) + maxTokens)
	if err := m.prefill(ctx, s, prompt); err != nil {
		return nil, err
	}
	sp := newSampler(m.cfg.Vocab, o)
	res := &Result{PromptTokens: len(prompt), FinishReason: "length", Tokens: make([]Token, 0, min(maxTokens, 1024))}
	logits := s.logits[:m.cfg.Vocab]
	for {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		lse := logSumExp(logits)
		id := sp.sample(logits)
		if len(res.Tokens) == 0 {
			res.TimeToFirst = time.Since(start)
		}
		if m.tok.IsStop(id) || slices.Contains(o.Stop, id) {
			res.FinishReason = "stop"
			break
		}
		tok := Token{ID: id, Text: m.tok.Piece(id), Logprob: float32(float64(logits[id]) - lse)}
		if o.TopLogprobs > 0 {
			tok.Top = m.topAlternatives(logits, lse, o.TopLogprobs, sp.idx)
		}
		res.Tokens = append(res.Tokens, tok)
		if onToken != nil {
			if err := onToken(tok); err != nil {
				return res, err
			}
		}
		if len(res.Tokens) == maxTokens {
			break
		}
		if err := m.forward(s, []int{id}, nil); err != nil {
			return res, err
		}
	}
	res.Duration = time.Since(start)
	return res, nil
}

// MaxTopLogprobs bounds GenerateOptions.TopLogprobs (as OpenAI's API does).
const MaxTopLogprobs = 20

// prefill runs the prompt through the model in batches, leaving the logits
// after its last token.
func (m *Model) prefill(ctx context.Context, s *state, prompt []int) error {
	for i := 0; i < len(prompt); i += maxBatch {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := m.forward(s, prompt[i:min(i+maxBatch, len(prompt))], nil); err != nil {
			return err
		}
	}
	return nil
}

// sampler draws tokens; its buffers are reused across steps so the token
// loop does not allocate.
type sampler struct {
	o     GenerateOptions
	rng   *rand.Rand
	probs []float32
	idx   []int
}

func newSampler(vocab int, o GenerateOptions) *sampler {
	return &sampler{o: o, rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)),
		probs: make([]float32, vocab), idx: make([]int, 0, vocab)}
}

// sample picks the next token: the argmax at temperature 0, else a draw
// from softmax(logits/T) restricted to the smallest set of most likely
// tokens whose mass reaches top-p. Ties order by token id, so the draw is a
// pure function of the logits and the seeded generator.
func (sp *sampler) sample(logits []float32) int {
	o := sp.o
	if o.Temperature == 0 {
		return argmax(logits)
	}
	probs := sp.probs
	for i, l := range logits {
		probs[i] = l / o.Temperature
	}
	softmax(probs)
	idx := sp.idx[:0]
	if o.TopP > 0 && o.TopP < 1 {
		// Tokens below (1-p)/(n-1) cannot be in the nucleus (llama2.c's
		// trick), which keeps the sort small.
		cutoff := (1 - o.TopP) / float32(len(probs)-1)
		for i, p := range probs {
			if p >= cutoff {
				idx = append(idx, i)
			}
		}
		slices.SortFunc(idx, func(a, b int) int {
			switch {
			case probs[a] > probs[b]:
				return -1
			case probs[a] < probs[b]:
				return 1
			}
			return a - b
		})
		var cum float32
		for k, i := range idx {
			cum += probs[i]
			if cum >= o.TopP {
				idx = idx[:k+1]
				break
			}
		}
	} else {
		for i := range probs {
			idx = append(idx, i)
		}
	}
	sp.idx = idx
	var total float32
	for _, i := range idx {
		total += probs[i]
	}
	r := sp.rng.Float32() * total
	for _, i := range idx {
		r -= probs[i]
		if r <= 0 {
			return i
		}
	}
	return idx[len(idx)-1]
}

func argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// logSumExp is log Σ exp(logits), accumulated in float64 so logprobs
// (logit − lse) are accurate; Generate and Score share it, so they agree
// exactly.
func logSumExp(logits []float32) float64 {
	mx := logits[0]
	for _, v := range logits {
		mx = max(mx, v)
	}
	var sum float64
	for _, v := range logits {
		sum += math.Exp(float64(v - mx))
	}
	return float64(mx) + math.Log(sum)
}

// topAlternatives returns the k most likely tokens, best first (ties by id).
func (m *Model) topAlternatives(logits []float32, lse float64, k int, buf []int) []Alternative {
	top := buf[:0]
	better := func(a, b int) bool { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b) }
	for i := range logits {
		if len(top) == k && !better(i, top[k-1]) {
			continue
		}
		// Insertion into a short sorted list: k is at most 20.
		j := len(top)
		if j < k {
			top = append(top, i)
		} else {
			j = k - 1
		}
		for ; j > 0 && better(i, top[j-1]); j-- {
			top[j] = top[j-1]
		}
		top[j] = i
	}
	out := make([]Alternative, len(top))
	for n, i := range top {
		out[n] = Alternative{ID: i, Text: m.tok.Piece(i), Logprob: float32(float64(logits[i]) - lse)}
	}
	return out
}

// TokenScore is how the model rates one given token.
type TokenScore struct {
	ID         int     `json:"id"`
	Logprob    float32 `json:"logprob"`
	Rank       int     `json:"rank"` // 1 = the model's top choice (ties count in the token's favour)
	TopID      int     `json:"top_id"`
	TopLogprob float32 `json:"top_logprob"`
}

// Score teacher-forces completion after prompt and reports, for each
// completion token, its log-probability and rank under the model: the same
// numbers Generate reports (bit for bit), so a validator can check a
// miner's tokens.
func (m *Model) Score(ctx context.Context, prompt, completion []int) ([]TokenScore, error) {
	if err := m.acquire(); err != nil {
		return nil, err
	}
	defer m.release()
	if len(prompt) == 0 {
		return nil, errors.New("empty prompt")
	}
	if len(prompt)+len(completion) > m.cfg.Context {
		return nil, fmt.Errorf("%d tokens exceed the context of %d", len(prompt)+len(completion), m.cfg.Context)
	}
	for _, t := range completion {
		if t < 0 || t >= m.cfg.Vocab {
			return nil, fmt.Errorf("completion token %d outside the vocabulary of %d", t, m.cfg.Vocab)
		}
	}
	if len(completion) == 0 {
		return []TokenScore{}, nil
	}
	s := m.newState(len(prompt) + len(completion))
	// Position i of seq predicts seq[i+1]: the logits after the last prompt
	// token score completion[0], and so on; the last completion token need
	// not be run.
	if err := m.prefill(ctx, s, prompt[:len(prompt)-1]); err != nil {
		return nil, err
	}
	seq := append(prompt[len(prompt)-1:len(prompt):len(prompt)], completion[:len(completion)-1]...)
	out := make([]TokenScore, 0, len(completion))
	for i := 0; i < len(seq); i += maxBatch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		batch := seq[i:min(i+maxBatch, len(seq))]
		err := m.forward(s, batch, func(j int, logits []float32) {
			t := completion[i+j]
			lse := logSumExp(logits)
			rank := 1
			for _, v := range logits {
				if v > logits[t] {
					rank++
				}
			}
			top := argmax(logits)
			out = append(out, TokenScore{ID: t, Logprob: float32(float64(logits[t]) - lse), Rank: rank, TopID: top,
				TopLogprob: float32(float64(logits[top]) - lse)})
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
