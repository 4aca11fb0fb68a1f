package engine

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestF32KernelsMatchPortable: the SSE dot product and axpy return, bit
// for bit, what their portable twins return, for every length up to 70
// (all tails) and for values from tiny to huge.
func TestF32KernelsMatchPortable(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	val := func() float32 {
		return float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(12)-6)))
	}
	for n := range 71 {
		for trial := range 20 {
			w, x, o := make([]float32, n), make([]float32, n+trial%3), make([]float32, n)
			for i := range w {
				w[i], o[i] = val(), val()
			}
			for i := range x {
				x[i] = val()
			}
			if a, b := dotF32SSE(w, x[:n]), dotF32Portable(w, x); math.Float32bits(a) != math.Float32bits(b) {
				t.Fatalf("n=%d: dot %v (SSE) vs %v (portable)", n, a, b)
			}
			a := val()
			o1, o2 := append([]float32(nil), o...), append([]float32(nil), o...)
			axpySSE(o1, a, x[:n])
			axpyPortable(o2, a, x)
			for i := range o1 {
				if math.Float32bits(o1[i]) != math.Float32bits(o2[i]) {
					t.Fatalf("n=%d: axpy element %d: %v (SSE) vs %v (portable)", n, i, o1[i], o2[i])
				}
			}
		}
	}
}

func BenchmarkAttentionDot(b *testing.B) {
	w, x := make([]float32, 64), make([]float32, 64)
	for i := range w {
		w[i], x[i] = float32(i), float32(64-i)
	}
	for _, c := range []struct {
		name string
		f    func(w, x []float32) float32
	}{{"sse", dotF32SSE}, {"portable", dotF32Portable}} {
		b.Run(c.name, func(b *testing.B) {
			var s float32
			for range b.N {
				s += c.f(w, x)
			}
			_ = s
		})
	}
}
