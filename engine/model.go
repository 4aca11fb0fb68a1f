// Package engine is Agora's built-in inference engine: pure Go, no cgo.
// It loads llama-family GGUF models (llama, smollm, qwen2 shapes) with F32,
// F16 or Q8_0 weights, tokenizes with the model's own vocabulary, generates
// with greedy or seeded sampling, and scores a given completion token by
// token (the validator's check).
package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/agoranet/agora/engine/gguf"
)

// Config is a model's shape, read from GGUF metadata.
type Config struct {
	Arch       string  `json:"architecture"`
	Name       string  `json:"name"`
	Dim        int     `json:"embedding_length"`
	Hidden     int     `json:"feed_forward_length"`
	Layers     int     `json:"block_count"`
	Heads      int     `json:"head_count"`
	KVHeads    int     `json:"head_count_kv"`
	HeadDim    int     `json:"head_dim"`
	Vocab      int     `json:"vocab_size"`
	Context    int     `json:"context_length"`
	RopeBase   float32 `json:"rope_freq_base"`
	Eps        float32 `json:"rms_eps"`
	RopeNeox   bool    `json:"rope_neox"`
	TiedOutput bool    `json:"tied_output"`
	Biases     bool    `json:"qkv_bias"`
	WeightType string  `json:"weight_type"`
}

type layer struct {
	attnNorm, ffnNorm []float32
	wq, wk, wv, wo    *matrix
	bq, bk, bv        []float32
	gate, up, down    *matrix
}

// Model is a loaded model. It is safe for concurrent use: each Generate or
// Score call has its own KV cache.
type Model struct {
	cfg      Config
	file     *gguf.File
	path     string
	embed    *matrix
	layers   []layer
	outNorm  []float32
	output   *matrix
	tok      *Tokenizer
	template ChatTemplate
	id       string
}

func metaInt(g *gguf.File, key string) (int, error) {
	v, ok := g.Uint(key)
	if !ok || v > math.MaxInt32 {
		return 0, fmt.Errorf("metadata %s missing or out of range", key)
	}
	return int(v), nil
}

// Load opens a GGUF model.
func Load(path string) (*Model, error) {
	g, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	m, err := load(g)
	if err != nil {
		g.Close()
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	m.path = path
	return m, nil
}

func load(g *gguf.File) (*Model, error) {
	arch, ok := g.String("general.architecture")
	if !ok {
		return nil, errors.New("general.architecture missing")
	}
	if arch != "llama" && arch != "qwen2" {
		return nil, fmt.Errorf("architecture %q not supported (llama, qwen2)", arch)
	}
	c := Config{Arch: arch}
	c.Name, _ = g.String("general.name")
	var err error
	for _, f := range []struct {
		key string
		dst *int
	}{{"context_length", &c.Context}, {"embedding_length", &c.Dim}, {"block_count", &c.Layers},
		{"feed_forward_length", &c.Hidden}, {"attention.head_count", &c.Heads}} {
		if *f.dst, err = metaInt(g, arch+"."+f.key); err != nil {
			return nil, err
		}
	}
	c.KVHeads = c.Heads
	if v, ok := g.Uint(arch + ".attention.head_count_kv"); ok {
		c.KVHeads = int(v)
	}
	if c.Dim <= 0 || c.Heads <= 0 || c.KVHeads <= 0 || c.Dim%c.Heads != 0 || c.Heads%c.KVHeads != 0 || c.Layers <= 0 || c.Hidden <= 0 || c.Layers > 1024 {
		return nil, fmt.Errorf("inconsistent shape: dim %d heads %d kv heads %d layers %d", c.Dim, c.Heads, c.KVHeads, c.Layers)
	}
	c.HeadDim = c.Dim / c.Heads
	c.RopeBase = 10000
	if v, ok := g.Float(arch + ".rope.freq_base"); ok {
		c.RopeBase = float32(v)
	}
	c.Eps = 1e-5
	if v, ok := g.Float(arch + ".attention.layer_norm_rms_epsilon"); ok {
		c.Eps = float32(v)
	}
	// llama.cpp's converter permutes llama Q/K so adjacent pairs rotate
	// together; qwen2 keeps the original halves layout (NEOX).
	c.RopeNeox = arch == "qwen2"
	tok, err := tokenizerFromGGUF(g)
	if err != nil {
		return nil, err
	}
	c.Vocab = tok.VocabSize()
	m := &Model{file: g, tok: tok}
	kvDim := c.KVHeads * c.HeadDim
	if m.embed, err = newMatrix(g, "token_embd.weight", c.Vocab, c.Dim); err != nil {
		return nil, err
	}
	c.WeightType = m.embed.typ.String()
	if m.outNorm, err = vector(g, "output_norm.weight", c.Dim); err != nil {
		return nil, err
	}
	if _, ok := g.Tensor("output.weight"); ok {
		if m.output, err = newMatrix(g, "output.weight", c.Vocab, c.Dim); err != nil {
			return nil, err
		}
	} else {
		m.output, c.TiedOutput = m.embed, true
	}
	_, c.Biases = g.Tensor("blk.0.attn_q.bias")
	m.layers = make([]layer, c.Layers)
	for i := range m.layers {
		l := &m.layers[i]
		p := "blk." + strconv.Itoa(i) + "."
		if l.attnNorm, err = vector(g, p+"attn_norm.weight", c.Dim); err != nil {
			return nil, err
		}
		if l.ffnNorm, err = vector(g, p+"ffn_norm.weight", c.Dim); err != nil {
			return nil, err
		}
		for _, w := range []struct {
			name       string
			dst        **matrix
			rows, cols int
		}{{"attn_q", &l.wq, c.Dim, c.Dim}, {"attn_k", &l.wk, kvDim, c.Dim}, {"attn_v", &l.wv, kvDim, c.Dim},
			{"attn_output", &l.wo, c.Dim, c.Dim}, {"ffn_gate", &l.gate, c.Hidden, c.Dim}, {"ffn_up", &l.up, c.Hidden, c.Dim},
			{"ffn_down", &l.down, c.Dim, c.Hidden}} {
			if *w.dst, err = newMatrix(g, p+w.name+".weight", w.rows, w.cols); err != nil {
				return nil, err
			}
		}
		if c.Biases {
			if l.bq, err = vector(g, p+"attn_q.bias", c.Dim); err != nil {
				return nil, err
			}
			if l.bk, err = vector(g, p+"attn_k.bias", kvDim); err != nil {
				return nil, err
			}
			if l.bv, err = vector(g, p+"attn_v.bias", kvDim); err != nil {
				return nil, err
			}
		}
	}
	m.cfg = c
	tmpl, _ := g.String("tokenizer.chat_template")
	m.template = detectTemplate(tmpl, tok)
	return m, nil
}

// Close releases the mapped file.
func (m *Model) Close() error { return m.file.Close() }

// Config returns the model's shape.
func (m *Model) Config() Config { return m.cfg }

// Tokenizer returns the model's tokenizer.
func (m *Model) Tokenizer() *Tokenizer { return m.tok }

// Template returns the chat template chosen for the model.
func (m *Model) Template() ChatTemplate { return m.template }

// ID is the model id: sha256 of the GGUF file, hex.
func (m *Model) ID() (string, error) {
	if m.id == "" {
		id, err := FileID(m.path)
		if err != nil {
			return "", err
		}
		m.id = id
	}
	return m.id, nil
}

// FileID returns sha256 of the file in hex, cached in PATH.sha256 together
// with the size and modification time it was computed for, so a large file
// hashes once.
func FileID(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	stamp := fmt.Sprintf("%d %d", st.Size(), st.ModTime().UnixNano())
	if raw, err := os.ReadFile(path + ".sha256"); err == nil {
		if id, s, ok := strings.Cut(strings.TrimSpace(string(raw)), " "); ok && s == stamp && len(id) == 64 {
			return id, nil
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	id := hex.EncodeToString(h.Sum(nil))
	// The cache is an optimization: failing to write it is not an error.
	_ = os.WriteFile(path+".sha256", []byte(id+" "+stamp+"\n"), 0o644)
	return id, nil
}

// state is one sequence's working memory: activations and the KV cache.
type state struct {
	x, xb, xb2, q, k, v, hb, hb2, att, logits []float32
	keys, vals                                [][]float32 // per layer: [pos*kvDim]
	pos                                       int
}

func (m *Model) newState(capacity int) *state {
	c := m.cfg
	kvDim := c.KVHeads * c.HeadDim
	s := &state{
		x: make([]float32, c.Dim), xb: make([]float32, c.Dim), xb2: make([]float32, c.Dim),
		q: make([]float32, c.Dim), k: make([]float32, kvDim), v: make([]float32, kvDim),
		hb: make([]float32, c.Hidden), hb2: make([]float32, c.Hidden),
		att: make([]float32, capacity), logits: make([]float32, c.Vocab),
		keys: make([][]float32, c.Layers), vals: make([][]float32, c.Layers),
	}
	for l := range c.Layers {
		s.keys[l] = make([]float32, 0, capacity*kvDim)
		s.vals[l] = make([]float32, 0, capacity*kvDim)
	}
	return s
}

func rmsNorm(out, x, w []float32, eps float32) {
	var ss float32
	for _, v := range x {
		ss += v * v
	}
	ss = ss/float32(len(x)) + eps
	inv := 1 / float32(math.Sqrt(float64(ss)))
	for i := range x {
		out[i] = w[i] * (inv * x[i])
	}
}

func (m *Model) rope(vec []float32, pos int) {
	hd := m.cfg.HeadDim
	for h := 0; h < len(vec)/hd; h++ {
		v := vec[h*hd : (h+1)*hd]
		if m.cfg.RopeNeox {
			half := hd / 2
			for j := range half {
				freq := 1 / float32(math.Pow(float64(m.cfg.RopeBase), float64(2*j)/float64(hd)))
				val := float64(float32(pos) * freq)
				fcr, fci := float32(math.Cos(val)), float32(math.Sin(val))
				a, b := v[j], v[j+half]
				v[j], v[j+half] = a*fcr-b*fci, a*fci+b*fcr
			}
			continue
		}
		for i := 0; i < hd; i += 2 {
			freq := 1 / float32(math.Pow(float64(m.cfg.RopeBase), float64(i)/float64(hd)))
			val := float64(float32(pos) * freq)
			fcr, fci := float32(math.Cos(val)), float32(math.Sin(val))
			a, b := v[i], v[i+1]
			v[i], v[i+1] = a*fcr-b*fci, a*fci+b*fcr
		}
	}
}

// forward runs one token at the state's next position and leaves the
// next-token logits in s.logits.
func (m *Model) forward(s *state, token int) error {
	c := m.cfg
	if token < 0 || token >= c.Vocab {
		return fmt.Errorf("token %d outside the vocabulary of %d", token, c.Vocab)
	}
	if s.pos >= c.Context {
		return fmt.Errorf("context of %d tokens is full", c.Context)
	}
	if s.pos >= len(s.att) {
		s.att = append(s.att, make([]float32, len(s.att)+1)...)
	}
	kvDim := c.KVHeads * c.HeadDim
	group := c.Heads / c.KVHeads
	scale := 1 / float32(math.Sqrt(float64(c.HeadDim)))
	m.embed.row(s.x, token)
	for li := range m.layers {
		l := &m.layers[li]
		rmsNorm(s.xb, s.x, l.attnNorm, c.Eps)
		l.wq.matVec(s.q, s.xb)
		l.wk.matVec(s.k, s.xb)
		l.wv.matVec(s.v, s.xb)
		if l.bq != nil {
			addInto(s.q, l.bq)
			addInto(s.k, l.bk)
			addInto(s.v, l.bv)
		}
		m.rope(s.q, s.pos)
		m.rope(s.k, s.pos)
		s.keys[li] = append(s.keys[li], s.k...)
		s.vals[li] = append(s.vals[li], s.v...)
		keys, vals := s.keys[li], s.vals[li]
		for h := range c.Heads {
			q := s.q[h*c.HeadDim : (h+1)*c.HeadDim]
			kvOff := (h / group) * c.HeadDim
			att := s.att[:s.pos+1]
			for t := range att {
				k := keys[t*kvDim+kvOff : t*kvDim+kvOff+c.HeadDim]
				var dot float32
				for i := range q {
					dot += q[i] * k[i]
				}
				att[t] = dot * scale
			}
			softmax(att)
			out := s.xb[h*c.HeadDim : (h+1)*c.HeadDim]
			clear(out)
			for t, a := range att {
				v := vals[t*kvDim+kvOff : t*kvDim+kvOff+c.HeadDim]
				for i := range out {
					out[i] += a * v[i]
				}
			}
		}
		l.wo.matVec(s.xb2, s.xb)
		addInto(s.x, s.xb2)
		rmsNorm(s.xb, s.x, l.ffnNorm, c.Eps)
		l.gate.matVec(s.hb, s.xb)
		l.up.matVec(s.hb2, s.xb)
		for i, g := range s.hb {
			s.hb[i] = g / (1 + float32(math.Exp(float64(-g)))) * s.hb2[i]
		}
		l.down.matVec(s.xb2, s.hb)
		addInto(s.x, s.xb2)
	}
	rmsNorm(s.x, s.x, m.outNorm, c.Eps)
	m.output.matVec(s.logits, s.x)
	s.pos++
	return nil
}

func addInto(dst, src []float32) {
	for i := range dst {
		dst[i] += src[i]
	}
}

func softmax(x []float32) {
	mx := x[0]
	for _, v := range x {
		mx = max(mx, v)
	}
	var sum float32
	for i, v := range x {
		x[i] = float32(math.Exp(float64(v - mx)))
		sum += x[i]
	}
	for i := range x {
		x[i] /= sum
	}
}
