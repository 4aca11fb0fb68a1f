package engine

import "golang.org/x/sys/cpu"

// useAVX2 selects the assembly kernel; tests compare it with the portable one.
var useAVX2 = cpu.X86.HasAVX2

// dotQ8AVX2 is dotQ8Generic in AVX2; see dot_amd64.s.
//
//go:noescape
func dotQ8AVX2(w *byte, ws *float32, x *float32, nb int) float32

// dotQ8 is the Q8_0 row w (block scales ws) dotted with x.
func dotQ8(w []byte, ws []float32, x []float32) float32 {
	nb := len(ws)
	if !useAVX2 || nb == 0 {
		return dotQ8Portable(w, ws, x)
	}
	// The assembly trusts its lengths: check them here once.
	_ = w[nb*q8BlockBytes-1]
	_ = x[nb*q8Block-1]
	return dotQ8AVX2(&w[0], &ws[0], &x[0], nb)
}

// hasSSE: SSE is part of every amd64 CPU; the variable lets tests run the
// portable twins on the same machine.
var hasSSE = true

// dotF32SSE is dotF32Portable with four SSE lanes; see dot_amd64.s.
//
//go:noescape
func dotF32SSE(w, x []float32) float32

// axpySSE is axpyPortable with four SSE lanes; see dot_amd64.s.
//
//go:noescape
func axpySSE(o []float32, a float32, v []float32)
