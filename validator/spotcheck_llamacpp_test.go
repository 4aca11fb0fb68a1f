package validator

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/agoranet/agora/engine"
	"github.com/agoranet/agora/openai"
)

// llamaCppGreedy generates greedily with llama.cpp (node-llama-cpp in DIR)
// for each prompt: one JSON line of [[token, logprob], ...] per prompt.
const llamaCppGreedy = `import { pathToFileURL } from "node:url";
import { join } from "node:path";
import { readFileSync } from "node:fs";
const [dir, modelPath, jobsPath, threads] = process.argv.slice(2);
const { getLlama, LlamaLogLevel } = await import(pathToFileURL(join(dir, "node_modules", "node-llama-cpp", "dist", "index.js")).href);
const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
const context = await model.createContext({ contextSize: 512, batchSize: 64, threads: Number(threads) });
const seq = context.getSequence();
for (const job of JSON.parse(readFileSync(jobsPath, "utf8"))) {
  await seq.clearHistory();
  const out = [];
  for await (const r of seq.evaluateWithMetadata(job.prompt, { probabilities: true }, { temperature: 0 })) {
    out.push([r.token, Math.log(r.probabilities.get(r.token))]);
    if (out.length >= job.max) break;
  }
  console.log(JSON.stringify(out));
}
await context.dispose(); await model.dispose(); await llama.dispose();
`

// TestMeasureLlamaCppAgreement measures the statistic for an honest miner
// on another implementation: llama.cpp (through the npm package
// node-llama-cpp, installed in $AGORA_LLAMACPP_DIR) generating greedily
// from the same file the engine verifies with. Its float rounding differs
// from the engine's, so this is the honest noise DefaultTolerance's margins
// are for. Skipped unless AGORA_LLAMACPP_DIR is set:
//
//	AGORA_LLAMACPP_DIR=/tmp/llcpp go test ./validator -run TestMeasureLlamaCppAgreement -v
func TestMeasureLlamaCppAgreement(t *testing.T) {
	dir := os.Getenv("AGORA_LLAMACPP_DIR")
	if dir == "" {
		t.Skip("AGORA_LLAMACPP_DIR (holding node_modules/node-llama-cpp) not set")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not on PATH")
	}
	// tiny-k with a pre-tokenizer name llama.cpp knows (it has no "gpt2"
	// for llama files); the weights are tiny-k's.
	shape := engine.Shapes["tiny-k"]
	shape.Pre = engine.PreSmolLM
	tmp := t.TempDir()
	path := filepath.Join(tmp, "tiny-k-smollm.gguf")
	if err := engine.Generate(path, shape, engine.QuantQ8, 1); err != nil {
		t.Fatal(err)
	}
	pinned := loadThreads(t, path, 2)
	tok := pinned.Tokenizer()
	g := NewGenerator(15)
	type job struct {
		Prompt []int `json:"prompt"`
		Max    int   `json:"max"`
	}
	var chs []Challenge
	var jobs []job
	for len(chs) < 40 {
		c := g.Next("m")
		c.Greedy = true
		zero := float32(0)
		c.Request.Temperature = &zero
		prompt, err := tok.EncodeChat([]engine.Message{{Role: "user", Content: c.Request.Messages[0].Content}})
		if err != nil {
			t.Fatal(err)
		}
		chs, jobs = append(chs, c), append(jobs, job{prompt, *c.Request.MaxTokens})
	}
	jb, _ := json.Marshal(jobs)
	jobsPath, script := filepath.Join(tmp, "jobs.json"), filepath.Join(tmp, "greedy.mjs")
	if err := os.WriteFile(jobsPath, jb, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(script, []byte(llamaCppGreedy), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, threads := range []int{1, 2} {
		cmd := exec.CommandContext(t.Context(), node, script, dir, path, jobsPath, strconv.Itoa(threads))
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("llama.cpp: %v", err)
		}
		dec := json.NewDecoder(bytes.NewReader(out))
		var m measured
		for i, c := range chs {
			var toks [][2]float64
			if err := dec.Decode(&toks); err != nil {
				t.Fatalf("llama.cpp output %d: %v", i, err)
			}
			r := &openai.Response{Choices: []openai.Choice{{Message: &openai.Message{Role: "assistant"}, Logprobs: &openai.Logprobs{}}}}
			for _, tl := range toks {
				id := int(tl[0])
				if tok.IsStop(id) {
					break
				}
				r.AgoraTokenIDs = append(r.AgoraTokenIDs, id)
				r.Choices[0].Logprobs.Content = append(r.Choices[0].Logprobs.Content, openai.TokenLogprob{Token: tok.Piece(id), Logprob: float32(tl[1])})
			}
			r.Choices[0].Message.Content = tok.Decode(r.AgoraTokenIDs)
			st, err := CheckAnswer(context.Background(), tok, EngineScorer{Model: pinned}, c, r, DefaultTolerance)
			if st != nil {
				m.stats = append(m.stats, *st)
			}
			if err != nil {
				m.failed++
				t.Errorf("llama.cpp %d threads, challenge %d: honest answer rejected: %v", threads, i, err)
			}
		}
		var maxErr, maxGap float64
		for _, s := range m.stats {
			maxErr, maxGap = max(maxErr, s.MaxError), max(maxGap, s.MaxGap)
		}
		t.Logf("honest: llama.cpp (%d threads) vs engine Score: %d of %d answers fail; largest per-token gap %.4f, error %.4f\n  greedy:  %s",
			threads, m.failed, len(chs), maxGap, maxErr, m.row(true))
	}
}
