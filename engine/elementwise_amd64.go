package engine

import (
	"math"

	"golang.org/x/sys/cpu"
)

// useAVX512Elementwise and useAVX2Elementwise select the element-wise
// kernels (elementwise_amd64.s); tests switch them off to compare each with
// the next and with the portable code. Like the other kernels they also
// stay off while useAVX2 is off.
var (
	useAVX512Elementwise = cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL && cpu.X86.HasAVX512BW && cpu.X86.HasAVX2
	useAVX2Elementwise   = cpu.X86.HasAVX2
)

// ewPath is the element-wise kernel set to use: 2 AVX-512, 1 AVX2, 0 none.
func ewPath() int {
	switch {
	case !useAVX2:
		return 0
	case useAVX512Elementwise:
		return 2
	case useAVX2Elementwise:
		return 1
	}
	return 0
}

// siluMulSIMD runs siluMulPortable on a prefix of dst in assembly and
// returns its length; the caller finishes the rest.
func siluMulSIMD(dst, gate, up []float32) int {
	switch ewPath() {
	case 2:
		siluMulAVX512(dst, gate[:len(dst)], up[:len(dst)])
		return len(dst)
	case 1:
		n := len(dst) &^ 7
		if n > 0 {
			siluMulAVX2(dst[:n], gate[:n], up[:n])
		}
		return n
	}
	return 0
}

// softmaxSIMD runs softmaxPortable in assembly when the CPU allows,
// reporting whether it did.
func softmaxSIMD(x []float32) bool {
	switch ewPath() {
	case 2:
		softmaxAVX512(x)
	case 1:
		softmaxAVX2(x)
	default:
		return false
	}
	return true
}

// sumSquaresSIMD runs sumSquaresPortable in assembly when the CPU allows,
// reporting whether it did.
func sumSquaresSIMD(x []float32) (float32, bool) {
	switch ewPath() {
	case 2:
		return sumSquaresAVX512(x), true
	case 1:
		return sumSquaresAVX2(x), true
	}
	return 0, false
}

// mulScaledSIMD runs mulScaledPortable on a prefix of out in assembly and
// returns its length; the caller finishes the rest.
func mulScaledSIMD(out, x, w []float32, s float32) int {
	switch ewPath() {
	case 2:
		if len(out) > 0 {
			mulScaledAVX512(out, x[:len(out)], w[:len(out)], s)
		}
		return len(out)
	case 1:
		n := len(out) &^ 7
		if n > 0 {
			mulScaledAVX2(out[:n], x[:n], w[:n], s)
		}
		return n
	}
	return 0
}

// addIntoSIMD runs addIntoPortable on a prefix of dst in assembly and
// returns its length; the caller finishes the rest.
func addIntoSIMD(dst, src []float32) int {
	switch ewPath() {
	case 2:
		if len(dst) > 0 {
			addIntoAVX512(dst, src[:len(dst)])
		}
		return len(dst)
	case 1:
		n := len(dst) &^ 7
		if n > 0 {
			addIntoAVX2(dst[:n], src[:n])
		}
		return n
	}
	return 0
}

// quantizeTokenSIMD runs quantizeToken's portable loop for token t of v
// (a.nb blocks) in assembly when the CPU allows, reporting whether it did.
func quantizeTokenSIMD(a *q8Acts, v []float32, t int) bool {
	path := ewPath()
	if path == 0 || a.nb == 0 {
		return false
	}
	// The assembly trusts its pointers: check the first and last block.
	i0, i1 := a.index(t, 0), a.index(t, a.nb-1)
	_ = v[a.nb*q8Block-1]
	_ = a.q[i1*q8Block+q8Block-1]
	_, _, _, _, _ = a.d[i1], a.c[i1], a.c32lo[i1], a.c32hi[i1], a.sum[i1]
	if path == 2 {
		quantizeActsAVX512(&v[0], a.nb, &a.q[i0*q8Block], &a.d[i0], &a.c[i0], &a.c32lo[i0], &a.c32hi[i0], &a.sum[i0], q8TileTokens)
	} else {
		quantizeActsAVX2(&v[0], a.nb, &a.q[i0*q8Block], &a.d[i0], &a.c[i0], &a.c32lo[i0], &a.c32hi[i0], &a.sum[i0], q8TileTokens)
	}
	return true
}

// ewConst holds the kernels' constants, each repeated in 16 lanes (64
// bytes); the order is the one elementwise_amd64.s names. The float ones
// are expf's constants, converted to float32 exactly as expf converts them.
var ewConst = func() (c [ewConstN][16]uint32) {
	f := func(v float32) uint32 { return math.Float32bits(v) }
	vals := [ewConstN]uint32{
		f(1.44269504088896341), // 0 log2e
		f(0x1.8p23),            // 1 round
		f(0.693359375),         // 2 ln2Hi
		f(-2.12194440e-4),      // 3 ln2Lo
		f(1.9875691500e-4),     // 4 polynomial, highest degree first
		f(1.3981999507e-3),     // 5
		f(8.3334519073e-3),     // 6
		f(4.1665795894e-2),     // 7
		f(1.6666665459e-1),     // 8
		f(5.0000001201e-1),     // 9
		f(1),                   // 10 one
		f(88.72283),            // 11 above this, expf is +Inf
		f(-103.97208),          // 12 below this, expf is 0
		0x7f800000,             // 13 +Inf
		0x80000000,             // 14 sign bit
		127,                    // 15 int32 127
		0xffffff82,             // 16 int32 −126
		0xffffffc0,             // 17 int32 −64
		0x7fffffff,             // 18 all but the sign bit
		f(127),                 // 19
		f(-127),                // 20
		0x80808080,             // 21 bytes 0x80
	}
	for i, v := range vals {
		for j := range c[i] {
			c[i][j] = v
		}
	}
	return c
}()

const ewConstN = 22

// ewTail's 32 bytes from offset 32−4r mask the first r of 8 lanes; ewPack
// puts the dwords of AVX2's two packing steps back in order.
var (
	ewTail = [16]uint32{^uint32(0), ^uint32(0), ^uint32(0), ^uint32(0), ^uint32(0), ^uint32(0), ^uint32(0), ^uint32(0)}
	ewPack = [8]uint32{0, 4, 1, 5, 2, 6, 3, 7}
)

// The kernels take any length ≥ 1 (sumSquares also 0), except that the
// AVX2 siluMul, mulScaled and addInto ones take a multiple of 8. See
// elementwise_amd64.s.

//go:noescape
func sumSquaresAVX512(x []float32) float32

//go:noescape
func sumSquaresAVX2(x []float32) float32

//go:noescape
func mulScaledAVX512(out, x, w []float32, s float32)

//go:noescape
func mulScaledAVX2(out, x, w []float32, s float32)

//go:noescape
func addIntoAVX512(dst, src []float32)

//go:noescape
func addIntoAVX2(dst, src []float32)

//go:noescape
func siluMulAVX512(dst, gate, up []float32)

//go:noescape
func siluMulAVX2(dst, gate, up []float32)

//go:noescape
func softmaxAVX512(x []float32)

//go:noescape
func softmaxAVX2(x []float32)

// quantizeActsAVX512 quantizes nb blocks of 32 values at x like
// quantizeToken: block b's levels go to q + b·stride·32, and its scale,
// −128·Σ, −32·Σlo, −32·Σhi and float Σ to d, c, clo, chi and sum + b·stride.
//
//go:noescape
func quantizeActsAVX512(x *float32, nb int, q *int8, d *float32, c, clo, chi *int32, sum *float32, stride int)

//go:noescape
func quantizeActsAVX2(x *float32, nb int, q *int8, d *float32, c, clo, chi *int32, sum *float32, stride int)

// expfsSIMD sets dst[i] = expf(x[i]) on a prefix of dst with the
// kernels' vector expf and returns its length; only tests call it.
func expfsSIMD(dst, x []float32) int {
	switch ewPath() {
	case 2:
		expfsAVX512(dst, x[:len(dst)])
		return len(dst)
	case 1:
		n := len(dst) &^ 7
		if n > 0 {
			expfsAVX2(dst[:n], x[:n])
		}
		return n
	}
	return 0
}

// The AVX2 one takes a multiple of 8, ≥ 8.
//
//go:noescape
func expfsAVX512(dst, x []float32)

//go:noescape
func expfsAVX2(dst, x []float32)
