#include "textflag.h"

// The score kernels compute scoreDot (attention.go) for every position:
// 16 lanes of products and sums, MULPS then ADDPS (never fused), then the
// tree s[j]+=s[j+8], s[j]+=s[j+4], s[j]+=s[j+2], s[0]+s[1], then ·scale.
// Four positions go together so that their independent sums hide the
// latency of each other's adds, and their reductions share shuffles.
// The value kernels keep a block of o in registers over all positions;
// each element sums att[t]·v[t][j] in t order, like axpyPortable.

// func attnScoresAVX512(att, q, rows []float32, kvDim int, scale float32)
// Any len(q) ≥ 1: a partial last chunk loads under mask K1, so its missing
// lanes add +0, which changes no sum (a sum from +0 is never −0).
TEXT ·attnScoresAVX512(SB), NOSPLIT, $0-84
	MOVQ att_base+0(FP), DX
	MOVQ q_base+24(FP), DI
	MOVQ q_len+32(FP), BX
	MOVQ rows_base+48(FP), SI
	MOVQ kvDim+72(FP), R8
	SHLQ $2, R8              // row stride in bytes
	LEAQ (R8)(R8*2), R9      // three rows
	VBROADCASTSS scale+80(FP), Z14
	MOVQ BX, CX
	ANDQ $15, CX
	MOVQ CX, R12             // elements in the partial chunk
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	KMOVW AX, K1
	MOVL $0x1111, AX
	KMOVW AX, K2             // lane 0 of each 128-bit block
	SHRQ $4, BX              // whole chunks
	MOVQ att_len+8(FP), AX

s512quad:
	CMPQ AX, $4
	JLT  s512single
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	MOVQ SI, R10
	MOVQ DI, R11
	MOVQ BX, R13
	TESTQ R13, R13
	JZ   s512quadpart

s512quadchunk:
	VMOVUPS (R11), Z8
	VMULPS  (R10), Z8, Z4
	VMULPS  (R10)(R8*1), Z8, Z5
	VMULPS  (R10)(R8*2), Z8, Z6
	VMULPS  (R10)(R9*1), Z8, Z7
	VADDPS  Z4, Z0, Z0
	VADDPS  Z5, Z1, Z1
	VADDPS  Z6, Z2, Z2
	VADDPS  Z7, Z3, Z3
	ADDQ $64, R10
	ADDQ $64, R11
	DECQ R13
	JNZ  s512quadchunk

s512quadpart:
	TESTQ R12, R12
	JZ    s512quadreduce
	VMOVUPS.Z (R11), K1, Z8
	VMULPS.Z  (R10), Z8, K1, Z4
	VMULPS.Z  (R10)(R8*1), Z8, K1, Z5
	VMULPS.Z  (R10)(R8*2), Z8, K1, Z6
	VMULPS.Z  (R10)(R9*1), Z8, K1, Z7
	VADDPS    Z4, Z0, Z0
	VADDPS    Z5, Z1, Z1
	VADDPS    Z6, Z2, Z2
	VADDPS    Z7, Z3, Z3

s512quadreduce:
	// Positions a, b, c, d are in Z0..Z3. Pair their halves so that one
	// add serves two positions: [a0..7 b0..7] + [a8..15 b8..15].
	VSHUFF64X2 $0x44, Z1, Z0, Z4
	VSHUFF64X2 $0xEE, Z1, Z0, Z5
	VADDPS     Z5, Z4, Z4
	VSHUFF64X2 $0x44, Z3, Z2, Z6
	VSHUFF64X2 $0xEE, Z3, Z2, Z7
	VADDPS     Z7, Z6, Z6
	// [a0..3 b0..3 c0..3 d0..3] + [a4..7 b4..7 c4..7 d4..7]
	VSHUFF64X2 $0x88, Z6, Z4, Z0
	VSHUFF64X2 $0xDD, Z6, Z4, Z1
	VADDPS     Z1, Z0, Z0
	// Within each 128-bit block: s0+s2, s1+s3, then their sum in lane 0.
	VPERMILPS  $0x0E, Z0, Z1
	VADDPS     Z1, Z0, Z0
	VMOVSHDUP  Z0, Z1
	VADDPS     Z1, Z0, Z0
	VMULPS     Z14, Z0, Z0
	VCOMPRESSPS Z0, K2, Z1
	VMOVUPS    X1, (DX)
	LEAQ (SI)(R8*4), SI
	ADDQ $16, DX
	SUBQ $4, AX
	JMP  s512quad

s512single:
	TESTQ AX, AX
	JZ    s512done
	VXORPS Z0, Z0, Z0
	MOVQ SI, R10
	MOVQ DI, R11
	MOVQ BX, R13
	TESTQ R13, R13
	JZ   s512singlepart

s512singlechunk:
	VMOVUPS (R11), Z8
	VMULPS  (R10), Z8, Z4
	VADDPS  Z4, Z0, Z0
	ADDQ $64, R10
	ADDQ $64, R11
	DECQ R13
	JNZ  s512singlechunk

s512singlepart:
	TESTQ R12, R12
	JZ    s512singlereduce
	VMOVUPS.Z (R11), K1, Z8
	VMULPS.Z  (R10), Z8, K1, Z4
	VADDPS    Z4, Z0, Z0

s512singlereduce:
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS    Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS    X1, X0, X0
	VMOVHLPS  X0, X0, X1
	VADDPS    X1, X0, X0
	VMOVSHDUP X0, X1
	VADDSS    X1, X0, X0
	VMULSS    X14, X0, X0
	VMOVSS    X0, (DX)
	ADDQ R8, SI
	ADDQ $4, DX
	DECQ AX
	JMP  s512single

s512done:
	VZEROUPPER
	RET

// func attnValuesAVX512(o, att, rows []float32, kvDim int)
// Any len(o) ≥ 1, in blocks of 64 columns held in Z0..Z3 across all
// positions; K1..K4 mask each block's four chunks to the columns that
// exist, so the loads never touch memory past a row and the stores never
// write past o.
TEXT ·attnValuesAVX512(SB), NOSPLIT, $0-80
	MOVQ o_base+0(FP), DI
	MOVQ o_len+8(FP), BX     // columns left
	MOVQ att_base+24(FP), DX
	MOVQ att_len+32(FP), R9
	MOVQ rows_base+48(FP), SI
	MOVQ kvDim+72(FP), R8
	SHLQ $2, R8

v512block:
	MOVQ $-1, AX
	CMPQ BX, $64
	JGE  v512masks
	MOVQ BX, CX
	MOVQ $1, AX
	SHLQ CX, AX
	DECQ AX

v512masks:
	KMOVW AX, K1
	SHRQ  $16, AX
	KMOVW AX, K2
	SHRQ  $16, AX
	KMOVW AX, K3
	SHRQ  $16, AX
	KMOVW AX, K4
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	MOVQ SI, R10
	MOVQ DX, R11
	MOVQ R9, R13

v512pos:
	VBROADCASTSS (R11), Z8
	VMULPS.Z (R10), Z8, K1, Z4
	VMULPS.Z 64(R10), Z8, K2, Z5
	VMULPS.Z 128(R10), Z8, K3, Z6
	VMULPS.Z 192(R10), Z8, K4, Z7
	VADDPS   Z4, Z0, Z0
	VADDPS   Z5, Z1, Z1
	VADDPS   Z6, Z2, Z2
	VADDPS   Z7, Z3, Z3
	ADDQ R8, R10
	ADDQ $4, R11
	DECQ R13
	JNZ  v512pos

	VMOVUPS Z0, K1, (DI)
	VMOVUPS Z1, K2, 64(DI)
	VMOVUPS Z2, K3, 128(DI)
	VMOVUPS Z3, K4, 192(DI)
	ADDQ $256, DI
	ADDQ $256, SI
	SUBQ $64, BX
	JG   v512block
	VZEROUPPER
	RET

// func attnScoresAVX2(att, q, rows []float32, kvDim int, scale float32)
// len(q) a multiple of 16: lanes 0..7 of a position live in one YMM
// register and lanes 8..15 in another, so s[j]+=s[j+8] is one add.
TEXT ·attnScoresAVX2(SB), NOSPLIT, $0-84
	MOVQ att_base+0(FP), DX
	MOVQ q_base+24(FP), DI
	MOVQ q_len+32(FP), BX
	MOVQ rows_base+48(FP), SI
	MOVQ kvDim+72(FP), R8
	SHLQ $2, R8
	LEAQ (R8)(R8*2), R9
	VBROADCASTSS scale+80(FP), Y14
	SHRQ $4, BX
	MOVQ att_len+8(FP), AX

s2quad:
	CMPQ AX, $4
	JLT  s2single
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	MOVQ SI, R10
	MOVQ DI, R11
	MOVQ BX, R13

s2quadchunk:
	VMOVUPS (R11), Y8
	VMOVUPS 32(R11), Y9
	VMULPS  (R10), Y8, Y10
	VMULPS  32(R10), Y9, Y11
	VMULPS  (R10)(R8*1), Y8, Y12
	VMULPS  32(R10)(R8*1), Y9, Y13
	VADDPS  Y10, Y0, Y0
	VADDPS  Y11, Y1, Y1
	VADDPS  Y12, Y2, Y2
	VADDPS  Y13, Y3, Y3
	VMULPS  (R10)(R8*2), Y8, Y10
	VMULPS  32(R10)(R8*2), Y9, Y11
	VMULPS  (R10)(R9*1), Y8, Y12
	VMULPS  32(R10)(R9*1), Y9, Y13
	VADDPS  Y10, Y4, Y4
	VADDPS  Y11, Y5, Y5
	VADDPS  Y12, Y6, Y6
	VADDPS  Y13, Y7, Y7
	ADDQ $64, R10
	ADDQ $64, R11
	DECQ R13
	JNZ  s2quadchunk

	// s[j]+=s[j+8] per position, then pair positions' 128-bit halves so
	// that one add does s[j]+=s[j+4] for two of them.
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y5, Y4, Y4
	VADDPS Y7, Y6, Y6
	VPERM2F128 $0x20, Y2, Y0, Y1
	VPERM2F128 $0x31, Y2, Y0, Y3
	VADDPS     Y3, Y1, Y1
	VPERM2F128 $0x20, Y6, Y4, Y5
	VPERM2F128 $0x31, Y6, Y4, Y7
	VADDPS     Y7, Y5, Y5
	VPERMILPS  $0x0E, Y1, Y0
	VADDPS     Y0, Y1, Y1
	VMOVSHDUP  Y1, Y0
	VADDPS     Y0, Y1, Y1
	VPERMILPS  $0x0E, Y5, Y4
	VADDPS     Y4, Y5, Y5
	VMOVSHDUP  Y5, Y4
	VADDPS     Y4, Y5, Y5
	VMULPS     Y14, Y1, Y1
	VMULPS     Y14, Y5, Y5
	// Scores are in lane 0 of each 128-bit block: a, b in Y1; c, d in Y5.
	VMOVSS       X1, (DX)
	VEXTRACTF128 $1, Y1, X0
	VMOVSS       X0, 4(DX)
	VMOVSS       X5, 8(DX)
	VEXTRACTF128 $1, Y5, X4
	VMOVSS       X4, 12(DX)
	LEAQ (SI)(R8*4), SI
	ADDQ $16, DX
	SUBQ $4, AX
	JMP  s2quad

s2single:
	TESTQ AX, AX
	JZ    s2done
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	MOVQ SI, R10
	MOVQ DI, R11
	MOVQ BX, R13

s2singlechunk:
	VMOVUPS (R10), Y8
	VMOVUPS 32(R10), Y9
	VMULPS  (R11), Y8, Y8
	VMULPS  32(R11), Y9, Y9
	VADDPS  Y8, Y0, Y0
	VADDPS  Y9, Y1, Y1
	ADDQ $64, R10
	ADDQ $64, R11
	DECQ R13
	JNZ  s2singlechunk

	VADDPS       Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VMOVHLPS     X0, X0, X1
	VADDPS       X1, X0, X0
	VMOVSHDUP    X0, X1
	VADDSS       X1, X0, X0
	VMULSS       X14, X0, X0
	VMOVSS       X0, (DX)
	ADDQ R8, SI
	ADDQ $4, DX
	DECQ AX
	JMP  s2single

s2done:
	VZEROUPPER
	RET

// func attnValuesAVX2(o, att, rows []float32, kvDim int)
// len(o) a multiple of 16: blocks of 64 columns in Y0..Y7 while they
// last, then blocks of 16 in Y0, Y1.
TEXT ·attnValuesAVX2(SB), NOSPLIT, $0-80
	MOVQ o_base+0(FP), DI
	MOVQ o_len+8(FP), BX
	MOVQ att_base+24(FP), DX
	MOVQ att_len+32(FP), R9
	MOVQ rows_base+48(FP), SI
	MOVQ kvDim+72(FP), R8
	SHLQ $2, R8

v2wide:
	CMPQ BX, $64
	JLT  v2narrow
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	MOVQ SI, R10
	MOVQ DX, R11
	MOVQ R9, R13

v2widepos:
	VBROADCASTSS (R11), Y8
	VMULPS (R10), Y8, Y9
	VMULPS 32(R10), Y8, Y10
	VMULPS 64(R10), Y8, Y11
	VMULPS 96(R10), Y8, Y12
	VADDPS Y9, Y0, Y0
	VADDPS Y10, Y1, Y1
	VADDPS Y11, Y2, Y2
	VADDPS Y12, Y3, Y3
	VMULPS 128(R10), Y8, Y9
	VMULPS 160(R10), Y8, Y10
	VMULPS 192(R10), Y8, Y11
	VMULPS 224(R10), Y8, Y12
	VADDPS Y9, Y4, Y4
	VADDPS Y10, Y5, Y5
	VADDPS Y11, Y6, Y6
	VADDPS Y12, Y7, Y7
	ADDQ R8, R10
	ADDQ $4, R11
	DECQ R13
	JNZ  v2widepos

	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	VMOVUPS Y4, 128(DI)
	VMOVUPS Y5, 160(DI)
	VMOVUPS Y6, 192(DI)
	VMOVUPS Y7, 224(DI)
	ADDQ $256, DI
	ADDQ $256, SI
	SUBQ $64, BX
	JMP  v2wide

v2narrow:
	CMPQ BX, $16
	JLT  v2done
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	MOVQ SI, R10
	MOVQ DX, R11
	MOVQ R9, R13

v2narrowpos:
	VBROADCASTSS (R11), Y8
	VMULPS (R10), Y8, Y9
	VMULPS 32(R10), Y8, Y10
	VADDPS Y9, Y0, Y0
	VADDPS Y10, Y1, Y1
	ADDQ R8, R10
	ADDQ $4, R11
	DECQ R13
	JNZ  v2narrowpos

	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ $64, DI
	ADDQ $64, SI
	SUBQ $16, BX
	JMP  v2narrow

v2done:
	VZEROUPPER
	RET
