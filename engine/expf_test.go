package engine

import (
	"math"
	"testing"
)

// expf must stay within 2 ulp of the correctly rounded e^x over the whole
// range the engine feeds it, and handle the edges.
func TestExpf(t *testing.T) {
	worst := 0.0
	for bits := uint32(0); bits < 1<<32-1<<23; bits += 997 {
		x := math.Float32frombits(bits)
		if x != x || x < -104 || x > 88.7 {
			continue
		}
		got, want := float64(expf(x)), math.Exp(float64(x))
		if want < 0x1p-126 { // subnormal results: compare absolutely
			if math.Abs(got-want) > 0x1p-149 {
				t.Fatalf("expf(%v) = %v, want %v", x, got, want)
			}
			continue
		}
		ulp := math.Abs(got-want) / (float64(math.Nextafter32(float32(want), float32(math.Inf(1)))) - float64(float32(want)))
		worst = max(worst, ulp)
		if ulp > 2 {
			t.Fatalf("expf(%v) = %v, want %v (%.2f ulp)", x, got, want, ulp)
		}
	}
	t.Logf("worst error %.2f ulp", worst)
	inf := float32(math.Inf(1))
	for _, c := range []struct{ x, want float32 }{
		{0, 1}, {-inf, 0}, {inf, inf}, {89, inf}, {-200, 0}, {1, math.E},
	} {
		if got := expf(c.x); got != c.want && math.Abs(float64(got-c.want)) > 1e-6 {
			t.Errorf("expf(%v) = %v, want %v", c.x, got, c.want)
		}
	}
	if nan := float32(math.NaN()); expf(nan) == expf(nan) {
		t.Error("expf(NaN) is not NaN")
	}
}

func BenchmarkExpf(b *testing.B) {
	x := make([]float32, 4096)
	for i := range x {
		x[i] = float32(i%200-150) / 10
	}
	b.Run("expf", func(b *testing.B) {
		for b.Loop() {
			for i, v := range x {
				x[i] = expf(v)*0 + v
			}
		}
	})
	b.Run("math.Exp", func(b *testing.B) {
		for b.Loop() {
			for i, v := range x {
				x[i] = float32(math.Exp(float64(v)))*0 + v
			}
		}
	})
}
