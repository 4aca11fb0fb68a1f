package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Continuous batching. A Sequence is one generation split into steps: its
// prompt is prefilled on its own (StartSequence), then each step samples
// its next token (Next) and feeds that token through the model (Decode).
// A Batch decodes many sequences in ONE forward pass per step: the matrix
// products take one token from each sequence as one batch, so every weight
// row is read once per step for all of them, while attention runs per
// sequence over its own KV cache. Sequences join and leave between steps.
//
// Determinism: a sequence's tokens and logprobs are exactly those Generate
// gives alone. The tile kernels return, per (row, token), what m.dot returns
// for that token alone (see matmul.go), and everything else in a step is
// per token, in forward's order.

// Sequence is one generation decoded step by step, alone or in a Batch. A
// Sequence is not safe for concurrent use.
type Sequence struct {
	m         *Model
	s         *state
	sp        *sampler
	o         GenerateOptions
	maxTokens int
	start     time.Time
	res       *Result
	next      int // token the next Decode feeds; -1: none pending
	done      bool
}

// checkGenerate validates Generate's arguments and returns the most tokens
// the answer may have (o.MaxTokens bounded by the room left in the context).
func (m *Model) checkGenerate(prompt []int, o GenerateOptions) (int, error) {
	if len(prompt) == 0 {
		return 0, errors.New("empty prompt")
	}
	if o.MaxTokens <= 0 {
		return 0, errors.New("max tokens must be positive")
	}
	if o.Temperature < 0 || o.TopP < 0 || o.TopP > 1 || o.TopLogprobs < 0 || o.TopLogprobs > MaxTopLogprobs ||
		math.IsNaN(float64(o.Temperature)) || math.IsNaN(float64(o.TopP)) {
		return 0, fmt.Errorf("invalid sampling options: temperature %v, top_p %v, top_logprobs %d", o.Temperature, o.TopP, o.TopLogprobs)
	}
	if len(prompt) >= m.cfg.Context {
		return 0, fmt.Errorf("prompt of %d tokens fills the context of %d", len(prompt), m.cfg.Context)
	}
	return min(o.MaxTokens, m.cfg.Context-len(prompt)), nil
}

// KVTokens is how many tokens of KV cache a generation of prompt with
// these options reserves: its prompt plus the most tokens it may produce.
// Its cache takes KVTokens × KVBytesPerToken bytes.
func (m *Model) KVTokens(prompt []int, o GenerateOptions) (int, error) {
	n, err := m.checkGenerate(prompt, o)
	if err != nil {
		return 0, err
	}
	return len(prompt) + n, nil
}

// KVBytesPerToken is the memory one token takes in a sequence's KV cache
// (keys and values, every layer, float32).
func (c Config) KVBytesPerToken() int64 {
	return int64(c.Layers) * int64(c.KVHeads*c.HeadDim) * 2 * 4
}

// StartSequence validates prompt and o as Generate does, runs the prompt
// through the model and returns the sequence ready for its first Next. Its
// KV cache is allocated for the whole generation up front (see KVTokens).
func (m *Model) StartSequence(ctx context.Context, prompt []int, o GenerateOptions) (*Sequence, error) {
	if err := m.acquire(); err != nil {
		return nil, err
	}
	defer m.release()
	maxTokens, err := m.checkGenerate(prompt, o)
	if err != nil {
		return nil, err
	}
	q := &Sequence{m: m, o: o, maxTokens: maxTokens, start: time.Now(), next: -1,
		res: &Result{PromptTokens: len(prompt), FinishReason: "length", Tokens: make([]Token, 0, min(maxTokens, 1024))}}
	q.s = m.newState(len(prompt) + maxTokens)
	if err := m.prefill(ctx, q.s, prompt); err != nil {
		return nil, err
	}
	// From here the batch's buffers carry its tokens (forwardSeqs): the
	// prompt's batch-sized ones would only hold memory. scratch keeps the
	// logits, the prompt's next-token ones.
	q.s.xb = nil
	m.scratch(q.s, 1)
	q.sp = newSampler(m.cfg.Vocab, o)
	return q, nil
}

// Next samples the sequence's next token from its current logits, as
// Generate's token loop does. ok is false when the model chose to stop (an
// end-of-sequence, end-of-turn or o.Stop token, not part of the result) or
// the sequence had finished already. After Next, Done reports whether the
// sequence needs no more steps; if not, the token waits for Decode.
func (q *Sequence) Next() (tok Token, ok bool) {
	if q.done {
		return Token{}, false
	}
	if q.next >= 0 {
		// The previous token has not been decoded: sampling again would
		// read stale logits.
		return Token{}, false
	}
	m, res := q.m, q.res
	logits := q.s.logits[:m.cfg.Vocab]
	lse := logSumExp(logits)
	id := q.sp.sample(logits)
	if len(res.Tokens) == 0 {
		res.TimeToFirst = time.Since(q.start)
	}
	if m.tok.IsStop(id) || slices.Contains(q.o.Stop, id) {
		res.FinishReason = "stop"
		q.finish()
		return Token{}, false
	}
	tok = Token{ID: id, Text: m.tok.Piece(id), Logprob: float32(float64(logits[id]) - lse)}
	if q.o.TopLogprobs > 0 {
		tok.Top = m.topAlternatives(logits, lse, q.o.TopLogprobs, q.sp.idx)
	}
	res.Tokens = append(res.Tokens, tok)
	if len(res.Tokens) == q.maxTokens {
		q.finish()
		return tok, true
	}
	q.next = id
	return tok, true
}

func (q *Sequence) finish() {
	q.done = true
	q.res.Duration = time.Since(q.start)
	// The cache is no longer needed; drop it now rather than when the
	// caller lets go of the Sequence, so memory follows the KV budget.
	q.s = nil
}

// Done reports whether the sequence has finished.
func (q *Sequence) Done() bool { return q.done }

// Result is the generation so far (complete once Done).
func (q *Sequence) Result() *Result { return q.res }

// Batch holds the working memory of multi-sequence decode steps. A Batch
// is not safe for concurrent use; sequences in it must not be used
// elsewhere during a call.
type Batch struct {
	m      *Model
	w      *state // activations for up to cap tokens; its KV cache is unused
	cap    int
	task   task // for Sample
	states []*state
	tokens []int
	toks   []Token
	oks    []bool
}

// NewBatch returns an empty batch; its buffers grow with the sequences it
// decodes.
func (m *Model) NewBatch() *Batch { return &Batch{m: m} }

// Sample calls Next on every sequence, spread over the model's workers
// (sampling a large vocabulary costs about as much as a small model's
// step), and returns each sequence's token and ok, in order. The slices are
// reused by the next call.
func (b *Batch) Sample(seqs []*Sequence) ([]Token, []bool, error) {
	m := b.m
	if err := m.acquire(); err != nil {
		return nil, nil, err
	}
	defer m.release()
	if err := b.check(seqs); err != nil {
		return nil, nil, err
	}
	b.toks = slices.Grow(b.toks[:0], len(seqs))[:len(seqs)]
	b.oks = slices.Grow(b.oks[:0], len(seqs))[:len(seqs)]
	m.pool.each(&b.task, len(seqs), func(i int) {
		b.toks[i], b.oks[i] = seqs[i].Next()
	})
	return b.toks, b.oks, nil
}

// Decode feeds each sequence the token its last Next returned, all in one
// forward pass, leaving each sequence's next-token logits for Next.
func (b *Batch) Decode(seqs []*Sequence) error {
	m := b.m
	if err := m.acquire(); err != nil {
		return err
	}
	defer m.release()
	if len(seqs) == 0 {
		return nil
	}
	if err := b.check(seqs); err != nil {
		return err
	}
	b.states, b.tokens = b.states[:0], b.tokens[:0]
	for i, q := range seqs {
		if q.done || q.next < 0 {
			return fmt.Errorf("sequence %d has no token to decode", i)
		}
		b.states, b.tokens = append(b.states, q.s), append(b.tokens, q.next)
	}
	if len(seqs) > b.cap {
		b.grow(len(seqs))
	}
	if err := m.forwardSeqs(b.w, b.states, b.tokens); err != nil {
		return err
	}
	for _, q := range seqs {
		q.next = -1
	}
	return nil
}

// check refuses sequences of another model and a sequence given twice
// (its steps would race).
func (b *Batch) check(seqs []*Sequence) error {
	for i, q := range seqs {
		if q.m != b.m {
			return fmt.Errorf("sequence %d belongs to another model", i)
		}
		if slices.Contains(seqs[:i], q) {
			return fmt.Errorf("sequence %d is in the batch twice", i)
		}
	}
	return nil
}

// grow sizes the batch's activations for n tokens.
func (b *Batch) grow(n int) {
	b.w = &state{}
	b.m.scratch(b.w, n)
	b.w.logits = make([]float32, n*b.m.cfg.Vocab) // every sequence's at once
	b.cap = n
}

// forwardSeqs runs token i at the next position of seqs[i], one token per
// sequence, with w's buffers (sized for len(seqs) tokens), and leaves each
// sequence's next-token logits in its own state. Per token it is forward's
// arithmetic in forward's order (keep the two in step); only the matrix
// products are shared.
func (m *Model) forwardSeqs(w *state, seqs []*state, tokens []int) error {
	c := m.cfg
	n := len(tokens)
	for i, t := range tokens {
		if t < 0 || t >= c.Vocab {
			return fmt.Errorf("token %d outside the vocabulary of %d", t, c.Vocab)
		}
		if seqs[i].pos+1 > c.Context {
			return fmt.Errorf("context of %d tokens is full", c.Context)
		}
	}
	kvDim := c.KVHeads * c.HeadDim
	group := c.Heads / c.KVHeads
	scale := 1 / float32(math.Sqrt(float64(c.HeadDim)))
	for i, t := range tokens {
		s := seqs[i]
		// forward's growth rule, so a sequence's buffers look alike
		// whichever path ran it.
		m.growScores(s, s.pos+1)
		m.embedToken(w, i, t, s.pos)
	}
	w.xb.n, w.att.n, w.hb.n = n, n, n
	for li := range m.layers {
		l := &m.layers[li]
		for i := range n {
			rmsNorm(w.xb.vec(i), w.x[i*c.Dim:(i+1)*c.Dim], l.attnNorm, c.Eps)
		}
		m.mul(w, mulOp{l.wq, w.xb, w.q}, mulOp{l.wk, w.xb, w.k}, mulOp{l.wv, w.xb, w.v})
		for i := range n {
			k, v := m.finishQKV(w, l, i)
			s := seqs[i]
			s.keys[li] = append(s.keys[li], k...)
			s.vals[li] = append(s.vals[li], v...)
		}
		// Attention per (sequence, head), each over its own cache and into
		// its own row of that sequence's scores.
		m.pool.each(&w.task, n*c.Heads, func(item int) {
			i, h := item/c.Heads, item%c.Heads
			s := seqs[i]
			keys, vals := s.keys[li], s.vals[li]
			stride := len(s.scores) / c.Heads
			kvOff := (h / group) * c.HeadDim
			qh := w.q[i*c.Dim+h*c.HeadDim : i*c.Dim+(h+1)*c.HeadDim]
			attendHead(w.att.vec(i)[h*c.HeadDim:(h+1)*c.HeadDim], s.scores[h*stride:h*stride+s.pos+1], qh, keys, vals, kvDim, kvOff, scale)
		})
		m.outputAndFeedForward(w, l, n)
	}
	w.fin.n = n
	for i := range n {
		rmsNorm(w.fin.vec(i), w.x[i*c.Dim:(i+1)*c.Dim], m.outNorm, c.Eps)
	}
	m.mul(w, mulOp{m.output, w.fin, w.logits})
	for i, s := range seqs {
		copy(s.logits[:c.Vocab], w.logits[i*c.Vocab:(i+1)*c.Vocab])
		s.pos++
	}
	return nil
}
