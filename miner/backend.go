// Package miner serves a model on Agora's wire protocol: OpenAI-compatible
// endpoints behind signature checks, answered by the built-in engine or any
// OpenAI-compatible upstream, every answer closed by a signed receipt.
package miner

import (
	"context"
	"fmt"

	"github.com/agoranet/agora/engine"
	"github.com/agoranet/agora/openai"
)

// Piece is one streamed token (or upstream chunk) of a completion.
type Piece struct {
	Text     string
	Logprob  *openai.TokenLogprob
	TokenIDs []int
}

// Result is a finished completion.
type Result struct {
	PromptTokens     int
	CompletionTokens int
	FinishReason     string
	PromptTokenIDs   []int
	TokenIDs         []int
}

// Backend produces completions.
type Backend interface {
	// ModelID is the sha256 of the served model file (empty if unknown).
	ModelID() string
	// Complete runs one request, calling emit for each piece as it is ready.
	Complete(ctx context.Context, req *openai.ChatRequest, chat bool, emit func(Piece) error) (*Result, error)
}

// Builtin serves a model with the built-in engine. Concurrent requests
// decode together in one batch (see Batcher).
type Builtin struct {
	Model   *engine.Model
	id      string
	batcher *Batcher
}

// BuiltinOption configures NewBuiltin.
type BuiltinOption func(*builtinOptions)

type builtinOptions struct{ kvBudget int64 }

// WithKVBudget bounds the KV cache of the requests served at once, in
// bytes (0: DefaultKVBudget). Requests beyond it get 503 + Retry-After.
func WithKVBudget(bytes int64) BuiltinOption {
	return func(o *builtinOptions) { o.kvBudget = bytes }
}

// NewBuiltin wraps a loaded model.
func NewBuiltin(m *engine.Model, opts ...BuiltinOption) (*Builtin, error) {
	var o builtinOptions
	for _, f := range opts {
		f(&o)
	}
	if o.kvBudget < 0 {
		return nil, fmt.Errorf("KV budget of %d bytes is negative", o.kvBudget)
	}
	id, err := m.ID()
	if err != nil {
		return nil, err
	}
	b := NewBatcher(m, o.kvBudget)
	if b.BudgetTokens() < 1 {
		return nil, fmt.Errorf("KV budget of %d bytes holds no token (%d bytes each)", o.kvBudget, m.Config().KVBytesPerToken())
	}
	return &Builtin{Model: m, id: id, batcher: b}, nil
}

// Batcher is the builtin backend's batcher.
func (b *Builtin) Batcher() *Batcher { return b.batcher }

// ModelID implements Backend.
func (b *Builtin) ModelID() string { return b.id }

// MaxTokensLimit implements TokenLimiter: nothing longer than the model's
// context, or than the KV budget holds, can be generated.
func (b *Builtin) MaxTokensLimit() int {
	return min(b.Model.Config().Context, b.batcher.BudgetTokens())
}

// DefaultMaxTokens applies when a request gives none.
const DefaultMaxTokens = openai.DefaultMaxTokens

// Complete implements Backend.
func (b *Builtin) Complete(ctx context.Context, req *openai.ChatRequest, chat bool, emit func(Piece) error) (*Result, error) {
	var prompt []int
	var err error
	if chat {
		msgs := make([]engine.Message, len(req.Messages))
		for i, m := range req.Messages {
			msgs[i] = engine.Message{Role: m.Role, Content: m.Content}
		}
		if prompt, err = b.Model.EncodeChat(msgs); err != nil {
			return nil, badRequest(err.Error())
		}
	} else {
		prompt = b.Model.Tokenizer().Encode(req.Prompt, false, true)
	}
	o := engine.GenerateOptions{MaxTokens: DefaultMaxTokens, Temperature: 1, TopP: 1}
	if req.MaxTokens != nil {
		o.MaxTokens = *req.MaxTokens
	}
	if room := b.Model.Config().Context - len(prompt); o.MaxTokens > room {
		if room < 1 {
			return nil, badRequest(fmt.Sprintf("prompt of %d tokens fills the model's context of %d", len(prompt), b.Model.Config().Context))
		}
		o.MaxTokens = room
	}
	if req.Temperature != nil {
		o.Temperature = *req.Temperature
	}
	if req.TopP != nil {
		o.TopP = *req.TopP
	}
	if req.Seed != nil {
		o.Seed = *req.Seed
	}
	if req.WantsLogprobs() {
		o.TopLogprobs = req.TopLogprobs
	}
	res, err := b.batcher.Generate(ctx, prompt, o, func(t engine.Token) error {
		p := Piece{Text: t.Text, TokenIDs: []int{t.ID}}
		if req.WantsLogprobs() {
			tl := &openai.TokenLogprob{Token: t.Text, Logprob: t.Logprob, Bytes: byteInts(t.Text), TopLogprobs: []openai.TopLogprob{}}
			for _, a := range t.Top {
				tl.TopLogprobs = append(tl.TopLogprobs, openai.TopLogprob{Token: a.Text, Logprob: a.Logprob, Bytes: byteInts(a.Text)})
			}
			p.Logprob = tl
		}
		return emit(p)
	})
	if err != nil {
		return nil, err
	}
	ids := make([]int, len(res.Tokens))
	for i, t := range res.Tokens {
		ids[i] = t.ID
	}
	return &Result{PromptTokens: len(prompt), CompletionTokens: len(ids), FinishReason: res.FinishReason, PromptTokenIDs: prompt, TokenIDs: ids}, nil
}

func byteInts(s string) []int {
	out := make([]int, len(s))
	for i := range len(s) {
		out[i] = int(s[i])
	}
	return out
}

// HTTPError is an error with the status the miner should answer with.
type HTTPError struct {
	Status     int
	Type       string
	Message    string
	RetryAfter string
}

func (e *HTTPError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Type, e.Message) }

func badRequest(msg string) error {
	return &HTTPError{Status: 400, Type: "invalid_request_error", Message: msg}
}
