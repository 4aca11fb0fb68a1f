package validator

import (
	crand "crypto/rand"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"

	"github.com/agoranet/agora/openai"
)

// Spot checks. A validator teacher-forces a random sample of the answers it
// receives (VerifyRate) and judges each checked answer by one statistic over
// all its tokens (Stats, judged by a Tolerance) rather than failing it on
// the first token that differs. docs/verification.md explains the statistic
// and where DefaultTolerance's numbers come from (TestMeasureHonestAgreement
// measures them).

// Tolerance is the published bound on the statistic of an honest answer.
type Tolerance struct {
	// Gap is how far (in logprob) a greedy token may trail the model's top
	// choice before it counts as off: float rounding differs between
	// implementations, so near-ties may flip.
	Gap float64
	// LogprobError is how far a reported logprob may be from the model's
	// before the token counts as off.
	LogprobError float64
	// MinSampledLogprob: a sampled token the model gives less than this
	// counts as off; the model would essentially never pick it.
	MinSampledLogprob float64
	// MaxOffFraction is the largest fraction of an answer's tokens that may
	// be off (rounded down: a short answer may have none).
	MaxOffFraction float64
	// MaxMeanGap bounds the mean gap of a greedy answer's tokens.
	MaxMeanGap float64
	// MaxMeanError bounds the mean |reported − model| logprob error.
	MaxMeanError float64
}

// DefaultTolerance is the tolerance validators publish. Two runs of the
// engine agree exactly (1 and 2 threads, Generate against Score, per-token
// against tiled kernels), so the bounds are margins for honest miners on
// other implementations of the same weights: about twice what llama.cpp
// measured against the engine (mean gap 0.010, mean logprob error 0.028 at
// most). The cheats measured sit well above them: the Q4_K_M twin of a
// Q8_0 pin has a mean logprob error of 0.14 at least, a model with one
// layer fewer 6.5. TestMeasureHonestAgreement and
// TestMeasureLlamaCppAgreement measure them; docs/verification.md has the
// figures.
var DefaultTolerance = Tolerance{
	Gap:               NearTie,
	LogprobError:      LogprobTolerance,
	MinSampledLogprob: MinSampledLogprob,
	MaxOffFraction:    0.1,
	MaxMeanGap:        0.05,
	MaxMeanError:      0.06,
}

// Stats is the statistic of one answer under the pinned model.
type Stats struct {
	Greedy bool `json:"greedy"`
	Tokens int  `json:"tokens"`
	// Off counts tokens outside the per-token tolerance: a greedy token
	// ranked below the top by more than Tolerance.Gap, a sampled token
	// below Tolerance.MinSampledLogprob, or a reported logprob more than
	// Tolerance.LogprobError from the model's.
	Off int `json:"off"`
	// NotTop counts greedy tokens that are not the model's top choice at all.
	NotTop int `json:"not_top"`
	// MeanGap and MaxGap are over greedy tokens: the model's top logprob
	// minus the served token's (0 for the top choice).
	MeanGap float64 `json:"mean_gap"`
	MaxGap  float64 `json:"max_gap"`
	// MeanError and MaxError are |reported − model| over the tokens whose
	// logprob was reported (for a bound, only a report above it counts).
	MeanError float64 `json:"mean_error"`
	MaxError  float64 `json:"max_error"`
}

// Measure computes the statistic of an answer from the pinned model's
// scores of its tokens and the logprobs the miner reported (one per token;
// nil when none were reported). scores must not be empty.
func Measure(c Challenge, scores []TokenScore, reported []openai.TokenLogprob, tol Tolerance) Stats {
	st := Stats{Greedy: c.Greedy, Tokens: len(scores)}
	var sumGap, sumErr float64
	for i, s := range scores {
		off := false
		if c.Greedy {
			// With a Bound score the true gap is at least this one.
			gap := max(0, float64(s.TopLogprob-s.Logprob))
			if s.Rank > 1 {
				st.NotTop++
				off = gap > tol.Gap
			}
			sumGap += gap
			st.MaxGap = max(st.MaxGap, gap)
		} else if float64(s.Logprob) < tol.MinSampledLogprob {
			off = true
		}
		if reported != nil {
			d := float64(reported[i].Logprob - s.Logprob)
			if s.Bound {
				// Only an upper bound is known: a report above it is a
				// lie, one below it cannot be checked.
				d = max(0, d)
			}
			d = math.Abs(d)
			if math.IsNaN(d) {
				d = math.Inf(1)
			}
			sumErr += d
			st.MaxError = max(st.MaxError, d)
			off = off || d > tol.LogprobError
		}
		if off {
			st.Off++
		}
	}
	n := float64(len(scores))
	if c.Greedy {
		st.MeanGap = sumGap / n
	}
	if reported != nil {
		st.MeanError = sumErr / n
	}
	return st
}

// Judge returns an ErrVerification when st is outside the tolerance.
func (tol Tolerance) Judge(st Stats) error {
	if allowed := int(math.Floor(tol.MaxOffFraction * float64(st.Tokens))); st.Off > allowed {
		return fmt.Errorf("%w: %d of %d tokens outside the per-token tolerance (at most %d allowed); mean gap %.3f, mean logprob error %.3f",
			ErrVerification, st.Off, st.Tokens, allowed, st.MeanGap, st.MeanError)
	}
	if st.MeanGap > tol.MaxMeanGap {
		return fmt.Errorf("%w: greedy tokens trail the model's top choice by %.3f on average (at most %.3f); %d of %d not its top choice",
			ErrVerification, st.MeanGap, tol.MaxMeanGap, st.NotTop, st.Tokens)
	}
	if st.MeanError > tol.MaxMeanError {
		return fmt.Errorf("%w: reported logprobs are %.3f from the model's on average (at most %.3f)", ErrVerification, st.MeanError, tol.MaxMeanError)
	}
	return nil
}

// Sampler picks which answers a validator verifies. Its source is secret
// (seeded from crypto/rand unless a test gives one), so a miner cannot tell
// which of its answers will be checked: any of them may be.
type Sampler struct {
	rate float64
	mu   sync.Mutex
	rng  *rand.Rand
}

// NewSampler checks each answer with probability rate, which must be in
// (0, 1]. src is the randomness (nil: a ChaCha8 stream seeded from
// crypto/rand).
func NewSampler(rate float64, src rand.Source) (*Sampler, error) {
	if !(rate > 0 && rate <= 1) {
		return nil, fmt.Errorf("verify rate %v: must be in (0, 1]", rate)
	}
	if src == nil {
		var seed [32]byte
		if _, err := crand.Read(seed[:]); err != nil {
			return nil, fmt.Errorf("seed the spot-check sampler: %w", err)
		}
		src = rand.NewChaCha8(seed)
	}
	return &Sampler{rate: rate, rng: rand.New(src)}, nil
}

// Rate is the probability that an answer is checked.
func (s *Sampler) Rate() float64 { return s.rate }

// Check says whether to verify the next answer. Safe for concurrent use.
func (s *Sampler) Check() bool {
	if s.rate >= 1 {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rng.Float64() < s.rate
}
