// Command tokgguf turns a golden tokenizer file (engine/testdata/tokenizer/
// *.json.gz: the reachable part of a real vocabulary, with its real ids) into
// a vocabulary-only GGUF that llama.cpp can load (llama_model_params
// vocab_only), so llama.cpp itself can record the golden ids
// (tools/tokgolden/llamacpp.js).
//
//	go run ./tools/tokgguf -in engine/testdata/tokenizer/llama3.json.gz -out /tmp/llama3.gguf
//
// Ids the golden file does not keep become unused filler tokens, so every
// kept token sits at its real id, as the engine's test loader does. The
// fillers get unique texts no golden text contains (llama.cpp requires
// distinct token texts).
package main

import (
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/agoranet/agora/engine/gguf"
)

// Token types of tokenizer.ggml.token_type (llama.cpp's llama_token_type).
const (
	typeNormal  = 1
	typeUnknown = 2
	typeControl = 3
	typeUnused  = 5
	typeByte    = 6
)

// golden is the part of a golden file a vocabulary needs.
type golden struct {
	Name      string       `json:"name"`
	Model     string       `json:"model"` // tokenizer.ggml.model: gpt2 or llama
	Pre       string       `json:"pre"`
	VocabSize int          `json:"vocab_size"`
	Tokens    [][2]any     `json:"tokens"` // [id, text]
	Scores    [][2]float64 `json:"scores"` // [id, score], SentencePiece
	Merges    []string     `json:"merges"` // rank order
}

func main() {
	in := flag.String("in", "", "golden file (.json.gz)")
	out := flag.String("out", "", "GGUF to write")
	pre := flag.String("pre", "", "tokenizer.ggml.pre (default: the golden file's)")
	bos := flag.Int("bos", -1, "BOS id (default: 1 for SentencePiece, none for BPE)")
	eos := flag.Int("eos", -1, "EOS id (default: 2 for SentencePiece, none for BPE)")
	flag.Parse()
	if *in == "" || *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	g, err := read(*in)
	if err == nil {
		if *pre != "" {
			g.Pre = *pre
		}
		err = write(g, *out, *bos, *eos)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tokgguf:", err)
		os.Exit(1)
	}
}

func read(path string) (*golden, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var g golden
	if err := json.NewDecoder(zr).Decode(&g); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if g.VocabSize <= 0 || len(g.Tokens) == 0 {
		return nil, fmt.Errorf("%s: no vocabulary", path)
	}
	return &g, nil
}

func write(g *golden, path string, bos, eos int) error {
	n := g.VocabSize
	tokens := make([]string, n)
	types := make([]int32, n)
	scores := make([]float32, n)
	kept := make([]bool, n)
	for _, e := range g.Tokens {
		id, ok := e[0].(float64)
		text, ok2 := e[1].(string)
		if !ok || !ok2 || id < 0 || int(id) >= n {
			return fmt.Errorf("bad token entry %v", e)
		}
		i := int(id)
		tokens[i], types[i], kept[i] = text, typeNormal, true
		if g.Model == "llama" && isByteToken(text) {
			types[i] = typeByte
		}
	}
	for _, e := range g.Scores {
		if i := int(e[0]); i >= 0 && i < n {
			scores[i] = float32(e[1])
		}
	}
	seen := make(map[string]bool, len(g.Tokens))
	for i, t := range tokens {
		if kept[i] {
			seen[t] = true
		}
	}
	for i := range tokens {
		if kept[i] {
			continue
		}
		t := fmt.Sprintf("<tokgguf-unused-%d>", i)
		for seen[t] {
			t += "_"
		}
		tokens[i], types[i], scores[i] = t, typeUnused, -1e9
		seen[t] = true
	}

	w := gguf.NewWriter()
	// A vocabulary-only load (llama_model_params.vocab_only) reads the
	// architecture's name and general.name, then returns before the
	// hyperparameters (llama_model::load_hparams), so no llama.* key is needed:
	// found by trying, llama.cpp 0ad4a86 via node-llama-cpp 3.22.1.
	w.Str("general.architecture", "llama")
	w.Str("general.name", "tokgguf "+g.Name+" (vocabulary only)")
	w.U32("general.alignment", gguf.DefaultAlignment)

	w.Str("tokenizer.ggml.model", g.Model)
	switch g.Model {
	case "gpt2":
		w.Str("tokenizer.ggml.pre", g.Pre)
		w.Strs("tokenizer.ggml.merges", g.Merges)
	case "llama":
		if bos < 0 {
			bos = 1
		}
		if eos < 0 {
			eos = 2
		}
		// SentencePiece's <unk>, <s>, </s> sit at 0, 1, 2.
		if kept[0] && tokens[0] == "<unk>" {
			types[0] = typeUnknown
		}
		w.U32("tokenizer.ggml.unknown_token_id", 0)
	default:
		return fmt.Errorf("tokenizer model %q (want gpt2 or llama)", g.Model)
	}
	for _, id := range []int{bos, eos} {
		if id >= 0 && id < n && kept[id] && g.Model == "llama" {
			types[id] = typeControl
		}
	}
	if bos >= 0 {
		w.U32("tokenizer.ggml.bos_token_id", uint32(bos))
	}
	if eos >= 0 {
		w.U32("tokenizer.ggml.eos_token_id", uint32(eos))
	}
	w.Bool("tokenizer.ggml.add_bos_token", false)
	w.Bool("tokenizer.ggml.add_eos_token", false)
	w.Strs("tokenizer.ggml.tokens", tokens)
	w.I32s("tokenizer.ggml.token_type", types)
	if g.Model == "llama" {
		w.F32s("tokenizer.ggml.scores", scores)
	}
	return w.WriteFile(path)
}

// isByteToken reports SentencePiece's "<0xXX>".
func isByteToken(s string) bool {
	return len(s) == 6 && strings.HasPrefix(s, "<0x") && s[5] == '>' &&
		strings.ContainsRune("0123456789ABCDEF", rune(s[3])) && strings.ContainsRune("0123456789ABCDEF", rune(s[4]))
}
