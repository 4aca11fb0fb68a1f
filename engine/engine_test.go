package engine

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/agoranet/agora/engine/gguf"
)

// forwardAll runs tokens through m.forward and returns the logits after
// every one of them (len(tokens) × vocab).
func forwardAll(t testing.TB, m *Model, s *state, tokens []int) []float32 {
	t.Helper()
	out := make([]float32, 0, len(tokens)*m.cfg.Vocab)
	if err := m.forward(s, tokens, func(_ int, logits []float32) { out = append(out, logits...) }); err != nil {
		t.Fatal(err)
	}
	return out
}

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
	// quantActs rounds each matrix input to int8 per 32-value block first,
	// as the engine's Q8_0 products do (matmul_q8.go).
	quantActs bool
}

func newRef(t *testing.T, path string, c Config) *refModel {
	g, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	r := &refModel{c: c, embed: refTensor(t, g, "token_embd.weight"), outNorm: refTensor(t, g, "output_norm.weight")}
	if ti, ok := g.Tensor("blk.0.attn_q.weight"); ok && ti.Type == gguf.Q8_0 {
		r.quantActs = true
	}
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

func (r *refModel) mv(w []float64, x []float64, rows int) []float64 {
	if r.quantActs {
		x = quantizeRef(x)
	}
	return mv(w, x, rows)
}

// quantizeRef is the engine's activation quantizer in float64: per block,
// d = max|x|/127 and x ≈ d·round(x/d).
func quantizeRef(x []float64) []float64 {
	out := make([]float64, len(x))
	for b := 0; b < len(x); b += q8Block {
		var amax float64
		for _, v := range x[b : b+q8Block] {
			amax = max(amax, math.Abs(v))
		}
		if amax == 0 {
			continue
		}
		d := amax / 127
		for i := b; i < b+q8Block; i++ {
			out[i] = d * math.Round(x[i]/d)
		}
	}
	return out
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
			// llama.cpp rotates qwen2 as NEOX (i, i+d/2) and llama as NORM
			// (adjacent pairs, its converter having permuted Q/K).
			if c.Arch == "qwen2" {
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
			qs[p], ks[p], vs[p] = r.mv(r.wq[l], h, c.Dim), r.mv(r.wk[l], h, kvDim), r.mv(r.wv[l], h, kvDim)
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
			o := r.mv(r.wo[l], att, c.Dim)
			for i := range o {
				xs[p][i] += o[i]
			}
			h := rms(xs[p], r.ffnNorm[l], float64(c.Eps))
			g, u := r.mv(r.gate[l], h, c.Hidden), r.mv(r.up[l], h, c.Hidden)
			for i := range g {
				g[i] = g[i] / (1 + math.Exp(-g[i])) * u[i]
			}
			d := r.mv(r.down[l], g, c.Dim)
			for i := range d {
				xs[p][i] += d[i]
			}
		}
	}
	return r.mv(r.out, rms(xs[n-1], r.outNorm, float64(c.Eps)), c.Vocab)
}

// TestMatchesReferenceForwardPass runs greedy generation on generated models
// of several shapes and checks every step's full logit vector, and the token
// chosen, against the float64 reference above (for Q8_0 the reference uses
// the exactly dequantized weights). The engine computes in float32, so the
// logits must agree to within float32 rounding, far below any gap that
// could change a greedy choice.
func TestMatchesReferenceForwardPass(t *testing.T) {
	cases := []struct {
		shape string
		q     Quant
		tol   float64 // max |Δlogit| / std(reference logits)
	}{
		{"tiny", QuantF32, 1e-4}, {"tiny", QuantF16, 1e-4}, {"tiny", QuantQ8, 1e-4},
		{"tiny-qwen2", QuantF32, 1e-4}, {"tiny-qwen2", QuantQ8, 1e-4},
		{"tiny-llama3", QuantF32, 1e-4}, {"tiny-llama3", QuantQ8, 1e-4},
		{"tiny-spm", QuantF32, 1e-4},
	}
	for _, tc := range cases {
		t.Run(tc.shape+"/"+string(tc.q), func(t *testing.T) {
			m, path := genModel(t, tc.shape, tc.q, 11)
			ref := newRef(t, path, m.Config())
			prompt := m.Tokenizer().Encode("The quick brown fox", false, true)
			const steps = 12
			res, err := m.Generate(context.Background(), prompt, GenerateOptions{MaxTokens: steps, Stop: []int{-1}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			// The engine's own logits, step by step, through its KV cache.
			s := m.newState(len(prompt) + steps)
			if err := m.prefill(context.Background(), s, prompt); err != nil {
				t.Fatal(err)
			}
			seq := slices.Clone(prompt)
			distinct := map[int]bool{}
			worst := 0.0
			for i, tok := range res.Tokens {
				lg := ref.logits(seq)
				got := s.logits[:m.Config().Vocab]
				var mean, sq float64
				for _, v := range lg {
					mean += v
				}
				mean /= float64(len(lg))
				for _, v := range lg {
					sq += (v - mean) * (v - mean)
				}
				std := math.Sqrt(sq / float64(len(lg)))
				best := 0
				var maxDiff float64
				for j := range lg {
					if lg[j] > lg[best] {
						best = j
					}
					maxDiff = max(maxDiff, math.Abs(float64(got[j])-lg[j]))
				}
				worst = max(worst, maxDiff/std)
				if maxDiff > tc.tol*std {
					t.Fatalf("step %d: logits differ from the reference by up to %g (%.2g of their spread)", i, maxDiff, maxDiff/std)
				}
				// Greedy must pick the reference's top token unless the two
				// are tied within the tolerance.
				if tok.ID != best && lg[best]-lg[tok.ID] > 2*tc.tol*std {
					t.Fatalf("step %d: engine chose %d, reference %d (logit gap %g)", i, tok.ID, best, lg[best]-lg[tok.ID])
				}
				if argmax(got) != tok.ID {
					t.Fatalf("step %d: generation chose %d, argmax of the step logits is %d", i, tok.ID, argmax(got))
				}
				seq = append(seq, tok.ID)
				distinct[tok.ID] = true
				if err := m.forward(s, []int{tok.ID}, nil); err != nil {
					t.Fatal(err)
				}
			}
			if len(res.Tokens) != steps {
				t.Fatalf("%d tokens", len(res.Tokens))
			}
			if len(distinct) < 4 {
				t.Fatalf("random model degenerated to %d distinct tokens; the comparison would be weak", len(distinct))
			}
			t.Logf("%d distinct tokens in %d; worst logit error %.2g of the spread", len(distinct), steps, worst)
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
	long, err := m.Generate(context.Background(), prompt, GenerateOptions{MaxTokens: 10_000, Stop: []int{-1}}, nil)
	if err != nil || long.FinishReason != "length" || len(prompt)+len(long.Tokens) > m.Config().Context {
		t.Fatalf("max tokens beyond the context: %v, %d tokens, %s", err, len(long.Tokens), long.FinishReason)
	}
	for _, o := range []GenerateOptions{{MaxTokens: 0}, {MaxTokens: 1, TopP: 2}, {MaxTokens: 1, Temperature: -1}, {MaxTokens: 1, TopLogprobs: 21}} {
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

// TestLoadVocabularyMatchesLoad: the weightless read gives the same id,
// tokens and chat rendering as a full load, for each tokenizer family.
func TestLoadVocabularyMatchesLoad(t *testing.T) {
	for _, shape := range []string{"tiny", "tiny-llama3", "tiny-qwen2", "tiny-spm"} {
		t.Run(shape, func(t *testing.T) {
			m, path := genModel(t, shape, QuantQ8, 3)
			v, err := LoadVocabulary(path)
			if err != nil {
				t.Fatal(err)
			}
			id, _ := m.ID()
			if v.ID != id {
				t.Fatalf("vocabulary id %s, model id %s", v.ID, id)
			}
			msgs := []Message{{Role: "system", Content: "be brief"}, {Role: "user", Content: "Hello, 12345 wörld!\n\tcode()"}}
			want, err := m.Tokenizer().EncodeChat(msgs)
			if err != nil {
				t.Fatal(err)
			}
			got, err := v.Tokenizer.EncodeChat(msgs)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("chat tokens differ:\n vocabulary %v\n model      %v", got, want)
			}
		})
	}
	if _, err := LoadVocabulary(filepath.Join(t.TempDir(), "absent.gguf")); err == nil {
		t.Fatal("a missing file loads")
	}
}
