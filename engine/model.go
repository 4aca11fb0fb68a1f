// Package engine is Agora's built-in inference engine: pure Go, no cgo.
//
// It loads llama-family GGUF models (llama, smollm, qwen2 shapes) with F32,
// F16, BF16 or Q8_0 weights, tokenizes with the model's own vocabulary
// (SentencePiece or byte-level BPE), renders the common chat templates,
// generates with greedy or seeded sampling, and scores a given completion
// token by token (the validator's check).
//
// A Model is safe for concurrent use: every Generate or Score call has its
// own KV cache, and all calls share the model's worker pool. Results are
// deterministic: each logit is computed by one worker with one kernel in a
// fixed order, whatever the number of threads, the batch size or the CPU's
// instruction set, so Score reproduces Generate's logprobs exactly.
package engine

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"

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
	RopeScale  float32 `json:"rope_scale,omitempty"` // linear position scaling (1 = none)
	Eps        float32 `json:"rms_eps"`
	RopeNeox   bool    `json:"rope_neox"`
	TiedOutput bool    `json:"tied_output"`
	Biases     bool    `json:"qkv_bias"`
	WeightType string  `json:"weight_type"` // type of the attention/FFN weights (e.g. Q8_0)
}

type layer struct {
	attnNorm, ffnNorm []float32
	wq, wk, wv, wo    *matrix
	bq, bk, bv        []float32
	gate, up, down    *matrix
}

// Model is a loaded model. See the package comment for concurrency.
type Model struct {
	cfg      Config
	path     string
	params   int64 // parameters in the file's tensors
	embed    *matrix
	layers   []layer
	outNorm  []float32
	output   *matrix
	invFreq  []float32 // RoPE inverse frequency per rotated pair
	tok      *Tokenizer
	template ChatTemplate
	types    map[string]int // tensor type → count, for Info
	weights  *arena         // the repacked weights

	pool   *pool
	mu     sync.RWMutex // held shared by calls, exclusively by Close
	closed bool

	idOnce sync.Once
	id     string
	idErr  error
}

// ErrClosed is returned by calls on a closed Model.
var ErrClosed = errors.New("engine: model is closed")

func metaInt(g *gguf.File, key string) (int, error) {
	v, ok := g.Uint(key)
	if !ok || v > math.MaxInt32 {
		return 0, fmt.Errorf("metadata %s missing or out of range", key)
	}
	return int(v), nil
}

// Load opens a GGUF model. The file stays mapped until Close.
func Load(path string) (*Model, error) {
	g, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	m, err := load(g)
	// Everything the model uses was copied or repacked out of the file, so
	// the mapping and the parsed metadata (the vocabulary alone is ~12 MiB
	// of values) need not outlive loading.
	cerr := g.Close()
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	if cerr != nil {
		m.weights.free()
		return nil, fmt.Errorf("load %s: %w", path, cerr)
	}
	m.path = path
	m.pool = newPool(runtime.GOMAXPROCS(0))
	return m, nil
}

// Vocabulary is what a GGUF file says about its text without its weights:
// the tokenizer with its chat template, and the file's model id. A
// validator verifying through an upstream server needs only this, so a
// model far too large for the CPU engine (or of an architecture it does
// not run) still works there.
type Vocabulary struct {
	ID        string
	Tokenizer *Tokenizer
}

// LoadVocabulary reads path's tokenizer and chat template and hashes the
// file for its id. No tensor is read.
func LoadVocabulary(path string) (*Vocabulary, error) {
	g, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer g.Close()
	tok, err := tokenizerFromGGUF(g)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	arch, _ := g.String("general.architecture")
	withTemplate(g, arch, tok)
	id, err := FileID(path)
	if err != nil {
		return nil, err
	}
	return &Vocabulary{ID: id, Tokenizer: tok}, nil
}

// withTemplate gives tok the chat template (and default system prompt)
// the file's metadata names, and returns the template's family.
func withTemplate(g *gguf.File, arch string, tok *Tokenizer) ChatTemplate {
	tmpl, _ := g.String("tokenizer.chat_template")
	tok.template = detectTemplate(tmpl, arch, tok)
	tok.defaultSystem = defaultSystemPrompt(tmpl)
	return tok.template
}

func load(g *gguf.File) (_ *Model, err error) {
	weights := &arena{}
	defer func() {
		if err != nil {
			weights.free()
		}
	}()
	arch, ok := g.String("general.architecture")
	if !ok {
		return nil, errors.New("general.architecture missing")
	}
	if arch != "llama" && arch != "qwen2" {
		return nil, fmt.Errorf("architecture %q not supported (llama, qwen2)", arch)
	}
	c := Config{Arch: arch}
	c.Name, _ = g.String("general.name")
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
	if c.Dim <= 0 || c.Heads <= 0 || c.KVHeads <= 0 || c.Dim%c.Heads != 0 || c.Heads%c.KVHeads != 0 ||
		c.Layers <= 0 || c.Hidden <= 0 || c.Layers > 1024 || c.Context <= 0 || (c.Dim/c.Heads)%2 != 0 {
		return nil, fmt.Errorf("inconsistent shape: dim %d heads %d kv heads %d layers %d context %d", c.Dim, c.Heads, c.KVHeads, c.Layers, c.Context)
	}
	c.HeadDim = c.Dim / c.Heads
	// Shapes this engine does not implement must fail loudly, not compute garbage.
	if v, ok := g.Uint(arch + ".attention.key_length"); ok && int(v) != c.HeadDim {
		return nil, fmt.Errorf("head size %d differs from dim/heads %d: not supported", v, c.HeadDim)
	}
	if v, ok := g.Uint(arch + ".rope.dimension_count"); ok && int(v) != c.HeadDim {
		return nil, fmt.Errorf("partial rotary embeddings (%d of %d dims) not supported", v, c.HeadDim)
	}
	c.RopeBase = 10000
	if v, ok := g.Float(arch + ".rope.freq_base"); ok {
		c.RopeBase = float32(v)
	}
	c.RopeScale = 1
	if typ, ok := g.String(arch + ".rope.scaling.type"); ok && typ != "none" {
		f, _ := g.Float(arch + ".rope.scaling.factor")
		if typ != "linear" || f <= 0 {
			return nil, fmt.Errorf("rope scaling %q (factor %g) not supported (none, linear)", typ, f)
		}
		c.RopeScale = float32(f)
	}
	c.Eps = 1e-5
	if v, ok := g.Float(arch + ".attention.layer_norm_rms_epsilon"); ok {
		c.Eps = float32(v)
	}
	// llama.cpp's converter permutes llama Q/K weights so that adjacent
	// pairs rotate together (rope type NORM); qwen2 keeps the Hugging Face
	// layout where element i pairs with i+d/2 (rope type NEOX).
	c.RopeNeox = arch == "qwen2"
	tok, err := tokenizerFromGGUF(g)
	if err != nil {
		return nil, err
	}
	m := &Model{tok: tok, types: map[string]int{}, weights: weights}
	for _, t := range g.Tensors {
		m.params += int64(t.Elements())
	}
	emb, ok := g.Tensor("token_embd.weight")
	if !ok || len(emb.Dims) != 2 || emb.Dims[1] > math.MaxInt32 {
		return nil, errors.New("tensor token_embd.weight missing or not a matrix")
	}
	c.Vocab = int(emb.Dims[1])
	if tok.VocabSize() > c.Vocab {
		return nil, fmt.Errorf("tokenizer has %d tokens but the embedding only %d rows", tok.VocabSize(), c.Vocab)
	}
	kvDim := c.KVHeads * c.HeadDim
	if m.embed, err = m.matrix(g, "token_embd.weight", c.Vocab, c.Dim); err != nil {
		return nil, err
	}
	if m.outNorm, err = vector(g, "output_norm.weight", c.Dim); err != nil {
		return nil, err
	}
	if _, ok := g.Tensor("output.weight"); ok {
		if m.output, err = m.matrix(g, "output.weight", c.Vocab, c.Dim); err != nil {
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
			if *w.dst, err = m.matrix(g, p+w.name+".weight", w.rows, w.cols); err != nil {
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
	c.WeightType = m.layers[0].wq.typ.String()
	// Inverse RoPE frequencies, divided by per-pair factors when the model
	// ships them (Llama-3.1 style rope_freqs) and by linear scaling.
	var factors []float32
	if _, ok := g.Tensor("rope_freqs.weight"); ok {
		if factors, err = vector(g, "rope_freqs.weight", c.HeadDim/2); err != nil {
			return nil, err
		}
	}
	m.invFreq = make([]float32, c.HeadDim/2)
	for j := range m.invFreq {
		f := float32(1 / math.Pow(float64(c.RopeBase), float64(2*j)/float64(c.HeadDim)))
		if factors != nil {
			f /= factors[j]
		}
		m.invFreq[j] = f / c.RopeScale
	}
	m.cfg = c
	m.template = withTemplate(g, arch, tok)
	return m, nil
}

func (m *Model) matrix(g *gguf.File, name string, rows, cols int) (*matrix, error) {
	mat, err := newMatrix(g, m.weights, name, rows, cols)
	if err == nil {
		m.types[mat.typ.String()]++
	}
	return mat, err
}

// Close stops the model's workers and unmaps the file. It waits for calls
// in progress; later calls fail with ErrClosed.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	if m.pool != nil {
		m.pool.close()
	}
	return m.weights.free()
}

// acquire guards a call against a concurrent Close.
func (m *Model) acquire() error {
	m.mu.RLock()
	if m.closed {
		m.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

func (m *Model) release() { m.mu.RUnlock() }

// Config returns the model's shape.
func (m *Model) Config() Config { return m.cfg }

// Tokenizer returns the model's tokenizer.
func (m *Model) Tokenizer() *Tokenizer { return m.tok }

// Template returns the chat template family chosen for the model.
func (m *Model) Template() ChatTemplate { return m.template }

// Info describes a loaded model for people and tools.
type Info struct {
	Config
	ID           string         `json:"id"`
	Path         string         `json:"path"`
	FileBytes    int64          `json:"file_bytes"`
	Parameters   int64          `json:"parameters"`
	TensorTypes  map[string]int `json:"tensor_types"` // weight matrices per storage type
	Tokenizer    string         `json:"tokenizer"`    // gpt2 (byte-level BPE) or llama (SentencePiece)
	PreTokenizer string         `json:"pre_tokenizer,omitempty"`
	ChatTemplate string         `json:"chat_template"`
	BOS          int            `json:"bos_token_id"`
	EOS          int            `json:"eos_token_id"`
	EOT          int            `json:"eot_token_id"`
}

// Info returns the model's description, including its id (which hashes
// the file on first use; see FileID).
func (m *Model) Info() (Info, error) {
	id, err := m.ID()
	if err != nil {
		return Info{}, err
	}
	in := Info{Config: m.cfg, ID: id, Path: m.path, TensorTypes: m.types, Tokenizer: string(m.tok.Kind),
		PreTokenizer: string(m.tok.pre), ChatTemplate: string(m.template), BOS: m.tok.BOS, EOS: m.tok.EOS, EOT: m.tok.EOT}
	if st, err := os.Stat(m.path); err == nil {
		in.FileBytes = st.Size()
	}
	in.Parameters = m.params
	return in, nil
}

// ID is the model id: sha256 of the GGUF file, hex.
func (m *Model) ID() (string, error) {
	m.idOnce.Do(func() { m.id, m.idErr = FileID(m.path) })
	return m.id, m.idErr
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
			if _, err := hex.DecodeString(id); err == nil {
				return id, nil
			}
		}
	}
	id, err := fileSHA256(path)
	if err != nil {
		return "", err
	}
	// The cache is an optimization: failing to write it is not an error.
	_ = os.WriteFile(path+".sha256", []byte(id+" "+stamp+"\n"), 0o644)
	return id, nil
}

// writeIDCache records a hash computed elsewhere (a download) for FileID.
func writeIDCache(path, id string) {
	if st, err := os.Stat(path); err == nil {
		_ = os.WriteFile(path+".sha256", []byte(fmt.Sprintf("%s %d %d\n", id, st.Size(), st.ModTime().UnixNano())), 0o644)
	}
}

// maxBatch is how many prompt tokens go through the layers together: each
// weight row is then read once per batch instead of once per token. At 16
// the weights stream from memory too often (smollm2-135m Q8_0 prompt on 2
// cores: 16 → 730 tokens/s, 32 → 950, 64 → 1170, 128 → 1260); 64 keeps the
// batch's activations (64 × hidden int8 per matrix input) within L2.
const maxBatch = 64

// headChunk is how many tokens' logits exist at once when every position's
// are wanted (Score), so scoring needs headChunk × vocab floats, not
// maxBatch × vocab (39 MiB at a 150k vocabulary).
const headChunk = 16

// state is one sequence's working memory: activations and the KV cache.
type state struct {
	x                []float32 // residual stream, batch × dim
	xb, att, hb, fin *acts     // matrix inputs
	q, k, v, xb2     []float32
	gate, up         []float32
	logits           []float32 // the logits of the last head call: up to headChunk × vocab
	scores           []float32 // attention weights, one per cached position
	cos, sin         []float32 // RoPE rotation per batch token and pair
	keys, vals       [][]float32
	pos              int
	task             task
}

// newState makes a state for up to capacity positions. Its batch buffers
// are sized by the batches forward is given (see scratch).
func (m *Model) newState(capacity int) *state {
	c := m.cfg
	kvDim := c.KVHeads * c.HeadDim
	s := &state{
		scores: make([]float32, capacity),
		keys:   make([][]float32, c.Layers), vals: make([][]float32, c.Layers),
	}
	for l := range c.Layers {
		s.keys[l] = make([]float32, 0, capacity*kvDim)
		s.vals[l] = make([]float32, 0, capacity*kvDim)
	}
	m.scratch(s, 1)
	return s
}

// scratch makes s's batch buffers hold n tokens, keeping larger ones: a
// prompt's batches size them once, decode reuses them. Logits start at one
// token's; head grows them when several tokens' are wanted (Score).
func (m *Model) scratch(s *state, n int) {
	if s.xb != nil && len(s.xb.f) >= n*m.cfg.Dim {
		return
	}
	c := m.cfg
	kvDim := c.KVHeads * c.HeadDim
	s.x, s.xb, s.att, s.hb, s.fin = make([]float32, n*c.Dim), newActs(n, c.Dim), newActs(n, c.Dim), newActs(n, c.Hidden), newActs(n, c.Dim)
	s.q, s.k, s.v, s.xb2 = make([]float32, n*c.Dim), make([]float32, n*kvDim), make([]float32, n*kvDim), make([]float32, n*c.Dim)
	s.gate, s.up = make([]float32, n*c.Hidden), make([]float32, n*c.Hidden)
	if len(s.logits) < c.Vocab {
		s.logits = make([]float32, c.Vocab)
	}
	s.cos, s.sin = make([]float32, n*c.HeadDim/2), make([]float32, n*c.HeadDim/2)
}

// rmsNorm sets out = w·x/√(mean(x²)+eps), the sum of squares in
// sumSquares' fixed order (elementwise.go).
func rmsNorm(out, x, w []float32, eps float32) {
	ss := sumSquares(x)
	ss = ss/float32(len(x)) + eps
	inv := 1 / float32(math.Sqrt(float64(ss)))
	mulScaled(out[:len(x)], x, w, inv)
}

// rope rotates every head of vec by the angles in cos/sin. Each product is
// converted explicitly: Go may otherwise fuse a*c−b*s into a multiply-add
// on arm64 (not on amd64), and the two would round differently.
func (m *Model) rope(vec, cos, sin []float32) {
	hd := m.cfg.HeadDim
	half := hd / 2
	for h := 0; h < len(vec)/hd; h++ {
		v := vec[h*hd : (h+1)*hd]
		if m.cfg.RopeNeox {
			for j := range half {
				a, b := v[j], v[j+half]
				v[j], v[j+half] = float32(a*cos[j])-float32(b*sin[j]), float32(a*sin[j])+float32(b*cos[j])
			}
			continue
		}
		for j := range half {
			a, b := v[2*j], v[2*j+1]
			v[2*j], v[2*j+1] = float32(a*cos[j])-float32(b*sin[j]), float32(a*sin[j])+float32(b*cos[j])
		}
	}
}

// mul runs up to three matrix products as one parallel task.
func (m *Model) mul(s *state, ops ...mulOp) {
	t := &s.task
	t.nops = copy(t.ops[:], ops)
	m.pool.run(t)
}

// forward runs tokens (at most maxBatch) at the state's next positions.
// With each nil, s.logits then holds the next-token logits after the last
// token; else each(j, logits) receives them after every token j in turn
// (logits is reused once each returns).
func (m *Model) forward(s *state, tokens []int, each func(j int, logits []float32)) error {
	c := m.cfg
	n := len(tokens)
	if n == 0 || n > maxBatch {
		return fmt.Errorf("batch of %d tokens", n)
	}
	for _, t := range tokens {
		if t < 0 || t >= c.Vocab {
			return fmt.Errorf("token %d outside the vocabulary of %d", t, c.Vocab)
		}
	}
	if s.pos+n > c.Context {
		return fmt.Errorf("context of %d tokens is full", c.Context)
	}
	m.scratch(s, n)
	stride := m.growScores(s, s.pos+n)
	kvDim := c.KVHeads * c.HeadDim
	group := c.Heads / c.KVHeads
	scale := 1 / float32(math.Sqrt(float64(c.HeadDim)))
	for i, t := range tokens {
		m.embedToken(s, i, t, s.pos+i)
	}
	s.xb.n, s.att.n, s.hb.n = n, n, n
	for li := range m.layers {
		l := &m.layers[li]
		for i := range n {
			rmsNorm(s.xb.vec(i), s.x[i*c.Dim:(i+1)*c.Dim], l.attnNorm, c.Eps)
		}
		m.mul(s, mulOp{l.wq, s.xb, s.q}, mulOp{l.wk, s.xb, s.k}, mulOp{l.wv, s.xb, s.v})
		for i := range n {
			k, v := m.finishQKV(s, l, i)
			s.keys[li] = append(s.keys[li], k...)
			s.vals[li] = append(s.vals[li], v...)
		}
		// Causal attention over the batch, one head per pool item: each
		// (token, head) output is computed by the same code in the same
		// order whichever worker runs it.
		keys, vals := s.keys[li], s.vals[li]
		m.pool.each(&s.task, c.Heads, func(h int) {
			kvOff := (h / group) * c.HeadDim
			scores := s.scores[h*stride : (h+1)*stride]
			for i := range n {
				qh := s.q[i*c.Dim+h*c.HeadDim : i*c.Dim+(h+1)*c.HeadDim]
				// This token sees itself and what came before.
				attendHead(s.att.vec(i)[h*c.HeadDim:(h+1)*c.HeadDim], scores[:s.pos+i+1], qh, keys, vals, kvDim, kvOff, scale)
			}
		})
		m.outputAndFeedForward(s, l, n)
	}
	s.pos += n
	if each == nil {
		m.head(s, n-1, n)
		return nil
	}
	for lo := 0; lo < n; lo += headChunk {
		hi := min(lo+headChunk, n)
		m.head(s, lo, hi)
		for j := lo; j < hi; j++ {
			each(j, s.logits[(j-lo)*c.Vocab:(j-lo+1)*c.Vocab])
		}
	}
	return nil
}

// head writes the logits after batch tokens lo..hi-1 (at most headChunk)
// into s.logits.
func (m *Model) head(s *state, lo, hi int) {
	c := m.cfg
	if need := (hi - lo) * c.Vocab; len(s.logits) < need {
		s.logits = make([]float32, need)
	}
	s.fin.n = hi - lo
	for i := lo; i < hi; i++ {
		rmsNorm(s.fin.vec(i-lo), s.x[i*c.Dim:(i+1)*c.Dim], m.outNorm, c.Eps)
	}
	m.mul(s, mulOp{m.output, s.fin, s.logits})
}

// growScores makes s's attention rows (one per head, heads run in
// parallel) long enough for need cached positions, with headroom so decode
// steps do not reallocate, and returns the row stride.
func (m *Model) growScores(s *state, need int) int {
	c := m.cfg
	stride := len(s.scores) / c.Heads
	if need > stride {
		stride = min(max(2*stride, need), c.Context)
		s.scores = make([]float32, c.Heads*stride)
	}
	return stride
}

// embedToken writes token's embedding, and the RoPE angles of position
// pos, into batch slot i of s.
func (m *Model) embedToken(s *state, i, token, pos int) {
	c := m.cfg
	half := c.HeadDim / 2
	m.embed.row(s.x[i*c.Dim:(i+1)*c.Dim], token)
	p := float32(pos)
	for j, f := range m.invFreq {
		ang := float64(p * f)
		s.cos[i*half+j], s.sin[i*half+j] = float32(math.Cos(ang)), float32(math.Sin(ang))
	}
}

// finishQKV adds layer l's biases to slot i's query, key and value and
// rotates the query and key to the slot's position; it returns the key
// and value for the cache.
func (m *Model) finishQKV(s *state, l *layer, i int) (k, v []float32) {
	c := m.cfg
	kvDim, half := c.KVHeads*c.HeadDim, c.HeadDim/2
	q := s.q[i*c.Dim : (i+1)*c.Dim]
	k, v = s.k[i*kvDim:(i+1)*kvDim], s.v[i*kvDim:(i+1)*kvDim]
	if l.bq != nil {
		addInto(q, l.bq)
		addInto(k, l.bk)
		addInto(v, l.bv)
	}
	cos, sin := s.cos[i*half:(i+1)*half], s.sin[i*half:(i+1)*half]
	m.rope(q, cos, sin)
	m.rope(k, cos, sin)
	return k, v
}

// attendHead is one head's attention for one token: scores over the
// cached keys, softmax, and the weighted sum of the cached values into o.
// The prompt path, generation and the continuous batch all use it, so a
// token's attention is the same arithmetic whichever computed it; the
// kernels in attention.go loop over all positions in one call and give
// the same bits on every CPU.
func attendHead(o, att, qh, keys, vals []float32, kvDim, kvOff int, scale float32) {
	attnScores(att, qh[:len(o)], keys, kvDim, kvOff, scale)
	softmax(att)
	attnValues(o, att, vals, kvDim, kvOff)
}

// outputAndFeedForward finishes a layer for the n tokens in s: the
// attention output projection and residual, then the SwiGLU feed-forward
// and its residual.
func (m *Model) outputAndFeedForward(s *state, l *layer, n int) {
	c := m.cfg
	m.mul(s, mulOp{l.wo, s.att, s.xb2})
	addInto(s.x[:n*c.Dim], s.xb2[:n*c.Dim])
	for i := range n {
		rmsNorm(s.xb.vec(i), s.x[i*c.Dim:(i+1)*c.Dim], l.ffnNorm, c.Eps)
	}
	m.mul(s, mulOp{l.gate, s.xb, s.gate}, mulOp{l.up, s.xb, s.up})
	siluMul(s.hb.f[:n*c.Hidden], s.gate[:n*c.Hidden], s.up[:n*c.Hidden])
	m.mul(s, mulOp{l.down, s.hb, s.xb2})
	addInto(s.x[:n*c.Dim], s.xb2[:n*c.Dim])
}
