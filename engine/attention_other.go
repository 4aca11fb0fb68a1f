//go:build !amd64

package engine

// The flags exist here only so that tests can set them on every
// architecture; there are no attention kernels outside amd64 yet.
var (
	useAVX512Attention = false
	useAVX2Attention   = false
)

func attnScoresSIMD(att, q, rows []float32, kvDim int, scale float32) bool { return false }

func attnValuesSIMD(o, att, rows []float32, kvDim int) bool { return false }
