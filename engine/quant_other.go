//go:build !amd64

package engine

func dotQ4_0(w []byte, x []float32) float32 { return dotQ4_0Portable(w, x) }
func dotQ5_0(w []byte, x []float32) float32 { return dotQ5_0Portable(w, x) }
func dotQ4K(w []byte, x []float32) float32  { return dotQ4KPortable(w, x) }
func dotQ6K(w []byte, x []float32) float32  { return dotQ6KPortable(w, x) }
