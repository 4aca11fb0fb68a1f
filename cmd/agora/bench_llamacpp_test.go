package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agoranet/agora/engine"
)

// bench engine --llamacpp prints agora's figures and skips llama.cpp with
// a reason when node-llama-cpp is not installed in the directory. With
// AGORA_LLAMACPP_DIR pointing at an install (cd DIR && npm install
// node-llama-cpp) it also runs llama.cpp on the same file and reports
// ratios. No figure is checked against a speed: only that each was measured.
func TestBenchEngineLlamaCpp(t *testing.T) {
	// tiny-llama3: llama.cpp does not know the plain tiny shape's pre-tokenizer.
	model := filepath.Join(t.TempDir(), "tiny-llama3.gguf")
	if err := engine.Generate(model, engine.Shapes["tiny-llama3"], engine.QuantQ8, 1); err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, dir string) engineSideBySide {
		t.Helper()
		out, code := runCLI(t, context.Background(), "bench", "engine", "--model", model, "--prompt", "8", "--tokens", "4",
			"--threads", "2", "--llamacpp", dir, "--output", "json")
		var res engineSideBySide
		if err := json.Unmarshal([]byte(out), &res); code != 0 || err != nil {
			t.Fatalf("bench engine: exit %d, %v, output %q", code, err, out)
		}
		if res.Agora == nil || res.Agora.PromptPerSec <= 0 || res.Agora.DecodePerSec <= 0 {
			t.Fatalf("agora figures missing: %+v", res.Agora)
		}
		return res
	}
	t.Run("absent", func(t *testing.T) {
		res := run(t, t.TempDir())
		if res.LlamaCpp != nil || !strings.Contains(res.Skipped, "npm install node-llama-cpp") {
			t.Fatalf("want a skip with the install hint, got %+v", res)
		}
		text, code := runCLI(t, context.Background(), "bench", "engine", "--model", model, "--prompt", "8", "--tokens", "4", "--llamacpp", t.TempDir())
		if code != 0 || !strings.Contains(text, "llama.cpp side-by-side skipped") || !strings.Contains(text, "prompt   8 tokens") {
			t.Fatalf("text output: exit %d %q", code, text)
		}
	})
	t.Run("installed", func(t *testing.T) {
		dir := os.Getenv("AGORA_LLAMACPP_DIR")
		if dir == "" {
			t.Skip("AGORA_LLAMACPP_DIR not set: no node-llama-cpp to compare with")
		}
		res := run(t, dir)
		if res.LlamaCpp == nil || res.LlamaCpp.PromptPerSec <= 0 || res.LlamaCpp.DecodeTokens != 3 || res.PromptRatio <= 0 || res.DecodeRatio <= 0 {
			t.Fatalf("llama.cpp figures: %+v (skipped: %s)", res.LlamaCpp, res.Skipped)
		}
	})
}
