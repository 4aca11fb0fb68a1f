package miner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/agoranet/agora/engine"
	"github.com/agoranet/agora/internal/poll"
	"github.com/agoranet/agora/internal/testkit"
	"github.com/agoranet/agora/wire"
)

type batchReq struct {
	prompt []int
	o      engine.GenerateOptions
}

func batchReqs(m *engine.Model, n int) []batchReq {
	var out []batchReq
	for i := range n {
		o := engine.GenerateOptions{MaxTokens: 6 + 5*i, Stop: []int{-1}} // greedy, leaving at different steps
		if i%3 == 2 {
			o = engine.GenerateOptions{MaxTokens: 10 + i, Temperature: 0.9, TopP: 0.95, Seed: uint64(i), TopLogprobs: 2}
		}
		out = append(out, batchReq{m.Tokenizer().Encode(fmt.Sprintf("request number %d asks about %s", i, slices.Repeat([]string{"cats"}, i+1)), false, true), o})
	}
	return out
}

func sequential(t *testing.T, m *engine.Model, reqs []batchReq) []*engine.Result {
	t.Helper()
	var out []*engine.Result
	for _, r := range reqs {
		res, err := m.Generate(context.Background(), r.prompt, r.o, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Tokens) == 0 {
			t.Fatal("Generate produced no tokens; the comparison would check nothing")
		}
		out = append(out, res)
	}
	return out
}

func sameResult(got, want *engine.Result) bool {
	return got.FinishReason == want.FinishReason && slices.EqualFunc(got.Tokens, want.Tokens, func(a, b engine.Token) bool {
		return a.ID == b.ID && a.Logprob == b.Logprob && slices.Equal(a.Top, b.Top)
	})
}

// waitJoined blocks (in an onStep hook) until n sequences are in or
// waiting for the batch.
func waitJoined(t *testing.T, b *Batcher, active, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := poll.Until(ctx, time.Millisecond, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return active+len(b.joining) >= n
	}); err != nil {
		t.Errorf("only %d of %d sequences joined: %v", active, n, err)
	}
}

// Concurrent requests decode in one batch (the first step waits until all
// have joined, a second wave joins mid-run, each leaves at its own length)
// and each gets exactly the tokens Generate gives it alone.
func TestBatcherMatchesSequentialGenerate(t *testing.T) {
	m := testkit.LoadModel(t, "tiny-llama3", 3)
	reqs := batchReqs(m, 8)
	want := sequential(t, m, reqs)
	first, second := reqs[:5], reqs[5:]
	b := NewBatcher(m, 0)
	var mu sync.Mutex
	var sizes []int
	startSecond := make(chan struct{})
	step := 0
	b.onStep = func(n int) {
		switch step {
		case 0:
			waitJoined(t, b, n, len(first))
		case 2:
			close(startSecond)
			waitJoined(t, b, n, len(reqs))
		}
		step++
		mu.Lock()
		sizes = append(sizes, n)
		mu.Unlock()
	}
	got := make([]*engine.Result, len(reqs))
	var wg sync.WaitGroup
	run := func(i int) {
		wg.Go(func() {
			var streamed []engine.Token
			res, err := b.Generate(context.Background(), reqs[i].prompt, reqs[i].o, func(tk engine.Token) error {
				streamed = append(streamed, tk)
				return nil
			})
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			if !slices.EqualFunc(streamed, res.Tokens, func(a, b engine.Token) bool { return a.ID == b.ID }) {
				t.Errorf("request %d: streamed tokens differ from the result", i)
			}
			got[i] = res
		})
	}
	for i := range first {
		run(i)
	}
	<-startSecond
	for i := range second {
		run(len(first) + i)
	}
	wg.Wait()
	for i := range reqs {
		if got[i] != nil && !sameResult(got[i], want[i]) {
			t.Errorf("request %d: batched %d tokens (%s), alone %d (%s): tokens differ", i,
				len(got[i].Tokens), got[i].FinishReason, len(want[i].Tokens), want[i].FinishReason)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if sizes[1] != len(first) || slices.Max(sizes) != len(reqs) {
		t.Errorf("batch sizes per step %v: want %d together at step 1 and %d at most", sizes, len(first), len(reqs))
	}
	if b.InUse() != 0 {
		t.Errorf("%d KV tokens still reserved after every request returned", b.InUse())
	}
}

// A cancelled request leaves the batch and frees its KV reservation; the
// others are unaffected.
func TestBatcherCancelFreesSlot(t *testing.T) {
	m := testkit.LoadModel(t, "tiny", 5)
	reqs := batchReqs(m, 2)
	reqs[0].o.MaxTokens = 200 // would run long
	want := sequential(t, m, reqs[1:])
	b := NewBatcher(m, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	step := 0
	b.onStep = func(n int) {
		switch step {
		case 0:
			waitJoined(t, b, n, 2)
		case 3:
			cancel() // the loop drops the request at this step
		}
		step++
	}
	var wg sync.WaitGroup
	var cancelled error
	var kept *engine.Result
	wg.Go(func() {
		_, cancelled = b.Generate(ctx, reqs[0].prompt, reqs[0].o, nil)
	})
	wg.Go(func() {
		var err error
		if kept, err = b.Generate(context.Background(), reqs[1].prompt, reqs[1].o, nil); err != nil {
			t.Error(err)
		}
	})
	wg.Wait()
	if !errors.Is(cancelled, context.Canceled) {
		t.Fatalf("cancelled request returned %v", cancelled)
	}
	if b.InUse() != 0 {
		t.Fatalf("%d KV tokens still reserved after the cancelled request returned", b.InUse())
	}
	if kept == nil || !sameResult(kept, want[0]) {
		t.Errorf("the request beside a cancelled one changed")
	}

	// A request whose reader fails stops too, with the reader's error.
	b.onStep = nil
	boom := errors.New("client went away")
	if _, err := b.Generate(context.Background(), reqs[0].prompt, reqs[0].o, func(engine.Token) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("failing reader: %v", err)
	}
	if b.InUse() != 0 {
		t.Fatalf("%d KV tokens still reserved after a failed reader", b.InUse())
	}
}

// With the KV budget taken, a request gets 503 + Retry-After in the
// OpenAI error shape over real HTTP; one larger than the whole budget gets
// 400; once the first finishes, the budget admits again.
func TestBuiltinKVBudgetFull503(t *testing.T) {
	m := testkit.LoadModel(t, "tiny", 5)
	const budget = 96
	bk, err := NewBuiltin(m, WithKVBudget(budget*m.Config().KVBytesPerToken()))
	if err != nil {
		t.Fatal(err)
	}
	if bk.Batcher().BudgetTokens() != budget || bk.MaxTokensLimit() != budget {
		t.Fatalf("budget %d tokens, max tokens %d; want %d", bk.Batcher().BudgetTokens(), bk.MaxTokensLimit(), budget)
	}
	hold, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	bk.Batcher().onStep = func(int) {
		once.Do(func() {
			close(hold)
			<-release
		})
	}
	srv, miner := startMiner(t, bk, nil)
	valKey, _ := testkit.Key(2)
	c := wire.NewClient(valKey, srv.Client())
	body := []byte(`{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":60,"temperature":0}`)
	firstDone := make(chan error, 1)
	go func() {
		resp, err := c.Post(context.Background(), srv.URL+"/v1/chat/completions", miner, body)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != 200 {
				err = fmt.Errorf("first request: status %d", resp.StatusCode)
			}
		}
		firstDone <- err
	}()
	select {
	case <-hold: // the first request holds 60+ of the 96 tokens
	case <-time.After(30 * time.Second):
		t.Fatal("the first request never reached the batch")
	}
	post := func(body string) (int, string, wire.ErrorBody) {
		t.Helper()
		resp, err := c.Post(context.Background(), srv.URL+"/v1/chat/completions", miner, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e wire.ErrorBody
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil && resp.StatusCode != 200 {
			t.Fatalf("status %d without an error body: %v", resp.StatusCode, err)
		}
		return resp.StatusCode, resp.Header.Get("Retry-After"), e
	}
	status, retry, e := post(string(body))
	if status != 503 || retry == "" || e.Error.Type != "overloaded_error" || e.Error.Message == "" {
		t.Errorf("with the budget taken: status %d, Retry-After %q, error %+v; want 503 overloaded_error with Retry-After", status, retry, e)
	}
	status, _, e = post(`{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":200}`)
	if status != 400 || e.Error.Message == "" {
		t.Errorf("max_tokens over the whole budget: status %d %+v; want 400", status, e)
	}
	close(release)
	if err := <-firstDone; err != nil {
		t.Fatal(err)
	}
	if status, _, e := post(string(body)); status != 200 {
		t.Errorf("after the first request finished: status %d %+v", status, e)
	}
}
