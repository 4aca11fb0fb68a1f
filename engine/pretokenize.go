package engine

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Pre-tokenizers that are a sequence of regex splits (Hugging Face's
// Split(..., Isolated) steps, llama.cpp's regex_exprs lists): each step cuts
// every piece of the previous one into its matches and the text between
// them. Go's regexp has no lookahead and an ASCII-only \s, so each step is a
// hand-written matcher with the Unicode classes of the Go standard library.
//
// llama.cpp runs a regex without a Unicode category (\p{..}) as a wide-char
// std::regex over the text with every non-ASCII whitespace character
// replaced by U+000B, so its explicit ranges (the CJK ranges below) never
// match a whitespace character even where the range spans one (U+3000 lies
// in DeepSeek's ࠀ-一, U+0800-U+4E00); \s matches all of Unicode White_Space,
// which is Go's unicode.IsSpace.

// matcher returns the length of its pattern's match at the start of s, or 0.
type matcher func(s string) int

// step is one split of a sequence: it appends the pieces of one piece.
type step func(out []string, piece string) []string

// splitSeq applies the steps in order, as llama.cpp's unicode_regex_split does.
func splitSeq(out []string, s string, steps ...step) []string {
	words := []string{s}
	for _, st := range steps {
		var next []string
		for _, w := range words {
			next = st(next, w)
		}
		words = next
	}
	return append(out, words...)
}

// isolated is the step that splits with m (a regex search, Isolated).
func isolated(m matcher) step {
	return func(out []string, s string) []string { return isolate(out, s, m) }
}

// isolate cuts s into the leftmost non-overlapping matches of m and the
// gaps between them (a regex search with the Isolated behaviour).
func isolate(out []string, s string, m matcher) []string {
	gap := 0
	for i := 0; i < len(s); {
		if n := m(s[i:]); n > 0 {
			if gap < i {
				out = append(out, s[gap:i])
			}
			out = append(out, s[i:i+n])
			i += n
			gap = i
			continue
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	if gap < len(s) {
		out = append(out, s[gap:])
	}
	return out
}

// trailingSpace is the step \s+$: a piece's trailing whitespace run (the
// leftmost match of \s+ that reaches the piece's end) becomes its own piece.
func trailingSpace(out []string, s string) []string {
	i := len(s)
	for i > 0 {
		r, size := utf8.DecodeLastRuneInString(s[:i])
		if !isS(r) {
			break
		}
		i -= size
	}
	if i > 0 && i < len(s) {
		return append(out, s[:i], s[i:])
	}
	return append(out, s)
}

func isP(r rune) bool   { return unicode.IsPunct(r) }
func isSym(r rune) bool { return unicode.IsSymbol(r) }
func isM(r rune) bool   { return unicode.IsMark(r) }
func isNL(r rune) bool  { return r == '\r' || r == '\n' }

// runeSet matches one or more runes of a set: [...]+.
func runeSet(in func(rune) bool) matcher {
	return func(s string) int { return runWhile(s, in) }
}

// upTo matches 1..n runes of a class: \p{N}{1,n}.
func upTo(in func(rune) bool, n int) matcher {
	return func(s string) int {
		k := 0
		for i, r := range s {
			if k == n || !in(r) {
				return i
			}
			k++
		}
		return len(s)
	}
}

// optSpaceThen matches \s?C+ for a class C.
func optSpaceThen(in func(rune) bool) matcher {
	return func(s string) int {
		r, size := utf8.DecodeRuneInString(s)
		if isS(r) && size < len(s) {
			if r2, _ := utf8.DecodeRuneInString(s[size:]); in(r2) {
				return size + runWhile(s[size:], in)
			}
		}
		return runWhile(s, in)
	}
}

// inRanges reports whether r lies in one of the inclusive ranges.
func inRanges(r rune, ranges ...[2]rune) bool {
	for _, g := range ranges {
		if r >= g[0] && r <= g[1] {
			return true
		}
	}
	return false
}

// DeepSeek-V3: \p{N}{1,3}, then [一-龥぀-ゟ゠-ヿ]+, then deepSeek3Word.
func preDeepSeek3(out []string, s string) []string {
	return splitSeq(out, s,
		isolated(upTo(isN, 3)),
		isolated(runeSet(func(r rune) bool {
			return inRanges(r, [2]rune{0x4E00, 0x9FA5}, [2]rune{0x3040, 0x309F}, [2]rune{0x30A0, 0x30FF})
		})),
		isolated(deepSeek3Word),
	)
}

func isASCIIPunct(r rune) bool {
	return r < 0x80 && (r >= '!' && r <= '/' || r >= ':' && r <= '@' || r >= '[' && r <= '`' || r >= '{' && r <= '~')
}
func isASCIILetter(r rune) bool { return r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' }

// deepSeek3Word matches, at the start of s,
//
//	[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+|
//	 ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//
// trying the alternatives in order, as a backtracking regex does; 0 if none
// matches here (the rune then joins the text between matches).
func deepSeek3Word(s string) int {
	r, size := utf8.DecodeRuneInString(s)
	var r2 rune = -1
	if size < len(s) {
		r2, _ = utf8.DecodeRuneInString(s[size:])
	}
	// ASCII punctuation then ASCII letters.
	if isASCIIPunct(r) && r2 >= 0 && isASCIILetter(r2) {
		return size + runWhile(s[size:], isASCIILetter)
	}
	// [^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+
	lm := func(r rune) bool { return isL(r) || isM(r) }
	if lm(r) {
		return runWhile(s, lm)
	}
	if !isNL(r) && !isP(r) && !isSym(r) && r2 >= 0 && lm(r2) {
		return size + runWhile(s[size:], lm)
	}
	//  ?[\p{P}\p{S}]+[\r\n]*
	ps := func(r rune) bool { return isP(r) || isSym(r) }
	lead := 0
	if r == ' ' && r2 >= 0 && ps(r2) {
		lead = 1
	}
	if n := runWhile(s[lead:], ps); n > 0 {
		n += lead
		return n + runWhile(s[n:], isNL)
	}
	if !isS(r) {
		return 0
	}
	return spaceWord(s)
}

// spaceWord matches \s*[\r\n]+|\s+(?!\S)|\s+ at the start of s, which is
// whitespace: through the run's last newline if it has one, else the run
// (less its last rune when text follows).
func spaceWord(s string) int {
	ws := runWhile(s, isS)
	for i := ws - 1; i >= 0; i-- {
		if isNL(rune(s[i])) {
			return i + 1
		}
	}
	return spaceRun(s)
}

// isDeepSeekCJK is DeepSeek's [一-龥ࠀ-一가-퟿] (U+4E00-U+9FA5, U+0800-U+4E00,
// U+AC00-U+D7FF) as llama.cpp matches it: never whitespace.
func isDeepSeekCJK(r rune) bool {
	return inRanges(r, [2]rune{0x4E00, 0x9FA5}, [2]rune{0x0800, 0x4E00}, [2]rune{0xAC00, 0xD7FF}) && !isS(r)
}

// DeepSeek-Coder: [\r\n], \s?\p{L}+, \s?\p{P}+, [一-龥ࠀ-一가-퟿]+, \p{N}.
func preDeepSeekCoder(out []string, s string) []string {
	return splitSeq(out, s,
		isolated(upTo(isNL, 1)),
		isolated(optSpaceThen(isL)),
		isolated(optSpaceThen(isP)),
		isolated(runeSet(isDeepSeekCJK)),
		isolated(upTo(isN, 1)),
	)
}

// DeepSeek-LLM's letter and punctuation classes, verbatim from llama.cpp's
// regexes for LLAMA_VOCAB_PRE_TYPE_DEEPSEEK_LLM (src/llama-vocab.cpp;
// tools/tokgolden/regexes.js): the letters are Latin, Greek,
// Cyrillic, Armenian, Georgian, Cherokee, Glagolitic, Coptic, Deseret,
// Osage, Old Hungarian, Warang Citi, Adlam and a few more, but not CJK,
// Arabic or Indic scripts. They are escaped because the class holds
// characters that Unicode normalization folds into others (U+212A KELVIN
// SIGN into K, U+2126 OHM SIGN into Ω, U+1F7D into U+03CE, …): written
// plainly, an editor or a copy can change them silently.
const (
	deepSeekLLMLetters = "A-Za-z\u00B5\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u01BA\u01BC-\u01BF\u01C4-\u0293\u0295-\u02AF\u0370-\u0373\u0376\u0377\u037B-\u037D\u037F\u0386\u0388-\u038A\u038C\u038E-\u03A1\u03A3-\u03F5\u03F7-\u0481\u048A-\u052F\u0531-\u0556\u10A0-\u10C5\u13A0-\u13F5\u13F8-\u13FD\u1C90-\u1CBA\u1CBD-\u1CBF\u1D00-\u1D2B\u1D6B-\u1D77\u1D79-\u1D9A\u1E00-\u1F15\u1F18-\u1F1D\u1F20-\u1F45\u1F48-\u1F4D\u1F50-\u1F57\u1F59\u1F5B\u1F5D\u1F5F-\u1F7D\u1F80-\u1FB4\u1FB6-\u1FBC\u1FBE\u1FC2-\u1FC4\u1FC6-\u1FCC\u1FD0-\u1FD3\u1FD6-\u1FDB\u1FE0-\u1FEC\u1FF2-\u1FF4\u1FF6-\u1FFC\u2102\u2107\u210A-\u2113\u2115\u2119-\u211D\u2124\u2126\u2128\u212A-\u212D\u212F-\u2134\u2139\u213C-\u213F\u2145-\u2149\u214E\u2183\u2184\u2C00-\u2C7B\u2C7E-\u2CE4\u2CEB-\u2CEE\u2CF2\u2CF3\uA640-\uA66D\uA680-\uA69B\uA722-\uA76F\uA771-\uA787\uA78B-\uA78E\uAB70-\uABBF\uFB00-\uFB06\uFB13-\uFB17\uFF21-\uFF3A\uFF41-\uFF5A\U00010400-\U0001044F\U000104B0-\U000104D3\U000104D8-\U000104FB\U00010C80-\U00010CB2\U00010CC0-\U00010CF2\U000118A0-\U000118DF\U0001E900-\U0001E943"
	deepSeekLLMPunct   = "!-/:-~\uFF01-\uFF0F\uFF1A-\uFF5E\u2018-\u201F\u3000-\u3002"
)

var deepSeekLLMLetter, deepSeekLLMPunctuation = parseClass(deepSeekLLMLetters), parseClass(deepSeekLLMPunct)

// charClass is a bracket expression's ranges, sorted and disjoint.
type charClass [][2]rune

// parseClass turns a bracket expression's body of single characters and
// a-b ranges into ranges.
func parseClass(c string) charClass {
	rs := []rune(c)
	var out charClass
	for i := 0; i < len(rs); i++ {
		if i+2 < len(rs) && rs[i+1] == '-' {
			out = append(out, [2]rune{rs[i], rs[i+2]})
			i += 2
			continue
		}
		out = append(out, [2]rune{rs[i], rs[i]})
	}
	slices.SortFunc(out, func(a, b [2]rune) int { return int(a[0] - b[0]) })
	return out
}

// has reports whether r is in the class (a binary search).
func (c charClass) has(r rune) bool {
	i, _ := slices.BinarySearchFunc(c, r, func(g [2]rune, r rune) int {
		switch {
		case g[1] < r:
			return -1
		case g[0] > r:
			return 1
		}
		return 0
	})
	return i < len(c) && c[i][0] <= r && r <= c[i][1]
}

// DeepSeek-LLM: [\r\n], \s?[letters]+, \s?[punctuation]+, \s+$,
// [一-龥ࠀ-一가-퟿]+, \p{N}+. The punctuation class spans ASCII :-~, so it
// also cuts the ASCII runs out of a word of the letter step that holds
// other letters ("naïve" → "na", "ï", "ve"); its U+3000 never matches, as
// llama.cpp reads U+3000 as whitespace.
func preDeepSeekLLM(out []string, s string) []string {
	return splitSeq(out, s,
		isolated(upTo(isNL, 1)),
		isolated(optSpaceThen(deepSeekLLMLetter.has)),
		isolated(optSpaceThen(func(r rune) bool { return deepSeekLLMPunctuation.has(r) && !isS(r) })),
		trailingSpace,
		isolated(runeSet(isDeepSeekCJK)),
		isolated(runeSet(isN)),
	)
}

// llama.cpp's default split: [\p{P}\$\+<=>\^~\|]+, then GPT-2's pattern,
// then \p{N}+, then [0-9][0-9][0-9] (ASCII digit runs cut into threes from
// the left).
func preDefault(out []string, s string) []string {
	return splitSeq(out, s,
		isolated(runeSet(func(r rune) bool { return isP(r) || r < 0x80 && strings.ContainsRune("$+<=>^~|", r) })),
		func(out []string, piece string) []string { return splitWords(out, piece, gpt2Word) },
		isolated(runeSet(isN)),
		isolated(func(s string) int {
			if len(s) >= 3 && isDigit(s[0]) && isDigit(s[1]) && isDigit(s[2]) {
				return 3
			}
			return 0
		}),
	)
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }
