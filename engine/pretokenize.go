package engine

import (
	"unicode"
	"unicode/utf8"
)

// Pre-tokenizers that are a sequence of regex splits (Hugging Face's
// Split(..., Isolated) steps, llama.cpp's regex_exprs lists): each step cuts
// every piece of the previous one into its matches and the text between
// them. Go's regexp has no lookahead and an ASCII-only \s, so each step is a
// hand-written matcher with the Unicode classes of the Go standard library.

// matcher returns the length of its pattern's match at the start of s, or 0.
type matcher func(s string) int

// splitSeq applies the steps in order, as llama.cpp's unicode_regex_split does.
func splitSeq(out []string, s string, steps ...matcher) []string {
	words := []string{s}
	for _, m := range steps {
		var next []string
		for _, w := range words {
			next = isolate(next, w, m)
		}
		words = next
	}
	return append(out, words...)
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
		upTo(isN, 3),
		runeSet(func(r rune) bool {
			return inRanges(r, [2]rune{0x4E00, 0x9FA5}, [2]rune{0x3040, 0x309F}, [2]rune{0x30A0, 0x30FF})
		}),
		deepSeek3Word,
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

// DeepSeek-Coder: [\r\n], \s?\p{L}+, \s?\p{P}+, [一-龥ࠀ-一가-퟿]+, \p{N}.
func preDeepSeekCoder(out []string, s string) []string {
	return splitSeq(out, s,
		upTo(isNL, 1),
		optSpaceThen(isL),
		optSpaceThen(isP),
		runeSet(func(r rune) bool {
			return inRanges(r, [2]rune{0x4E00, 0x9FA5}, [2]rune{0x0800, 0x4E00}, [2]rune{0xAC00, 0xD7FF})
		}),
		upTo(isN, 1),
	)
}
