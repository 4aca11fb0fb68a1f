package validator

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/agoranet/agora/internal/testkit"
	"github.com/agoranet/agora/openai"
)

func TestToleranceJudge(t *testing.T) {
	greedy, sampled := Challenge{Greedy: true}, Challenge{}
	top := func(lp float32) TokenScore { return TokenScore{Logprob: lp, Rank: 1, TopLogprob: lp} }
	second := func(lp, gap float32) TokenScore { return TokenScore{Logprob: lp, Rank: 2, TopLogprob: lp + gap} }
	rep := func(lps ...float32) []openai.TokenLogprob {
		out := make([]openai.TokenLogprob, len(lps))
		for i, lp := range lps {
			out[i].Logprob = lp
		}
		return out
	}
	tens := func(s TokenScore) []TokenScore {
		out := make([]TokenScore, 10)
		for i := range out {
			out[i] = s
		}
		return out
	}
	tenReported := func(lp float32) []openai.TokenLogprob {
		out := make([]openai.TokenLogprob, 10)
		for i := range out {
			out[i].Logprob = lp
		}
		return out
	}
	cases := []struct {
		name     string
		c        Challenge
		scores   []TokenScore
		reported []openai.TokenLogprob
		pass     bool
	}{
		{"exact greedy", greedy, []TokenScore{top(-1), top(-0.5)}, rep(-1, -0.5), true},
		{"greedy near-tie within the gap", greedy, []TokenScore{second(-1, 0.1), top(-0.5), top(-0.5), top(-0.5)}, rep(-1, -0.5, -0.5, -0.5), true},
		{"greedy second choice beyond the gap", greedy, []TokenScore{second(-2, 1), top(-0.5)}, rep(-2, -0.5), false},
		{"one off token in ten is allowed", greedy, append([]TokenScore{second(-0.5, 0.31)}, tens(top(-0.5))[1:]...), tenReported(-0.5), true},
		{"two off tokens in ten are not", greedy, append([]TokenScore{second(-0.5, 0.31), second(-0.5, 0.31)}, tens(top(-0.5))[2:]...), tenReported(-0.5), false},
		{"mean gap too large without off tokens", greedy, tens(second(-0.5, 0.06)), tenReported(-0.5), false},
		{"honest rounding of reported logprobs", greedy, tens(top(-0.5)), tenReported(-0.53), true},
		{"mean logprob error too large", greedy, tens(top(-0.5)), tenReported(-0.57), false},
		{"sampled tokens far from the top are fine", sampled, []TokenScore{second(-3, 2.5), top(-0.1)}, rep(-3, -0.1), true},
		{"sampled token the model never picks", sampled, []TokenScore{second(-13, 12), top(-0.1), top(-0.1), top(-0.1)}, rep(-13, -0.1, -0.1, -0.1), false},
		{"forged sampled logprobs", sampled, []TokenScore{second(-3, 2.5), top(-0.1)}, rep(-0.01, -0.01), false},
		{"report below a bound cannot be checked", sampled, []TokenScore{{Logprob: -4, Rank: 6, TopLogprob: -0.5, Bound: true}}, rep(-7), true},
		{"report above a bound is a lie", sampled, []TokenScore{{Logprob: -4, Rank: 6, TopLogprob: -0.5, Bound: true}}, rep(-1), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := Measure(tc.c, tc.scores, tc.reported, DefaultTolerance)
			err := DefaultTolerance.Judge(st)
			if tc.pass && err != nil {
				t.Fatalf("rejected (%+v): %v", st, err)
			}
			if !tc.pass && !errors.Is(err, ErrVerification) {
				t.Fatalf("passed (%+v), want ErrVerification", st)
			}
		})
	}
}

// TestSamplerRate checks, with a seeded source, that a rate of 0.5 checks
// about half the answers: within 5 standard deviations of n/2, a bound a
// correct sampler misses about once in 3.5 million seeds.
func TestSamplerRate(t *testing.T) {
	const n = 4000
	for _, tc := range []struct {
		rate float64
		seed uint64
	}{{0.5, 1}, {0.5, 2}, {0.1, 3}, {1, 4}} {
		s, err := NewSampler(tc.rate, rand.NewPCG(tc.seed, 15))
		if err != nil {
			t.Fatal(err)
		}
		checked := 0
		for range n {
			if s.Check() {
				checked++
			}
		}
		mean, sd := n*tc.rate, math.Sqrt(n*tc.rate*(1-tc.rate))
		if math.Abs(float64(checked)-mean) > 5*sd {
			t.Errorf("rate %v: %d of %d checked, want %.0f ± %.0f", tc.rate, checked, n, mean, 5*sd)
		}
	}
	for _, bad := range []float64{0, -0.5, 1.5, math.NaN()} {
		if _, err := NewSampler(bad, nil); err == nil {
			t.Errorf("rate %v accepted", bad)
		}
	}
	// Unseeded samplers draw from crypto/rand: two of them disagree.
	a, _ := NewSampler(0.5, nil)
	b, _ := NewSampler(0.5, nil)
	same := true
	for range 128 {
		same = same && a.Check() == b.Check()
	}
	if same {
		t.Error("two unseeded samplers made the same 128 choices")
	}
}

// TestVerifyRate runs a validator's verification on answers from a miner
// serving another model: at rate 1 every one fails, at 0.5 about half do
// (the rest are unchecked), and token ids that do not spell the text fail
// even when unchecked.
func TestVerifyRate(t *testing.T) {
	m, other := testkit.LoadModel(t, "tiny", 1), testkit.LoadModel(t, "tiny", 2)
	hot, _ := testkit.Key(3)
	chs := challenges(true)
	const n = 400
	for _, tc := range []struct {
		rate float64
		seed uint64
	}{{1, 1}, {0.5, 2}} {
		v, err := New(Config{Hotkey: hot, Model: m, VerifyRate: tc.rate, VerifySource: rand.NewPCG(tc.seed, 15)})
		if err != nil {
			t.Fatal(err)
		}
		failed, unchecked := 0, 0
		for i := range n {
			c := chs[i%len(chs)]
			checked, err := v.verify(context.Background(), c, answer(t, other, c))
			switch {
			case checked && errors.Is(err, ErrVerification):
				failed++
			case !checked && err == nil:
				unchecked++
			default:
				t.Fatalf("answer %d: checked %v, err %v", i, checked, err)
			}
		}
		mean, sd := n*tc.rate, math.Sqrt(n*tc.rate*(1-tc.rate))
		if math.Abs(float64(failed)-mean) > 5*sd {
			t.Errorf("rate %v: %d of %d checked and failed, want %.0f ± %.0f", tc.rate, failed, n, mean, 5*sd)
		}
		if failed+unchecked != n {
			t.Errorf("rate %v: %d failed + %d unchecked of %d", tc.rate, failed, unchecked, n)
		}
	}
	v, err := New(Config{Hotkey: hot, Model: m, VerifyRate: 0.01, VerifySource: rand.NewPCG(1, 15)})
	if err != nil {
		t.Fatal(err)
	}
	r := answer(t, m, chs[0])
	r.Choices[0].Message.Content += "!"
	for i := range 20 {
		if _, err := v.verify(context.Background(), chs[0], r); !errors.Is(err, ErrVerification) {
			t.Fatalf("answer %d: ids that do not spell the text: err %v", i, err)
		}
	}
}
