//go:build !amd64

package engine

// setAVX2 is never called here: useAVX2 is always false.
func setAVX2(bool) {}
