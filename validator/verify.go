package validator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/agoranet/agora/engine"
	"github.com/agoranet/agora/openai"
)

// Per-token tolerances of verification (DefaultTolerance's Gap,
// LogprobError and MinSampledLogprob), about twice the largest honest
// disagreement measured: llama.cpp generating from the same Q8_0 file
// against the engine's Score, whose activations it rounds differently
// (docs/verification.md).
const (
	// NearTie lets a greedy token be below the model's top choice when the
	// two are this close in logprob (llama.cpp measured up to 0.139).
	NearTie = 0.3
	// LogprobTolerance is how far a reported logprob may be from the
	// model's (llama.cpp measured up to 0.082).
	LogprobTolerance = 0.2
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
// pinned model, and judges it by DefaultTolerance; tok is that model's
// tokenizer and chat template. A scorer that cannot answer yields
// ErrVerifierUnavailable, not ErrVerification: that is no fault of the miner.
func VerifyWith(ctx context.Context, tok *engine.Tokenizer, scorer Scorer, c Challenge, resp *openai.Response) error {
	_, err := CheckAnswer(ctx, tok, scorer, c, resp, DefaultTolerance)
	return err
}

// CheckAnswer verifies a miner's answer and returns its statistic (nil when
// the answer failed before it was scored, or had no tokens). The token ids
// must spell the returned text and a logprob must be reported for each
// token (challenges ask for them); then the whole answer is judged by tol
// over its tokens' ranks and logprob gaps under the pinned model (see
// Stats): greedy answers must be the model's choices up to near-ties,
// sampled answers must be tokens the model would pick, and every reported
// logprob must be the model's.
func CheckAnswer(ctx context.Context, tok *engine.Tokenizer, scorer Scorer, c Challenge, resp *openai.Response, tol Tolerance) (*Stats, error) {
	if len(resp.Choices) != 1 || resp.Choices[0].Message == nil {
		return nil, fmt.Errorf("%w: malformed response", ErrVerification)
	}
	msgs := make([]engine.Message, len(c.Request.Messages))
	for i, mm := range c.Request.Messages {
		msgs[i] = engine.Message{Role: mm.Role, Content: mm.Content}
	}
	prompt, err := tok.EncodeChat(msgs)
	if err != nil {
		return nil, err
	}
	ids, err := checkTokens(tok, c, resp)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	scores, err := scorer.Score(ctx, prompt, ids)
	if errors.Is(err, ErrVerifierUnavailable) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrVerification, err)
	}
	if len(scores) != len(ids) {
		return nil, fmt.Errorf("%w: %d scores for %d tokens", ErrVerifierUnavailable, len(scores), len(ids))
	}
	var reported []openai.TokenLogprob
	if lp := resp.Choices[0].Logprobs; lp != nil {
		reported = lp.Content
	}
	if len(reported) != len(scores) {
		return nil, fmt.Errorf("%w: %d logprobs reported for %d tokens", ErrVerification, len(reported), len(scores))
	}
	st := Measure(c, scores, reported, tol)
	return &st, tol.Judge(st)
}

// checkTokens is what needs only the tokenizer: the answer's token ids,
// which must be in the vocabulary, spell the returned text and respect
// max_tokens. It runs on every answer, spot-checked or not.
func checkTokens(tok *engine.Tokenizer, c Challenge, resp *openai.Response) ([]int, error) {
	if len(resp.Choices) != 1 || resp.Choices[0].Message == nil {
		return nil, fmt.Errorf("%w: malformed response", ErrVerification)
	}
	text := resp.Choices[0].Message.Content
	ids := resp.AgoraTokenIDs
	if ids == nil {
		ids = tok.Encode(text, false, false)
	}
	if len(ids) == 0 {
		if text != "" {
			return nil, fmt.Errorf("%w: text without tokens", ErrVerification)
		}
		return nil, nil
	}
	// Checked here, not left to the scorer: an upstream's refusal of a bad id
	// would read as the verifier failing rather than the miner.
	for i, id := range ids {
		if id < 0 || id >= tok.VocabSize() {
			return nil, fmt.Errorf("%w: token %d is id %d, outside the vocabulary of %d", ErrVerification, i, id, tok.VocabSize())
		}
	}
	if got := JSONText(tok.Decode(ids)); got != JSONText(text) {
		return nil, fmt.Errorf("%w: token ids spell %q, the text says %q", ErrVerification, got, text)
	}
	if c.Request.MaxTokens != nil && len(ids) > *c.Request.MaxTokens {
		return nil, fmt.Errorf("%w: %d tokens for max_tokens %d", ErrVerification, len(ids), *c.Request.MaxTokens)
	}
	return ids, nil
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
