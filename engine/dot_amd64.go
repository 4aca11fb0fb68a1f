package engine

import "golang.org/x/sys/cpu"

// useAVX2 selects the assembly kernels; tests switch it off to compare them
// with the portable ones (which also turns the VNNI kernels off).
var useAVX2 = cpu.X86.HasAVX2

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
