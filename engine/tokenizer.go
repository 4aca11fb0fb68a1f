package engine

import (
	"errors"
	"fmt"
	"sort"
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

// Token types from tokenizer.ggml.token_type.
const (
	tokNormal  = 1
	tokUnknown = 2
	tokControl = 3
	tokUser    = 4
	tokUnused  = 5
	tokByte    = 6
)

// Tokenizer turns text into token ids and back.
type Tokenizer struct {
	Kind    TokenizerKind
	tokens  []string
	scores  []float32
	types   []int32
	ids     map[string]int
	ranks   map[string]int // BPE merges "a b" → rank
	special []string       // control/user tokens matched verbatim when parsing special tokens, longest first
	BOS     int
	EOS     int
	EOT     int // end of turn (chat); −1 if none
	addBOS  bool
	bytes   [256]int // SentencePiece <0xXX> tokens
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
	t := &Tokenizer{Kind: TokenizerKind(model), tokens: tokens, BOS: -1, EOS: -1, EOT: -1}
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
	if t.Kind == BPE {
		if merges, ok = g.Strings("tokenizer.ggml.merges"); !ok {
			return nil, errors.New("tokenizer.ggml.merges missing for a gpt2 tokenizer")
		}
	} else if t.Kind != SentencePiece {
		return nil, fmt.Errorf("tokenizer %q not supported (gpt2, llama)", model)
	}
	for key, dst := range map[string]*int{"tokenizer.ggml.bos_token_id": &t.BOS, "tokenizer.ggml.eos_token_id": &t.EOS, "tokenizer.ggml.eot_token_id": &t.EOT} {
		if v, ok := g.Uint(key); ok && v < uint64(len(tokens)) {
			*dst = int(v)
		}
	}
	if v, ok := g.Get("tokenizer.ggml.add_bos_token"); ok {
		t.addBOS = v.B
	} else {
		t.addBOS = t.Kind == SentencePiece
	}
	t.init(merges)
	return t, nil
}

// NewTokenizer builds a tokenizer from its parts (what GGUF metadata holds).
func NewTokenizer(kind TokenizerKind, tokens []string, scores []float32, types []int32, merges []string, bos, eos int, addBOS bool) *Tokenizer {
	t := &Tokenizer{Kind: kind, tokens: tokens, scores: scores, types: types, BOS: bos, EOS: eos, EOT: -1, addBOS: addBOS}
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
	t.ranks = make(map[string]int, len(merges))
	for i, m := range merges {
		t.ranks[m] = i
	}
	for i := range t.bytes {
		t.bytes[i] = -1
		if id, ok := t.ids[fmt.Sprintf("<0x%02X>", i)]; ok {
			t.bytes[i] = id
		}
	}
	for i, s := range t.tokens {
		if t.types != nil && (t.types[i] == tokControl || t.types[i] == tokUser) && s != "" {
			t.special = append(t.special, s)
		}
	}
	sort.SliceStable(t.special, func(a, b int) bool { return len(t.special[a]) > len(t.special[b]) })
	for _, name := range []string{"<|eot_id|>", "<|im_end|>", "<|end|>"} {
		if id, ok := t.ids[name]; ok && t.EOT < 0 {
			t.EOT = id
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

// Encode tokenizes text. With special, control tokens written in the text
// (e.g. "<|im_start|>") become their ids; without, they are plain text.
// addBOS prepends the BOS token when the model wants one.
func (t *Tokenizer) Encode(text string, special, addBOS bool) []int {
	var out []int
	if addBOS && t.addBOS && t.BOS >= 0 {
		out = append(out, t.BOS)
	}
	for len(text) > 0 {
		cut, tok := len(text), -1
		if special {
			for i := 0; i < len(text) && tok < 0; i++ {
				for _, s := range t.special {
					if strings.HasPrefix(text[i:], s) {
						cut, tok = i, t.ids[s]
						break
					}
				}
			}
		}
		out = append(out, t.encodeText(text[:cut])...)
		if tok < 0 {
			break
		}
		out = append(out, tok)
		text = text[cut+len(t.tokens[tok]):]
	}
	return out
}

func (t *Tokenizer) encodeText(s string) []int {
	if s == "" {
		return nil
	}
	if t.Kind == BPE {
		var out []int
		for _, word := range preTokenize(s) {
			out = append(out, t.bpe(word)...)
		}
		return out
	}
	return t.spm(s)
}

// Decode turns ids back into text. Control tokens are skipped.
func (t *Tokenizer) Decode(ids []int) string {
	var b strings.Builder
	for i, id := range ids {
		b.WriteString(t.piece(id, i == 0 || (i == 1 && ids[0] == t.BOS)))
	}
	return b.String()
}

// Piece is the text one token contributes, for streaming. first drops the
// leading space SentencePiece adds to the start of a text.
func (t *Tokenizer) piece(id int, first bool) string {
	if id < 0 || id >= len(t.tokens) {
		return ""
	}
	if t.types != nil && (t.types[id] == tokControl || t.types[id] == tokUnused) {
		return ""
	}
	s := t.tokens[id]
	if t.Kind == BPE {
		if t.types != nil && t.types[id] == tokUser {
			return s
		}
		return bytesFromUnicode(s)
	}
	if t.types != nil && t.types[id] == tokByte || (len(s) == 6 && strings.HasPrefix(s, "<0x") && s[5] == '>') {
		var v byte
		if _, err := fmt.Sscanf(s, "<0x%02X>", &v); err == nil {
			return string([]byte{v})
		}
	}
	s = strings.ReplaceAll(s, "▁", " ")
	if first {
		s = strings.TrimPrefix(s, " ")
	}
	return s
}

// Piece returns the text of one token in the middle of a stream.
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

// preTokenize splits text like GPT-2's regex
// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// written out by hand because Go's regexp has no lookahead.
func preTokenize(s string) []string {
	var out []string
	class := func(r rune) int {
		switch {
		case unicode.IsLetter(r):
			return 1
		case unicode.IsNumber(r):
			return 2
		case unicode.IsSpace(r):
			return 3
		default:
			return 4
		}
	}
	for i := 0; i < len(s); {
		rest := s[i:]
		if rest[0] == '\'' {
			matched := false
			for _, c := range []string{"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"} {
				if strings.HasPrefix(rest, c) {
					out = append(out, c)
					i += len(c)
					matched = true
					break
				}
			}
			if matched {
				continue
			}
		}
		r, size := utf8.DecodeRuneInString(rest)
		start := i
		if r == ' ' && i+size < len(s) {
			if r2, _ := utf8.DecodeRuneInString(s[i+size:]); class(r2) != 3 {
				i += size // the optional leading space joins the next word
				r, size = r2, utf8.RuneLen(r2)
			}
		}
		c := class(r)
		if c != 3 {
			for i < len(s) {
				r, size := utf8.DecodeRuneInString(s[i:])
				if class(r) != c {
					break
				}
				i += size
			}
			out = append(out, s[start:i])
			continue
		}
		// Whitespace run: if non-space follows, leave the last whitespace
		// character to start the next token (\s+(?!\S)).
		j := i
		var last int
		for j < len(s) {
			r, size := utf8.DecodeRuneInString(s[j:])
			if !unicode.IsSpace(r) {
				break
			}
			last = j
			j += size
		}
		if j < len(s) && last > i {
			j = last
		}
		out = append(out, s[i:j])
		i = j
	}
	return out
}

func (t *Tokenizer) bpe(word string) []int {
	if id, ok := t.ids[unicodeFromBytes(word)]; ok {
		return []int{id}
	}
	var parts []string
	for _, r := range unicodeFromBytes(word) {
		parts = append(parts, string(r))
	}
	for len(parts) > 1 {
		best, bestRank := -1, int(^uint(0)>>1)
		for i := 0; i+1 < len(parts); i++ {
			if r, ok := t.ranks[parts[i]+" "+parts[i+1]]; ok && r < bestRank {
				best, bestRank = i, r
			}
		}
		if best < 0 {
			break
		}
		parts[best] += parts[best+1]
		parts = append(parts[:best+1], parts[best+2:]...)
	}
	out := make([]int, 0, len(parts))
	for _, p := range parts {
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

func (t *Tokenizer) spm(s string) []int {
	s = "▁" + strings.ReplaceAll(s, " ", "▁")
	var ids []int
	for _, r := range s {
		if id, ok := t.ids[string(r)]; ok {
			ids = append(ids, id)
			continue
		}
		var buf [4]byte
		for _, b := range buf[:utf8.EncodeRune(buf[:], r)] {
			if t.bytes[b] >= 0 {
				ids = append(ids, t.bytes[b])
			}
		}
	}
	// Merge the adjacent pair whose merged piece scores highest, until none merges.
	for {
		best, bestScore, bestID := -1, float32(-1e30), -1
		for i := 0; i+1 < len(ids); i++ {
			merged := t.tokens[ids[i]] + t.tokens[ids[i+1]]
			if id, ok := t.ids[merged]; ok && t.scores != nil && t.scores[id] > bestScore {
				best, bestScore, bestID = i, t.scores[id], id
			}
		}
		if best < 0 {
			return ids
		}
		ids[best] = bestID
		ids = append(ids[:best+1], ids[best+2:]...)
	}
}
