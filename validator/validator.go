package validator

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/engine"
	"github.com/agoranet/agora/openai"
	"github.com/agoranet/agora/route"
	"github.com/agoranet/agora/wire"
)

// Config configures a validator.
type Config struct {
	Hotkey ed25519.PrivateKey
	Netuid uint32
	Model  *engine.Model // the subnet's pinned model: its id, tokenizer and chat template
	// Vocabulary replaces Model where an upstream Scorer does the scoring:
	// the pinned file's id and tokenizer, without its weights.
	Vocabulary *engine.Vocabulary
	// Scorer teacher-forces answers; nil means the built-in engine on Model.
	// An UpstreamScorer verifies on a server (vLLM, llama.cpp) instead.
	Scorer  Scorer
	Chain   *client.Client
	HTTP    *http.Client
	Seed    uint64
	Timeout time.Duration // per challenge
	Logger  *slog.Logger
	// CommitPath is where the pending weight commit is kept, so that a
	// restart between commit and reveal still reveals (empty: in memory
	// only, and a restart forfeits that tempo's weights).
	CommitPath string
	// VerifyRate is the fraction of answers teacher-forced through the
	// pinned model, in (0, 1]; 0 means 1, every answer. The others are
	// still checked for a valid receipt, the pinned model's id and token
	// ids that spell the text, and score on speed: since any answer may be
	// checked and one failed check costs the whole score, a cheat is caught
	// after about 1/VerifyRate answers.
	VerifyRate float64
	// VerifySource picks the answers to check (nil: seeded from
	// crypto/rand, so miners cannot predict it; tests pass a seeded one).
	VerifySource rand.Source
}

// Score is what the validator knows about one UID.
type Score struct {
	UID       int     `json:"uid"`
	Hotkey    string  `json:"hotkey"`
	Endpoint  string  `json:"endpoint"`
	EMA       float64 `json:"score"`
	Verified  int     `json:"verified"`
	Unchecked int     `json:"unchecked"` // answers not spot-checked (see Config.VerifyRate)
	Failed    int     `json:"failed"`
	TTFT      float64 `json:"ttft_ms"`
	TPS       float64 `json:"tokens_per_second"`
	LastError string  `json:"last_error,omitempty"`
}

// Validator scores miners and sets weights.
type Validator struct {
	cfg       Config
	self      address.Address
	wire      *wire.Client
	gen       *Generator
	spot      *Sampler
	log       *slog.Logger
	mu        sync.Mutex
	scores    map[string]*Score // by hotkey: a new hotkey on a UID starts fresh
	pending   *Commit           // the commit awaiting its reveal, mirrored at cfg.CommitPath
	lastEpoch uint64
	// weightsSet counts weights revealed or set so far; read concurrently
	// by whoever watches the validator while Run submits.
	weightsSet atomic.Int64
	metrics    *metrics
}

// WeightsSubmitted is how many times weights were revealed or set.
func (v *Validator) WeightsSubmitted() int { return int(v.weightsSet.Load()) }

// EMAAlpha is how much one round moves a score.
const EMAAlpha = 0.3

// New makes a validator, picking up the commit a previous run left pending
// at cfg.CommitPath.
func New(cfg Config) (*Validator, error) {
	if cfg.HTTP == nil {
		cfg.HTTP = wire.NewHTTPClient(0)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	// A validator without a pinned model can still commit and reveal
	// weights (tests, tooling); it refuses to run a round (Round).
	if cfg.Vocabulary == nil && cfg.Model != nil {
		id, err := cfg.Model.ID()
		if err != nil {
			return nil, err
		}
		cfg.Vocabulary = &engine.Vocabulary{ID: id, Tokenizer: cfg.Model.Tokenizer()}
	}
	if cfg.Scorer == nil {
		if cfg.Model == nil && cfg.Vocabulary != nil {
			return nil, errors.New("validator: the builtin verifier needs the pinned model's weights")
		}
		cfg.Scorer = EngineScorer{Model: cfg.Model}
	}
	if cfg.VerifyRate == 0 {
		cfg.VerifyRate = 1
	}
	spot, err := NewSampler(cfg.VerifyRate, cfg.VerifySource)
	if err != nil {
		return nil, err
	}
	v := &Validator{cfg: cfg, self: address.FromPubKey(cfg.Hotkey.Public().(ed25519.PublicKey)),
		wire: wire.NewClient(cfg.Hotkey, cfg.HTTP), gen: NewGenerator(cfg.Seed), spot: spot, log: cfg.Logger, scores: map[string]*Score{}}
	v.metrics = newMetrics(v)
	if err := v.loadPending(); err != nil {
		return nil, err
	}
	return v, nil
}

// Scores returns a snapshot ordered by UID.
func (v *Validator) Scores() []Score {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]Score, 0, len(v.scores))
	for _, s := range v.scores {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b Score) int { return a.UID - b.UID })
	return out
}

// Candidates are the scored miners a gateway may route to: a validator runs
// its gateway on its own scores.
func (v *Validator) Candidates(context.Context) ([]route.Candidate, error) {
	var out []route.Candidate
	for _, s := range v.Scores() {
		hot, err := address.Parse(s.Hotkey)
		if err != nil || s.EMA <= 0 {
			continue
		}
		out = append(out, route.Candidate{UID: s.UID, Hotkey: hot, Endpoint: s.Endpoint, Score: s.EMA, Checks: s.Verified, FailedChecks: s.Failed})
	}
	return out, nil
}

// Round challenges every serving miner once, concurrently, and updates scores.
func (v *Validator) Round(ctx context.Context) error {
	if v.cfg.Vocabulary == nil {
		return errors.New("validator: no pinned model to verify against (Config.Model or Config.Vocabulary)")
	}
	mg, err := v.cfg.Chain.Metagraph(ctx, v.cfg.Netuid, 0)
	if err != nil {
		return fmt.Errorf("sync metagraph: %w", err)
	}
	var wg sync.WaitGroup
	live := map[string]bool{}
	for uid, n := range mg.Neurons {
		hot, _ := address.FromBytes(n.Hotkey)
		live[hot.String()] = true
		if hot == v.self || n.Endpoint == "" {
			continue
		}
		ch := v.gen.Next("agora")
		wg.Add(1)
		go func(uid int, hot address.Address, endpoint string) {
			defer wg.Done()
			v.metrics.challenges.Inc()
			q, ttft, tps, checked, err := v.challenge(ctx, hot, endpoint, ch)
			if err != nil {
				v.metrics.failures.WithLabelValues(failureReason(err)).Inc()
			}
			v.record(uid, hot, endpoint, q, ttft, tps, checked, err)
		}(uid, hot, n.Endpoint)
	}
	wg.Wait()
	v.mu.Lock()
	for k := range v.scores {
		if !live[k] {
			delete(v.scores, k) // deregistered: forget
		}
	}
	v.mu.Unlock()
	return nil
}

func (v *Validator) record(uid int, hot address.Address, endpoint string, q, ttft, tps float64, checked bool, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	s, ok := v.scores[hot.String()]
	if !ok {
		s = &Score{Hotkey: hot.String()}
		v.scores[hot.String()] = s
	}
	s.UID, s.Endpoint = uid, endpoint
	switch {
	case errors.Is(err, ErrVerifierUnavailable):
		// Our verifier failed, not the miner: its score stands.
		s.LastError = err.Error()
		v.log.Warn("verifier unavailable", "uid", uid, "err", err.Error())
		return
	case errors.Is(err, ErrVerification) || errors.Is(err, wire.ErrBadReceipt):
		// Serving the wrong model or fabricating tokens costs the whole score.
		s.EMA, s.Failed, s.LastError = 0, s.Failed+1, err.Error()
	case err != nil:
		s.EMA, s.Failed, s.LastError = (1-EMAAlpha)*s.EMA, s.Failed+1, err.Error()
	default:
		s.EMA = (1-EMAAlpha)*s.EMA + EMAAlpha*q
		if checked {
			s.Verified++
		} else {
			s.Unchecked++
		}
		s.TTFT, s.TPS, s.LastError = ttft, tps, ""
	}
	v.log.Debug("challenge", "uid", uid, "score", s.EMA, "ok", err == nil)
}

// challenge sends one streamed request and verifies what comes back: the
// receipt and token ids always, the tokens under the pinned model when the
// spot check picks it (checked).
func (v *Validator) challenge(ctx context.Context, miner address.Address, endpoint string, ch Challenge) (quality, ttftMs, tps float64, checked bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, v.cfg.Timeout)
	defer cancel()
	req := ch.Request
	req.Stream = true
	body, _ := json.Marshal(req)
	start := time.Now()
	resp, err := v.wire.Post(ctx, strings.TrimRight(endpoint, "/")+"/v1/chat/completions", miner, body)
	if err != nil {
		return 0, 0, 0, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, 0, false, fmt.Errorf("miner answered %s", resp.Status)
	}
	var first time.Duration
	out := openai.Response{Choices: []openai.Choice{{Message: &openai.Message{Role: "assistant"}, Logprobs: &openai.Logprobs{}}}}
	var text strings.Builder
	rc, sum, err := wire.ReadStream(resp.Body, func(e wire.Event) error {
		if string(e.Data) == "[DONE]" {
			return nil
		}
		var chunk openai.Response
		if err := json.Unmarshal(e.Data, &chunk); err != nil {
			return fmt.Errorf("%w: malformed chunk", ErrVerification)
		}
		if first == 0 {
			first = time.Since(start)
		}
		out.AgoraTokenIDs = append(out.AgoraTokenIDs, chunk.AgoraTokenIDs...)
		for _, c := range chunk.Choices {
			if c.Delta != nil {
				text.WriteString(c.Delta.Content)
			}
			if c.Logprobs != nil {
				out.Choices[0].Logprobs.Content = append(out.Choices[0].Logprobs.Content, c.Logprobs.Content...)
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, 0, false, err
	}
	if err := rc.Verify(miner, body, sum); err != nil {
		return 0, 0, 0, false, err
	}
	if pinned := v.cfg.Vocabulary.ID; rc.ModelID != pinned {
		return 0, 0, 0, false, fmt.Errorf("%w: receipt names model %.12s, the subnet pins %.12s", ErrVerification, rc.ModelID, pinned)
	}
	out.Choices[0].Message.Content = text.String()
	checked, err = v.verify(ctx, ch, &out)
	if err != nil {
		return 0, 0, 0, checked, err
	}
	elapsed := time.Since(start)
	tps = float64(len(out.AgoraTokenIDs)) / math.Max(elapsed.Seconds(), 1e-3)
	// Correct answers score at least 0.5; speed earns the rest, saturating
	// at 50 tokens/s and a fast first token.
	quality = 0.5 + 0.25*math.Min(1, tps/50) + 0.25/(1+first.Seconds())
	return quality, float64(first.Milliseconds()), tps, checked, nil
}

// verify checks an answer to ch: its token ids always, and when the spot
// check picks it, its tokens under the pinned model (checked).
func (v *Validator) verify(ctx context.Context, ch Challenge, out *openai.Response) (checked bool, err error) {
	if !v.spot.Check() {
		v.metrics.unchecked.Inc()
		_, err := checkTokens(v.cfg.Vocabulary.Tokenizer, ch, out)
		return false, err
	}
	return true, VerifyWith(ctx, v.cfg.Vocabulary.Tokenizer, v.cfg.Scorer, ch, out)
}

// weightsFromScores turns scores into a weight vector over UIDs.
func (v *Validator) weightsFromScores() ([]uint32, []uint32) {
	scores := v.Scores()
	var best float64
	for _, s := range scores {
		best = math.Max(best, s.EMA)
	}
	var uids, vals []uint32
	if best == 0 {
		return nil, nil
	}
	for _, s := range scores {
		if w := uint32(math.Round(s.EMA / best * 65535)); w > 0 {
			uids, vals = append(uids, uint32(s.UID)), append(vals, w)
		}
	}
	return uids, vals
}

// SubmitWeights puts the current scores on chain, at most once per tempo:
// commit now and reveal reveal_period tempos later, or set directly where
// the subnet has commit-reveal off.
func (v *Validator) SubmitWeights(ctx context.Context) error {
	mg, err := v.cfg.Chain.Metagraph(ctx, v.cfg.Netuid, 0)
	if err != nil {
		return err
	}
	p := mg.Subnet.Params
	height := uint64(mg.Height) + 1 // the block our transaction lands in, at the earliest
	epoch := tx.EpochIndex(v.cfg.Netuid, p.Tempo, height)
	send := func(m *tx.Msg) (uint64, error) {
		h, err := v.cfg.Chain.SendAndWait(ctx, v.cfg.Hotkey, []*tx.Msg{m}, client.SendOptions{})
		return uint64(h), err
	}
	if !p.CommitReveal {
		if epoch == v.lastEpoch && v.weightsSet.Load() > 0 {
			return nil
		}
		uids, vals := v.weightsFromScores()
		if len(uids) == 0 {
			return nil
		}
		if _, err := send(tx.WeightsSet(v.cfg.Netuid, uids, vals, 0)); err != nil {
			return err
		}
		v.lastEpoch = epoch
		v.weightsSet.Add(1)
		return nil
	}
	if v.pending != nil {
		block := v.commitBlock(mg)
		want := tx.EpochIndex(v.cfg.Netuid, p.Tempo, block) + p.RevealPeriod
		switch {
		case block == 0:
			v.forget() // sent but never landed; commit afresh below
		case epoch < want:
			return nil
		case epoch == want:
			_, err := send(v.pending.RevealMsg())
			v.forget()
			if err != nil {
				return fmt.Errorf("reveal: %w", err)
			}
			v.weightsSet.Add(1)
			return nil
		default:
			v.forget() // the window passed; commit afresh below
		}
	}
	if epoch == v.lastEpoch {
		return nil
	}
	uids, vals := v.weightsFromScores()
	if len(uids) == 0 {
		return nil
	}
	c, err := NewCommit(v.cfg.Netuid, uids, vals, 0)
	if err != nil {
		return err
	}
	c.After = uint64(mg.Height)
	// Saved before sending: a restart after the commit lands must still
	// find the salt. If the send fails, the chain's record says next round
	// whether it landed anyway.
	if err := v.keep(c); err != nil {
		return err
	}
	block, err := send(c.CommitMsg(v.self))
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	c.Block = block
	if err := v.keep(c); err != nil {
		v.log.Warn("saved commit without its block", "err", err.Error())
	}
	v.lastEpoch = tx.EpochIndex(v.cfg.Netuid, p.Tempo, block)
	return nil
}

// Run challenges miners every interval and submits weights until ctx ends.
func (v *Validator) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := v.Round(ctx); err != nil && ctx.Err() == nil {
			v.log.Warn("round failed", "err", err.Error())
		}
		if err := v.SubmitWeights(ctx); err != nil && ctx.Err() == nil {
			v.log.Warn("weights not submitted", "err", err.Error())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
