// Command llamacpp.js re-records the golden tokenizer files with llama.cpp
// itself: each file gen.js wrote (a real vocabulary's reachable part, with
// JavaScript references' ids) becomes a vocabulary-only GGUF
// (tools/tokgguf), node-llama-cpp loads it (vocabOnly) and tokenizes every
// golden text, and llama.cpp's ids replace the JavaScript ones. The words
// (the pre-tokenizer's split) come from llama.cpp's own unicode_regex_split
// in the libllama node-llama-cpp ships (split.cpp, built here with g++), and
// are checked against the ids: tokenizing the words one by one must give the
// text's ids. Where the JavaScript reference disagreed, its ids/words stay in
// the case as js_ids/js_words. Not part of the build; run it by hand after
// gen.js (needs go, g++ and node-llama-cpp's prebuilt linux-x64 binaries):
//
//	cd tools/tokgolden && npm install && node gen.js ../../engine/testdata/tokenizer && node llamacpp.js ../../engine/testdata/tokenizer
//
// NODE_LLAMA_CPP=/path/to/node_modules/node-llama-cpp uses an install
// elsewhere. Re-running on files it already recorded is idempotent.
"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");
const zlib = require("zlib");
const { execFileSync, spawnSync } = require("child_process");
const { texts } = require("./texts");
const { regexes } = require("./regexes");

const repo = path.resolve(__dirname, "../..");
// node-llama-cpp's directory (its package.json is not exported, so it is
// found by path, as gen.js finds the other packages).
const nlcDir = fs.realpathSync(process.env.NODE_LLAMA_CPP || path.join(__dirname, "node_modules", "node-llama-cpp"));
const nlcVersion = JSON.parse(fs.readFileSync(path.join(nlcDir, "package.json"), "utf8")).version;
const release = JSON.parse(fs.readFileSync(path.join(nlcDir, "llama", "binariesGithubRelease.json"), "utf8")).release;

// binDir is the prebuilt binaries' directory: the libllama node-llama-cpp loads.
function binDir() {
  const plat = `${process.platform}-${process.arch}`;
  const dir = path.join(nlcDir, "..", "@node-llama-cpp", plat, "bins", plat);
  if (!fs.readdirSync(dir).some((f) => /^libllama\..*so$/.test(f))) throw new Error(`no prebuilt libllama in ${dir}`);
  return dir;
}

function build(tmp) {
  const bins = binDir();
  const libs = fs.readdirSync(bins).filter((f) => /^libllama(-common)?\..*so$|^libllama(-common)?\.so$/.test(f)).map((f) => path.join(bins, f));
  const split = path.join(tmp, "split");
  execFileSync("g++", ["-O1", "-std=c++17", "-o", split, path.join(__dirname, "split.cpp"), ...libs, `-Wl,-rpath,${bins}`], { stdio: "inherit" });
  const tokgguf = path.join(tmp, "tokgguf");
  execFileSync("go", ["build", "-o", tokgguf, "./tools/tokgguf"], { cwd: repo, stdio: "inherit" });
  return { split, tokgguf };
}

const hex = (s) => Buffer.from(s, "utf8").toString("hex");
const unhex = (h) => Buffer.from(h, "hex").toString("utf8");

// llamaSplit runs llama.cpp's unicode_regex_split over every text.
function llamaSplit(bin, list, cases) {
  const input = ["V", ...list.map((r) => "R " + hex(r)), ...cases.map((t) => "T " + hex(t))].join("\n") + "\n";
  const res = spawnSync(bin, [], { input, encoding: "utf8", maxBuffer: 1 << 26 });
  if (res.status !== 0) throw new Error(`split failed: ${res.stderr}`);
  const lines = res.stdout.split("\n");
  const [commit, buildNumber] = lines[0].split(" ");
  const words = cases.map((_, i) => (lines[1 + i] === "" ? [] : lines[1 + i].split(" ").map(unhex)));
  return { commit, buildNumber, words };
}

const read = (file) => JSON.parse(zlib.gunzipSync(fs.readFileSync(file)).toString("utf8"));
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

async function main() {
  const dir = path.resolve(process.argv[2] || "../../engine/testdata/tokenizer");
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tokgolden-"));
  const tools = build(tmp);
  const { getLlama, LlamaLogLevel } = await import(path.join(nlcDir, "dist", "index.js"));
  const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
  const commit = llamaSplit(tools.split, [], []).commit;
  const reference = `llama.cpp ${commit} (release ${release}) via node-llama-cpp ${nlcVersion}: model.tokenize(text, false) over a vocabulary-only GGUF (tools/tokgguf)`;
  const report = [];
  for (const f of fs.readdirSync(dir).filter((f) => f.endsWith(".json.gz")).sort()) {
    const file = path.join(dir, f);
    const g = read(file);
    const gguf = path.join(tmp, g.name + ".gguf");
    execFileSync(tools.tokgguf, ["-in", file, "-out", gguf], { stdio: "inherit" });
    // The simulated full load node-llama-cpp tries first fails (no
    // tensors) and it falls back; the vocabulary-only load is the real one.
    const model = await llama.loadModel({ modelPath: gguf, vocabOnly: true, gpuLayers: 0 });
    const jsReference = g.js_reference || g.reference;
    const bpe = g.model === "gpt2";
    let split = null;
    if (bpe) {
      const list = regexes[g.pre];
      if (!list) throw new Error(`${g.name}: no llama.cpp regex list for pre ${g.pre}`);
      split = llamaSplit(tools.split, list, g.cases.map((c) => c.text));
    }
    const cases = g.cases.map((c, i) => {
      if (!texts.includes(c.text)) throw new Error(`${g.name}: ${JSON.stringify(c.text)} is not a golden text (texts.js)`);
      const ids = Array.from(model.tokenize(c.text, false));
      const jsIds = c.js_ids || c.ids;
      const out = { text: c.text, ids };
      if (bpe) {
        const words = split.words[i];
        // The words must be the split llama.cpp's tokenizer used: merged
        // one by one, they give the text's ids.
        const byWord = split.words[i].map((w) => Array.from(model.tokenize(bytesFromByteLevel(w), false))).flat();
        if (!same(byWord, ids)) throw new Error(`${g.name} ${JSON.stringify(c.text)}: words ${JSON.stringify(words)} give ${byWord}, the text ${ids}`);
        out.words = words;
        const jsWords = c.js_words || c.words;
        if (!same(jsWords, words)) out.js_words = jsWords;
      }
      if (!same(jsIds, ids)) {
        out.js_ids = jsIds;
        report.push(`${g.name}: ${JSON.stringify(c.text)}\n  llama.cpp ${JSON.stringify(ids)}\n  js        ${JSON.stringify(jsIds)}`);
      } else if (out.js_words) {
        report.push(`${g.name}: ${JSON.stringify(c.text)} same ids, different words\n  llama.cpp ${JSON.stringify(out.words)}\n  js        ${JSON.stringify(out.js_words)}`);
      }
      return out;
    });
    await model.dispose();
    const { reference: _r, js_reference: _j, cases: _c, ...rest } = g;
    const obj = { ...rest, reference, js_reference: jsReference, cases };
    fs.writeFileSync(file, zlib.gzipSync(JSON.stringify(obj, null, 1) + "\n", { level: 9 }));
    console.log(file, cases.length, "cases,", cases.filter((c) => c.js_ids).length, "differ from", jsReference);
  }
  console.log(report.length ? "JavaScript references disagree:\n" + report.join("\n") : "JavaScript references agree on every text");
  fs.rmSync(tmp, { recursive: true, force: true });
}

// bytesFromByteLevel undoes byte-level BPE's byte-to-character mapping.
const u2b = (() => {
  const bs = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) { bs.push(b); cs.push(256 + n); n++; }
  }
  const m = new Map();
  bs.forEach((b, i) => m.set(String.fromCodePoint(cs[i]), b));
  return m;
})();
const bytesFromByteLevel = (w) => Buffer.from(Array.from(w, (ch) => u2b.get(ch))).toString("utf8");

main().catch((e) => { console.error(e); process.exit(1); });
