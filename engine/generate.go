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

// EncodeChat renders messages with the model's template and tokenizes them.
func (m *Model) EncodeChat(msgs []Message) ([]int, error) {
	text, err := m.template.Render(msgs)
	if err != nil {
		return nil, err
	}
	// Llama-2 and Llama-3 templates write their own BOS marker.
	addBOS := m.template != Llama2 && m.template != Llama3
	return m.tok.Encode(text, true, addBOS), nil
}

// Generate continues prompt. onToken, if set, sees each token as it is
// produced; returning an error stops generation with that error.
func (m *Model) Generate(ctx context.Context, prompt []int, o GenerateOptions, onToken func(Token) error) (*Result, error) {
	if len(prompt) == 0 {
		return nil, errors.New("empty prompt")
	}
	if o.MaxTokens <= 0 {
		return nil, errors.New("max tokens must be positive")
	}
	if o.Temperature < 0 || o.TopP < 0 || o.TopP > 1 || o.TopLogprobs < 0 || o.TopLogprobs > 20 {
		return nil, fmt.Errorf("invalid sampling options: temperature %v, top_p %v, top_logprobs %d", o.Temperature, o.TopP, o.TopLogprobs)
	}
	if len(prompt)+o.MaxTokens > m.cfg.Context {
		return nil, fmt.Errorf("prompt of %d plus %d new tokens exceeds the context of %d", len(prompt), o.MaxTokens, m.cfg.Context)
	}
	start := time.Now()
	s := m.newState(len(prompt) + o.MaxTokens)
	for _, t := range prompt {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := m.forward(s, t); err != nil {
			return nil, err
		}
	}
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	res := &Result{PromptTokens: len(prompt), FinishReason: "length"}
	probs := make([]float32, m.cfg.Vocab)
	logprobs := make([]float32, m.cfg.Vocab)
	for range o.MaxTokens {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		logSoftmax(logprobs, s.logits)
		id := m.sample(s.logits, logprobs, probs, o, rng)
		tok := Token{ID: id, Text: m.tok.Piece(id), Logprob: logprobs[id], Top: m.topAlternatives(logprobs, o.TopLogprobs)}
		if len(res.Tokens) == 0 {
			res.TimeToFirst = time.Since(start)
		}
		if m.tok.IsStop(id) || slices.Contains(o.Stop, id) {
			res.FinishReason = "stop"
			break
		}
		res.Tokens = append(res.Tokens, tok)
		if onToken != nil {
			if err := onToken(tok); err != nil {
				return res, err
			}
		}
		if len(res.Tokens) == o.MaxTokens {
			break
		}
		if err := m.forward(s, id); err != nil {
			return res, err
		}
	}
	res.Duration = time.Since(start)
	return res, nil
}

func (m *Model) sample(logits, logprobs, probs []float32, o GenerateOptions, rng *rand.Rand) int {
	if o.Temperature == 0 {
		return argmax(logits)
	}
	for i, l := range logits {
		probs[i] = l / o.Temperature
	}
	softmax(probs)
	idx := make([]int, 0, len(probs))
	for i := range probs {
		idx = append(idx, i)
	}
	cut := len(idx)
	if o.TopP > 0 && o.TopP < 1 {
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
				cut = k + 1
				break
			}
		}
	}
	var total float32
	for _, i := range idx[:cut] {
		total += probs[i]
	}
	r := rng.Float32() * total
	for _, i := range idx[:cut] {
		r -= probs[i]
		if r <= 0 {
			return i
		}
	}
	return idx[cut-1]
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

// logSoftmax writes log p for every token into out, accumulating in float64
// so logprobs compare closely across runs and with Score.
func logSoftmax(out, logits []float32) {
	mx := logits[0]
	for _, v := range logits {
		mx = max(mx, v)
	}
	var sum float64
	for _, v := range logits {
		sum += math.Exp(float64(v - mx))
	}
	lse := float64(mx) + math.Log(sum)
	for i, v := range logits {
		out[i] = float32(float64(v) - lse)
	}
}

func (m *Model) topAlternatives(logprobs []float32, k int) []Alternative {
	if k == 0 {
		return nil
	}
	idx := make([]int, len(logprobs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		switch {
		case logprobs[a] > logprobs[b]:
			return -1
		case logprobs[a] < logprobs[b]:
			return 1
		}
		return a - b
	})
	out := make([]Alternative, 0, k)
	for _, i := range idx[:min(k, len(idx))] {
		out = append(out, Alternative{ID: i, Text: m.tok.Piece(i), Logprob: logprobs[i]})
	}
	return out
}

// TokenScore is how the model rates one given token.
type TokenScore struct {
	ID         int     `json:"id"`
	Logprob    float32 `json:"logprob"`
	Rank       int     `json:"rank"` // 1 = the model's top choice
	TopID      int     `json:"top_id"`
	TopLogprob float32 `json:"top_logprob"`
}

// Score teacher-forces completion after prompt and reports, for each
// completion token, its log-probability and rank under the model: the same
// numbers Generate reports, so a validator can check a miner's tokens.
func (m *Model) Score(ctx context.Context, prompt, completion []int) ([]TokenScore, error) {
	if len(prompt) == 0 {
		return nil, errors.New("empty prompt")
	}
	if len(prompt)+len(completion) > m.cfg.Context {
		return nil, fmt.Errorf("%d tokens exceed the context of %d", len(prompt)+len(completion), m.cfg.Context)
	}
	s := m.newState(len(prompt) + len(completion))
	for _, t := range prompt {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := m.forward(s, t); err != nil {
			return nil, err
		}
	}
	out := make([]TokenScore, 0, len(completion))
	lp := make([]float32, m.cfg.Vocab)
	for i, t := range completion {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if t < 0 || t >= m.cfg.Vocab {
			return nil, fmt.Errorf("completion token %d outside the vocabulary", t)
		}
		logSoftmax(lp, s.logits)
		rank := 1
		for _, v := range s.logits {
			if v > s.logits[t] {
				rank++
			}
		}
		top := argmax(s.logits)
		out = append(out, TokenScore{ID: t, Logprob: lp[t], Rank: rank, TopID: top, TopLogprob: lp[top]})
		if i+1 < len(completion) {
			if err := m.forward(s, t); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}
