package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestModelGenInfoGenerateCLI(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tiny.gguf")
	out, code := runCLI(t, ctx, "model", "gen", "--out", path, "--shape", "tiny", "--quant", "q8_0", "--seed", "3", "--output", "json")
	var gen struct{ ID string }
	if err := json.Unmarshal([]byte(out), &gen); err != nil || code != exitOK || len(gen.ID) != 64 {
		t.Fatalf("model gen: %d %q %v", code, out, err)
	}
	out, code = runCLI(t, ctx, "model", "info", path, "--output", "json")
	var info struct {
		Architecture string `json:"architecture"`
		Layers       int    `json:"block_count"`
		Weights      string `json:"weight_type"`
		ID           string `json:"id"`
		Tokenizer    string `json:"tokenizer"`
		Template     string `json:"chat_template"`
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil || code != exitOK {
		t.Fatalf("model info: %d %q %v", code, out, err)
	}
	if info.Architecture != "llama" || info.Layers != 2 || info.Weights != "Q8_0" || info.ID != gen.ID || info.Tokenizer != "gpt2" || info.Template != "chatml" {
		t.Fatalf("info %+v", info)
	}
	gen1, code := runCLI(t, ctx, "generate", "--model", path, "--prompt", "The weather", "--max-tokens", "8", "--output", "json")
	var g struct {
		Tokens []int  `json:"tokens"`
		Text   string `json:"text"`
	}
	if err := json.Unmarshal([]byte(gen1), &g); err != nil || code != exitOK || len(g.Tokens) == 0 {
		t.Fatalf("generate: %d %q %v", code, gen1, err)
	}
	gen2, _ := runCLI(t, ctx, "generate", "--model", path, "--prompt", "The weather", "--max-tokens", "8", "--output", "json")
	if gen1 != gen2 {
		t.Fatal("greedy generation is not reproducible")
	}
	text, code := runCLI(t, ctx, "generate", "--model", path, "--prompt", "hi", "--chat", "--max-tokens", "4", "--temperature", "0.8", "--seed", "9")
	if code != exitOK || !strings.HasSuffix(text, "\n") {
		t.Fatalf("streamed generate: %d %q", code, text)
	}
	for _, bad := range [][]string{
		{"generate", "--model", path},
		{"generate", "--model", path, "--prompt-tokens", "1,x"},
		{"model", "gen", "--out", path, "--shape", "huge"},
		{"model", "gen", "--out", path, "--quant", "q2"},
		{"model", "pull", "not-a-model"},
	} {
		if _, code := runCLI(t, ctx, bad...); code != exitUsage {
			t.Errorf("agora %v: exit %d, want %d", bad, code, exitUsage)
		}
	}
	if _, code := runCLI(t, ctx, "model", "info", filepath.Join(t.TempDir(), "missing.gguf")); code != exitNotFound {
		t.Errorf("info of a missing file: exit %d", code)
	}
}

func TestModelPullCLI(t *testing.T) {
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "src.gguf")
	if _, code := runCLI(t, ctx, "model", "gen", "--out", src, "--shape", "tiny"); code != exitOK {
		t.Fatal("model gen failed")
	}
	raw, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "m.gguf", time.Time{}, bytes.NewReader(raw))
	}))
	defer srv.Close()
	home := t.TempDir()
	sum := sha256.Sum256(raw)
	out, code := runCLI(t, ctx, "model", "pull", srv.URL+"/tiny.gguf", "--sha256", hex.EncodeToString(sum[:]), "--home", home, "-o", "json")
	var p struct{ Path, SHA256, Verified string }
	if err := json.Unmarshal([]byte(out), &p); err != nil || code != exitOK {
		t.Fatalf("pull: %d %q %v", code, out, err)
	}
	if p.Path != filepath.Join(home, "models", "tiny.gguf") || p.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("pulled %+v", p)
	}
	// The pulled file is a usable model.
	if _, code := runCLI(t, ctx, "model", "info", p.Path); code != exitOK {
		t.Fatal("info of the pulled model failed")
	}
	if _, code := runCLI(t, ctx, "model", "pull", srv.URL+"/other.gguf", "--sha256", strings.Repeat("0", 64), "--home", home); code != exitError {
		t.Fatalf("checksum mismatch: exit %d", code)
	}
}
