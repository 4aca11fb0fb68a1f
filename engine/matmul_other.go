//go:build !amd64

package engine

func pairKernels() bool { return false }

// dotQ8Pairs computes nothing where there are no pair kernels.
func dotQ8Pairs(w []byte, ws []float32, in *tileIn, t0, k int, out *[tileTokens]float32) int {
	return 0
}

// withoutPairKernels has nothing to turn off here.
func withoutPairKernels() (restore func()) { return func() {} }
