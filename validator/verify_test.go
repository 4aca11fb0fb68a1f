package validator

import (
	"context"
	"errors"
	"testing"

	"github.com/agoranet/agora/engine"
	"github.com/agoranet/agora/internal/testkit"
	"github.com/agoranet/agora/openai"
)

// answer produces what an honest miner running m would return for c.
func answer(t *testing.T, m *engine.Model, c Challenge) *openai.Response {
	t.Helper()
	msgs := []engine.Message{{Role: "user", Content: c.Request.Messages[0].Content}}
	prompt, _ := m.EncodeChat(msgs)
	res, err := m.Generate(context.Background(), prompt, engine.GenerateOptions{MaxTokens: *c.Request.MaxTokens,
		Temperature: *c.Request.Temperature, Seed: *c.Request.Seed, TopLogprobs: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := &openai.Response{Choices: []openai.Choice{{Message: &openai.Message{Role: "assistant"}, Logprobs: &openai.Logprobs{}}}}
	var text string
	for _, tk := range res.Tokens {
		out.AgoraTokenIDs = append(out.AgoraTokenIDs, tk.ID)
		text += tk.Text
		out.Choices[0].Logprobs.Content = append(out.Choices[0].Logprobs.Content, openai.TokenLogprob{Token: tk.Text, Logprob: tk.Logprob})
	}
	out.Choices[0].Message.Content = text
	return out
}

func challenges(greedy bool) []Challenge {
	g := NewGenerator(7)
	var out []Challenge
	for len(out) < 4 {
		if c := g.Next("m"); c.Greedy == greedy {
			out = append(out, c)
		}
	}
	return out
}

func TestVerifyAcceptsHonestAnswers(t *testing.T) {
	m := testkit.LoadModel(t, "tiny", 1)
	for _, greedy := range []bool{true, false} {
		for i, c := range challenges(greedy) {
			if err := Verify(context.Background(), m, c, answer(t, m, c)); err != nil {
				t.Fatalf("greedy=%v challenge %d: honest answer rejected: %v", greedy, i, err)
			}
		}
	}
}

// cheats are answers a dishonest miner might give for challenges to m;
// other is a different model of the same shape.
func cheats(t *testing.T, m, other *engine.Model) map[string]func() (Challenge, *openai.Response) {
	greedy := challenges(true)
	sampled := challenges(false)
	return map[string]func() (Challenge, *openai.Response){
		"serves another model": func() (Challenge, *openai.Response) { return greedy[0], answer(t, other, greedy[0]) },
		"fabricates tokens": func() (Challenge, *openai.Response) {
			r := answer(t, m, greedy[1])
			for i := range r.AgoraTokenIDs {
				r.AgoraTokenIDs[i] = (r.AgoraTokenIDs[i]*31 + 7) % 300
			}
			r.Choices[0].Message.Content = m.Tokenizer().Decode(r.AgoraTokenIDs)
			return greedy[1], r
		},
		"replays a cached answer": func() (Challenge, *openai.Response) { return greedy[2], answer(t, m, greedy[3]) },
		"ids disagree with text": func() (Challenge, *openai.Response) {
			r := answer(t, m, greedy[0])
			r.Choices[0].Message.Content += "!"
			return greedy[0], r
		},
		"ids outside the vocabulary": func() (Challenge, *openai.Response) {
			r := answer(t, m, greedy[0])
			r.AgoraTokenIDs[0] = m.Tokenizer().VocabSize() + 5
			return greedy[0], r
		},
		"forges sampled logprobs": func() (Challenge, *openai.Response) {
			r := answer(t, m, sampled[0])
			for i := range r.Choices[0].Logprobs.Content {
				r.Choices[0].Logprobs.Content[i].Logprob = -0.01
			}
			return sampled[0], r
		},
		"samples from another model": func() (Challenge, *openai.Response) { return sampled[1], answer(t, other, sampled[1]) },
	}
}

func TestVerifyCatchesCheats(t *testing.T) {
	m, other := testkit.LoadModel(t, "tiny", 1), testkit.LoadModel(t, "tiny", 2)
	for name, cheat := range cheats(t, m, other) {
		c, r := cheat()
		if err := Verify(context.Background(), m, c, r); !errors.Is(err, ErrVerification) {
			t.Errorf("%s: err %v, want ErrVerification", name, err)
		}
	}
}

func TestGeneratorLooksLikeUserTraffic(t *testing.T) {
	a, b := NewGenerator(1), NewGenerator(1)
	seen := map[string]bool{}
	for range 50 {
		x, y := a.Next("m"), b.Next("m")
		if x.Request.Messages[0].Content != y.Request.Messages[0].Content {
			t.Fatal("same seed, different challenges")
		}
		if err := x.Request.Validate(true); err != nil {
			t.Fatalf("challenge is not a valid OpenAI request: %v", err)
		}
		seen[x.Request.Messages[0].Content] = true
	}
	if len(seen) < 30 {
		t.Fatalf("only %d distinct challenges in 50", len(seen))
	}
}
