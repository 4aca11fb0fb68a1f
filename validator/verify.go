package validator

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/agoranet/agora/engine"
	"github.com/agoranet/agora/openai"
)

// Tolerances of verification.
const (
	// NearTie lets a greedy token be the model's second choice when the two
	// are this close in logprob (float rounding differs between machines).
	NearTie = 0.05
	// LogprobTolerance is how far a reported logprob may be from the model's.
	LogprobTolerance = 0.05
	// MinSampledLogprob rejects sampled tokens the model would essentially never pick.
	MinSampledLogprob = -12
)

// ErrVerification wraps every failed check.
var ErrVerification = errors.New("verification failed")

// Verify teacher-forces a miner's answer through the pinned model with the
// built-in engine: VerifyWith the model's tokenizer and an EngineScorer.
func Verify(ctx context.Context, m *engine.Model, c Challenge, resp *openai.Response) error {
	return VerifyWith(ctx, m.Tokenizer(), EngineScorer{Model: m}, c, resp)
}

// VerifyWith teacher-forces a miner's answer through scorer, which holds the
// pinned model; tok is that model's tokenizer and chat template. Greedy
// answers must be the model's top choice at every step (near-ties allowed);
// sampled answers must report the model's own logprobs. The token ids must
// spell the returned text. A scorer that cannot answer yields
// ErrVerifierUnavailable, not ErrVerification: that is no fault of the miner.
func VerifyWith(ctx context.Context, tok *engine.Tokenizer, scorer Scorer, c Challenge, resp *openai.Response) error {
	if len(resp.Choices) != 1 || resp.Choices[0].Message == nil {
		return fmt.Errorf("%w: malformed response", ErrVerification)
	}
	msgs := make([]engine.Message, len(c.Request.Messages))
	for i, mm := range c.Request.Messages {
		msgs[i] = engine.Message{Role: mm.Role, Content: mm.Content}
	}
	prompt, err := tok.EncodeChat(msgs)
	if err != nil {
		return err
	}
	text := resp.Choices[0].Message.Content
	ids := resp.AgoraTokenIDs
	if ids == nil {
		ids = tok.Encode(text, false, false)
	}
	if len(ids) == 0 {
		if text != "" {
			return fmt.Errorf("%w: text without tokens", ErrVerification)
		}
		return nil
	}
	// Checked here, not left to the scorer: an upstream's refusal of a bad id
	// would read as the verifier failing rather than the miner.
	for i, id := range ids {
		if id < 0 || id >= tok.VocabSize() {
			return fmt.Errorf("%w: token %d is id %d, outside the vocabulary of %d", ErrVerification, i, id, tok.VocabSize())
		}
	}
	if got := JSONText(tok.Decode(ids)); got != JSONText(text) {
		return fmt.Errorf("%w: token ids spell %q, the text says %q", ErrVerification, got, text)
	}
	if c.Request.MaxTokens != nil && len(ids) > *c.Request.MaxTokens {
		return fmt.Errorf("%w: %d tokens for max_tokens %d", ErrVerification, len(ids), *c.Request.MaxTokens)
	}
	scores, err := scorer.Score(ctx, prompt, ids)
	if errors.Is(err, ErrVerifierUnavailable) {
		return err
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrVerification, err)
	}
	if len(scores) != len(ids) {
		return fmt.Errorf("%w: %d scores for %d tokens", ErrVerifierUnavailable, len(scores), len(ids))
	}
	var reported []openai.TokenLogprob
	if lp := resp.Choices[0].Logprobs; lp != nil {
		reported = lp.Content
	}
	for i, s := range scores {
		if c.Greedy {
			// With a Bound score the true gap is at least this one.
			if s.Rank != 1 && s.TopLogprob-s.Logprob > NearTie {
				return fmt.Errorf("%w: token %d is the model's choice #%d (logprob %.3f vs top %.3f)", ErrVerification, i, s.Rank, s.Logprob, s.TopLogprob)
			}
			continue
		}
		if s.Logprob < MinSampledLogprob {
			return fmt.Errorf("%w: token %d has logprob %.2f under the model", ErrVerification, i, s.Logprob)
		}
		if len(reported) != len(scores) {
			return fmt.Errorf("%w: %d logprobs reported for %d tokens", ErrVerification, len(reported), len(scores))
		}
		d := float64(reported[i].Logprob - s.Logprob)
		if s.Bound {
			// Only an upper bound is known: a report above it is a lie, one
			// below it cannot be checked.
			if d > LogprobTolerance {
				return fmt.Errorf("%w: token %d reported logprob %.3f, the model gives at most %.3f", ErrVerification, i, reported[i].Logprob, s.Logprob)
			}
			continue
		}
		if math.Abs(d) > LogprobTolerance {
			return fmt.Errorf("%w: token %d reported logprob %.3f, model gives %.3f", ErrVerification, i, reported[i].Logprob, s.Logprob)
		}
	}
	return nil
}

// JSONText is s as it survives a JSON round trip: every byte that is not part
// of valid UTF-8 becomes U+FFFD, as encoding/json writes it.
func JSONText(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}
