package engine

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The AVX2 kernels return exactly what the portable ones do, so miners and
// validators on different CPUs score alike.
func TestQuantKernelsAgreeBitForBit(t *testing.T) {
	if !useAVX2 {
		t.Skip("no AVX2 on this machine: only the portable kernels run")
	}
	for _, qt := range quantTypes {
		k := quantKernels[qt.typ]
		// Up to 3·kPiece+1 blocks, so the piecewise scale decoding is crossed.
		for _, nb := range []int{1, 2, 3, 16, 17, kPiece + 1, 3*kPiece + 1} {
			for edge := range 5 {
				rng := rand.New(rand.NewPCG(uint64(nb), uint64(edge)))
				w := randomBlocks(qt.typ, nb, rng, edge)
				x := randomActs(nb*k.elems, rng)
				a, b := portableDot(qt.typ)(w, x), k.dot(w, x)
				if math.Float32bits(a) != math.Float32bits(b) {
					t.Fatalf("%s, %d blocks, edge %d: portable %v, avx2 %v", qt.typ, nb, edge, a, b)
				}
			}
		}
	}
}
