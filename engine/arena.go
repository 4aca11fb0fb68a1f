package engine

import "unsafe"

// arena holds a model's repacked weights outside the Go heap. They are
// most of a process's memory and live as long as the model, so on the heap
// they would only raise the garbage collector's target (by default twice
// the live heap): a 150 MiB model would let 150 MiB of short-lived garbage
// pile up before a collection. A nil arena allocates on the heap (tests).
type arena struct {
	regions [][]byte
}

// bytes returns n zeroed bytes.
func (a *arena) bytes(n int) []byte {
	if a == nil || n == 0 {
		return make([]byte, n)
	}
	b, err := mapAnon(n)
	if err != nil {
		return make([]byte, n) // no mapping to be had: the heap still works
	}
	a.regions = append(a.regions, b)
	return b
}

// floats returns n zeroed float32s.
func (a *arena) floats(n int) []float32 {
	if a == nil || n == 0 {
		return make([]float32, n)
	}
	b := a.bytes(4 * n)
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), n)
}

// free returns the arena's memory; nothing allocated from it may be used
// afterwards.
func (a *arena) free() error {
	if a == nil {
		return nil
	}
	var first error
	for _, b := range a.regions {
		if err := unmapAnon(b); err != nil && first == nil {
			first = err
		}
	}
	a.regions = nil
	return first
}
