package miner

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/agoranet/agora/engine"
	"github.com/agoranet/agora/internal/testkit"
	"github.com/agoranet/agora/internal/upstreamtest"
	"github.com/agoranet/agora/openai"
	"github.com/agoranet/agora/wire"
)

// TestUpstreamBackendCarriesTokenIDs: through vLLM's and llama.cpp server's
// protocols, the openai backend returns the exact token ids the upstream
// served, plain and streamed, and gives callers logprobs named by text only
// when they asked for logprobs.
func TestUpstreamBackendCarriesTokenIDs(t *testing.T) {
	m := testkit.LoadModel(t, "tiny", 5)
	const question = "Tell me about tea."
	prompt, err := m.EncodeChat([]engine.Message{{Role: "user", Content: question}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Generate(context.Background(), prompt, engine.GenerateOptions{MaxTokens: 12, Temperature: 0}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var want []int
	for _, tk := range res.Tokens {
		want = append(want, tk.ID)
	}
	if len(want) == 0 {
		t.Fatal("the model generated nothing to compare")
	}
	valKey, _ := testkit.Key(2)
	for _, f := range []upstreamtest.Flavor{upstreamtest.VLLM, upstreamtest.LlamaCpp} {
		t.Run(string(f), func(t *testing.T) {
			up := upstreamtest.Start(t, m, f)
			srv, miner := startMiner(t, &Upstream{URL: up.URL, Model: "served", ID: strings.Repeat("cd", 32)}, nil)
			c := wire.NewClient(valKey, srv.Client())
			body := []byte(`{"model":"m","messages":[{"role":"user","content":"` + question + `"}],"max_tokens":12,"temperature":0}`)
			raw, _ := askPlain(t, c, srv.URL, miner, body)
			var out openai.Response
			if err := json.Unmarshal(raw, &out); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(out.AgoraTokenIDs, want) {
				t.Fatalf("plain answer ids %v, the upstream served %v", out.AgoraTokenIDs, want)
			}
			if out.Choices[0].Logprobs != nil {
				t.Fatalf("logprobs returned unasked: %s", raw)
			}
			sbody := []byte(`{"model":"m","messages":[{"role":"user","content":"` + question + `"}],"max_tokens":12,"temperature":0,"stream":true,"logprobs":true,"top_logprobs":2}`)
			resp, err := c.Post(context.Background(), srv.URL+"/v1/chat/completions", miner, sbody)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var ids []int
			var tokens []string
			_, _, err = wire.ReadStream(resp.Body, func(e wire.Event) error {
				var ch openai.Response
				if json.Unmarshal(e.Data, &ch) != nil {
					return nil
				}
				ids = append(ids, ch.AgoraTokenIDs...)
				for _, c := range ch.Choices {
					if c.Logprobs != nil {
						for _, lp := range c.Logprobs.Content {
							tokens = append(tokens, lp.Token)
							for _, a := range lp.TopLogprobs {
								tokens = append(tokens, a.Token)
							}
						}
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids, want) {
				t.Fatalf("streamed ids %v, the upstream served %v", ids, want)
			}
			if len(tokens) == 0 {
				t.Fatal("no logprobs streamed though asked")
			}
			for _, tok := range tokens {
				if strings.HasPrefix(tok, "token_id:") {
					t.Fatalf("logprob token %q leaked the upstream's id form", tok)
				}
			}
		})
	}
}
