// Package validator judges a subnet's miners: it sends challenges shaped like
// user traffic, verifies answers by teacher-forcing them through the subnet's
// pinned model, keeps a score per UID and puts weights on chain each tempo.
//
// It hands its scored miners to a gateway as route.Candidate values, so it
// must not import the gateway (or any other server); it reads the chain
// through client.
package validator

import (
	"fmt"
	"math/rand/v2"

	"github.com/agoranet/agora/openai"
)

// Words and frames for challenges. A miner cannot tell a challenge from a
// user's request: same endpoint, same fields, ordinary questions.
var (
	frames = []string{
		"Explain %s in simple terms.", "Write a short poem about %s.", "What are three facts about %s?",
		"Give me a one-sentence summary of %s.", "How would you describe %s to a child?",
		"List some pros and cons of %s.", "Tell me a story that involves %s.", "Why is %s important?",
	}
	topics = []string{
		"the ocean", "a quiet library", "solar power", "the history of bread", "mountain weather",
		"learning a language", "the moon", "city gardens", "trains at night", "prime numbers",
		"honey bees", "a rainy market", "old maps", "the first computers", "winter birds", "tea",
	}
)

// Challenge is one generated request.
type Challenge struct {
	Request openai.ChatRequest
	Greedy  bool
}

// Generator makes challenges from a seed, so a validator's traffic is
// reproducible for debugging yet unpredictable to miners.
type Generator struct{ rng *rand.Rand }

// NewGenerator seeds a generator.
func NewGenerator(seed uint64) *Generator {
	return &Generator{rng: rand.New(rand.NewPCG(seed, seed^0xa0761d6478bd642f))}
}

// Next returns the next challenge. Most are greedy (temperature 0), which
// verifies exactly; some sample, verified by their reported logprobs.
func (g *Generator) Next(model string) Challenge {
	a := topics[g.rng.IntN(len(topics))]
	b := topics[g.rng.IntN(len(topics))]
	q := fmt.Sprintf(frames[g.rng.IntN(len(frames))], a)
	if g.rng.IntN(3) == 0 {
		q += fmt.Sprintf(" Also mention %s.", b)
	}
	maxTokens := 8 + g.rng.IntN(17)
	greedy := g.rng.IntN(4) != 0
	temp := float32(0)
	if !greedy {
		temp = 0.6 + float32(g.rng.IntN(5))/10
	}
	seed := g.rng.Uint64()
	req := openai.ChatRequest{
		Model:       model,
		Messages:    []openai.Message{{Role: "user", Content: q}},
		MaxTokens:   &maxTokens,
		Temperature: &temp,
		Seed:        &seed,
		Logprobs:    true,
		TopLogprobs: 1,
	}
	return Challenge{Request: req, Greedy: greedy}
}
