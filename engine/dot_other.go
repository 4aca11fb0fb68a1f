//go:build !amd64

package engine

const useAVX2 = false

const hasSSE = false

func dotF32SSE(w, x []float32) float32 { return dotF32Portable(w, x) }

func axpySSE(o []float32, a float32, v []float32) { axpyPortable(o, a, v) }
