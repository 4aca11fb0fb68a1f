package engine

import (
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

var roundTripTexts = []string{
	"Hello world",
	"héllo wörld 日本語 🙂",
	"  leading spaces and\ttabs\n\nnewlines ",
	"It's 2026; we're HERE!! (ok?)",
	"\r\n\u00a0x\u3000y",
	"",
}

func TestTokenizerRoundTrip(t *testing.T) {
	for _, shape := range []string{"tiny", "tiny-qwen2", "tiny-llama3", "tiny-spm"} {
		m, _ := genModel(t, shape, QuantF32, 1)
		tok := m.Tokenizer()
		for _, s := range roundTripTexts {
			ids := tok.Encode(s, false, false)
			if got := tok.Decode(ids); got != s {
				t.Errorf("%s: Decode(Encode(%q)) = %q (ids %v)", shape, s, got, ids)
			}
			// Streaming pieces concatenate to the same text (after the
			// first token, where SentencePiece drops its added space).
			if tok.Kind == BPE {
				var b strings.Builder
				for _, id := range ids {
					b.WriteString(tok.Piece(id))
				}
				if b.String() != s {
					t.Errorf("%s: pieces of %q spell %q", shape, s, b.String())
				}
			}
		}
	}
}

func TestPreTokenizersGolden(t *testing.T) {
	cases := []struct {
		pre  PreTokenizer
		in   string
		want []string
	}{
		{PreGPT2, "Hello  world's 42 times!\n\nok", []string{"Hello", " ", " world", "'s", " 42", " times", "!", "\n", "\n", "ok"}},
		{PreGPT2, "(hello) IT'S", []string{"(", "hello", ")", " IT", "'", "S"}},
		{PreGPT2, "end  ", []string{"end", "  "}},
		{PreSmolLM, "abc123 def 4", []string{"abc", "1", "2", "3", " def", " ", "4"}},
		{PreLlama3, "Hello  world's 12345 times!!\n\n  ok", []string{"Hello", " ", " world", "'s", " ", "123", "45", " times", "!!\n\n", " ", " ok"}},
		{PreLlama3, "(hello) IT'S", []string{"(hello", ")", " IT", "'S"}},
		{PreLlama3, "a\n\n  b", []string{"a", "\n\n", " ", " b"}},
		{PreQwen2, "x 2026!", []string{"x", " ", "2", "0", "2", "6", "!"}},
		{PreQwen2, "日本語 🙂", []string{"日本語", " 🙂"}},
		// llama.cpp reads U+3000 as whitespace, never as part of DeepSeek's
		// CJK range U+0800-U+4E00 (Hugging Face's regex would split it off).
		// Expected splits are llama.cpp's (tools/tokgolden/split.cpp).
		{PreDeepSeekCoder, "x\u3000z", []string{"x", "\u3000z"}},
		{PreDeepSeekLLM, "naïve 12 ab  \u3000、 🙂 ", []string{"na", "ï", "ve", " ", "12", " ab", "  ", "\u3000", "、", " 🙂", " "}},
		{PreDeepSeekLLM, "Ελλάδα 日本 ok", []string{"Ελλάδα", " ", "日本", " ok"}},
	}
	for _, c := range cases {
		if got := preTokenize(c.pre, c.in); !slices.Equal(got, c.want) {
			t.Errorf("%s %q:\n got %q\nwant %q", c.pre, c.in, got, c.want)
		}
	}
}

// TestPreTokenizerNames checks tokenizer.ggml.pre names against llama.cpp's
// grouping (llama_vocab::load): the split and whether merges are skipped
// for a word that is a token.
func TestPreTokenizerNames(t *testing.T) {
	for _, c := range []struct {
		name  string
		pre   PreTokenizer
		whole bool
	}{
		{"llama-bpe", PreLlama3, true}, {"llama3", PreLlama3, true}, {"falcon3", PreLlama3, true},
		{"dbrx", PreLlama3, false}, {"smaug-bpe", PreLlama3, false}, {"glm4", PreLlama3, false},
		{"qwen2", PreQwen2, false}, {"hunyuan", PreQwen2, false}, {"stablelm2", PreQwen2, false},
		{"deepseek-v3", PreDeepSeek3, false}, {"hunyuan-dense", PreDeepSeek3, false},
		{"deepseek-coder", PreDeepSeekCoder, false}, {"deepseek-llm", PreDeepSeekLLM, false},
		{"smollm", PreSmolLM, false}, {"starcoder", PreSmolLM, false},
		{"gpt-2", PreGPT2, false}, {"", PreDefault, false}, {"default", PreDefault, false}, {"no-such-pre", PreGPT2, false},
	} {
		if pre, whole := preTokenizerFor(c.name), ignoresMerges(c.name); pre != c.pre || whole != c.whole {
			t.Errorf("%q: %s ignore_merges %v, want %s %v", c.name, pre, whole, c.pre, c.whole)
		}
	}
}

func TestTokenizerGolden(t *testing.T) {
	bpe, _ := genModel(t, "tiny", QuantF32, 1)
	tok := bpe.Tokenizer()
	// " the" is the corpus's commonest word: BPE learns it as one token.
	if ids := tok.Encode(" the", false, false); len(ids) != 1 || tok.Token(ids[0]) != "Ġthe" {
		t.Fatalf(`" the" → %v`, ids)
	}
	// A byte with no merges is its byte-to-unicode character: "\n" is Ċ.
	if ids := tok.Encode("\n", false, false); len(ids) != 1 || tok.Token(ids[0]) != "Ċ" {
		t.Fatalf(`"\n" → %v`, ids)
	}
	// Special tokens only when asked for.
	im, _ := tok.ID("<|im_start|>")
	if ids := tok.Encode("<|im_start|>user", true, false); ids[0] != im || tok.Decode(ids) != "user" {
		t.Fatalf("special token not parsed: %v", ids)
	}
	if ids := tok.Encode("<|im_start|>", false, false); slices.Contains(ids, im) {
		t.Fatal("special token parsed from plain text")
	}

	spm, _ := genModel(t, "tiny-spm", QuantF32, 1)
	st := spm.Tokenizer()
	if ids := st.Encode("the", false, true); len(ids) != 2 || ids[0] != st.BOS || st.Token(ids[1]) != "▁the" {
		t.Fatalf(`SPM "the" → %v`, ids)
	}
	// A character outside the vocabulary falls back to its UTF-8 bytes:
	// 日 is E6 97 A5.
	ids := st.Encode("日", false, false)
	var names []string
	for _, id := range ids {
		names = append(names, st.Token(id))
	}
	if !slices.Equal(names, []string{"▁", "<0xE6>", "<0x97>", "<0xA5>"}) {
		t.Fatalf("byte fallback: %q", names)
	}
	// SentencePiece prefixes a space after a special token too (as
	// llama.cpp does), so "<s>[INST]" encodes like the chat template expects.
	ids = st.Encode("<s>the", true, false)
	if ids[0] != st.BOS || st.Token(ids[1]) != "▁the" {
		t.Fatalf("after special: %v", ids)
	}

	l3, _ := genModel(t, "tiny-llama3", QuantF32, 1)
	lt := l3.Tokenizer()
	if ids := lt.Encode("hi", false, true); ids[0] != lt.BOS {
		t.Fatalf("llama3 adds BOS: %v", ids)
	}
	if eot, _ := lt.ID("<|eot_id|>"); lt.EOT != eot || !lt.IsStop(eot) || !lt.IsStop(lt.EOS) {
		t.Fatalf("llama3 stop tokens: eot %d eos %d", lt.EOT, lt.EOS)
	}
}

func TestChatTemplates(t *testing.T) {
	msgs := []Message{{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello."}, {"user", "Bye"}}
	golden := map[ChatTemplate]string{
		ChatML: "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n",
		Llama3: "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
		Llama2: "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello. </s><s>[INST] Bye [/INST]",
		NoChat: "system: Be brief.\nuser: Hi\nassistant: Hello.\nuser: Bye\nassistant: ",
	}
	for tmpl, want := range golden {
		got, err := tmpl.Render(msgs)
		if err != nil || got != want {
			t.Errorf("%s:\n got %q\nwant %q (%v)", tmpl, got, want, err)
		}
	}
	if _, err := Llama2.Render([]Message{{"user", "a"}, {"user", "b"}}); err == nil {
		t.Error("llama2 accepted two user turns in a row")
	}
	// The family comes from each model's own metadata.
	for shape, want := range map[string]ChatTemplate{"tiny": ChatML, "tiny-qwen2": ChatML, "tiny-llama3": Llama3, "tiny-spm": Llama2} {
		m, _ := genModel(t, shape, QuantF32, 1)
		if m.Template() != want {
			t.Errorf("%s: template %s, want %s", shape, m.Template(), want)
		}
		ids, err := m.EncodeChat([]Message{{"user", "Hi"}})
		if err != nil {
			t.Fatal(err)
		}
		text, _ := m.Tokenizer().ApplyChatTemplate([]Message{{"user", "Hi"}})
		if !slices.Equal(ids, m.Tokenizer().Encode(text, true, want == ChatML)) {
			t.Errorf("%s: EncodeChat differs from encoding the rendered template", shape)
		}
		// Exactly one BOS, and the template's markers are single tokens.
		if want == Llama3 || want == Llama2 {
			if ids[0] != m.Tokenizer().BOS || slices.Contains(ids[1:], m.Tokenizer().BOS) {
				t.Errorf("%s: BOS placement %v", shape, ids)
			}
		}
		if want == ChatML {
			if im, _ := m.Tokenizer().ID("<|im_start|>"); ids[0] != im {
				t.Errorf("%s: chat encoding starts with %d", shape, ids[0])
			}
		}
	}
}

func TestDefaultSystemPrompt(t *testing.T) {
	qwen := "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}{%- endif %}{% if messages[0]['role'] != 'system' %}{% endif %}"
	cases := map[string]string{
		smolLM2Jinja: "You are a helpful AI assistant named SmolLM, trained by Hugging Face",
		qwen:         "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
		chatMLJinja:  "",
		llama3Jinja:  "",
	}
	for jinja, want := range cases {
		if got := defaultSystemPrompt(jinja); got != want {
			t.Errorf("default system prompt %q, want %q", got, want)
		}
	}
	tok := &Tokenizer{template: ChatML, defaultSystem: "Be nice."}
	got, _ := tok.ApplyChatTemplate([]Message{{"user", "Hi"}})
	if want := "<|im_start|>system\nBe nice.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"; got != want {
		t.Errorf("with default system:\n got %q\nwant %q", got, want)
	}
	got, _ = tok.ApplyChatTemplate([]Message{{"system", "S"}, {"user", "Hi"}})
	if strings.Contains(got, "Be nice.") {
		t.Error("default system prompt added despite a system message")
	}
}

func fuzzTokenizers(f *testing.F) []*Tokenizer {
	dir := f.TempDir()
	var toks []*Tokenizer
	for _, shape := range []string{"tiny", "tiny-qwen2", "tiny-llama3", "tiny-spm"} {
		p := filepath.Join(dir, shape+".gguf")
		if err := Generate(p, Shapes[shape], QuantF32, 1); err != nil {
			f.Fatal(err)
		}
		m, err := Load(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Cleanup(func() { m.Close() })
		toks = append(toks, m.Tokenizer())
	}
	return toks
}

func FuzzTokenizerRoundTrip(f *testing.F) {
	toks := fuzzTokenizers(f)
	for _, s := range roundTripTexts {
		f.Add(s)
	}
	f.Add("<|im_start|>user\nhi<|im_end|>")
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		for _, tok := range toks {
			ids := tok.Encode(s, false, false)
			if got := tok.Decode(ids); got != s {
				t.Fatalf("%s/%s: round trip of %q gave %q", tok.Kind, tok.pre, s, got)
			}
			_ = tok.Encode(s, true, true)
		}
		for _, pre := range []PreTokenizer{PreGPT2, PreSmolLM, PreLlama3, PreQwen2, PreDeepSeek3, PreDeepSeekCoder, PreDeepSeekLLM} {
			words := preTokenize(pre, s)
			if strings.Join(words, "") != s || slices.Contains(words, "") {
				t.Fatalf("%s split %q into %q", pre, s, words)
			}
		}
	})
}

// FuzzDecode feeds the decoders arbitrary token ids: never a panic, and
// Decode is the concatenation of the pieces (for byte-level BPE).
func FuzzDecode(f *testing.F) {
	toks := fuzzTokenizers(f)
	f.Add([]byte{0, 1, 2, 3, 200, 255})
	f.Add([]byte{7, 7, 7})
	f.Fuzz(func(t *testing.T, b []byte) {
		ids := make([]int, 0, len(b)/2+1)
		for i := 0; i+1 < len(b); i += 2 {
			ids = append(ids, int(int16(uint16(b[i])|uint16(b[i+1])<<8)))
		}
		for _, tok := range toks {
			text := tok.Decode(ids)
			if tok.Kind != BPE {
				continue
			}
			var sb strings.Builder
			for _, id := range ids {
				sb.WriteString(tok.Piece(id))
			}
			if sb.String() != text {
				t.Fatalf("pieces %q, decode %q", sb.String(), text)
			}
		}
	})
}

// goldenVocab is one engine/testdata/tokenizer file, written by
// tools/tokgolden from a real vocabulary: the part of the vocabulary the
// golden texts reach, with the real ids, and the ids llama.cpp produced for
// each text (Reference), cross-checked with a JavaScript tokenizer
// (JSReference; its ids and words stay in a case only where they differ).
type goldenVocab struct {
	Name        string        `json:"name"`
	Model       TokenizerKind `json:"model"`
	Pre         string        `json:"pre"`
	VocabSize   int           `json:"vocab_size"`
	Source      string        `json:"source"`
	Reference   string        `json:"reference"`
	JSReference string        `json:"js_reference"`
	Tokens      [][2]any      `json:"tokens"` // [id, text]
	Scores      [][2]float64  `json:"scores"` // [id, score], SentencePiece
	Merges      []string      `json:"merges"` // in rank order
	Cases       []goldenCase  `json:"cases"`
}

type goldenCase struct {
	Text  string   `json:"text"`
	IDs   []int    `json:"ids"`
	Words []string `json:"words"` // llama.cpp's pre-tokenizer split, byte-level (BPE only)
	// Where the JavaScript reference disagrees with llama.cpp.
	JSIDs   []int    `json:"js_ids"`
	JSWords []string `json:"js_words"`
}

func loadGolden(t *testing.T, path string) (goldenVocab, *Tokenizer) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var g goldenVocab
	if err := json.NewDecoder(zr).Decode(&g); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	// Ids the golden texts never reach are unused fillers, so every kept
	// token sits at its real id.
	tokens := make([]string, g.VocabSize)
	types := make([]int32, g.VocabSize)
	for i := range types {
		types[i] = tokUnused
	}
	for _, e := range g.Tokens {
		id, text := int(e[0].(float64)), e[1].(string)
		tokens[id], types[id] = text, tokNormal
		if _, ok := byteToken(text); ok && g.Model == SentencePiece {
			types[id] = tokByte
		}
	}
	var scores []float32
	if g.Model == SentencePiece {
		scores = make([]float32, g.VocabSize)
		for _, e := range g.Scores {
			scores[int(e[0])] = float32(e[1])
		}
	}
	return g, NewTokenizer(g.Model, g.Pre, tokens, scores, types, g.Merges, -1, -1, false)
}

// TestTokenizerGoldenIDs checks each pre-tokenizer and merge loop against
// the token ids and split llama.cpp recorded over real vocabularies
// (tools/tokgolden; each file names the llama.cpp build and the vocabulary's
// package and version).
func TestTokenizerGoldenIDs(t *testing.T) {
	files, err := filepath.Glob("testdata/tokenizer/*.json.gz")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	want := map[string]PreTokenizer{
		"gpt2": PreGPT2, "smollm": PreSmolLM, "llama3": PreLlama3, "qwen2": PreQwen2,
		"deepseek-v3": PreDeepSeek3, "deepseek-coder": PreDeepSeekCoder, "deepseek-llm": PreDeepSeekLLM, "llama2-spm": "", "default": PreDefault,
	}
	seen := map[string]bool{}
	for _, path := range files {
		g, tok := loadGolden(t, path)
		seen[g.Name] = true
		t.Run(g.Name, func(t *testing.T) {
			if pre, ok := want[g.Name]; !ok || tok.pre != pre {
				t.Fatalf("%s: pre-tokenizer %q from %q, want %q", g.Name, tok.pre, g.Pre, pre)
			}
			if len(g.Cases) < 30 {
				t.Fatalf("only %d golden cases", len(g.Cases))
			}
			if !strings.HasPrefix(g.Reference, "llama.cpp ") {
				t.Errorf("recorded by %q, not llama.cpp", g.Reference)
			}
			for _, c := range g.Cases {
				// The split itself, so a vocabulary that happens to hide a
				// wrong split (Qwen2 has no multi-digit tokens) still checks it.
				if g.Model == BPE {
					var words []string
					for _, w := range preTokenize(tok.pre, c.Text) {
						words = append(words, unicodeFromBytes(w))
					}
					if !slices.Equal(words, c.Words) {
						t.Errorf("%q split:\n got %q\nwant %q", c.Text, words, c.Words)
					}
				}
				got := tok.Encode(c.Text, false, false)
				if !slices.Equal(got, c.IDs) {
					t.Errorf("%q (%s):\n got %v %q\nwant %v %q", c.Text, g.Source, got, pieces(tok, got), c.IDs, pieces(tok, c.IDs))
					continue
				}
				if dec := tok.Decode(got); dec != c.Text {
					t.Errorf("%q decodes to %q", c.Text, dec)
				}
			}
		})
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("golden file for %s missing", name)
		}
	}
}

func pieces(tok *Tokenizer, ids []int) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = tok.Token(id)
	}
	return out
}
