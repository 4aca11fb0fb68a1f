package validator

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/agoranet/agora/engine"
	"github.com/agoranet/agora/internal/testkit"
)

// pairing is a miner serving challenges to a validator that pins another
// model file (or the same one).
type pairing struct {
	name string
	// minFail is the least fraction of its answers the tolerance must fail:
	// 0 for honest miners (which must all pass), 1 for cheats it must
	// always catch.
	minFail float64
	miner   *engine.Model
}

// loadThreads loads path with a worker pool of threads (the engine sizes
// its pool from GOMAXPROCS at load).
func loadThreads(t *testing.T, path string, threads int) *engine.Model {
	t.Helper()
	was := runtime.GOMAXPROCS(threads)
	m, err := engine.Load(path)
	runtime.GOMAXPROCS(was)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// spotCheckPairings are the honest pairs and the cheats the tolerance is
// measured on, all against tiny-k at Q8_0 (seed 1) loaded with 2 threads:
// tiny-k has 256-wide rows, so its Q4_K_M twin really is Q4_K/Q6_K.
func spotCheckPairings(t *testing.T) (pinned *engine.Model, pairs []pairing) {
	t.Helper()
	pin := testkit.QuantizedModel(t, "tiny-k", engine.QuantQ8, 1)
	pinned = loadThreads(t, pin, 2)
	smaller := engine.Shapes["tiny-k"]
	smaller.Layers--
	small := filepath.Join(t.TempDir(), "tiny-k-smaller.gguf")
	if err := engine.Generate(small, smaller, engine.QuantQ8, 1); err != nil {
		t.Fatal(err)
	}
	return pinned, []pairing{
		// Generate on the validator's own model: decode one token at a
		// time against Score's batched, tiled pass.
		{"honest: Generate (2 threads) vs Score", 0, pinned},
		{"honest: Generate (1 thread) vs Score (2 threads)", 0, loadThreads(t, pin, 1)},
		{"cheat: Q4_K_M twin (same seed and shape)", 1, loadThreads(t, testkit.QuantizedModel(t, "tiny-k", engine.QuantQ4KM, 1), 2)},
		// Q6_K is within llama.cpp's honest rounding of Q8_0 on some
		// answers: caught often, not always (docs/verification.md).
		{"cheat: Q6_K twin (same seed and shape)", 0.5, loadThreads(t, testkit.QuantizedModel(t, "tiny-k", engine.QuantQ6K, 1), 2)},
		{"cheat: one layer fewer (same seed, vocab, tokenizer)", 1, loadThreads(t, small, 2)},
	}
}

// measured is the statistic of every answer of one pairing.
type measured struct {
	stats  []Stats
	failed int
}

func quantile(xs []float64, q float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func (m measured) row(greedy bool) string {
	var off, gap, lerr []float64
	allTop := 0 // answers whose every token is the pin's top choice
	for _, s := range m.stats {
		if s.Greedy != greedy {
			continue
		}
		if s.NotTop == 0 {
			allTop++
		}
		off = append(off, float64(s.Off)/float64(s.Tokens))
		gap = append(gap, s.MeanGap)
		lerr = append(lerr, s.MeanError)
	}
	if len(off) == 0 {
		return "no answers"
	}
	return fmt.Sprintf("n=%2d  all top %2d  off fraction min/median/max %.2f/%.2f/%.2f  mean gap %.3f/%.3f/%.3f  mean |reported-model| %.4f/%.4f/%.4f",
		len(off), allTop, quantile(off, 0), quantile(off, 0.5), quantile(off, 1), quantile(gap, 0), quantile(gap, 0.5), quantile(gap, 1),
		quantile(lerr, 0), quantile(lerr, 0.5), quantile(lerr, 1))
}

// TestMeasureHonestAgreement measures the spot-check statistic on honest
// pairs and on cheats and checks that DefaultTolerance passes every honest
// answer and fails every answer of the Q4_K_M twin and of the smaller model. With -v it prints the distributions
// docs/verification.md quotes:
//
//	go test ./validator -run TestMeasureHonestAgreement -v
func TestMeasureHonestAgreement(t *testing.T) {
	pinned, pairs := spotCheckPairings(t)
	g := NewGenerator(15)
	var chs []Challenge
	for range 40 {
		chs = append(chs, g.Next("m"))
	}
	tok, scorer := pinned.Tokenizer(), EngineScorer{Model: pinned}
	for _, p := range pairs {
		var m measured
		for i, c := range chs {
			st, err := CheckAnswer(context.Background(), tok, scorer, c, answer(t, p.miner, c), DefaultTolerance)
			if err != nil && !errors.Is(err, ErrVerification) {
				t.Fatalf("%s, challenge %d: %v", p.name, i, err)
			}
			if st != nil {
				m.stats = append(m.stats, *st)
			}
			if err != nil {
				m.failed++
			}
			switch {
			case p.minFail == 0 && err != nil:
				t.Errorf("%s, challenge %d (greedy %v): honest answer rejected: %v", p.name, i, c.Greedy, err)
			case p.minFail == 1 && err == nil:
				t.Errorf("%s, challenge %d (greedy %v): cheat passed with %+v", p.name, i, c.Greedy, st)
			}
		}
		if rate := float64(m.failed) / float64(len(chs)); rate < p.minFail {
			t.Errorf("%s: %.0f%% of answers fail, want at least %.0f%%", p.name, 100*rate, 100*p.minFail)
		}
		t.Logf("%s: %d of %d answers fail\n  greedy:  %s\n  sampled: %s", p.name, m.failed, len(chs), m.row(true), m.row(false))
	}
}
