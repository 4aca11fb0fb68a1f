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

// func dotF32SSE(w, x []float32) float32
// Lane j of X0 sums w[4i+j]·x[4i+j] (MULPS then ADDPS: no fusion), the
// tail goes into lane 0, and the lanes reduce as (s0+s1)+(s2+s3): exactly
// dotF32Portable. The caller makes len(x) ≥ len(w).
TEXT ·dotF32SSE(SB), NOSPLIT, $0-52
	MOVQ w_base+0(FP), SI
	MOVQ w_len+8(FP), CX
	MOVQ x_base+24(FP), DI
	XORPS X0, X0
	MOVQ CX, DX
	SHRQ $2, DX
	JZ dottail
dotloop:
	MOVUPS (SI), X1
	MOVUPS (DI), X2
	MULPS X2, X1
	ADDPS X1, X0
	ADDQ $16, SI
	ADDQ $16, DI
	DECQ DX
	JNZ dotloop
dottail:
	ANDQ $3, CX
	JZ dotreduce
dottailloop:
	MOVSS (SI), X1
	MOVSS (DI), X2
	MULSS X2, X1
	ADDSS X1, X0
	ADDQ $4, SI
	ADDQ $4, DI
	DECQ CX
	JNZ dottailloop
dotreduce:
	MOVAPS X0, X1
	SHUFPS $0x55, X1, X1
	MOVAPS X0, X2
	SHUFPS $0xAA, X2, X2
	MOVAPS X0, X3
	SHUFPS $0xFF, X3, X3
	ADDSS X1, X0
	ADDSS X3, X2
	ADDSS X2, X0
	MOVSS X0, ret+48(FP)
	RET

// func axpySSE(o []float32, a float32, v []float32)
// o[j] += a·v[j], four lanes at a time, MULPS then ADDPS: exactly
// axpyPortable. The caller makes len(v) ≥ len(o).
TEXT ·axpySSE(SB), NOSPLIT, $0-56
	MOVQ o_base+0(FP), DI
	MOVQ o_len+8(FP), CX
	MOVSS a+24(FP), X3
	SHUFPS $0x00, X3, X3
	MOVQ v_base+32(FP), SI
	MOVQ CX, DX
	SHRQ $2, DX
	JZ axpytail
axpyloop:
	MOVUPS (SI), X1
	MULPS X3, X1
	MOVUPS (DI), X2
	ADDPS X1, X2
	MOVUPS X2, (DI)
	ADDQ $16, SI
	ADDQ $16, DI
	DECQ DX
	JNZ axpyloop
axpytail:
	ANDQ $3, CX
	JZ axpydone
axpytailloop:
	MOVSS (SI), X1
	MULSS X3, X1
	MOVSS (DI), X2
	ADDSS X1, X2
	MOVSS X2, (DI)
	ADDQ $4, SI
	ADDQ $4, DI
	DECQ CX
	JNZ axpytailloop
axpydone:
	RET
