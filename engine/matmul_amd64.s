#include "textflag.h"

// Tiled Q8_0 kernels for AVX-512 (F + VL). They compute, for one weight row
// and several tokens, exactly what dotQ8AVX2 computes for each token alone:
// a ZMM register holds two tokens' 8-lane partial sums (token A in the low
// 256 bits, token B in the high 256 bits), the row's decoded weights are
// duplicated into both halves, and every lane performs the same rounded
// multiplies and adds in the same order as the YMM kernel. The weights of a
// block are therefore decoded once and reused for every token of the tile,
// and results stay bit-identical to dotQ8AVX2 and dotQ8Generic.
//
// Activations come packed by packPairs: for a pair of tokens, each 8-float
// chunk of token A is followed by the same chunk of token B, so a block (32
// values of each token) is 4 consecutive ZMM loads (256 bytes).

// DECODE widens block SI's 32 int8 weights into Z0..Z3 (each 8 weights,
// duplicated into both 256-bit halves) and broadcasts its scale into Z4.
#define DECODE(off, soff) \
	VPBROADCASTQ off+2(SI), X0; \
	VPBROADCASTQ off+10(SI), X1; \
	VPBROADCASTQ off+18(SI), X2; \
	VPBROADCASTQ off+26(SI), X3; \
	VPMOVSXBD    X0, Z0; \
	VPMOVSXBD    X1, Z1; \
	VPMOVSXBD    X2, Z2; \
	VPMOVSXBD    X3, Z3; \
	VCVTDQ2PS    Z0, Z0; \
	VCVTDQ2PS    Z1, Z1; \
	VCVTDQ2PS    Z2, Z2; \
	VCVTDQ2PS    Z3, Z3; \
	VBROADCASTSS soff(R8), Z4

// PAIR accumulates the decoded block into acc for the token pair at ptr+off:
// acc += ((w0*x0 + w1*x1) + (w2*x2 + w3*x3)) * d, each step rounded.
#define PAIR(ptr, off, t0, t1, t2, acc) \
	VMULPS off+0(ptr), Z0, t0; \
	VMULPS off+64(ptr), Z1, t1; \
	VMULPS off+128(ptr), Z2, t2; \
	VADDPS t1, t0, t0; \
	VMULPS off+192(ptr), Z3, t1; \
	VADDPS t1, t2, t2; \
	VADDPS t2, t0, t0; \
	VMULPS Z4, t0, t0; \
	VADDPS t0, acc, acc

// REDUCE sums acc's low (token A) and high (token B) halves in
// reduceLanes' order and stores them at ret and ret+4.
#define REDUCE(acc, y, x, ret) \
	VEXTRACTF64X4 $1, acc, Y30; \
	VEXTRACTF32X4 $1, y, X29; \
	VADDPS        X29, x, X28; \
	VMOVHLPS      X28, X28, X29; \
	VADDPS        X29, X28, X28; \
	VMOVSHDUP     X28, X29; \
	VADDSS        X29, X28, X28; \
	VMOVSS        X28, ret(DX); \
	VEXTRACTF32X4 $1, Y30, X29; \
	VADDPS        X29, X30, X28; \
	VMOVHLPS      X28, X28, X29; \
	VADDPS        X29, X28, X28; \
	VMOVSHDUP     X28, X29; \
	VADDSS        X29, X28, X28; \
	VMOVSS        X28, ret+4(DX)

// func dotQ8x8AVX512(w *byte, ws *float32, xp *float32, pairStride int, nb int, out *[8]float32)
//
// One row (nb blocks) with 8 tokens: four packed pairs at xp, xp+pairStride,
// xp+2*pairStride, xp+3*pairStride (bytes). out[2p], out[2p+1] receive pair
// p's tokens.
TEXT ·dotQ8x8AVX512(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), SI
	MOVQ ws+8(FP), R8
	MOVQ xp+16(FP), DI
	MOVQ pairStride+24(FP), AX
	MOVQ nb+32(FP), CX
	MOVQ out+40(FP), DX
	LEAQ (DI)(AX*1), R9
	LEAQ (R9)(AX*1), R10
	LEAQ (R10)(AX*1), R11
	VXORPS Z8, Z8, Z8
	VXORPS Z9, Z9, Z9
	VXORPS Z10, Z10, Z10
	VXORPS Z11, Z11, Z11
	VXORPS Z12, Z12, Z12
	VXORPS Z13, Z13, Z13
	VXORPS Z14, Z14, Z14
	VXORPS Z15, Z15, Z15

x8pair:
	CMPQ CX, $2
	JLT  x8tail
	DECODE(0, 0)
	PAIR(DI, 0, Z16, Z17, Z18, Z8)
	PAIR(R9, 0, Z19, Z20, Z21, Z10)
	PAIR(R10, 0, Z22, Z23, Z24, Z12)
	PAIR(R11, 0, Z25, Z26, Z27, Z14)
	DECODE(34, 4)
	PAIR(DI, 256, Z16, Z17, Z18, Z9)
	PAIR(R9, 256, Z19, Z20, Z21, Z11)
	PAIR(R10, 256, Z22, Z23, Z24, Z13)
	PAIR(R11, 256, Z25, Z26, Z27, Z15)
	ADDQ $68, SI
	ADDQ $8, R8
	ADDQ $512, DI
	ADDQ $512, R9
	ADDQ $512, R10
	ADDQ $512, R11
	SUBQ $2, CX
	JMP  x8pair

x8tail:
	CMPQ CX, $1
	JLT  x8done
	DECODE(0, 0)
	PAIR(DI, 0, Z16, Z17, Z18, Z8)
	PAIR(R9, 0, Z19, Z20, Z21, Z10)
	PAIR(R10, 0, Z22, Z23, Z24, Z12)
	PAIR(R11, 0, Z25, Z26, Z27, Z14)

x8done:
	VADDPS Z9, Z8, Z8 // s[j] = acc[j] + acc[8+j], both tokens at once
	VADDPS Z11, Z10, Z10
	VADDPS Z13, Z12, Z12
	VADDPS Z15, Z14, Z14
	REDUCE(Z8, Y8, X8, 0)
	REDUCE(Z10, Y10, X10, 8)
	REDUCE(Z12, Y12, X12, 16)
	REDUCE(Z14, Y14, X14, 24)
	VZEROUPPER
	RET

// func dotQ8x2AVX512(w *byte, ws *float32, xp *float32, nb int, out *[2]float32)
//
// One row with one packed pair of tokens.
TEXT ·dotQ8x2AVX512(SB), NOSPLIT, $0-40
	MOVQ w+0(FP), SI
	MOVQ ws+8(FP), R8
	MOVQ xp+16(FP), DI
	MOVQ nb+24(FP), CX
	MOVQ out+32(FP), DX
	VXORPS Z8, Z8, Z8
	VXORPS Z9, Z9, Z9

x2pair:
	CMPQ CX, $2
	JLT  x2tail
	DECODE(0, 0)
	PAIR(DI, 0, Z16, Z17, Z18, Z8)
	DECODE(34, 4)
	PAIR(DI, 256, Z19, Z20, Z21, Z9)
	ADDQ $68, SI
	ADDQ $8, R8
	ADDQ $512, DI
	SUBQ $2, CX
	JMP  x2pair

x2tail:
	CMPQ CX, $1
	JLT  x2done
	DECODE(0, 0)
	PAIR(DI, 0, Z16, Z17, Z18, Z8)

x2done:
	VADDPS Z9, Z8, Z8
	REDUCE(Z8, Y8, X8, 0)
	VZEROUPPER
	RET
