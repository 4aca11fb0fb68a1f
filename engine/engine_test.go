package engine

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"testing"
	"unicode/utf8"

	"github.com/agoranet/agora/engine/gguf"
)

func genModel(t testing.TB, shape string, q Quant, seed uint64) (*Model, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), shape+"-"+string(q)+".gguf")
	if err := Generate(path, Shapes[shape], q, seed); err != nil {
		t.Fatal(err)
	}
	m, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, path
}

// --- an independent float64 reference forward pass (llama2.c run.c
// semantics, no KV cache: every step recomputes the whole sequence) ---

func halfToFloat(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	mant := float64(h & 0x3ff)
	if exp == 0 {
		return sign * math.Ldexp(mant, -24)
	}
	return sign * math.Ldexp(1+mant/1024, exp-15)
}

func refTensor(t *testing.T, g *gguf.File, name string) []float64 {
	ti, ok := g.Tensor(name)
	if !ok {
		return nil
	}
	data := g.Data(ti)
	n := int(ti.Elements())
	out := make([]float64, n)
	switch ti.Type {
	case gguf.F32:
		for i := range out {
			out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:])))
		}
	case gguf.F16:
		for i := range out {
			out[i] = halfToFloat(binary.LittleEndian.Uint16(data[2*i:]))
		}
	case gguf.Q8_0:
		for b := 0; b < n/32; b++ {
			d := halfToFloat(binary.LittleEndian.Uint16(data[b*34:]))
			for i := range 32 {
				out[b*32+i] = d * float64(int8(data[b*34+2+i]))
			}
		}
	default:
		t.Fatalf("reference: unsupported type %s", ti.Type)
	}
	return out
}

type refModel struct {
	c                   Config
	embed, out, outNorm []float64
	attnNorm, ffnNorm   [][]float64
	wq, wk, wv, wo      [][]float64
	bq, bk, bv          [][]float64
	gate, up, down      [][]float64
}

func newRef(t *testing.T, path string, c Config) *refModel {
	g, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	r := &refModel{c: c, embed: refTensor(t, g, "token_embd.weight"), outNorm: refTensor(t, g, "output_norm.weight")}
	r.out = refTensor(t, g, "output.weight")
	if r.out == nil {
		r.out = r.embed
	}
	for l := range c.Layers {
		p := fmt.Sprintf("blk.%d.", l)
		r.attnNorm = append(r.attnNorm, refTensor(t, g, p+"attn_norm.weight"))
		r.ffnNorm = append(r.ffnNorm, refTensor(t, g, p+"ffn_norm.weight"))
		r.wq = append(r.wq, refTensor(t, g, p+"attn_q.weight"))
		r.wk = append(r.wk, refTensor(t, g, p+"attn_k.weight"))
		r.wv = append(r.wv, refTensor(t, g, p+"attn_v.weight"))
		r.wo = append(r.wo, refTensor(t, g, p+"attn_output.weight"))
		r.bq = append(r.bq, refTensor(t, g, p+"attn_q.bias"))
		r.bk = append(r.bk, refTensor(t, g, p+"attn_k.bias"))
		r.bv = append(r.bv, refTensor(t, g, p+"attn_v.bias"))
		r.gate = append(r.gate, refTensor(t, g, p+"ffn_gate.weight"))
		r.up = append(r.up, refTensor(t, g, p+"ffn_up.weight"))
		r.down = append(r.down, refTensor(t, g, p+"ffn_down.weight"))
	}
	return r
}

func mv(w []float64, x []float64, rows int) []float64 {
	cols := len(x)
	out := make([]float64, rows)
	for r := range rows {
		for i := range cols {
			out[r] += w[r*cols+i] * x[i]
		}
	}
	return out
}

func rms(x, w []float64, eps float64) []float64 {
	var ss float64
	for _, v := range x {
		ss += v * v
	}
	inv := 1 / math.Sqrt(ss/float64(len(x))+eps)
	out := make([]float64, len(x))
	for i := range x {
		out[i] = w[i] * x[i] * inv
	}
	return out
}

func (r *refModel) rope(v []float64, pos int) {
	c := r.c
	hd := c.HeadDim
	for h := 0; h < len(v)/hd; h++ {
		x := v[h*hd : (h+1)*hd]
		for j := 0; j < hd/2; j++ {
			var a, b int
			var expo float64
			if c.RopeNeox {
				a, b, expo = j, j+hd/2, float64(2*j)/float64(hd)
			} else {
				a, b, expo = 2*j, 2*j+1, float64(2*j)/float64(hd)
			}
			ang := float64(pos) / math.Pow(float64(c.RopeBase), expo)
			x[a], x[b] = x[a]*math.Cos(ang)-x[b]*math.Sin(ang), x[a]*math.Sin(ang)+x[b]*math.Cos(ang)
		}
	}
}

// logits returns the next-token logits after tokens.
func (r *refModel) logits(tokens []int) []float64 {
	c := r.c
	kvDim := c.KVHeads * c.HeadDim
	n := len(tokens)
	xs := make([][]float64, n)
	for p, t := range tokens {
		xs[p] = slices.Clone(r.embed[t*c.Dim : (t+1)*c.Dim])
	}
	for l := range c.Layers {
		qs, ks, vs := make([][]float64, n), make([][]float64, n), make([][]float64, n)
		for p := range n {
			h := rms(xs[p], r.attnNorm[l], float64(c.Eps))
			qs[p], ks[p], vs[p] = mv(r.wq[l], h, c.Dim), mv(r.wk[l], h, kvDim), mv(r.wv[l], h, kvDim)
			if r.bq[l] != nil {
				for i := range qs[p] {
					qs[p][i] += r.bq[l][i]
				}
				for i := range ks[p] {
					ks[p][i] += r.bk[l][i]
					vs[p][i] += r.bv[l][i]
				}
			}
			r.rope(qs[p], p)
			r.rope(ks[p], p)
		}
		for p := range n {
			att := make([]float64, c.Dim)
			for h := range c.Heads {
				kv := h / (c.Heads / c.KVHeads) * c.HeadDim
				scores := make([]float64, p+1)
				mx := math.Inf(-1)
				for s := 0; s <= p; s++ {
					for i := range c.HeadDim {
						scores[s] += qs[p][h*c.HeadDim+i] * ks[s][kv+i]
					}
					scores[s] /= math.Sqrt(float64(c.HeadDim))
					mx = math.Max(mx, scores[s])
				}
				var sum float64
				for s := range scores {
					scores[s] = math.Exp(scores[s] - mx)
					sum += scores[s]
				}
				for s := range scores {
					for i := range c.HeadDim {
						att[h*c.HeadDim+i] += scores[s] / sum * vs[s][kv+i]
					}
				}
			}
			o := mv(r.wo[l], att, c.Dim)
			for i := range o {
				xs[p][i] += o[i]
			}
			h := rms(xs[p], r.ffnNorm[l], float64(c.Eps))
			g, u := mv(r.gate[l], h, c.Hidden), mv(r.up[l], h, c.Hidden)
			for i := range g {
				g[i] = g[i] / (1 + math.Exp(-g[i])) * u[i]
			}
			d := mv(r.down[l], g, c.Dim)
			for i := range d {
				xs[p][i] += d[i]
			}
		}
	}
	return mv(r.out, rms(xs[n-1], r.outNorm, float64(c.Eps)), c.Vocab)
}

func TestMatchesReferenceForwardPass(t *testing.T) {
	cases := []struct {
		shape string
		q     Quant
		tol   float64 // logprob tolerance
	}{
		{"tiny", QuantF32, 1e-3}, {"tiny", QuantQ8, 2e-3}, {"tiny", QuantF16, 1e-3},
		{"tiny-qwen2", QuantF32, 1e-3}, {"tiny-qwen2", QuantQ8, 2e-3}, {"tiny-spm", QuantF32, 1e-3},
	}
	for _, tc := range cases {
		t.Run(tc.shape+"/"+string(tc.q), func(t *testing.T) {
			m, path := genModel(t, tc.shape, tc.q, 11)
			ref := newRef(t, path, m.Config())
			prompt := m.Tokenizer().Encode("The quick brown fox", false, true)
			res, err := m.Generate(context.Background(), prompt, GenerateOptions{MaxTokens: 10}, nil)
			if err != nil {
				t.Fatal(err)
			}
			seq := slices.Clone(prompt)
			distinct := map[int]bool{}
			for i, tok := range res.Tokens {
				lg := ref.logits(seq)
				best := 0
				for j := range lg {
					if lg[j] > lg[best] {
						best = j
					}
				}
				// Greedy must pick the reference's top token, unless the two
				// are tied within float32 rounding.
				if tok.ID != best && lg[best]-lg[tok.ID] > 1e-4 {
					t.Fatalf("step %d: engine chose %d, reference %d (logit gap %g)", i, tok.ID, best, lg[best]-lg[tok.ID])
				}
				var lse float64
				for _, v := range lg {
					lse += math.Exp(v - lg[best])
				}
				refLP := lg[tok.ID] - lg[best] - math.Log(lse)
				if d := math.Abs(float64(tok.Logprob) - refLP); d > tc.tol {
					t.Fatalf("step %d: logprob %g, reference %g", i, tok.Logprob, refLP)
				}
				seq = append(seq, tok.ID)
				distinct[tok.ID] = true
			}
			if len(distinct) < 3 {
				t.Fatalf("random model degenerated to %d distinct tokens; the comparison would be weak", len(distinct))
			}
		})
	}
}

func TestScoreAgreesWithGeneration(t *testing.T) {
	m, _ := genModel(t, "tiny", QuantQ8, 3)
	prompt := m.Tokenizer().Encode("what is the answer?", false, true)
	res, err := m.Generate(context.Background(), prompt, GenerateOptions{MaxTokens: 12, Temperature: 0.9, TopP: 0.95, Seed: 5}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int, len(res.Tokens))
	for i, tk := range res.Tokens {
		ids[i] = tk.ID
	}
	scores, err := m.Score(context.Background(), prompt, ids)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range scores {
		if s.Logprob != res.Tokens[i].Logprob {
			t.Fatalf("token %d: score logprob %v, generation logprob %v", i, s.Logprob, res.Tokens[i].Logprob)
		}
		if s.Rank < 1 || (s.Rank == 1) != (s.TopID == s.ID) {
			t.Fatalf("token %d: rank %d top %d id %d", i, s.Rank, s.TopID, s.ID)
		}
	}
	// A greedy generation scores rank 1 everywhere.
	greedy, _ := m.Generate(context.Background(), prompt, GenerateOptions{MaxTokens: 8}, nil)
	ids = ids[:0]
	for _, tk := range greedy.Tokens {
		ids = append(ids, tk.ID)
	}
	scores, _ = m.Score(context.Background(), prompt, ids)
	for i, s := range scores {
		if s.Rank != 1 {
			t.Fatalf("greedy token %d has rank %d", i, s.Rank)
		}
	}
}

func TestSeededSampling(t *testing.T) {
	m, _ := genModel(t, "tiny", QuantF32, 3)
	prompt := m.Tokenizer().Encode("The weather today", false, true)
	run := func(seed uint64) []int {
		res, err := m.Generate(context.Background(), prompt, GenerateOptions{MaxTokens: 16, Temperature: 1.2, TopP: 0.9, Seed: seed, TopLogprobs: 3}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var ids []int
		for _, tk := range res.Tokens {
			ids = append(ids, tk.ID)
			if len(tk.Top) != 3 || tk.Top[0].Logprob < tk.Top[1].Logprob {
				t.Fatalf("top logprobs %v", tk.Top)
			}
		}
		return ids
	}
	a, b, c := run(42), run(42), run(43)
	if !slices.Equal(a, b) {
		t.Fatalf("same seed, different output: %v vs %v", a, b)
	}
	if slices.Equal(a, c) {
		t.Fatalf("different seeds gave identical output %v", a)
	}
}

func TestStopAndLimits(t *testing.T) {
	m, _ := genModel(t, "tiny", QuantF32, 3)
	prompt := m.Tokenizer().Encode("hi", false, true)
	res, err := m.Generate(context.Background(), prompt, GenerateOptions{MaxTokens: 20}, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := res.Tokens[0].ID
	res, _ = m.Generate(context.Background(), prompt, GenerateOptions{MaxTokens: 20, Stop: []int{first}}, nil)
	if len(res.Tokens) != 0 || res.FinishReason != "stop" {
		t.Fatalf("stop token not honoured: %d tokens, %s", len(res.Tokens), res.FinishReason)
	}
	for _, o := range []GenerateOptions{{MaxTokens: 0}, {MaxTokens: 1, TopP: 2}, {MaxTokens: 10_000}} {
		if _, err := m.Generate(context.Background(), prompt, o, nil); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Generate(ctx, prompt, GenerateOptions{MaxTokens: 5}, nil); err == nil {
		t.Error("cancelled context ignored")
	}
	if _, err := m.Score(context.Background(), prompt, []int{1 << 20}); err == nil {
		t.Error("out-of-vocabulary score accepted")
	}
}

func TestTokenizerRoundTrip(t *testing.T) {
	texts := []string{"Hello world", "héllo wörld 日本語 🙂", "  leading spaces and\ttabs\n\nnewlines ", "It's 2026; we're here!", ""}
	for _, shape := range []string{"tiny", "tiny-spm"} {
		m, _ := genModel(t, shape, QuantF32, 1)
		tok := m.Tokenizer()
		for _, s := range texts {
			ids := tok.Encode(s, false, false)
			if got := tok.Decode(ids); got != s {
				t.Errorf("%s: Decode(Encode(%q)) = %q (ids %v)", shape, s, got, ids)
			}
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
	// Special tokens only when asked for.
	im, _ := tok.ID("<|im_start|>")
	if ids := tok.Encode("<|im_start|>user", true, false); ids[0] != im {
		t.Fatalf("special token not parsed: %v", ids)
	}
	if ids := tok.Encode("<|im_start|>", false, false); slices.Contains(ids, im) {
		t.Fatal("special token parsed from plain text")
	}
	if got := preTokenize("Hello  world's 42 times!\n\nok"); !slices.Equal(got, []string{"Hello", " ", " world", "'s", " 42", " times", "!", "\n", "\n", "ok"}) {
		t.Fatalf("pre-tokenizer %q", got)
	}
	spm, _ := genModel(t, "tiny-spm", QuantF32, 1)
	st := spm.Tokenizer()
	ids := st.Encode("the", false, true)
	if ids[0] != 1 || st.Token(ids[1]) != "▁the" {
		t.Fatalf("SPM \"the\" → %v (%q)", ids, st.Token(ids[len(ids)-1]))
	}
	// A character outside the vocabulary falls back to its UTF-8 bytes.
	ids = st.Encode("日", false, false)
	if len(ids) < 3 || st.Token(ids[len(ids)-1]) != "<0xA5>" {
		t.Fatalf("byte fallback: %v", ids)
	}
}

func TestChatTemplates(t *testing.T) {
	msgs := []Message{{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello."}, {"user", "Bye"}}
	golden := map[ChatTemplate]string{
		ChatML: "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n",
		Llama3: "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
		Llama2: "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello. </s><s>[INST] Bye [/INST]",
	}
	for tmpl, want := range golden {
		got, err := tmpl.Render(msgs)
		if err != nil || got != want {
			t.Errorf("%s:\n got %q\nwant %q (%v)", tmpl, got, want, err)
		}
	}
	m, _ := genModel(t, "tiny", QuantF32, 1)
	if m.Template() != ChatML {
		t.Fatalf("tiny model template %s, want chatml", m.Template())
	}
	s, _ := genModel(t, "tiny-spm", QuantF32, 1)
	if s.Template() != Llama2 {
		t.Fatalf("spm model template %s, want llama2", s.Template())
	}
	ids, err := m.EncodeChat([]Message{{"user", "Hi"}})
	if err != nil {
		t.Fatal(err)
	}
	im, _ := m.Tokenizer().ID("<|im_start|>")
	if ids[0] != im {
		t.Fatalf("chat encoding starts with %d", ids[0])
	}
}

func TestFileIDCached(t *testing.T) {
	_, path := genModel(t, "tiny", QuantQ8, 1)
	a, err := FileID(path)
	if err != nil || len(a) != 64 {
		t.Fatal(a, err)
	}
	b, _ := FileID(path)
	if a != b {
		t.Fatal("cached id differs")
	}
}

func FuzzTokenizerRoundTrip(f *testing.F) {
	dir := f.TempDir()
	var toks []*Tokenizer
	for _, shape := range []string{"tiny", "tiny-spm"} {
		p := filepath.Join(dir, shape+".gguf")
		if err := Generate(p, Shapes[shape], QuantF32, 1); err != nil {
			f.Fatal(err)
		}
		m, err := Load(p)
		if err != nil {
			f.Fatal(err)
		}
		toks = append(toks, m.Tokenizer())
	}
	f.Add("héllo wörld 日本語 🙂")
	f.Add("<|im_start|>user\nhi<|im_end|>")
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		for _, tok := range toks {
			ids := tok.Encode(s, false, false)
			if got := tok.Decode(ids); got != s {
				t.Fatalf("%s: round trip of %q gave %q", tok.Kind, s, got)
			}
			_ = tok.Encode(s, true, true)
		}
		// Decoding arbitrary ids never panics.
		_ = toks[0].Decode([]int{-1, 1 << 30, 5})
	})
}
