//go:build !amd64

package engine

// The flags exist here only so that tests can set them on every
// architecture; there are no element-wise kernels outside amd64 yet.
var (
	useAVX512Elementwise = false
	useAVX2Elementwise   = false
)

func siluMulSIMD(dst, gate, up []float32) int { return 0 }

func softmaxSIMD(x []float32) bool { return false }

func sumSquaresSIMD(x []float32) (float32, bool) { return 0, false }

func mulScaledSIMD(out, x, w []float32, s float32) int { return 0 }

func addIntoSIMD(dst, src []float32) int { return 0 }

func quantizeTokenSIMD(a *q8Acts, v []float32, t int) bool { return false }

func expfsSIMD(dst, x []float32) int { return 0 }
