package validator

import (
	"context"
	"errors"
	"testing"

	"github.com/agoranet/agora/engine"
	"github.com/agoranet/agora/internal/testkit"
	"github.com/agoranet/agora/internal/upstreamtest"
)

// upstreams are the verifier configurations tested, each against a
// stand-in server computing with the built-in engine.
var upstreams = []struct {
	name       string
	flavor     upstreamtest.Flavor
	protocol   Protocol
	legacyEcho bool
}{
	{"vllm prompt_logprobs", upstreamtest.VLLM, ProtocolVLLM, false},
	{"vllm legacy echo logprobs", upstreamtest.VLLM, ProtocolVLLM, true},
	{"llama.cpp n_probs", upstreamtest.LlamaCpp, ProtocolLlamaCpp, false},
}

// TestUpstreamVerifierAgreesWithBuiltin: through each protocol, the
// upstream verifier accepts what the builtin one accepts and rejects every
// cheat the builtin one rejects.
func TestUpstreamVerifierAgreesWithBuiltin(t *testing.T) {
	m, other := testkit.LoadModel(t, "tiny", 1), testkit.LoadModel(t, "tiny", 2)
	for _, u := range upstreams {
		t.Run(u.name, func(t *testing.T) {
			srv := upstreamtest.Start(t, m, u.flavor)
			srv.LegacyEcho = u.legacyEcho
			scorer := &UpstreamScorer{URL: srv.URL, Model: "test", Protocol: u.protocol}
			ctx := context.Background()
			for _, greedy := range []bool{true, false} {
				for i, c := range challenges(greedy) {
					if err := VerifyWith(ctx, m.Tokenizer(), scorer, c, answer(t, m, c)); err != nil {
						t.Fatalf("greedy=%v challenge %d: honest answer rejected: %v", greedy, i, err)
					}
				}
			}
			for name, cheat := range cheats(t, m, other) {
				c, r := cheat()
				err := VerifyWith(ctx, m.Tokenizer(), scorer, c, r)
				if !errors.Is(err, ErrVerification) {
					t.Errorf("%s: err %v, want ErrVerification", name, err)
				}
			}
			if srv.Requests() == 0 {
				t.Fatal("the upstream was never asked")
			}
		})
	}
}

// TestUpstreamVerifierUnavailable: when the upstream fails, verification is
// unavailable, never a verdict on the miner.
func TestUpstreamVerifierUnavailable(t *testing.T) {
	m := testkit.LoadModel(t, "tiny", 1)
	c := challenges(true)[0]
	r := answer(t, m, c)
	for _, u := range []struct {
		flavor   upstreamtest.Flavor
		protocol Protocol
	}{{upstreamtest.VLLM, ProtocolVLLM}, {upstreamtest.LlamaCpp, ProtocolLlamaCpp}} {
		for _, tc := range []struct {
			name  string
			fault upstreamtest.Fault
			down  bool
			proto Protocol
		}{
			{name: "down", down: true},
			{name: "error status", fault: upstreamtest.FaultStatus},
			{name: "malformed JSON", fault: upstreamtest.FaultMalformed},
			{name: "wrong lengths", fault: upstreamtest.FaultShort},
			{name: "wrong protocol", proto: "tgi"},
		} {
			t.Run(string(u.flavor)+" "+tc.name, func(t *testing.T) {
				srv := upstreamtest.Start(t, m, u.flavor)
				srv.SetFault(tc.fault)
				if tc.down {
					srv.Close()
				}
				proto := u.protocol
				if tc.proto != "" {
					proto = tc.proto
				}
				err := VerifyWith(context.Background(), m.Tokenizer(), &UpstreamScorer{URL: srv.URL, Protocol: proto}, c, r)
				if !errors.Is(err, ErrVerifierUnavailable) || errors.Is(err, ErrVerification) {
					t.Fatalf("err %v, want ErrVerifierUnavailable only", err)
				}
				if failureReason(err) != ReasonVerifierUnavailable {
					t.Fatalf("reason %q", failureReason(err))
				}
			})
		}
	}
}

// TestVerifierUnavailableKeepsScore: a failed verifier neither zeroes nor
// decays the miner's score, unlike a failed verification.
func TestVerifierUnavailableKeepsScore(t *testing.T) {
	key, hot := testkit.Key(9)
	v, err := New(Config{Hotkey: key, Model: testkit.LoadModel(t, "tiny", 1)})
	if err != nil {
		t.Fatal(err)
	}
	v.record(3, hot, "http://m", 1, 10, 50, true, nil)
	before := v.Scores()[0]
	v.record(3, hot, "http://m", 0, 0, 0, true, ErrVerifierUnavailable)
	after := v.Scores()[0]
	if after.EMA != before.EMA || after.Failed != 0 || after.Verified != 1 || after.LastError == "" {
		t.Fatalf("after an unavailable verifier: %+v, before %+v", after, before)
	}
	v.record(3, hot, "http://m", 0, 0, 0, true, ErrVerification)
	if s := v.Scores()[0]; s.EMA != 0 || s.Failed != 1 {
		t.Fatalf("after a failed verification: %+v", s)
	}
}

// TestWeightlessValidator: with an upstream verifier the validator needs
// only the pinned file's vocabulary (engine.LoadVocabulary), never its
// weights, and still accepts an honest answer and rejects a cheat; the
// builtin verifier without weights is refused at construction.
func TestWeightlessValidator(t *testing.T) {
	m, other := testkit.LoadModel(t, "tiny", 1), testkit.LoadModel(t, "tiny", 2)
	vocab, err := engine.LoadVocabulary(testkit.Model(t, "tiny", 1))
	if err != nil {
		t.Fatal(err)
	}
	key, _ := testkit.Key(9)
	if _, err := New(Config{Hotkey: key, Vocabulary: vocab}); err == nil {
		t.Fatal("a builtin verifier without weights was accepted")
	}
	if v, err := New(Config{Hotkey: key}); err != nil || v.Round(context.Background()) == nil {
		t.Fatal("a validator without its pinned model ran a round")
	}
	srv := upstreamtest.Start(t, m, upstreamtest.VLLM)
	v, err := New(Config{Hotkey: key, Vocabulary: vocab, Scorer: &UpstreamScorer{URL: srv.URL, Model: "test", Protocol: ProtocolVLLM}})
	if err != nil {
		t.Fatal(err)
	}
	c := challenges(true)[0]
	if checked, err := v.verify(context.Background(), c, answer(t, m, c)); !checked || err != nil {
		t.Fatalf("honest answer: checked %v, err %v", checked, err)
	}
	if _, err := v.verify(context.Background(), c, answer(t, other, c)); !errors.Is(err, ErrVerification) {
		t.Fatalf("another model's answer: %v, want ErrVerification", err)
	}
}
