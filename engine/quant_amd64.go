package engine

import "encoding/binary"

// AVX2 kernels (quant_amd64.s). They take the row's block scales decoded
// by Go, kPiece blocks at a time, and carry the lane accumulators in acc
// between pieces; the lanes are reduced in Go. Results are bit-identical
// to the portable kernels (TestQuantKernelsAgreeBitForBit).

//go:noescape
func q4_0AVX2(w *byte, x *float32, ds *float32, nb int, acc *kAcc)

//go:noescape
func q5_0AVX2(w *byte, x *float32, ds *float32, nb int, acc *kAcc)

//go:noescape
func q4kAVX2(w *byte, x *float32, ds, dm *float32, nb int, acc *kAcc)

//go:noescape
func q6kAVX2(w *byte, x *float32, ds *float32, nb int, acc *kAcc)

// kPiece is the number of blocks whose scales are decoded per kernel call;
// it is even so the even/odd block accumulators line up across calls.
const kPiece = 32

// halfs is every f16 value widened, so a 32-weight block's scale costs one
// load instead of a branchy conversion (256 KiB, built at start-up).
var halfs = func() *[1 << 16]float32 {
	var t [1 << 16]float32
	for h := range t {
		t[h] = f16ToF32(uint16(h))
	}
	return &t
}()

func dotQ4_0(w []byte, x []float32) float32 {
	if !useAVX2 {
		return dotQ4_0Portable(w, x)
	}
	return dot32AVX2(w, x, q40Bytes)
}

func dotQ5_0(w []byte, x []float32) float32 {
	if !useAVX2 {
		return dotQ5_0Portable(w, x)
	}
	return dot32AVX2(w, x, q50Bytes)
}

// dot32AVX2 runs the Q4_0 or Q5_0 kernel (by block size) over a row. It
// calls the assembly directly: through a func value the accumulators would
// escape to the heap.
func dot32AVX2(w []byte, x []float32, bytes int) float32 {
	nb := len(w) / bytes
	if nb == 0 {
		return 0
	}
	// The assembly trusts its lengths: check them here once.
	_ = w[nb*bytes-1]
	_ = x[nb*32-1]
	var acc kAcc
	var ds [kPiece * 8]float32
	for b0 := 0; b0 < nb; b0 += len(ds) {
		n := min(len(ds), nb-b0)
		for b := range n {
			ds[b] = halfs[binary.LittleEndian.Uint16(w[(b0+b)*bytes:])]
		}
		if bytes == q50Bytes {
			q5_0AVX2(&w[b0*bytes], &x[b0*32], &ds[0], n, &acc)
		} else {
			q4_0AVX2(&w[b0*bytes], &x[b0*32], &ds[0], n, &acc)
		}
	}
	return acc.result()
}

func dotQ4K(w []byte, x []float32) float32 {
	nb := len(w) / q4KBytes
	if !useAVX2 || nb == 0 {
		return dotQ4KPortable(w, x)
	}
	_ = w[nb*q4KBytes-1]
	_ = x[nb*qkK-1]
	var acc kAcc
	var ds, dm [kPiece * 8]float32
	for b0 := 0; b0 < nb; b0 += kPiece {
		n := min(kPiece, nb-b0)
		for b := range n {
			kScales(w[(b0+b)*q4KBytes:], (*[8]float32)(ds[8*b:]), (*[8]float32)(dm[8*b:]))
		}
		q4kAVX2(&w[b0*q4KBytes], &x[b0*qkK], &ds[0], &dm[0], n, &acc)
	}
	return acc.result()
}

func dotQ6K(w []byte, x []float32) float32 {
	nb := len(w) / q6KBytes
	if !useAVX2 || nb == 0 {
		return dotQ6KPortable(w, x)
	}
	_ = w[nb*q6KBytes-1]
	_ = x[nb*qkK-1]
	var acc kAcc
	var ds [kPiece * 16]float32
	for b0 := 0; b0 < nb; b0 += kPiece {
		n := min(kPiece, nb-b0)
		for b := range n {
			blk := w[(b0+b)*q6KBytes:]
			d := f16ToF32(binary.LittleEndian.Uint16(blk[208:]))
			for i := range 16 {
				ds[16*b+i] = float32(d * float32(int8(blk[192+i])))
			}
		}
		q6kAVX2(&w[b0*q6KBytes], &x[b0*qkK], &ds[0], n, &acc)
	}
	return acc.result()
}
