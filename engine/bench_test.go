package engine

import (
	"testing"
)

// BenchmarkDecodeSmolLM2 times decode steps of a smollm2-135m-shaped Q8_0
// model (go test -run - -bench Decode ./engine/).
func BenchmarkDecodeSmolLM2(b *testing.B) {
	m, _ := genModel(b, "smollm2-135m", QuantQ8, 1)
	s := m.newState(4096)
	if err := m.forward(s, []int{1}, false); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		if s.pos >= 4000 {
			s = m.newState(4096)
		}
		if err := m.forward(s, []int{(i * 31) % m.cfg.Vocab}, false); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

func BenchmarkDotQ8(b *testing.B) {
	const cols = 1536
	w, ws, x := randomQ8(cols, 1)
	for b.Loop() {
		dotQ8(w, ws, x)
	}
	b.SetBytes(int64(len(w)))
}
