//go:build !amd64

package engine

const useAVX2 = false

// dotQ8 is the Q8_0 row w (block scales ws) dotted with x.
func dotQ8(w []byte, ws []float32, x []float32) float32 { return dotQ8Portable(w, ws, x) }

const hasSSE = false

func dotF32SSE(w, x []float32) float32 { return dotF32Portable(w, x) }

func axpySSE(o []float32, a float32, v []float32) { axpyPortable(o, a, v) }
