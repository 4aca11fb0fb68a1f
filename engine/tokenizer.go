package engine

import (
	"container/heap"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/agoranet/agora/engine/gguf"
)

// TokenizerKind is the vocabulary's algorithm, from tokenizer.ggml.model.
type TokenizerKind string

// Tokenizer kinds.
const (
	BPE           TokenizerKind = "gpt2"  // byte-level BPE (GPT-2, Llama-3, SmolLM, Qwen2)
	SentencePiece TokenizerKind = "llama" // SentencePiece with scores and byte fallback (Llama-2)
)

// PreTokenizer is how byte-level BPE splits text into words before merging,
// from tokenizer.ggml.pre (llama.cpp's names).
type PreTokenizer string

// Pre-tokenizers implemented natively (Go's regexp has no lookahead, so each
// is a hand-written scanner equivalent to the model's regex).
const (
	PreGPT2   PreTokenizer = "gpt2"      // 's|'t|…| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
	PreSmolLM PreTokenizer = "smollm"    // every digit alone, then GPT-2
	PreLlama3 PreTokenizer = "llama-bpe" // (?i:'s|…)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
	PreQwen2  PreTokenizer = "qwen2"     // as Llama-3 but one digit per word

	// DeepSeek-V3: \p{N}{1,3}, then kana/CJK runs, then a Llama-3-like split
	// with ASCII punctuation glued to the letters after it.
	PreDeepSeek3 PreTokenizer = "deepseek-v3"
	// DeepSeek-Coder: [\r\n], \s?\p{L}+, \s?\p{P}+, CJK/Hangul runs, \p{N}.
	PreDeepSeekCoder PreTokenizer = "deepseek-coder"
	// DeepSeek-LLM: [\r\n], \s?[Latin/Greek/Cyrillic/… letters]+,
	// \s?[ASCII and fullwidth punctuation, ASCII letters]+, \s+$, CJK/Hangul
	// runs, \p{N}+.
	PreDeepSeekLLM PreTokenizer = "deepseek-llm"
	// llama.cpp's default, for a BPE vocabulary with no (or a "default")
	// tokenizer.ggml.pre: [\p{P}$+<=>^~|]+, then GPT-2's split, then \p{N}+,
	// then [0-9]{3}.
	PreDefault PreTokenizer = "default"
)

// preTokenizerFor maps tokenizer.ggml.pre to an implementation, grouping
// the names as llama.cpp's llama_vocab::load does (names that share a
// regex list share an implementation); a missing or "default" name gets
// llama.cpp's default split, and names llama.cpp does not know (it refuses
// them) GPT-2's, the common ancestor.
func preTokenizerFor(name string) PreTokenizer {
	switch name {
	case "", "default":
		return PreDefault
	case "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano",
		"dbrx", "smaug-bpe", "chatglm-bpe", "glm4":
		return PreLlama3
	case "qwen2", "stablelm2", "deepseek-r1-qwen", "megrez", "hunyuan", "kormo", "f2llmv2", "solar-open":
		return PreQwen2
	case "deepseek-v3", "hunyuan-dense", "joyai-llm", "hy_v4":
		return PreDeepSeek3
	case "deepseek-coder":
		return PreDeepSeekCoder
	case "deepseek-llm":
		return PreDeepSeekLLM
	case "smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b", "mellum2":
		return PreSmolLM
	default:
		return PreGPT2
	}
}

// ignoresMerges reports whether llama.cpp sets ignore_merges for a
// tokenizer.ggml.pre: a word that is itself a token is taken whole, before
// any merge (Llama-3's family; DBRX, Smaug and GLM-4 share its split but
// merge as usual).
func ignoresMerges(name string) bool {
	switch name {
	case "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano":
		return true
	}
	return false
}

// Token types from tokenizer.ggml.token_type.
const (
	tokNormal  = 1
	tokUnknown = 2
	tokControl = 3
	tokUser    = 4
	tokUnused  = 5
	tokByte    = 6
)

// Tokenizer turns text into token ids and back. It is immutable after
// loading and safe for concurrent use.
type Tokenizer struct {
	Kind    TokenizerKind
	pre     PreTokenizer
	tokens  []string
	scores  []float32
	types   []int32
	ids     map[string]int
	ranks   map[[2]string]int // BPE merge (left, right) → rank
	whole   bool              // BPE takes a word that is a token whole (llama.cpp's ignore_merges)
	special map[byte][]int    // control/user tokens by first byte, longest first
	BOS     int
	EOS     int
	EOT     int // end of turn (chat); −1 if none
	UNK     int
	addBOS  bool
	noSpace bool     // SentencePiece without add_space_prefix
	bytes   [256]int // SentencePiece <0xXX> tokens

	template      ChatTemplate
	defaultSystem string // system prompt the chat template adds when none is given
}

func tokenizerFromGGUF(g *gguf.File) (*Tokenizer, error) {
	model, ok := g.String("tokenizer.ggml.model")
	if !ok {
		return nil, errors.New("tokenizer.ggml.model missing")
	}
	tokens, ok := g.Strings("tokenizer.ggml.tokens")
	if !ok || len(tokens) == 0 {
		return nil, errors.New("tokenizer.ggml.tokens missing")
	}
	t := &Tokenizer{Kind: TokenizerKind(model), tokens: tokens, BOS: -1, EOS: -1, EOT: -1, UNK: -1}
	if v, ok := g.Get("tokenizer.ggml.scores"); ok && len(v.Array) == len(tokens) {
		t.scores = make([]float32, len(tokens))
		for i, e := range v.Array {
			t.scores[i] = float32(e.F)
		}
	}
	if v, ok := g.Get("tokenizer.ggml.token_type"); ok && len(v.Array) == len(tokens) {
		t.types = make([]int32, len(tokens))
		for i, e := range v.Array {
			t.types[i] = int32(e.I)
		}
	}
	var merges []string
	switch t.Kind {
	case BPE:
		if merges, ok = g.Strings("tokenizer.ggml.merges"); !ok {
			return nil, errors.New("tokenizer.ggml.merges missing for a gpt2 tokenizer")
		}
		pre, _ := g.String("tokenizer.ggml.pre")
		t.pre, t.whole = preTokenizerFor(pre), ignoresMerges(pre)
	case SentencePiece:
		if v, ok := g.Get("tokenizer.ggml.add_space_prefix"); ok && v.Type == gguf.TypeBool {
			t.noSpace = !v.B
		}
	default:
		return nil, fmt.Errorf("tokenizer %q not supported (gpt2, llama)", model)
	}
	for _, f := range []struct {
		key string
		dst *int
	}{{"tokenizer.ggml.bos_token_id", &t.BOS}, {"tokenizer.ggml.eos_token_id", &t.EOS},
		{"tokenizer.ggml.eot_token_id", &t.EOT}, {"tokenizer.ggml.unknown_token_id", &t.UNK}} {
		if v, ok := g.Uint(f.key); ok && v < uint64(len(tokens)) {
			*f.dst = int(v)
		}
	}
	if v, ok := g.Get("tokenizer.ggml.add_bos_token"); ok && v.Type == gguf.TypeBool {
		t.addBOS = v.B
	} else {
		t.addBOS = t.Kind == SentencePiece
	}
	t.init(merges)
	return t, nil
}

// NewTokenizer builds a tokenizer from its parts (what GGUF metadata holds);
// pre is tokenizer.ggml.pre for BPE vocabularies.
func NewTokenizer(kind TokenizerKind, pre string, tokens []string, scores []float32, types []int32, merges []string, bos, eos int, addBOS bool) *Tokenizer {
	t := &Tokenizer{Kind: kind, tokens: tokens, scores: scores, types: types, BOS: bos, EOS: eos, EOT: -1, UNK: -1, addBOS: addBOS}
	if kind == BPE {
		t.pre, t.whole = preTokenizerFor(pre), ignoresMerges(pre)
	}
	t.init(merges)
	return t
}

func (t *Tokenizer) init(merges []string) {
	t.ids = make(map[string]int, len(t.tokens))
	for i, s := range t.tokens {
		if _, dup := t.ids[s]; !dup {
			t.ids[s] = i
		}
	}
	t.ranks = make(map[[2]string]int, len(merges))
	for i, m := range merges {
		// A merge is "left right"; the left part never holds a space
		// (byte-level BPE writes spaces as Ġ).
		if l, r, ok := strings.Cut(m, " "); ok {
			if _, dup := t.ranks[[2]string{l, r}]; !dup {
				t.ranks[[2]string{l, r}] = i
			}
		}
	}
	for i := range t.bytes {
		t.bytes[i] = -1
		if id, ok := t.ids[fmt.Sprintf("<0x%02X>", i)]; ok {
			t.bytes[i] = id
		}
	}
	t.special = map[byte][]int{}
	for i, s := range t.tokens {
		if t.types != nil && (t.types[i] == tokControl || t.types[i] == tokUser) && s != "" && t.ids[s] == i {
			t.special[s[0]] = append(t.special[s[0]], i)
		}
	}
	for _, list := range t.special {
		// Longest first, so "<|im_start|>" wins over a shorter "<|im".
		sortStable(list, func(a, b int) bool { return len(t.tokens[a]) > len(t.tokens[b]) })
	}
	if t.UNK < 0 {
		if id, ok := t.ids["<unk>"]; ok {
			t.UNK = id
		}
	}
	for _, name := range []string{"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>"} {
		if id, ok := t.ids[name]; ok && t.EOT < 0 {
			t.EOT = id
		}
	}
}

func sortStable(x []int, less func(a, b int) bool) {
	for i := 1; i < len(x); i++ {
		for j := i; j > 0 && less(x[j], x[j-1]); j-- {
			x[j], x[j-1] = x[j-1], x[j]
		}
	}
}

// VocabSize is the number of tokens.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// Token returns a token's string as stored in the vocabulary.
func (t *Tokenizer) Token(id int) string {
	if id < 0 || id >= len(t.tokens) {
		return ""
	}
	return t.tokens[id]
}

// ID looks a token string up.
func (t *Tokenizer) ID(s string) (int, bool) {
	id, ok := t.ids[s]
	return id, ok
}

// IsStop reports whether a token ends generation (EOS or end of turn).
func (t *Tokenizer) IsStop(id int) bool { return id == t.EOS || (t.EOT >= 0 && id == t.EOT) }

// IsControl reports whether a token is a control token (BOS, EOS, chat
// markers), which decoding leaves out.
func (t *Tokenizer) IsControl(id int) bool {
	return t.types != nil && id >= 0 && id < len(t.types) && t.types[id] == tokControl
}

// Encode tokenizes text. With special, control and user-defined tokens
// written in the text (e.g. "<|im_start|>") become their ids; without, they
// are plain text. addBOS prepends the BOS token when the model wants one
// (tokenizer.ggml.add_bos_token).
func (t *Tokenizer) Encode(text string, special, addBOS bool) []int {
	var out []int
	if addBOS && t.addBOS && t.BOS >= 0 {
		out = append(out, t.BOS)
	}
	afterSpecial := true // SentencePiece prefixes a space to text at the start and after special tokens
	for len(text) > 0 {
		cut, tok := len(text), -1
		if special {
			cut, tok = t.findSpecial(text)
		}
		out = t.encodeText(out, text[:cut], afterSpecial)
		if tok < 0 {
			break
		}
		out = append(out, tok)
		afterSpecial = true
		text = text[cut+len(t.tokens[tok]):]
	}
	return out
}

// findSpecial finds the first special token in text.
func (t *Tokenizer) findSpecial(text string) (int, int) {
	for i := 0; i < len(text); i++ {
		for _, id := range t.special[text[i]] {
			if strings.HasPrefix(text[i:], t.tokens[id]) {
				return i, id
			}
		}
	}
	return len(text), -1
}

func (t *Tokenizer) encodeText(out []int, s string, afterSpecial bool) []int {
	if s == "" {
		return out
	}
	if t.Kind == BPE {
		for _, word := range preTokenize(t.pre, s) {
			out = t.bpe(out, word)
		}
		return out
	}
	if afterSpecial && !t.noSpace {
		s = " " + s
	}
	return t.spm(out, strings.ReplaceAll(s, " ", "▁"))
}

// Decode turns ids back into text. Control tokens and unknown ids are
// skipped; invalid UTF-8 in byte tokens is passed through as bytes.
func (t *Tokenizer) Decode(ids []int) string {
	var b strings.Builder
	first := true
	for _, id := range ids {
		b.WriteString(t.piece(id, first))
		// SentencePiece drops the space it added at the start of the text:
		// only the first piece after leading control tokens (BOS) is affected.
		if !t.IsControl(id) {
			first = false
		}
	}
	return b.String()
}

// piece is the text one token contributes. first drops the leading space
// SentencePiece adds to the start of a text.
func (t *Tokenizer) piece(id int, first bool) string {
	if id < 0 || id >= len(t.tokens) {
		return ""
	}
	if t.types != nil && (t.types[id] == tokControl || t.types[id] == tokUnused) {
		return ""
	}
	s := t.tokens[id]
	if t.types != nil && t.types[id] == tokUser {
		return s
	}
	if t.Kind == BPE {
		return bytesFromUnicode(s)
	}
	if b, ok := byteToken(s); ok && (t.types == nil || t.types[id] == tokByte) {
		return string([]byte{b})
	}
	s = strings.ReplaceAll(s, "▁", " ")
	if first && !t.noSpace {
		s = strings.TrimPrefix(s, " ")
	}
	return s
}

// byteToken parses SentencePiece's "<0xXX>".
func byteToken(s string) (byte, bool) {
	if len(s) != 6 || s[:3] != "<0x" || s[5] != '>' {
		return 0, false
	}
	var v byte
	for _, c := range []byte(s[3:5]) {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | (c - '0')
		case c >= 'A' && c <= 'F':
			v = v<<4 | (c - 'A' + 10)
		case c >= 'a' && c <= 'f':
			v = v<<4 | (c - 'a' + 10)
		default:
			return 0, false
		}
	}
	return v, true
}

// Piece returns the text of one token in the middle of a stream. Pieces of
// byte-level tokens may split a UTF-8 character; concatenated, they spell
// the text.
func (t *Tokenizer) Piece(id int) string { return t.piece(id, false) }

// --- GPT-2 byte-level BPE ---

var byteToRune, runeToByte = func() ([256]rune, map[rune]byte) {
	var b2r [256]rune
	r2b := map[rune]byte{}
	n := 0
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			b2r[b] = rune(b)
		} else {
			b2r[b] = rune(256 + n)
			n++
		}
		r2b[b2r[b]] = byte(b)
	}
	return b2r, r2b
}()

func unicodeFromBytes(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteRune(byteToRune[s[i]])
	}
	return b.String()
}

func bytesFromUnicode(s string) string {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if b, ok := runeToByte[r]; ok {
			out = append(out, b)
		} else {
			out = utf8.AppendRune(out, r)
		}
	}
	return string(out)
}

// --- pre-tokenizers ---

func isL(r rune) bool { return unicode.IsLetter(r) }
func isN(r rune) bool { return unicode.IsNumber(r) }
func isS(r rune) bool { return unicode.IsSpace(r) }

// preTokenize splits s into the words BPE merges within.
func preTokenize(kind PreTokenizer, s string) []string {
	var out []string
	switch kind {
	case PreSmolLM:
		// First every digit alone, then GPT-2 on the text between them.
		start := 0
		for i, r := range s {
			if isN(r) {
				out = splitWords(out, s[start:i], gpt2Word)
				out = append(out, s[i:i+utf8.RuneLen(r)])
				start = i + utf8.RuneLen(r)
			}
		}
		return splitWords(out, s[start:], gpt2Word)
	case PreLlama3:
		return splitWords(out, s, func(s string) int { return llama3Word(s, 3) })
	case PreQwen2:
		return splitWords(out, s, func(s string) int { return llama3Word(s, 1) })
	case PreDeepSeek3:
		return preDeepSeek3(out, s)
	case PreDeepSeekCoder:
		return preDeepSeekCoder(out, s)
	case PreDeepSeekLLM:
		return preDeepSeekLLM(out, s)
	case PreDefault:
		return preDefault(out, s)
	default:
		return splitWords(out, s, gpt2Word)
	}
}

// splitWords repeatedly cuts the first word (of length next(s) > 0) off s.
func splitWords(out []string, s string, next func(string) int) []string {
	for len(s) > 0 {
		n := next(s)
		if n <= 0 { // unreachable: every scanner consumes at least one rune
			_, n = utf8.DecodeRuneInString(s)
		}
		out = append(out, s[:n])
		s = s[n:]
	}
	return out
}

// runWhile returns the length of the prefix of s whose runes satisfy f.
func runWhile(s string, f func(rune) bool) int {
	for i, r := range s {
		if !f(r) {
			return i
		}
	}
	return len(s)
}

func other(r rune) bool { return !isS(r) && !isL(r) && !isN(r) }

// spaceRun matches \s+(?!\S)|\s+ at the start of s (which is whitespace):
// a run followed by more text leaves its last character to the next word.
func spaceRun(s string) int {
	n := runWhile(s, isS)
	if n == len(s) {
		return n
	}
	_, last := utf8.DecodeLastRuneInString(s[:n])
	if n-last > 0 {
		return n - last
	}
	return n
}

func contraction(s string, fold bool) int {
	if len(s) < 2 || s[0] != '\'' {
		return 0
	}
	for _, c := range []string{"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"} {
		if len(s) >= len(c) && (s[:len(c)] == c || (fold && strings.EqualFold(s[:len(c)], c))) {
			return len(c)
		}
	}
	return 0
}

// gpt2Word matches GPT-2's pattern at the start of s.
func gpt2Word(s string) int {
	if n := contraction(s, false); n > 0 {
		return n
	}
	r, size := utf8.DecodeRuneInString(s)
	lead := 0
	if r == ' ' && size < len(s) {
		if r2, size2 := utf8.DecodeRuneInString(s[size:]); !isS(r2) {
			lead, r, size = 1, r2, size2
		}
	}
	for _, class := range []func(rune) bool{isL, isN, other} {
		if class(r) {
			return lead + runWhile(s[lead:], class)
		}
	}
	return spaceRun(s)
}

// llama3Word matches the Llama-3 pattern at the start of s, with digit runs
// of at most maxDigits (Qwen2: 1).
func llama3Word(s string, maxDigits int) int {
	if n := contraction(s, true); n > 0 {
		return n
	}
	r, size := utf8.DecodeRuneInString(s)
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if isL(r) {
		return runWhile(s, isL)
	}
	if r != '\r' && r != '\n' && !isN(r) && size < len(s) {
		if r2, _ := utf8.DecodeRuneInString(s[size:]); isL(r2) {
			return size + runWhile(s[size:], isL)
		}
	}
	// \p{N}{1,maxDigits}
	if isN(r) {
		n := 0
		for i, r := range s {
			if !isN(r) || n == maxDigits {
				return i
			}
			n++
		}
		return len(s)
	}
	//  ?[^\s\p{L}\p{N}]+[\r\n]*
	lead := 0
	if r == ' ' && size < len(s) {
		if r2, _ := utf8.DecodeRuneInString(s[1:]); other(r2) {
			lead = 1
		}
	}
	if o := runWhile(s[lead:], other); o > 0 {
		n := lead + o
		return n + runWhile(s[n:], func(r rune) bool { return r == '\r' || r == '\n' })
	}
	// \s*[\r\n]+ : through the last newline of the whitespace run.
	ws := runWhile(s, isS)
	if nl := strings.LastIndexAny(s[:ws], "\r\n"); nl >= 0 {
		return nl + 1
	}
	return spaceRun(s)
}

// --- merging ---

// symbol is one piece of a word during merging, in a linked list.
type symbol struct {
	text       string
	prev, next int
}

// bigram is a candidate merge of two adjacent symbols. For BPE the lowest
// rank wins, for SentencePiece the highest score; ties go to the leftmost.
type bigram struct {
	left, right int
	text        string
	key         float64 // smaller is better
}

type bigramQueue []bigram

func (q bigramQueue) Len() int { return len(q) }
func (q bigramQueue) Less(a, b int) bool {
	return q[a].key < q[b].key || (q[a].key == q[b].key && q[a].left < q[b].left)
}
func (q bigramQueue) Swap(a, b int) { q[a], q[b] = q[b], q[a] }
func (q *bigramQueue) Push(x any)   { *q = append(*q, x.(bigram)) }
func (q *bigramQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// merge runs the greedy pairwise merge over the runes of word (the
// algorithm of llama.cpp's BPE and SentencePiece sessions) and returns the
// final pieces. key scores a candidate pair (ok false: not mergeable).
func merge(word string, key func(l, r string) (float64, bool)) []string {
	syms := make([]symbol, 0, len(word))
	for i, r := range word {
		syms = append(syms, symbol{text: word[i : i+utf8.RuneLen(r)], prev: len(syms) - 1, next: len(syms) + 1})
	}
	if len(syms) == 0 {
		return nil
	}
	syms[len(syms)-1].next = -1
	q := &bigramQueue{}
	try := func(l, r int) {
		if l < 0 || r < 0 {
			return
		}
		if k, ok := key(syms[l].text, syms[r].text); ok {
			heap.Push(q, bigram{left: l, right: r, text: syms[l].text + syms[r].text, key: k})
		}
	}
	for i := 1; i < len(syms); i++ {
		try(i-1, i)
	}
	for q.Len() > 0 {
		b := heap.Pop(q).(bigram)
		l, r := &syms[b.left], &syms[b.right]
		// Skip pairs made stale by an earlier merge.
		if l.text == "" || r.text == "" || l.next != b.right || l.text+r.text != b.text {
			continue
		}
		l.text += r.text
		r.text = ""
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = b.left
		}
		try(l.prev, b.left)
		try(b.left, l.next)
	}
	var out []string
	for i := 0; i >= 0; i = syms[i].next {
		out = append(out, syms[i].text)
	}
	return out
}

func (t *Tokenizer) bpe(out []int, word string) []int {
	u := unicodeFromBytes(word)
	// Llama-3 vocabularies take a whole word that is a token as is
	// (llama.cpp's ignore_merges).
	if t.whole {
		if id, ok := t.ids[u]; ok {
			return append(out, id)
		}
	}
	for _, p := range merge(u, func(l, r string) (float64, bool) {
		rank, ok := t.ranks[[2]string{l, r}]
		return float64(rank), ok
	}) {
		if id, ok := t.ids[p]; ok {
			out = append(out, id)
			continue
		}
		// A vocabulary without this piece still has its single bytes.
		for _, r := range p {
			if id, ok := t.ids[string(r)]; ok {
				out = append(out, id)
			}
		}
	}
	return out
}

// --- SentencePiece (llama) ---

// spm tokenizes text whose spaces are already ▁: merge the adjacent pair
// whose joined piece scores highest, then map pieces to ids, spelling
// pieces outside the vocabulary as <0xXX> bytes (or <unk>).
func (t *Tokenizer) spm(out []int, s string) []int {
	for _, p := range merge(s, func(l, r string) (float64, bool) {
		id, ok := t.ids[l+r]
		if !ok || t.scores == nil {
			return 0, false
		}
		return -float64(t.scores[id]), true
	}) {
		if id, ok := t.ids[p]; ok {
			out = append(out, id)
			continue
		}
		for i := 0; i < len(p); i++ {
			if id := t.bytes[p[i]]; id >= 0 {
				out = append(out, id)
			} else if t.UNK >= 0 {
				out = append(out, t.UNK)
				break
			}
		}
	}
	return out
}
