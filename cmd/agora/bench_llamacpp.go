package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/agoranet/agora/bench"
)

// llamaCppResult is llama.cpp's figures on the same model, measured through
// the npm package node-llama-cpp's prebuilt CPU binaries.
type llamaCppResult struct {
	Threads      int     `json:"threads"`
	PromptTokens int     `json:"prompt_tokens"`
	PromptPerSec float64 `json:"prompt_tokens_per_second"`
	DecodeTokens int     `json:"decode_tokens"`
	DecodePerSec float64 `json:"decode_tokens_per_second"`
}

// engineSideBySide is `agora bench engine --llamacpp`'s result: both
// measurements and agora's speed as a multiple of llama.cpp's.
type engineSideBySide struct {
	Agora       *bench.EngineResult `json:"agora"`
	LlamaCpp    *llamaCppResult     `json:"llama_cpp,omitempty"`
	Skipped     string              `json:"llama_cpp_skipped,omitempty"`
	PromptRatio float64             `json:"prompt_ratio,omitempty"` // agora / llama.cpp
	DecodeRatio float64             `json:"decode_ratio,omitempty"`
}

// errNoLlamaCpp says the side-by-side cannot run here; the bench still
// prints agora's own figures.
var errNoLlamaCpp = errors.New("llama.cpp not available")

// runLlamaCpp measures llama.cpp on model with node-llama-cpp installed in
// dir (npm install node-llama-cpp there), with the same threads and token
// counts as agora's run. It returns errNoLlamaCpp (wrapped) when node or the
// package is missing.
func runLlamaCpp(ctx context.Context, dir, model string, threads, prompt, decode int) (*llamaCppResult, error) {
	pkg := filepath.Join(dir, "node_modules", "node-llama-cpp", "package.json")
	if _, err := os.Stat(pkg); err != nil {
		return nil, fmt.Errorf("%w: no %s (run npm install node-llama-cpp in %s)", errNoLlamaCpp, pkg, dir)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("%w: node is not on PATH", errNoLlamaCpp)
	}
	script, err := os.CreateTemp("", "agora-llamacpp-*.mjs")
	if err != nil {
		return nil, err
	}
	defer os.Remove(script.Name())
	if _, err := script.WriteString(llamaCppScript); err != nil {
		script.Close()
		return nil, err
	}
	if err := script.Close(); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	c := exec.CommandContext(ctx, node, script.Name(), abs, model, strconv.Itoa(threads), strconv.Itoa(prompt), strconv.Itoa(decode))
	c.Stderr = os.Stderr
	out, err := c.Output()
	if err != nil {
		return nil, fmt.Errorf("run llama.cpp through node-llama-cpp: %w", err)
	}
	var res llamaCppResult
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, fmt.Errorf("read llama.cpp's figures %q: %w", out, err)
	}
	return &res, nil
}

// printSideBySide writes the text form of a --llamacpp run.
func printSideBySide(w io.Writer, r *engineSideBySide) error {
	if r.LlamaCpp == nil {
		_, err := fmt.Fprintf(w, "llama.cpp side-by-side skipped: %s\n", r.Skipped)
		return err
	}
	a, l := r.Agora, r.LlamaCpp
	_, err := fmt.Fprintf(w, "\nsame file, %d threads      agora     llama.cpp  ratio\nprompt tokens/s (%4d)  %9.1f  %9.1f  %5.2f\ndecode tokens/s (%4d)  %9.1f  %9.1f  %5.2f\n",
		a.Threads, a.PromptTokens, a.PromptPerSec, l.PromptPerSec, r.PromptRatio, a.DecodeTokens, a.DecodePerSec, l.DecodePerSec, r.DecodeRatio)
	return err
}

// llamaCppScript measures llama.cpp the way bench.Engine measures the
// built-in engine: the same prompt tokens, one batched prompt pass timed
// alone, then greedy decoding timed from the first generated token. Its
// arguments are DIR (holding node_modules/node-llama-cpp), MODEL, THREADS,
// PROMPT and DECODE; it prints one JSON object.
const llamaCppScript = `import { pathToFileURL } from "node:url";
import { join } from "node:path";

const [dir, modelPath, threadsArg, promptArg, decodeArg] = process.argv.slice(2);
const threads = Number(threadsArg), promptLen = Number(promptArg), decodeLen = Number(decodeArg);
const { getLlama, LlamaLogLevel } = await import(pathToFileURL(join(dir, "node_modules", "node-llama-cpp", "dist", "index.js")).href);

const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
const context = await model.createContext({ contextSize: promptLen + decodeLen + 8, batchSize: promptLen, threads });
const seq = context.getSequence();
const vocab = model.fileInfo.metadata.tokenizer.ggml.tokens.length;
const prompt = Array.from({ length: promptLen }, (_, i) => (i * 7919 + 11) % vocab);

let t0 = process.hrtime.bigint();
await seq.evaluateWithoutGeneratingNewTokens(prompt);
const promptSecs = Number(process.hrtime.bigint() - t0) / 1e9;

await seq.clearHistory();
let generated = 0, t1 = 0n;
for await (const _ of seq.evaluate(prompt, { temperature: 0 })) {
  if (generated === 0) t1 = process.hrtime.bigint(); // the first token came from the prompt pass
  generated++;
  if (generated >= decodeLen) break;
}
const decodeSecs = Number(process.hrtime.bigint() - t1) / 1e9;
console.log(JSON.stringify({
  threads, prompt_tokens: promptLen, prompt_tokens_per_second: promptLen / promptSecs,
  decode_tokens: generated - 1, decode_tokens_per_second: (generated - 1) / decodeSecs,
}));
await context.dispose();
await model.dispose();
await llama.dispose();
`
