package miner

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"github.com/agoranet/agora/engine"
)

// Batcher runs the builtin backend's generations with continuous
// batching: every request prefills its prompt on its own, then joins one
// decode loop that advances all active requests by a token per forward
// pass (engine.Batch), so the weights stream once per step for all of them.
// Requests leave the batch when they finish, fail or are cancelled.
//
// Each request reserves KV cache for its prompt plus its max tokens when it
// is admitted (the engine allocates that much up front), and admission
// stops at the budget: a request that does not fit now gets 503 with
// Retry-After, so memory stays bounded however many requests arrive.
//
// Tokens are the ones Generate would give each request alone (see
// engine.Batch), so batching never changes what validators verify.
type Batcher struct {
	model  *engine.Model
	budget int // KV cache tokens

	mu      sync.Mutex
	used    int    // KV tokens reserved by admitted requests
	joining []*job // prefilled, waiting for the next step
	running bool   // a loop goroutine is decoding
	batch   *engine.Batch

	// onStep, if set (by tests, before any request), is called by the loop
	// before each step with the number of sequences in it.
	onStep func(n int)
}

// job is one request in the batcher.
type job struct {
	ctx  context.Context
	seq  *engine.Sequence
	need int // KV tokens reserved

	mu   sync.Mutex
	out  []engine.Token // produced, not yet handed to the request
	done bool
	err  error
	wake chan struct{} // capacity 1: something to read
}

// DefaultKVBudget is the KV cache a builtin miner admits when its operator
// sets none: four full contexts (four longest-possible requests, or many
// short ones, decode at once), at most 2 GiB so a long-context model does
// not claim the machine.
func DefaultKVBudget(c engine.Config) int64 {
	return min(4*int64(c.Context)*c.KVBytesPerToken(), 2<<30)
}

// NewBatcher returns a batcher for m admitting budgetBytes of KV cache
// (DefaultKVBudget if 0 or less).
func NewBatcher(m *engine.Model, budgetBytes int64) *Batcher {
	if budgetBytes <= 0 {
		budgetBytes = DefaultKVBudget(m.Config())
	}
	tokens := budgetBytes / m.Config().KVBytesPerToken()
	return &Batcher{model: m, budget: int(min(tokens, 1<<40)), batch: m.NewBatch()}
}

// BudgetTokens is how many tokens of KV cache the batcher admits.
func (b *Batcher) BudgetTokens() int { return b.budget }

// InUse is how many KV tokens admitted requests hold now.
func (b *Batcher) InUse() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// errKVFull is the answer when the budget has no room for a request now.
func errKVFull(need, free int) error {
	return &HTTPError{Status: http.StatusServiceUnavailable, Type: "overloaded_error", RetryAfter: "1",
		Message: fmt.Sprintf("the miner's KV cache is full (this request needs %d tokens, %d are free); retry shortly", need, free)}
}

// Generate runs one generation in the batch: the engine.Model.Generate
// contract, with onToken called on the caller's goroutine (a slow reader
// delays only its own request). A request that would overflow the KV
// budget fails at once with a 503 HTTPError.
func (b *Batcher) Generate(ctx context.Context, prompt []int, o engine.GenerateOptions, onToken func(engine.Token) error) (*engine.Result, error) {
	need, err := b.model.KVTokens(prompt, o)
	if err != nil {
		return nil, badRequest(err.Error())
	}
	if need > b.budget {
		return nil, badRequest(fmt.Sprintf("prompt and max_tokens need %d tokens of KV cache, over this miner's budget of %d; lower max_tokens", need, b.budget))
	}
	if !b.reserve(need) {
		return nil, errKVFull(need, b.budget-b.InUse())
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	seq, err := b.model.StartSequence(ctx, prompt, o)
	if err != nil {
		b.unreserve(need)
		return nil, err
	}
	j := &job{ctx: ctx, seq: seq, need: need, wake: make(chan struct{}, 1)}
	b.join(j)
	var emitErr error
	for {
		<-j.wake // the loop always finishes a job, at the latest one step after ctx ends
		j.mu.Lock()
		toks, done, err := j.out, j.done, j.err
		j.out = nil
		j.mu.Unlock()
		for _, t := range toks {
			if emitErr != nil || onToken == nil {
				break
			}
			if emitErr = onToken(t); emitErr != nil {
				cancel() // the loop drops the job at its next step
			}
		}
		if !done {
			continue
		}
		switch {
		case emitErr != nil:
			return seq.Result(), emitErr
		case err != nil:
			return seq.Result(), err
		}
		return seq.Result(), nil
	}
}

func (b *Batcher) reserve(need int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+need > b.budget {
		return false
	}
	b.used += need
	return true
}

func (b *Batcher) unreserve(need int) {
	b.mu.Lock()
	b.used -= need
	b.mu.Unlock()
}

// join hands a prefilled job to the decode loop, starting it if idle.
func (b *Batcher) join(j *job) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.joining = append(b.joining, j)
	if !b.running {
		b.running = true
		go b.loop()
	}
}

// loop decodes until no job is left. Only one loop runs at a time (running
// is set under mu), and it alone touches the batch and the jobs' sequences.
func (b *Batcher) loop() {
	var active, next []*job
	var seqs []*engine.Sequence
	for {
		b.mu.Lock()
		active = append(active, b.joining...)
		clear(b.joining)
		b.joining = b.joining[:0]
		if len(active) == 0 {
			b.running = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		if b.onStep != nil {
			b.onStep(len(active))
		}
		// Leave: cancelled requests, before their next token (as Generate
		// checks ctx before sampling).
		next = next[:0]
		for _, j := range active {
			if err := j.ctx.Err(); err != nil {
				b.finish(j, err)
				continue
			}
			next = append(next, j)
		}
		active, next = next, active
		seqs = seqs[:0]
		for _, j := range active {
			seqs = append(seqs, j.seq)
		}
		toks, oks, err := b.batch.Sample(seqs)
		if err != nil {
			active = b.failAll(active, err)
			continue
		}
		next, seqs = next[:0], seqs[:0]
		for i, j := range active {
			if oks[i] {
				j.push(toks[i])
			}
			if j.seq.Done() {
				b.finish(j, nil)
				continue
			}
			next, seqs = append(next, j), append(seqs, j.seq)
		}
		active, next = next, active
		if err := b.batch.Decode(seqs); err != nil {
			active = b.failAll(active, err)
		}
	}
}

func (b *Batcher) failAll(jobs []*job, err error) []*job {
	for _, j := range jobs {
		b.finish(j, fmt.Errorf("decode step: %w", err))
	}
	return jobs[:0]
}

// finish frees a job's KV reservation, then tells its request it is done,
// so the budget is free by the time the request returns.
func (b *Batcher) finish(j *job, err error) {
	b.unreserve(j.need)
	j.mu.Lock()
	j.done, j.err = true, err
	j.mu.Unlock()
	j.signal()
}

func (j *job) push(t engine.Token) {
	j.mu.Lock()
	j.out = append(j.out, t)
	j.mu.Unlock()
	j.signal()
}

func (j *job) signal() {
	select {
	case j.wake <- struct{}{}:
	default:
	}
}
