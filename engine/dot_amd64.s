#include "textflag.h"

// func dotQ8AVX2(w *byte, ws *float32, x *float32, nb int) float32
//
// For each 34-byte Q8_0 block (f16 scale, then 32 int8) and 32 float32
// activations: lane j multiplies elements j, 8+j, 16+j, 24+j (int8 widened
// to float32), sums them as (m0+m1)+(m2+m3), scales by ws[b] and adds into
// one of two lane accumulators (even/odd blocks); finally the lanes are
// summed in reduceLanes' order. No FMA: every multiply and add rounds on its
// own, exactly as dotQ8Generic and reduceLanes do.
TEXT ·dotQ8AVX2(SB), NOSPLIT, $0-36
	MOVQ   w+0(FP), SI
	MOVQ   ws+8(FP), R8
	MOVQ   x+16(FP), DI
	MOVQ   nb+24(FP), CX
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11

pair:
	CMPQ CX, $2
	JLT  tail
	VPMOVSXBD    2(SI), Y0
	VPMOVSXBD    10(SI), Y1
	VPMOVSXBD    18(SI), Y2
	VPMOVSXBD    26(SI), Y3
	VCVTDQ2PS    Y0, Y0
	VCVTDQ2PS    Y1, Y1
	VCVTDQ2PS    Y2, Y2
	VCVTDQ2PS    Y3, Y3
	VMULPS       0(DI), Y0, Y0
	VMULPS       32(DI), Y1, Y1
	VMULPS       64(DI), Y2, Y2
	VMULPS       96(DI), Y3, Y3
	VADDPS       Y1, Y0, Y0
	VADDPS       Y3, Y2, Y2
	VADDPS       Y2, Y0, Y0
	VBROADCASTSS 0(R8), Y4
	VMULPS       Y4, Y0, Y0
	VADDPS       Y0, Y10, Y10
	VPMOVSXBD    36(SI), Y0
	VPMOVSXBD    44(SI), Y1
	VPMOVSXBD    52(SI), Y2
	VPMOVSXBD    60(SI), Y3
	VCVTDQ2PS    Y0, Y0
	VCVTDQ2PS    Y1, Y1
	VCVTDQ2PS    Y2, Y2
	VCVTDQ2PS    Y3, Y3
	VMULPS       128(DI), Y0, Y0
	VMULPS       160(DI), Y1, Y1
	VMULPS       192(DI), Y2, Y2
	VMULPS       224(DI), Y3, Y3
	VADDPS       Y1, Y0, Y0
	VADDPS       Y3, Y2, Y2
	VADDPS       Y2, Y0, Y0
	VBROADCASTSS 4(R8), Y4
	VMULPS       Y4, Y0, Y0
	VADDPS       Y0, Y11, Y11
	ADDQ $68, SI
	ADDQ $256, DI
	ADDQ $8, R8
	SUBQ $2, CX
	JMP  pair

tail:
	CMPQ CX, $1
	JLT  done
	VPMOVSXBD    2(SI), Y0
	VPMOVSXBD    10(SI), Y1
	VPMOVSXBD    18(SI), Y2
	VPMOVSXBD    26(SI), Y3
	VCVTDQ2PS    Y0, Y0
	VCVTDQ2PS    Y1, Y1
	VCVTDQ2PS    Y2, Y2
	VCVTDQ2PS    Y3, Y3
	VMULPS       0(DI), Y0, Y0
	VMULPS       32(DI), Y1, Y1
	VMULPS       64(DI), Y2, Y2
	VMULPS       96(DI), Y3, Y3
	VADDPS       Y1, Y0, Y0
	VADDPS       Y3, Y2, Y2
	VADDPS       Y2, Y0, Y0
	VBROADCASTSS 0(R8), Y4
	VMULPS       Y4, Y0, Y0
	VADDPS       Y0, Y10, Y10

done:
	VADDPS       Y11, Y10, Y10 // s[j] = acc[j] + acc[8+j]
	VEXTRACTF128 $1, Y10, X1
	VADDPS       X1, X10, X0   // t = s[0:4] + s[4:8]
	VMOVHLPS     X0, X0, X1
	VADDPS       X1, X0, X0    // t0+t2, t1+t3
	VMOVSHDUP    X0, X1
	VADDSS       X1, X0, X0    // (t0+t2) + (t1+t3)
	VMOVSS       X0, ret+32(FP)
	VZEROUPPER
	RET
