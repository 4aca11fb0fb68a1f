package engine

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/agoranet/agora/engine/gguf"
)

// f16ToF32 converts an IEEE half to float32.
func f16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal
		for mant&0x400 == 0 {
			mant <<= 1
			exp--
		}
		exp++
		mant &= 0x3ff
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}

// f32ToF16 converts float32 to the nearest IEEE half (round to nearest even).
func f32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint32(14 - e)
		half := mant >> shift
		rem := mant & (1<<shift - 1)
		mid := uint32(1) << (shift - 1)
		if rem > mid || (rem == mid && half&1 == 1) {
			half++
		}
		return sign | uint16(half)
	}
	half := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && half&1 == 1) {
		half++
	}
	return sign | uint16(half)
}

// matrix is a weight matrix of rows × cols (cols = GGUF ne[0]).
type matrix struct {
	typ        gguf.TensorType
	rows, cols int
	f32        []float32 // F32 and F16 (widened at load)
	q8         q8Packed  // Q8_0 and Q8_K, repacked for the integer kernels (matmul_q8.go)
	q4         *q4Packed // Q4_0 and Q5_0, repacked compactly likewise (matmul_q4.go)
	kq         *kPacked  // Q4_K, Q5_K and Q6_K, repacked likewise (matmul_k.go)
}

// newMatrix loads a tensor; repacked weights are allocated from a.
func newMatrix(g *gguf.File, a *arena, name string, rows, cols int) (*matrix, error) {
	t, ok := g.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("tensor %s missing", name)
	}
	if len(t.Dims) > 2 || t.Dims[0] != uint64(cols) || (len(t.Dims) == 2 && t.Dims[1] != uint64(rows)) || (len(t.Dims) == 1 && rows != 1) {
		return nil, fmt.Errorf("tensor %s has dims %v, want [%d %d]", name, t.Dims, cols, rows)
	}
	m := &matrix{typ: t.Type, rows: rows, cols: cols}
	data := g.Data(t)
	switch t.Type {
	case gguf.F32:
		m.f32 = make([]float32, rows*cols)
		for i := range m.f32 {
			m.f32[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		}
	case gguf.F16:
		m.f32 = make([]float32, rows*cols)
		for i := range m.f32 {
			m.f32[i] = f16ToF32(binary.LittleEndian.Uint16(data[2*i:]))
		}
	case gguf.BF16:
		m.f32 = make([]float32, rows*cols)
		for i := range m.f32 {
			m.f32[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(data[2*i:])) << 16)
		}
	case gguf.Q8_0, gguf.Q4_0, gguf.Q5_0, gguf.Q8_K:
		elems, bytes := q8Block, q8BlockBytes
		if bt, ok := blockTypes[t.Type]; ok {
			elems, bytes = bt.elems, bt.bytes
		}
		if cols%elems != 0 {
			return nil, fmt.Errorf("tensor %s: %d columns are not a multiple of the %s block %d", name, cols, t.Type, elems)
		}
		if t.Type == gguf.Q4_0 || t.Type == gguf.Q5_0 {
			m.q4 = packQ4(a, t.Type, data, rows, cols)
		} else {
			m.q8 = packQ8(a, data, rows, cols, cols/elems*bytes, q8Decoders[t.Type])
		}
		g.Release(t)
	case gguf.Q4_K, gguf.Q5_K, gguf.Q6_K:
		if cols%qkK != 0 {
			return nil, fmt.Errorf("tensor %s: %d columns are not a multiple of the %s block %d", name, cols, t.Type, qkK)
		}
		kq, err := packK(a, t.Type, data, rows, cols)
		if err != nil {
			return nil, fmt.Errorf("tensor %s: %w", name, err)
		}
		m.kq = &kq
		g.Release(t)
	default:
		return nil, fmt.Errorf("tensor %s: type %s not supported by the engine (F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K, Q5_K, Q6_K, Q8_K)", name, t.Type)
	}
	return m, nil
}

func vector(g *gguf.File, name string, n int) ([]float32, error) {
	m, err := newMatrix(g, nil, name, 1, n)
	if err != nil {
		return nil, err
	}
	if m.f32 == nil {
		return nil, fmt.Errorf("tensor %s: vectors must be F32, F16 or BF16", name)
	}
	return m.f32, nil
}

// Q8_0 block layout: an f16 scale then 32 int8 values.
const (
	q8Block      = 32
	q8BlockBytes = 34
)

// row writes row r of m into dst, dequantized.
func (m *matrix) row(dst []float32, r int) {
	if m.f32 != nil {
		copy(dst, m.f32[r*m.cols:(r+1)*m.cols])
		return
	}
	nb := m.cols / q8Block
	if m.kq != nil {
		for c := range m.cols {
			dst[c] = m.kq.weight(r, c, nb)
		}
		return
	}
	if m.q4 != nil {
		m.q4.row(dst[:m.cols], r, nb)
		return
	}
	for c := range m.cols {
		w, d := m.q8.weight(r, c, nb)
		dst[c] = d * float32(w)
	}
}

// acts is a batch of activation vectors (one per token) that feed a matrix
// product.
type acts struct {
	n, cols int
	f       []float32 // n × cols
}

func newActs(maxN, cols int) *acts { return &acts{cols: cols, f: make([]float32, maxN*cols)} }

// vec is token t's vector.
func (a *acts) vec(t int) []float32 { return a.f[t*a.cols : (t+1)*a.cols] }

// integer reports whether m's products run on the integer kernels, with
// quantized activations (runInt), rather than through dot.
func (m *matrix) integer() bool { return m.q8.w != nil || m.q4 != nil || m.kq != nil }

// dot is row r of a float matrix dotted with token t of x (integer
// matrices take quantized activations: see runInt).
func (m *matrix) dot(r int, x *acts, t int) float32 {
	return dotF32(m.f32[r*m.cols:(r+1)*m.cols], x.vec(t))
}

// dotF32 is w·x (x at least as long). Four lane sums s0..s3 over
// elements 4i+j, the tail into s0, then (s0+s1)+(s2+s3): an exact order
// the SSE kernel (dotF32SSE, amd64) repeats. The float32 conversions
// forbid fused multiply-adds, so every machine computes the same bits.
func dotF32(w, x []float32) float32 {
	x = x[:len(w)]
	if hasSSE {
		return dotF32SSE(w, x)
	}
	return dotF32Portable(w, x)
}

func dotF32Portable(w, x []float32) float32 {
	x = x[:len(w)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(w); i += 4 {
		s0 += float32(w[i] * x[i])
		s1 += float32(w[i+1] * x[i+1])
		s2 += float32(w[i+2] * x[i+2])
		s3 += float32(w[i+3] * x[i+3])
	}
	for ; i < len(w); i++ {
		s0 += float32(w[i] * x[i])
	}
	return (s0 + s1) + (s2 + s3)
}

// axpy adds a·v to o element by element (v at least as long); the SSE
// kernel does the same operations lane by lane.
func axpy(o []float32, a float32, v []float32) {
	v = v[:len(o)]
	if hasSSE {
		axpySSE(o, a, v)
		return
	}
	axpyPortable(o, a, v)
}

func axpyPortable(o []float32, a float32, v []float32) {
	v = v[:len(o)]
	for j := range o {
		o[j] += float32(a * v[j])
	}
}

// mulOp is one matrix product of a task: out[t*rows+r] = m row r · x token t.
type mulOp struct {
	m   *matrix
	x   *acts
	out []float32
}

// task is a set of independent matrix products split across the pool by
// output rows. Each output element is computed by one worker with the same
// kernel, so results never depend on scheduling or on the batch size.
type task struct {
	ops   [3]mulOp
	nops  int
	qa    [3]*q8Acts  // per integer op, its quantized activations (maybe shared)
	quant [3]q8Acts   // quantization buffers, reused across calls
	fn    func(i int) // instead of ops: items 0..rows-1 (see pool.each)
	rows  int         // total rows over ops
	chunk int
	next  atomic.Int64
	wg    sync.WaitGroup
}

func (t *task) work() {
	for {
		lo := int(t.next.Add(int64(t.chunk))) - t.chunk
		if lo >= t.rows {
			return
		}
		t.runRows(lo, min(lo+t.chunk, t.rows))
	}
}

func (t *task) runRows(lo, hi int) {
	if t.fn != nil {
		for i := lo; i < hi; i++ {
			t.fn(i)
		}
		return
	}
	base := 0
	for i := range t.nops {
		op := &t.ops[i]
		end := base + op.m.rows
		if lo < end && hi > base {
			t.runOp(i, max(lo, base)-base, min(hi, end)-base)
		}
		base = end
	}
}

// pool is a fixed set of worker goroutines owned by a Model. Callers take
// part in their own tasks, so a busy pool slows a call down but never
// blocks it.
type pool struct {
	workers int
	jobs    chan *task
}

func newPool(workers int) *pool {
	p := &pool{workers: workers, jobs: make(chan *task, 64*workers)}
	for range workers - 1 {
		go func() {
			for t := range p.jobs {
				t.work()
				t.wg.Done()
			}
		}()
	}
	return p
}

func (p *pool) close() { close(p.jobs) }

// run computes the task's products.
func (p *pool) run(t *task) {
	t.prepare(p)
	t.rows = 0
	work := 0
	for i := range t.nops {
		op := &t.ops[i]
		t.rows += op.m.rows
		work += op.m.rows * op.m.cols * op.x.n
	}
	helpers := p.workers - 1
	if work < 1<<16 || helpers == 0 {
		t.runRows(0, t.rows)
		return
	}
	// Several chunks per worker even out the load when the machine is shared.
	// Chunks are whole Q8_0 row groups.
	t.chunk = max(q8Rows, (t.rows+4*p.workers-1)/(4*p.workers))
	t.chunk = (t.chunk + q8Rows - 1) / q8Rows * q8Rows
	t.next.Store(0)
	t.wg.Add(helpers)
	for range helpers {
		p.jobs <- t
	}
	t.work()
	t.wg.Wait()
}

// each runs fn(0), …, fn(n-1) across the pool, one item at a time; fn must
// not depend on which worker runs an item.
func (p *pool) each(t *task, n int, fn func(i int)) {
	helpers := min(p.workers-1, n-1)
	if helpers <= 0 {
		for i := range n {
			fn(i)
		}
		return
	}
	t.fn, t.rows, t.chunk = fn, n, 1
	t.next.Store(0)
	t.wg.Add(helpers)
	for range helpers {
		p.jobs <- t
	}
	t.work()
	t.wg.Wait()
	t.fn = nil
}

// QuantizeQ8_0 packs float32 values (a multiple of 32) into Q8_0 blocks:
// per block an f16 scale d = max|x|/127 and 32 int8 values round(x/d).
func QuantizeQ8_0(x []float32) []byte {
	out := make([]byte, len(x)/32*34)
	for b := 0; b < len(x)/32; b++ {
		xs := x[b*32 : b*32+32]
		var amax float32
		for _, v := range xs {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		d := amax / 127
		inv := float32(0)
		if d != 0 {
			inv = 1 / d
		}
		blk := out[b*34:]
		binary.LittleEndian.PutUint16(blk, f32ToF16(d))
		for i, v := range xs {
			blk[2+i] = byte(int8(math.Round(float64(v * inv))))
		}
	}
	return out
}
