//go:build !amd64

package engine

// withPortableKernels switches the SIMD kernels off (arm64: NEON) until the
// returned function restores them.
func withPortableKernels() (restore func()) { return withoutVNNI() }
