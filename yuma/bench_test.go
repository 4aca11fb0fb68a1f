package yuma

import (
	"math/rand/v2"
	"testing"
)

// denseInput: every validator weights every UID and holds a bond on each,
// the worst case for a subnet of this size.
func denseInput(n, validators int) (Params, Input) {
	r := rand.New(rand.NewPCG(3, 4))
	in := Input{Block: 100_000, Stake: make([]uint64, n), Weights: make([][]Weight, n), LastUpdate: make([]uint64, n),
		RegisteredAt: make([]uint64, n), PrevBonds: make([][]Bond, n), OwnerUID: 0, Emission: 1_000_000_000_000}
	for i := range validators {
		in.Stake[i] = 1 + r.Uint64N(1_000_000_000_000)
		in.LastUpdate[i] = 99_900
		in.Weights[i] = make([]Weight, n)
		in.PrevBonds[i] = make([]Bond, n)
		for j := range n {
			in.Weights[i][j] = Weight{uint16(j), uint16(r.IntN(65536))}
			in.PrevBonds[i][j] = Bond{uint16(j), Fixed(r.Uint64N(uint64(One)))}
		}
	}
	p := DefaultParams()
	p.MaxValidators = validators
	return p, in
}

func benchEpoch(b *testing.B, n, validators int) {
	p, in := denseInput(n, validators)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Epoch(p, in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEpoch256x64(b *testing.B)   { benchEpoch(b, 256, 64) }
func BenchmarkEpoch4096x256(b *testing.B) { benchEpoch(b, 4096, 256) }

func BenchmarkEpochYuma2_4096x256(b *testing.B) {
	p, in := denseInput(4096, 256)
	p.Version = Yuma2
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Epoch(p, in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEpochWorstAllowed is the largest epoch chain/subnet's bounds
// allow (MaxUIDsLimit = 1024 UIDs, MaxValidatorsLimit = 256 validators with
// dense weights) with a bond on every cell: bonds of former validators decay
// but stay stored, so all 1024 rows can be full. chain/subnet's
// BenchmarkEpochWorstCase adds the state reads and writes around it.
func BenchmarkEpochWorstAllowed(b *testing.B) {
	const n, validators = 1024, 256
	p, in := denseInput(n, validators)
	r := rand.New(rand.NewPCG(5, 6))
	for i := validators; i < n; i++ {
		in.PrevBonds[i] = make([]Bond, n)
		for j := range n {
			in.PrevBonds[i][j] = Bond{uint16(j), Fixed(r.Uint64N(uint64(One)))}
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Epoch(p, in); err != nil {
			b.Fatal(err)
		}
	}
	ms := float64(b.Elapsed().Microseconds()) / 1000 / float64(b.N)
	b.ReportMetric(ms, "ms/epoch")
	b.Logf("worst allowed epoch (%d UIDs × %d validators, %d bonds): %.1f ms of Yuma", n, validators, n*n, ms)
}
