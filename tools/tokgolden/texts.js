// The golden texts, shared by gen.js (JavaScript references) and
// llamacpp.js (llama.cpp). Not part of the build.
"use strict";

// The golden set: the strings tokenizers get wrong. The Qwen2 set leaves out
// the texts NFC would change (gen.js).
const texts = [
  "Hello world",
  " Hello world",
  "Hello, World! How's it going? I'M FINE, you're OK.",
  "1 12 123 1234 12345 123456 1234567 3.14159 1,000,000 0x1F 2026-01-02",
  "   leading spaces and trailing   ",
  "tabs\tand\t\ttabs\n\nnewlines\r\nwindows\n \n  \nx",
  "    four spaces\n        eight\n\t\ttwo tabs",
  "日本語のテキストと中文文本，还有한국어 텍스트。カタカナ ひらがな",
  "emoji 🙂🙃 👩‍👩‍👧‍👦 🇫🇷 ❤️ 🤖!",
  "func main() {\n\tfmt.Println(\"hi\") // comment\n\tx := a[i]+b*c\n}\n",
  "def f(x):\n    return x**2  # square\n\n\nclass A: pass",
  "don't won't y'all 'tis I've we'd they'll she's it'S",
  "DON'T WON'T WE'RE THEY'VE I'LL HE'D",
  "Ελληνικά кириллица العربية עברית हिन्दी ภาษาไทย",
  "mixed123abc ABC123 a1b2c3 x²+y³ ½⅓ ٣٤٥ ௧௨",
  "naïve café résumé Zürich ﬁ Ａｂｃ １２３",
  "combining e\u0301 and a\u0308 marks",
  "   ",
  "\n",
  " ",
  "a  b   c    d     e",
  "!!! ??? ... --- *** /// ''' \"\"\" ###",
  "https://example.com/path?q=1&r=2#frag user@mail.org",
  "$100.00 €50 ¥1000 £7 ±3 ≤4 →5",
  "x\u00a0y\u3000z\u2003w \u00a0\u00a0a\u2028b",
  "end with newline\n",
  "multiple\n\n\nnewlines\n\n",
  "trailing spaces then newline   \nnext \r\n\r\n done",
  "CamelCaseIdentifier snake_case_name kebab-case-name __init__",
  "The quick brown fox jumps over the lazy dog.",
  "<html><body class=\"x\">Hi &amp; bye</body></html>",
  "SELECT * FROM t WHERE id=42;",
  "'hello' \"world\" (parens) [brackets] {braces}",
  "...\n...\n",
  "ok.\n\n\n\tindented",
  // Added with llama.cpp as the reference: DeepSeek-LLM's fullwidth and
  // quote punctuation, U+3000 (whitespace to llama.cpp), trailing spaces of a
  // piece; U+0085 (whitespace) and U+FEFF (not), where JavaScript's \s
  // differs; the sign characters NFC would fold (not in the qwen2 set).
  "ｆｕｌｌ！（括弧）“quoted” ‘single’ 。、 end\u3000\u3000x 🙂  go\t\t",
  "NEL\u0085next BOM\ufeffword x\u0085\u0085y \ufeff",
  "\u212a\u2126\u1f7d signs, \u00b5m",
];

module.exports = { texts };
