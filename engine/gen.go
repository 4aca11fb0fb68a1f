package engine

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/agoranet/agora/engine/gguf"
)

// Shape is a model architecture to generate.
type Shape struct {
	Arch      string // llama or qwen2
	Dim       int
	Hidden    int
	Layers    int
	Heads     int
	KVHeads   int
	Vocab     int // at least what the tokenizer needs; padded with unused tokens
	Context   int
	RopeBase  float32
	Tied      bool
	Tokenizer TokenizerKind
	Pre       PreTokenizer // BPE pre-tokenizer (default gpt2)
	Chat      ChatTemplate // BPE chat format: ChatML (default) or Llama3
}

// Shapes that `agora model gen --shape` knows.
var Shapes = map[string]Shape{
	"tiny":        {Arch: "llama", Dim: 64, Hidden: 160, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 512, Context: 512, RopeBase: 10000, Tokenizer: BPE},
	"tiny-qwen2":  {Arch: "qwen2", Dim: 64, Hidden: 160, Layers: 2, Heads: 4, KVHeads: 1, Vocab: 512, Context: 512, RopeBase: 1000000, Tokenizer: BPE, Tied: true, Pre: PreQwen2},
	"tiny-llama3": {Arch: "llama", Dim: 64, Hidden: 192, Layers: 3, Heads: 8, KVHeads: 2, Vocab: 640, Context: 512, RopeBase: 500000, Tokenizer: BPE, Pre: PreLlama3, Chat: Llama3},
	// tiny-k has rows of 256 so K-quants apply to every matrix (the other
	// tiny shapes fall back to Q5_0/Q8_0 under q4_k_m, as llama.cpp does).
	"tiny-k":       {Arch: "llama", Dim: 256, Hidden: 512, Layers: 3, Heads: 4, KVHeads: 2, Vocab: 512, Context: 512, RopeBase: 10000, Tokenizer: BPE},
	"tiny-spm":     {Arch: "llama", Dim: 48, Hidden: 128, Layers: 2, Heads: 3, KVHeads: 3, Vocab: 600, Context: 512, RopeBase: 10000, Tokenizer: SentencePiece},
	"smollm2-135m": {Arch: "llama", Dim: 576, Hidden: 1536, Layers: 30, Heads: 9, KVHeads: 3, Vocab: 49152, Context: 8192, RopeBase: 100000, Tied: true, Tokenizer: BPE, Pre: PreSmolLM},
}

// Quant is the storage type of generated weight matrices (norms stay F32).
type Quant string

// Supported quantizations.
const (
	QuantF32 Quant = "f32"
	QuantF16 Quant = "f16"
	QuantQ8  Quant = "q8_0"
	// QuantQ4KM is llama.cpp's Q4_K_M mix: Q4_K, with attn_v and ffn_down
	// of the first and last eighth of the layers (and every third layer
	// between) and the output head at Q6_K.
	QuantQ4KM Quant = "q4_k_m"
	QuantQ6K  Quant = "q6_k" // every weight matrix Q6_K
)

// Quants lists the quantizations Generate writes.
var Quants = []Quant{QuantF32, QuantF16, QuantQ8, QuantQ4KM, QuantQ6K}

// tensorType is the storage type q gives a weight matrix, as llama.cpp's
// quantizer picks it. layer is the block index (−1 outside the blocks);
// output says the matrix is the output head (output.weight, or the tied
// token embedding). Rows whose length is not a multiple of the 256-weight
// K-quant super-block fall back as llama.cpp does: Q4_K to Q5_0, Q6_K to
// Q8_0 (and Q8_0 to F32 below 32).
func (q Quant) tensorType(name string, layer, layers, cols int, output bool) (gguf.TensorType, error) {
	var t gguf.TensorType
	switch q {
	case QuantF32:
		return gguf.F32, nil
	case QuantF16:
		return gguf.F16, nil
	case QuantQ8:
		t = gguf.Q8_0
	case QuantQ6K:
		t = gguf.Q6_K
	case QuantQ4KM:
		t = gguf.Q4_K
		moreBits := layer >= 0 && (layer < layers/8 || layer >= 7*layers/8 || (layer-layers/8)%3 == 2)
		if output || (moreBits && (strings.HasSuffix(name, ".attn_v.weight") || strings.HasSuffix(name, ".ffn_down.weight"))) {
			t = gguf.Q6_K
		}
	default:
		return 0, fmt.Errorf("unknown quantization %q (%s)", q, quantList())
	}
	if cols%qkK != 0 {
		switch t {
		case gguf.Q4_K:
			t = gguf.Q5_0
		case gguf.Q6_K:
			t = gguf.Q8_0
		}
	}
	if cols%32 != 0 {
		t = gguf.F32
	}
	return t, nil
}

func quantList() string {
	s := make([]string, len(Quants))
	for i, q := range Quants {
		s[i] = string(q)
	}
	return strings.Join(s, ", ")
}

// corpus trains the generated tokenizers' merges, so their vocabularies are
// real BPE/SentencePiece vocabularies over ordinary text.
const corpus = `The quick brown fox jumps over the lazy dog. A network of miners serves open models;
validators check their answers and the chain keeps the books. Anyone can ask a question, pay
for the answer, and know that nobody kept the prompt. Models are shared by their content hash,
and the people who trained them earn a royalty whenever they are used. The weather today is
clear, with a light wind from the west and the temperature near twenty degrees. She said that
they would meet at the station at noon, then walk to the market together. Numbers like 1, 2, 3,
42 and 2026 appear in text too, as do questions: what is the answer? where is the station?
It's a good day; we're here, they've gone, I'm sure you'll see, he'd know.`

// Jinja chat templates written into generated models, in the style of the
// real models' templates, so template detection runs on the same text.
const (
	chatMLJinja  = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
	smolLM2Jinja = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
	llama3Jinja  = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

// Generate writes a random-weight model of shape s to path. The model is
// labelled untrained in general.name; it exists so tests and offline devnets
// run the real engine end to end.
func Generate(path string, s Shape, q Quant, seed uint64) error {
	w := gguf.NewWriter()
	w.Str("general.architecture", s.Arch)
	w.Str("general.name", fmt.Sprintf("agora-untrained-%s-%d (random weights, seed %d)", s.Arch, s.Dim, seed))
	w.U32("general.alignment", gguf.DefaultAlignment)
	a := s.Arch + "."
	w.U32(a+"context_length", uint32(s.Context))
	w.U32(a+"embedding_length", uint32(s.Dim))
	w.U32(a+"block_count", uint32(s.Layers))
	w.U32(a+"feed_forward_length", uint32(s.Hidden))
	w.U32(a+"attention.head_count", uint32(s.Heads))
	w.U32(a+"attention.head_count_kv", uint32(s.KVHeads))
	w.F32(a+"rope.freq_base", s.RopeBase)
	w.F32(a+"attention.layer_norm_rms_epsilon", 1e-5)
	w.U32(a+"rope.dimension_count", uint32(s.Dim/s.Heads))
	vocab, err := writeTokenizer(w, s)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(seed, seed+1))
	layer := -1
	weight := func(name string, rows, cols int, gain float64) error {
		vals := make([]float32, rows*cols)
		lim := gain * math.Sqrt(3/float64(cols))
		for i := range vals {
			vals[i] = float32(float64(rng.Float64()*2-1) * lim) // conversions: no arm64 fused multiply-add
		}
		output := name == "output.weight" || (s.Tied && name == "token_embd.weight")
		typ, err := q.tensorType(name, layer, s.Layers, cols, output)
		if err != nil {
			return err
		}
		return addTyped(w, name, typ, rows, cols, vals)
	}
	norm := func(name string, n int) error {
		vals := make([]float32, n)
		for i := range vals {
			vals[i] = float32(1 + float64((rng.Float64()-0.5)*0.2))
		}
		return addTensor(w, name, QuantF32, 1, n, vals)
	}
	hd := s.Dim / s.Heads
	kvDim := s.KVHeads * hd
	// Embeddings and the output head get a larger scale than the blocks so
	// the random model's next-token distribution is peaked but varied, which
	// makes greedy comparisons against the reference meaningful.
	// With a tied head, large embeddings would keep the residual stream close
	// to the input token's own embedding and the model would echo it, so tied
	// shapes get small embeddings and let the blocks dominate.
	embedLimit := 1.7
	if s.Tied {
		embedLimit = 0.2
	}
	if err := weight("token_embd.weight", vocab, s.Dim, embedLimit*math.Sqrt(float64(s.Dim)/3)); err != nil {
		return err
	}
	for l := range s.Layers {
		layer = l
		p := fmt.Sprintf("blk.%d.", l)
		for _, t := range []struct {
			name       string
			rows, cols int
		}{{"attn_q", s.Dim, s.Dim}, {"attn_k", kvDim, s.Dim}, {"attn_v", kvDim, s.Dim}, {"attn_output", s.Dim, s.Dim},
			{"ffn_gate", s.Hidden, s.Dim}, {"ffn_up", s.Hidden, s.Dim}, {"ffn_down", s.Dim, s.Hidden}} {
			if err := weight(p+t.name+".weight", t.rows, t.cols, 1); err != nil {
				return err
			}
		}
		if s.Arch == "qwen2" {
			for _, b := range []struct {
				name string
				n    int
			}{{"attn_q.bias", s.Dim}, {"attn_k.bias", kvDim}, {"attn_v.bias", kvDim}} {
				vals := make([]float32, b.n)
				for i := range vals {
					vals[i] = float32(float64(rng.Float64()-0.5) * 0.2)
				}
				if err := addTensor(w, p+b.name, QuantF32, 1, b.n, vals); err != nil {
					return err
				}
			}
		}
		if err := norm(p+"attn_norm.weight", s.Dim); err != nil {
			return err
		}
		if err := norm(p+"ffn_norm.weight", s.Dim); err != nil {
			return err
		}
	}
	if err := norm("output_norm.weight", s.Dim); err != nil {
		return err
	}
	layer = -1
	if !s.Tied {
		if err := weight("output.weight", vocab, s.Dim, 3); err != nil {
			return err
		}
	}
	return w.WriteFile(path)
}

// addTensor stores vals as the type q gives a matrix outside the blocks
// that is not the output head.
func addTensor(w *gguf.Writer, name string, q Quant, rows, cols int, vals []float32) error {
	typ, err := q.tensorType(name, -1, 0, cols, false)
	if err != nil {
		return err
	}
	return addTyped(w, name, typ, rows, cols, vals)
}

// quantizers packs rows (whole blocks) of each quantized type.
var quantizers = map[gguf.TensorType]func([]float32) []byte{
	gguf.Q8_0: QuantizeQ8_0, gguf.Q4_0: QuantizeQ4_0, gguf.Q5_0: QuantizeQ5_0,
	gguf.Q4_K: QuantizeQ4_K, gguf.Q5_K: QuantizeQ5_K, gguf.Q6_K: QuantizeQ6_K, gguf.Q8_K: QuantizeQ8_K,
}

// addTyped stores vals (rows × cols) as type t.
func addTyped(w *gguf.Writer, name string, t gguf.TensorType, rows, cols int, vals []float32) error {
	dims := []uint64{uint64(cols)}
	if rows > 1 {
		dims = append(dims, uint64(rows))
	}
	switch t {
	case gguf.F32:
		b := make([]byte, 4*len(vals))
		for i, v := range vals {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
		return w.Tensor(name, gguf.F32, dims, b)
	case gguf.F16:
		b := make([]byte, 2*len(vals))
		for i, v := range vals {
			binary.LittleEndian.PutUint16(b[2*i:], f32ToF16(v))
		}
		return w.Tensor(name, gguf.F16, dims, b)
	}
	quantize, ok := quantizers[t]
	if !ok {
		return fmt.Errorf("tensor %s: cannot write type %s", name, t)
	}
	elems, _, _ := t.BlockSize()
	if cols%elems != 0 {
		return fmt.Errorf("tensor %s: %d columns are not a multiple of the %s block %d", name, cols, t, elems)
	}
	return w.Tensor(name, t, dims, quantize(vals))
}

// trainMerges learns n BPE merges over words (each a list of symbols),
// deterministically: the most frequent pair wins, ties by the pair's text.
func trainMerges(words [][]string, n int) [][2]string {
	var merges [][2]string
	for len(merges) < n {
		counts := map[[2]string]int{}
		for _, w := range words {
			for i := 0; i+1 < len(w); i++ {
				counts[[2]string{w[i], w[i+1]}]++
			}
		}
		var best [2]string
		bestN := 0
		for p, c := range counts {
			if c > bestN || (c == bestN && p[0]+" "+p[1] < best[0]+" "+best[1]) {
				best, bestN = p, c
			}
		}
		if bestN < 2 {
			break
		}
		merges = append(merges, best)
		for wi, w := range words {
			var out []string
			for i := 0; i < len(w); i++ {
				if i+1 < len(w) && w[i] == best[0] && w[i+1] == best[1] {
					out = append(out, w[i]+w[i+1])
					i++
				} else {
					out = append(out, w[i])
				}
			}
			words[wi] = out
		}
	}
	return merges
}

func writeTokenizer(w *gguf.Writer, s Shape) (int, error) {
	var tokens []string
	var types []int32
	var scores []float32
	add := func(t string, typ int32, score float32) {
		tokens = append(tokens, t)
		types = append(types, typ)
		scores = append(scores, score)
	}
	switch s.Tokenizer {
	case BPE:
		pre := s.Pre
		if pre == "" {
			pre = PreGPT2
		}
		specials := []string{"<|endoftext|>", "<|im_start|>", "<|im_end|>"}
		bos, eos := 0, 2 // <|im_end|> ends a ChatML turn
		if s.Chat == Llama3 {
			specials = []string{"<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"}
			bos, eos = 0, 1
		}
		for _, sp := range specials {
			add(sp, tokControl, 0)
		}
		for b := range 256 {
			add(string(byteToRune[b]), tokNormal, 0)
		}
		var words [][]string
		for _, word := range preTokenize(pre, corpus) {
			var syms []string
			for _, r := range unicodeFromBytes(word) {
				syms = append(syms, string(r))
			}
			words = append(words, syms)
		}
		merges := trainMerges(words, max(0, min(s.Vocab, 4096)-len(tokens)))
		var mergeStrs []string
		seen := map[string]bool{}
		for _, t := range tokens {
			seen[t] = true
		}
		for _, m := range merges {
			mergeStrs = append(mergeStrs, m[0]+" "+m[1])
			if !seen[m[0]+m[1]] {
				add(m[0]+m[1], tokNormal, 0)
				seen[m[0]+m[1]] = true
			}
		}
		w.Str("tokenizer.ggml.model", string(BPE))
		w.Str("tokenizer.ggml.pre", string(pre))
		w.Strs("tokenizer.ggml.merges", mergeStrs)
		w.U32("tokenizer.ggml.bos_token_id", uint32(bos))
		w.U32("tokenizer.ggml.eos_token_id", uint32(eos))
		switch {
		case s.Chat == Llama3:
			w.Bool("tokenizer.ggml.add_bos_token", true)
			w.Str("tokenizer.chat_template", llama3Jinja)
		case pre == PreSmolLM:
			w.Bool("tokenizer.ggml.add_bos_token", false)
			w.Str("tokenizer.chat_template", smolLM2Jinja)
		default:
			w.Bool("tokenizer.ggml.add_bos_token", false)
			w.Str("tokenizer.chat_template", chatMLJinja)
		}
	case SentencePiece:
		add("<unk>", tokUnknown, 0)
		add("<s>", tokControl, 0)
		add("</s>", tokControl, 0)
		for b := range 256 {
			add(fmt.Sprintf("<0x%02X>", b), tokByte, 0)
		}
		text := "▁" + strings.ReplaceAll(strings.Join(strings.Fields(corpus), " "), " ", "▁")
		var words [][]string
		for _, word := range strings.SplitAfter(text, " ") {
			var syms []string
			for _, r := range word {
				syms = append(syms, string(r))
			}
			words = append(words, syms)
		}
		// Single characters of the corpus are pieces too (so text needs no byte fallback).
		var chars []string
		seen := map[string]bool{}
		for _, r := range text {
			if !seen[string(r)] {
				seen[string(r)] = true
				chars = append(chars, string(r))
			}
		}
		slices.Sort(chars)
		for _, c := range chars {
			add(c, tokNormal, -1000)
		}
		merges := trainMerges(words, max(0, s.Vocab-len(tokens)))
		for i, m := range merges {
			if p := m[0] + m[1]; !seen[p] {
				seen[p] = true
				add(p, tokNormal, -float32(i))
			}
		}
		w.Str("tokenizer.ggml.model", string(SentencePiece))
		w.U32("tokenizer.ggml.bos_token_id", 1)
		w.U32("tokenizer.ggml.eos_token_id", 2)
		w.Bool("tokenizer.ggml.add_bos_token", true)
		w.Str("tokenizer.chat_template", "{% if messages[0]['role'] == 'system' %}[INST] <<SYS>>{% endif %}")
	default:
		return 0, fmt.Errorf("unknown tokenizer %q", s.Tokenizer)
	}
	for i := len(tokens); i < s.Vocab; i++ {
		add(fmt.Sprintf("<|unused_%d|>", i), tokUnused, -1e9)
	}
	w.Strs("tokenizer.ggml.tokens", tokens)
	w.I32s("tokenizer.ggml.token_type", types)
	w.F32s("tokenizer.ggml.scores", scores)
	return len(tokens), nil
}
