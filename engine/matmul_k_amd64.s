#include "textflag.h"

// Integer K-quant kernels for AVX-512 VNNI; see matmul_k.go for the packed
// layout and the order of operations they share with kTilePortable. As in
// matmul_q8_amd64.s, a 16-lane vector holds 16 rows and one VPDPBUSD
// multiplies a chunk of them by 4 broadcast activations. A block's levels
// are unpacked once into Z0–Z7 (chunk c in Zc): the low nibbles of the 4
// nibble vectors are chunks 0–3, their high nibbles chunks 4–7, and Q5_K's
// and Q6_K's higher bits are shifted into place from their plane and merged
// by VPTERNLOGD (0xf8: Zc |= shifted & mask). The block's scales are then
// computed from the record as the loader would round them, S = d·sc, the
// record's f16 d and dmin widened exactly by VCVTPH2PS (F16C, which every
// AVX-512 CPU has; kTile checks it), and the tokens go through 8 VPDPBUSD
// and their scale terms each.
//
// Registers: SI nibbles, R12 plane, R8 the super-block's scale record, R13
// the block's sub-scales in it, CX blocks left, DI/R10/R11/R14/DX the
// activations' values, scales, offset corrections (lo, hi) and sums, R9/BX
// the results and their stride. Z8–Z10 hold S0, S1 (Q6_K) and M
// (Q4_K/Q5_K), Z11–Z13 are scratch, Z14 bytes 0x0f, Z15 the plane's mask,
// Z16–Z23 the tokens' accumulators and Z24–Z31 their block sums.

// KNIB leaves the block's 4-bit levels in Z0–Z7.
#define KNIB \
	VPANDD 0(SI), Z14, Z0; \
	VPANDD 64(SI), Z14, Z1; \
	VPANDD 128(SI), Z14, Z2; \
	VPANDD 192(SI), Z14, Z3; \
	VPSRLW $4, 0(SI), Z4; \
	VPSRLW $4, 64(SI), Z5; \
	VPSRLW $4, 128(SI), Z6; \
	VPSRLW $4, 192(SI), Z7; \
	VPANDD Z14, Z4, Z4; \
	VPANDD Z14, Z5, Z5; \
	VPANDD Z14, Z6, Z6; \
	VPANDD Z14, Z7, Z7

// KBITS merges the plane bits that op·n moves to their place into dst.
#define KBITS(op, n, plane, tmp, dst) \
	op         $n, plane, tmp; \
	VPTERNLOGD $0xf8, Z15, tmp, dst

// KHI5 adds Q5_K's fifth bits (bit c of the plane for chunk c; Z15 bytes
// 0x10).
#define KHI5 \
	VMOVDQU64  (R12), Z11; \
	KBITS(VPSLLW, 4, Z11, Z12, Z0); \
	KBITS(VPSLLW, 3, Z11, Z13, Z1); \
	KBITS(VPSLLW, 2, Z11, Z12, Z2); \
	KBITS(VPSLLW, 1, Z11, Z13, Z3); \
	VPTERNLOGD $0xf8, Z15, Z11, Z4; \
	KBITS(VPSRLW, 1, Z11, Z12, Z5); \
	KBITS(VPSRLW, 2, Z11, Z13, Z6); \
	KBITS(VPSRLW, 3, Z11, Z12, Z7)

// KHI6 adds Q6_K's bits 4–5 (bits 2(c%4) of plane vector c/4; Z15 bytes
// 0x30).
#define KHI6 \
	VMOVDQU64  (R12), Z11; \
	KBITS(VPSLLW, 4, Z11, Z12, Z0); \
	KBITS(VPSLLW, 2, Z11, Z13, Z1); \
	VPTERNLOGD $0xf8, Z15, Z11, Z2; \
	KBITS(VPSRLW, 2, Z11, Z12, Z3); \
	VMOVDQU64  64(R12), Z11; \
	KBITS(VPSLLW, 4, Z11, Z13, Z4); \
	KBITS(VPSLLW, 2, Z11, Z12, Z5); \
	VPTERNLOGD $0xf8, Z15, Z11, Z6; \
	KBITS(VPSRLW, 2, Z11, Z13, Z7)

// KS45 sets Z8 = S = float32(d·sc) and Z10 = M = float32(dmin·m).
#define KS45 \
	VPMOVZXBD (R13), Z8; \
	VPMOVZXBD 16(R13), Z10; \
	VCVTPH2PS (R8), Z11; \
	VCVTPH2PS 32(R8), Z12; \
	VCVTDQ2PS Z8, Z8; \
	VCVTDQ2PS Z10, Z10; \
	VMULPS    Z11, Z8, Z8; \
	VMULPS    Z12, Z10, Z10

// KS6 sets Z8, Z9 = the halves' S = float32(d·sc).
#define KS6 \
	VPMOVSXBD (R13), Z8; \
	VPMOVSXBD 16(R13), Z9; \
	VCVTPH2PS (R8), Z11; \
	VCVTDQ2PS Z8, Z8; \
	VCVTDQ2PS Z9, Z9; \
	VMULPS    Z11, Z8, Z8; \
	VMULPS    Z11, Z9, Z9

// KZERO4 starts 4 tokens' block sums at 0 (no level offset).
#define KZERO4 \
	VPXORD Z24, Z24, Z24; \
	VPXORD Z25, Z25, Z25; \
	VPXORD Z26, Z26, Z26; \
	VPXORD Z27, Z27, Z27; \
	VPXORD Z28, Z28, Z28; \
	VPXORD Z29, Z29, Z29; \
	VPXORD Z30, Z30, Z30; \
	VPXORD Z31, Z31, Z31

// KCORR4 starts tokens t..t+3's block sums at their offset corrections.
#define KCORR4(t) \
	VPBROADCASTD (t*4+0)(R11), Z24; \
	VPBROADCASTD (t*4+0)(R14), Z25; \
	VPBROADCASTD (t*4+4)(R11), Z26; \
	VPBROADCASTD (t*4+4)(R14), Z27; \
	VPBROADCASTD (t*4+8)(R11), Z28; \
	VPBROADCASTD (t*4+8)(R14), Z29; \
	VPBROADCASTD (t*4+12)(R11), Z30; \
	VPBROADCASTD (t*4+12)(R14), Z31

// KDOT adds token t's products to its half sums lo and hi.
#define KDOT(t, lo, hi) \
	VPDPBUSD.BCST (t*32+0)(DI), Z0, lo; \
	VPDPBUSD.BCST (t*32+4)(DI), Z1, lo; \
	VPDPBUSD.BCST (t*32+8)(DI), Z2, lo; \
	VPDPBUSD.BCST (t*32+12)(DI), Z3, lo; \
	VPDPBUSD.BCST (t*32+16)(DI), Z4, hi; \
	VPDPBUSD.BCST (t*32+20)(DI), Z5, hi; \
	VPDPBUSD.BCST (t*32+24)(DI), Z6, hi; \
	VPDPBUSD.BCST (t*32+28)(DI), Z7, hi

// KF45 folds token t's half sums into acc: two scale terms with S, then
// the min term.
#define KF45(t, lo, hi, acc) \
	VCVTDQ2PS   lo, lo; \
	VCVTDQ2PS   hi, hi; \
	VMULPS.BCST (t*4)(R10), Z8, Z11; \
	VMULPS      Z11, lo, lo; \
	VADDPS      lo, acc, acc; \
	VMULPS      Z11, hi, hi; \
	VADDPS      hi, acc, acc; \
	VMULPS.BCST (t*4)(R10), Z10, Z12; \
	VMULPS.BCST (t*4)(DX), Z12, Z12; \
	VSUBPS      Z12, acc, acc

// KF6 folds token t's half sums into acc with the halves' scales.
#define KF6(t, lo, hi, acc) \
	VCVTDQ2PS   lo, lo; \
	VCVTDQ2PS   hi, hi; \
	VMULPS.BCST (t*4)(R10), Z8, Z11; \
	VMULPS      Z11, lo, lo; \
	VADDPS      lo, acc, acc; \
	VMULPS.BCST (t*4)(R10), Z9, Z12; \
	VMULPS      Z12, hi, hi; \
	VADDPS      hi, acc, acc

// KTOK8 runs the 8 tokens of a tile through a block, 4 at a time, with
// the block-sum start init(t) and the float step f.
#define KTOK8(init0, init4, f) \
	init0; \
	KDOT(0, Z24, Z25); \
	KDOT(1, Z26, Z27); \
	KDOT(2, Z28, Z29); \
	KDOT(3, Z30, Z31); \
	f(0, Z24, Z25, Z16); \
	f(1, Z26, Z27, Z17); \
	f(2, Z28, Z29, Z18); \
	f(3, Z30, Z31, Z19); \
	init4; \
	KDOT(4, Z24, Z25); \
	KDOT(5, Z26, Z27); \
	KDOT(6, Z28, Z29); \
	KDOT(7, Z30, Z31); \
	f(4, Z24, Z25, Z20); \
	f(5, Z26, Z27, Z21); \
	f(6, Z28, Z29, Z22); \
	f(7, Z30, Z31, Z23)

// KDOT1 is one token's two half sums, Z24 and Z25 (started by the
// caller), with Z26/Z27 splitting each half's chain in two.
#define KDOT1 \
	VPXORD        Z26, Z26, Z26; \
	VPXORD        Z27, Z27, Z27; \
	VPDPBUSD.BCST 0(DI), Z0, Z24; \
	VPDPBUSD.BCST 4(DI), Z1, Z26; \
	VPDPBUSD.BCST 8(DI), Z2, Z24; \
	VPDPBUSD.BCST 12(DI), Z3, Z26; \
	VPDPBUSD.BCST 16(DI), Z4, Z25; \
	VPDPBUSD.BCST 20(DI), Z5, Z27; \
	VPDPBUSD.BCST 24(DI), Z6, Z25; \
	VPDPBUSD.BCST 28(DI), Z7, Z27; \
	VPADDD        Z26, Z24, Z24; \
	VPADDD        Z27, Z25, Z25

// KZERO8 clears the 8 accumulators.
#define KZERO8 \
	VXORPS Z16, Z16, Z16; \
	VXORPS Z17, Z17, Z17; \
	VXORPS Z18, Z18, Z18; \
	VXORPS Z19, Z19, Z19; \
	VXORPS Z20, Z20, Z20; \
	VXORPS Z21, Z21, Z21; \
	VXORPS Z22, Z22, Z22; \
	VXORPS Z23, Z23, Z23

// KSTORE8 writes the 8 accumulators to R9, BX bytes apart.
#define KSTORE8 \
	VMOVUPS Z16, (R9); \
	ADDQ    BX, R9; \
	VMOVUPS Z17, (R9); \
	ADDQ    BX, R9; \
	VMOVUPS Z18, (R9); \
	ADDQ    BX, R9; \
	VMOVUPS Z19, (R9); \
	ADDQ    BX, R9; \
	VMOVUPS Z20, (R9); \
	ADDQ    BX, R9; \
	VMOVUPS Z21, (R9); \
	ADDQ    BX, R9; \
	VMOVUPS Z22, (R9); \
	ADDQ    BX, R9; \
	VMOVUPS Z23, (R9)

// KMASKS sets Z14 to bytes 0x0f and Z15 to bytes m.
#define KMASKS(m) \
	MOVL         $0x0f0f0f0f, AX; \
	VPBROADCASTD AX, Z14; \
	MOVL         $m, AX; \
	VPBROADCASTD AX, Z15

// KSTEP moves the tile's activation pointers to the next block.
#define KSTEP \
	ADDQ $256, DI; \
	ADDQ $32, R10; \
	ADDQ $32, R11; \
	ADDQ $32, R14; \
	ADDQ $32, DX

// All kernels take
//
//	w, h, sc *byte, nb int, q *int8, d *float32, clo, chi *int32, sum *float32, out *float32[, stride int]
//
// for rows of one group: w, h and sc its nibbles, plane (unused for Q4_K)
// and scale records, nb its blocks (a multiple of 8). The x8 kernels take
// the 8 tokens of one activation tile, token j's 16 results going to
// out + j*stride (bytes); the x1 kernels one token of a tile (q, d, clo,
// chi and sum pointing at the token's first block; the tile's blocks are
// 256 and 32 bytes apart). At a super-block's end the record pointer R8
// steps to the next record, and the sub-scale pointer R13 (32 bytes a
// block) to that record's sub-scales.

// func k4x8VNNI(w, h, sc *byte, nb int, q *int8, d *float32, clo, chi *int32, sum *float32, out *float32, stride int)
TEXT ·k4x8VNNI(SB), NOSPLIT, $0-88
	MOVQ w+0(FP), SI
	MOVQ sc+16(FP), R8
	MOVQ nb+24(FP), CX
	MOVQ q+32(FP), DI
	MOVQ d+40(FP), R10
	MOVQ sum+64(FP), DX
	MOVQ out+72(FP), R9
	MOVQ stride+80(FP), BX
	KMASKS(0x10101010)
	LEAQ 64(R8), R13
	KZERO8

k4x8block:
	KNIB
	KS45
	KTOK8(KZERO4, KZERO4, KF45)
	ADDQ $256, SI
	ADDQ $32, R13
	KSTEP
	DECQ CX
	JZ   k4x8done
	TESTQ $7, CX
	JNZ  k4x8block
	ADDQ $320, R8
	ADDQ $64, R13
	JMP  k4x8block

k4x8done:
	KSTORE8
	VZEROUPPER
	RET

// func k5x8VNNI(w, h, sc *byte, nb int, q *int8, d *float32, clo, chi *int32, sum *float32, out *float32, stride int)
TEXT ·k5x8VNNI(SB), NOSPLIT, $0-88
	MOVQ w+0(FP), SI
	MOVQ h+8(FP), R12
	MOVQ sc+16(FP), R8
	MOVQ nb+24(FP), CX
	MOVQ q+32(FP), DI
	MOVQ d+40(FP), R10
	MOVQ sum+64(FP), DX
	MOVQ out+72(FP), R9
	MOVQ stride+80(FP), BX
	KMASKS(0x10101010)
	LEAQ 64(R8), R13
	KZERO8

k5x8block:
	KNIB
	KHI5
	KS45
	KTOK8(KZERO4, KZERO4, KF45)
	ADDQ $256, SI
	ADDQ $64, R12
	ADDQ $32, R13
	KSTEP
	DECQ CX
	JZ   k5x8done
	TESTQ $7, CX
	JNZ  k5x8block
	ADDQ $320, R8
	ADDQ $64, R13
	JMP  k5x8block

k5x8done:
	KSTORE8
	VZEROUPPER
	RET

// func k6x8VNNI(w, h, sc *byte, nb int, q *int8, d *float32, clo, chi *int32, sum *float32, out *float32, stride int)
TEXT ·k6x8VNNI(SB), NOSPLIT, $0-88
	MOVQ w+0(FP), SI
	MOVQ h+8(FP), R12
	MOVQ sc+16(FP), R8
	MOVQ nb+24(FP), CX
	MOVQ q+32(FP), DI
	MOVQ d+40(FP), R10
	MOVQ clo+48(FP), R11
	MOVQ chi+56(FP), R14
	MOVQ out+72(FP), R9
	MOVQ stride+80(FP), BX
	KMASKS(0x30303030)
	LEAQ 32(R8), R13
	KZERO8

k6x8block:
	KNIB
	KHI6
	KS6
	KTOK8(KCORR4(0), KCORR4(4), KF6)
	ADDQ $256, SI
	ADDQ $128, R12
	ADDQ $32, R13
	KSTEP
	DECQ CX
	JZ   k6x8done
	TESTQ $7, CX
	JNZ  k6x8block
	ADDQ $288, R8
	ADDQ $32, R13
	JMP  k6x8block

k6x8done:
	KSTORE8
	VZEROUPPER
	RET

// func k4x1VNNI(w, h, sc *byte, nb int, q *int8, d *float32, clo, chi *int32, sum *float32, out *float32)
TEXT ·k4x1VNNI(SB), NOSPLIT, $0-80
	MOVQ w+0(FP), SI
	MOVQ sc+16(FP), R8
	MOVQ nb+24(FP), CX
	MOVQ q+32(FP), DI
	MOVQ d+40(FP), R10
	MOVQ sum+64(FP), DX
	MOVQ out+72(FP), R9
	KMASKS(0x10101010)
	LEAQ 64(R8), R13
	VXORPS Z16, Z16, Z16

k4x1block:
	KNIB
	KS45
	VPXORD Z24, Z24, Z24
	VPXORD Z25, Z25, Z25
	KDOT1
	KF45(0, Z24, Z25, Z16)
	ADDQ $256, SI
	ADDQ $32, R13
	KSTEP
	DECQ CX
	JZ   k4x1done
	TESTQ $7, CX
	JNZ  k4x1block
	ADDQ $320, R8
	ADDQ $64, R13
	JMP  k4x1block

k4x1done:
	VMOVUPS Z16, (R9)
	VZEROUPPER
	RET

// func k5x1VNNI(w, h, sc *byte, nb int, q *int8, d *float32, clo, chi *int32, sum *float32, out *float32)
TEXT ·k5x1VNNI(SB), NOSPLIT, $0-80
	MOVQ w+0(FP), SI
	MOVQ h+8(FP), R12
	MOVQ sc+16(FP), R8
	MOVQ nb+24(FP), CX
	MOVQ q+32(FP), DI
	MOVQ d+40(FP), R10
	MOVQ sum+64(FP), DX
	MOVQ out+72(FP), R9
	KMASKS(0x10101010)
	LEAQ 64(R8), R13
	VXORPS Z16, Z16, Z16

k5x1block:
	KNIB
	KHI5
	KS45
	VPXORD Z24, Z24, Z24
	VPXORD Z25, Z25, Z25
	KDOT1
	KF45(0, Z24, Z25, Z16)
	ADDQ $256, SI
	ADDQ $64, R12
	ADDQ $32, R13
	KSTEP
	DECQ CX
	JZ   k5x1done
	TESTQ $7, CX
	JNZ  k5x1block
	ADDQ $320, R8
	ADDQ $64, R13
	JMP  k5x1block

k5x1done:
	VMOVUPS Z16, (R9)
	VZEROUPPER
	RET

// func k6x1VNNI(w, h, sc *byte, nb int, q *int8, d *float32, clo, chi *int32, sum *float32, out *float32)
TEXT ·k6x1VNNI(SB), NOSPLIT, $0-80
	MOVQ w+0(FP), SI
	MOVQ h+8(FP), R12
	MOVQ sc+16(FP), R8
	MOVQ nb+24(FP), CX
	MOVQ q+32(FP), DI
	MOVQ d+40(FP), R10
	MOVQ clo+48(FP), R11
	MOVQ chi+56(FP), R14
	MOVQ out+72(FP), R9
	KMASKS(0x30303030)
	LEAQ 32(R8), R13
	VXORPS Z16, Z16, Z16

k6x1block:
	KNIB
	KHI6
	KS6
	VPBROADCASTD (R11), Z24
	VPBROADCASTD (R14), Z25
	KDOT1
	KF6(0, Z24, Z25, Z16)
	ADDQ $256, SI
	ADDQ $128, R12
	ADDQ $32, R13
	KSTEP
	DECQ CX
	JZ   k6x1done
	TESTQ $7, CX
	JNZ  k6x1block
	ADDQ $288, R8
	ADDQ $32, R13
	JMP  k6x1block

k6x1done:
	VMOVUPS Z16, (R9)
	VZEROUPPER
	RET
