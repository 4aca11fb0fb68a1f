package engine

import (
	"testing"
)

// BenchmarkDecodeSmolLM2 times decode steps of a smollm2-135m-shaped Q8_0 model.
func BenchmarkDecodeSmolLM2(b *testing.B) {
	m, _ := genModel(b, "smollm2-135m", QuantQ8, 1)
	s := m.newState(4096)
	if err := m.forward(s, 1); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if s.pos >= 4000 {
			s = m.newState(4096)
		}
		if err := m.forward(s, (i*31)%m.cfg.Vocab); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}
