#include "textflag.h"

// Integer Q4_0 and Q5_0 kernels for AVX-512 VNNI; see matmul_q4.go for the
// compact layout and the order of operations they share with
// q4TilePortable, and matmul_q8_amd64.s for the q8Packed kernels these
// follow. A block's four nibble vectors are unpacked into the eight chunk
// vectors Z0–Z7 of matmul_q8.go's layout (low nibbles masked: chunks 0–3;
// high nibbles shifted down and masked: chunks 4–7), Q5_0's fifth bits are
// moved to bit 4 of each level, and then each chunk is one VPDPBUSD per
// token. A chunk's levels are completed just before its products, so the
// unpacking interleaves with the VPDPBUSDs. The levels are unsigned, so
// each token's block sum starts at −off·Σa: the activations' −128·Σa
// shifted right by 4 (Q4_0) or 3 (Q5_0), exactly.

// MASKS sets Z15 to bytes 0x0f and Z14 to bytes 0x10.
#define MASKS \
	VPBROADCASTD q4nib<>(SB), Z15; \
	VPBROADCASTD q4bit4<>(SB), Z14

// LOAD4 loads the block's nibble vectors at SI into Z0–Z3.
#define LOAD4 \
	VMOVDQU32 0(SI), Z0; \
	VMOVDQU32 64(SI), Z1; \
	VMOVDQU32 128(SI), Z2; \
	VMOVDQU32 192(SI), Z3

// LO4 leaves in W the levels of its low nibbles (chunk p) and in H its
// high nibbles shifted down, not yet masked (chunk p+4).
#define LO4(W, H) \
	VPSRLD $4, W, H; \
	VPANDD Z15, W, W

// HI4 completes the levels of chunk p+4 in H.
#define HI4(H) \
	VPANDD Z15, H, H

// FIFTH or-s the fifth bits of a chunk into its levels W: the high plane
// Z13 (bit k of each byte for chunk k) shifted by sh $n puts them at bit 4,
// kept by the mask Z14 (VPTERNLOGD 0xf8: A | B&C).
#define FIFTH(sh, n, W) \
	sh         $n, Z13, Z12; \
	VPTERNLOGD $0xf8, Z14, Z12, W

// START8 starts the 8 tokens' block sums Z24–Z31 at −off·Σa (c at R11).
#define START8(s) \
	VPSRAD.BCST $s, 0(R11), Z24; \
	VPSRAD.BCST $s, 4(R11), Z25; \
	VPSRAD.BCST $s, 8(R11), Z26; \
	VPSRAD.BCST $s, 12(R11), Z27; \
	VPSRAD.BCST $s, 16(R11), Z28; \
	VPSRAD.BCST $s, 20(R11), Z29; \
	VPSRAD.BCST $s, 24(R11), Z30; \
	VPSRAD.BCST $s, 28(R11), Z31

// DOT8 adds chunk k (levels in W) times the 8 tokens' values to their sums.
#define DOT8(k, W) \
	VPDPBUSD.BCST (k*4)(DI), W, Z24; \
	VPDPBUSD.BCST (k*4+32)(DI), W, Z25; \
	VPDPBUSD.BCST (k*4+64)(DI), W, Z26; \
	VPDPBUSD.BCST (k*4+96)(DI), W, Z27; \
	VPDPBUSD.BCST (k*4+128)(DI), W, Z28; \
	VPDPBUSD.BCST (k*4+160)(DI), W, Z29; \
	VPDPBUSD.BCST (k*4+192)(DI), W, Z30; \
	VPDPBUSD.BCST (k*4+224)(DI), W, Z31

// FLOAT folds token j's block sum isum into acc: acc += float32(isum)·(ws·d),
// Z8 holding the block's scales (q8x8VNNI's operations and operand order).
#define FLOAT(j, isum, acc, tmp) \
	VCVTDQ2PS   isum, isum; \
	VMULPS.BCST (j*4)(R10), Z8, tmp; \
	VMULPS      tmp, isum, isum; \
	VADDPS      isum, acc, acc

// FLOATS8 folds the 8 tokens' block sums into their accumulators Z16–Z23
// and steps to the next block (but for its levels: SI).
#define FLOATS8 \
	FLOAT(0, Z24, Z16, Z9); \
	FLOAT(1, Z25, Z17, Z10); \
	FLOAT(2, Z26, Z18, Z11); \
	FLOAT(3, Z27, Z19, Z9); \
	FLOAT(4, Z28, Z20, Z10); \
	FLOAT(5, Z29, Z21, Z11); \
	FLOAT(6, Z30, Z22, Z9); \
	FLOAT(7, Z31, Z23, Z10); \
	ADDQ $64, R8; \
	ADDQ $256, DI; \
	ADDQ $32, R10; \
	ADDQ $32, R11

#define X8ARGS \
	MOVQ w+0(FP), SI; \
	MOVQ ws+8(FP), R8; \
	MOVQ nb+16(FP), CX; \
	MOVQ q+24(FP), DI; \
	MOVQ d+32(FP), R10; \
	MOVQ c+40(FP), R11; \
	MOVQ out+48(FP), R9; \
	MOVQ stride+56(FP), BX; \
	MASKS; \
	VXORPS Z16, Z16, Z16; \
	VXORPS Z17, Z17, Z17; \
	VXORPS Z18, Z18, Z18; \
	VXORPS Z19, Z19, Z19; \
	VXORPS Z20, Z20, Z20; \
	VXORPS Z21, Z21, Z21; \
	VXORPS Z22, Z22, Z22; \
	VXORPS Z23, Z23, Z23

#define X8STORE \
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
	VMOVUPS Z23, (R9); \
	VZEROUPPER

// func q4x8VNNI(w *byte, ws *float32, nb int, q *int8, d *float32, c *int32, out *float32, stride int)
//
// Q4_0 rows of one group times the 8 tokens of one activation tile; token
// j's 16 results go to out + j*stride (bytes).
TEXT ·q4x8VNNI(SB), NOSPLIT, $0-64
	X8ARGS

q4x8block:
	LOAD4
	VMOVUPS (R8), Z8
	START8(4)
	LO4(Z0, Z4)
	DOT8(0, Z0)
	LO4(Z1, Z5)
	DOT8(1, Z1)
	LO4(Z2, Z6)
	DOT8(2, Z2)
	LO4(Z3, Z7)
	DOT8(3, Z3)
	HI4(Z4)
	DOT8(4, Z4)
	HI4(Z5)
	DOT8(5, Z5)
	HI4(Z6)
	DOT8(6, Z6)
	HI4(Z7)
	DOT8(7, Z7)
	FLOATS8
	ADDQ $256, SI
	DECQ CX
	JNZ  q4x8block
	X8STORE
	RET

// func q5x8VNNI(w *byte, ws *float32, nb int, q *int8, d *float32, c *int32, out *float32, stride int)
//
// q4x8VNNI for Q5_0 (the high plane at SI+256 in Z13).
TEXT ·q5x8VNNI(SB), NOSPLIT, $0-64
	X8ARGS

q5x8block:
	LOAD4
	VMOVDQU32 256(SI), Z13
	VMOVUPS   (R8), Z8
	START8(3)
	LO4(Z0, Z4)
	FIFTH(VPSLLD, 4, Z0)
	DOT8(0, Z0)
	LO4(Z1, Z5)
	FIFTH(VPSLLD, 3, Z1)
	DOT8(1, Z1)
	LO4(Z2, Z6)
	FIFTH(VPSLLD, 2, Z2)
	DOT8(2, Z2)
	LO4(Z3, Z7)
	FIFTH(VPSLLD, 1, Z3)
	DOT8(3, Z3)
	HI4(Z4)
	VPTERNLOGD $0xf8, Z14, Z13, Z4
	DOT8(4, Z4)
	HI4(Z5)
	FIFTH(VPSRLD, 1, Z5)
	DOT8(5, Z5)
	HI4(Z6)
	FIFTH(VPSRLD, 2, Z6)
	DOT8(6, Z6)
	HI4(Z7)
	FIFTH(VPSRLD, 3, Z7)
	DOT8(7, Z7)
	FLOATS8
	ADDQ $320, SI
	DECQ CX
	JNZ  q5x8block
	X8STORE
	RET

// In the one-token kernels a block's sums are two, Z24 (from −off·Σa) and
// Z25 (from 0), so consecutive chunks do not wait on one another.

// DOT1 adds chunk k (levels in W) times the token's values to the sum S.
#define DOT1(k, W, S) \
	VPDPBUSD.BCST (k*4)(DI), W, S

// START1 starts the block's sums.
#define START1(s) \
	VPSRAD.BCST $s, (R11), Z24; \
	VPXORD      Z25, Z25, Z25

// FLOAT1 folds the block's sums into the accumulator Z16 and steps to the
// next block (but for its levels: SI).
#define FLOAT1 \
	VPADDD  Z25, Z24, Z24; \
	VMOVUPS (R8), Z8; \
	FLOAT(0, Z24, Z16, Z9); \
	ADDQ    $64, R8; \
	ADDQ    $256, DI; \
	ADDQ    $32, R10; \
	ADDQ    $32, R11

#define X1ARGS \
	MOVQ w+0(FP), SI; \
	MOVQ ws+8(FP), R8; \
	MOVQ nb+16(FP), CX; \
	MOVQ q+24(FP), DI; \
	MOVQ d+32(FP), R10; \
	MOVQ c+40(FP), R11; \
	MOVQ out+48(FP), R9; \
	MASKS; \
	VXORPS Z16, Z16, Z16

// func q4x1VNNI(w *byte, ws *float32, nb int, q *int8, d *float32, c *int32, out *float32)
//
// Q4_0 rows of one group times one token of a tile (q, d, c point at the
// token's first block; the tile's blocks are 256, 32 and 32 bytes apart).
TEXT ·q4x1VNNI(SB), NOSPLIT, $0-56
	X1ARGS

q4x1block:
	LOAD4
	START1(4)
	LO4(Z0, Z4)
	DOT1(0, Z0, Z24)
	LO4(Z1, Z5)
	DOT1(1, Z1, Z25)
	LO4(Z2, Z6)
	DOT1(2, Z2, Z24)
	LO4(Z3, Z7)
	DOT1(3, Z3, Z25)
	HI4(Z4)
	DOT1(4, Z4, Z24)
	HI4(Z5)
	DOT1(5, Z5, Z25)
	HI4(Z6)
	DOT1(6, Z6, Z24)
	HI4(Z7)
	DOT1(7, Z7, Z25)
	FLOAT1
	ADDQ $256, SI
	DECQ CX
	JNZ  q4x1block
	VMOVUPS Z16, (R9)
	VZEROUPPER
	RET

// func q5x1VNNI(w *byte, ws *float32, nb int, q *int8, d *float32, c *int32, out *float32)
//
// q4x1VNNI for Q5_0.
TEXT ·q5x1VNNI(SB), NOSPLIT, $0-56
	X1ARGS

q5x1block:
	LOAD4
	VMOVDQU32 256(SI), Z13
	START1(3)
	LO4(Z0, Z4)
	FIFTH(VPSLLD, 4, Z0)
	DOT1(0, Z0, Z24)
	LO4(Z1, Z5)
	FIFTH(VPSLLD, 3, Z1)
	DOT1(1, Z1, Z25)
	LO4(Z2, Z6)
	FIFTH(VPSLLD, 2, Z2)
	DOT1(2, Z2, Z24)
	LO4(Z3, Z7)
	FIFTH(VPSLLD, 1, Z3)
	DOT1(3, Z3, Z25)
	HI4(Z4)
	VPTERNLOGD $0xf8, Z14, Z13, Z4
	DOT1(4, Z4, Z24)
	HI4(Z5)
	FIFTH(VPSRLD, 1, Z5)
	DOT1(5, Z5, Z25)
	HI4(Z6)
	FIFTH(VPSRLD, 2, Z6)
	DOT1(6, Z6, Z24)
	HI4(Z7)
	FIFTH(VPSRLD, 3, Z7)
	DOT1(7, Z7, Z25)
	FLOAT1
	ADDQ $320, SI
	DECQ CX
	JNZ  q5x1block
	VMOVUPS Z16, (R9)
	VZEROUPPER
	RET

DATA q4nib<>+0(SB)/4, $0x0f0f0f0f
GLOBL q4nib<>(SB), RODATA|NOPTR, $4
DATA q4bit4<>+0(SB)/4, $0x10101010
GLOBL q4bit4<>(SB), RODATA|NOPTR, $4
