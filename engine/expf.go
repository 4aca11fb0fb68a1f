package engine

import "math"

// expf is e^x in float32 arithmetic alone: Cody–Waite range reduction to
// r = x − k·ln2 with |r| ≤ ln2/2, Cephes' degree-6 polynomial for e^r, and
// 2^k put into the exponent bits. Every multiply and add rounds on its own
// (the float32 conversions forbid fused multiply-adds), so it returns the
// same bits on every CPU and Go version — math.Exp does not promise that:
// amd64 and arm64 have their own assembly. It is within 2 ulp of e^x
// (TestExpf) and several times faster than float32(math.Exp(float64(x))),
// which matters because SiLU and softmax call it for every activation and
// every attention score.
func expf(x float32) float32 {
	const (
		log2e = 1.44269504088896341
		ln2Hi = 0.693359375 // few significant bits, so k·ln2Hi is exact
		ln2Lo = -2.12194440e-4
	)
	switch {
	case x != x: // NaN
		return x
	case x > 88.72283:
		return float32(math.Inf(1))
	case x < -103.97208:
		return 0
	}
	// Adding and removing 1.5·2^23 rounds x·log2e to an integer (ties to
	// even) in two exact float32 steps, without a branch or a conversion.
	const round = 0x1.8p23
	fk := float32(float32(float32(x*log2e)+round) - round)
	k := int32(fk)
	r := float32(x - float32(fk*ln2Hi))
	r = float32(r - float32(fk*ln2Lo))
	rr := float32(r * r)
	p := float32(float32(1.9875691500e-4*r) + 1.3981999507e-3)
	p = float32(float32(p*r) + 8.3334519073e-3)
	p = float32(float32(p*r) + 4.1665795894e-2)
	p = float32(float32(p*r) + 1.6666665459e-1)
	p = float32(float32(p*r) + 5.0000001201e-1)
	y := float32(float32(float32(p*rr)+r) + 1)
	// 2^k in two steps when k is outside the normal exponent range, so
	// results near overflow and in the subnormal range stay correct.
	if k > 127 {
		return float32(y*2) * math.Float32frombits(uint32(k-1+127)<<23)
	}
	if k < -126 {
		return float32(y*math.Float32frombits(uint32(k+64+127)<<23)) * 0x1p-64
	}
	return y * math.Float32frombits(uint32(k+127)<<23)
}
