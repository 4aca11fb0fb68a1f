#include "textflag.h"

// Integer K-quant kernels for AVX2 CPUs without AVX-512 VNNI; see
// matmul_k.go for the packed layout and the order of operations they share
// with kTilePortable. A ymm holds 8 rows, so every 64-byte vector of the
// layout is two halves: rows 0–7 in its first 32 bytes, rows 8–15 in the
// next (likewise 8 sub-scale bytes and 16 bytes of f16 super-scales a
// half, which VCVTPH2PS widens exactly: F16C, checked by kTile).
//
// AVX2 has no VPDPBUSD. The levels are unsigned and at most 63, so
// VPMADDUBSW multiplies them by the signed activations straight away: a
// pair u·a + u'·a' stays within 2·63·127 = 16002, far from the int16
// saturation, and so do sums of 4 pairs of Q4_K's and Q5_K's levels
// (4·2·31·127 = 31496) and of 2 of Q6_K's (32004), which VPADDW adds
// exactly before one VPMADDWD by ones widens them to int32. The float part
// is then kTilePortable's, instruction for instruction.

DATA kmask0f<>+0(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA kmask0f<>+8(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA kmask0f<>+16(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA kmask0f<>+24(SB)/8, $0x0f0f0f0f0f0f0f0f
GLOBL kmask0f<>(SB), RODATA|NOPTR, $32

DATA kmask10<>+0(SB)/8, $0x1010101010101010
DATA kmask10<>+8(SB)/8, $0x1010101010101010
DATA kmask10<>+16(SB)/8, $0x1010101010101010
DATA kmask10<>+24(SB)/8, $0x1010101010101010
GLOBL kmask10<>(SB), RODATA|NOPTR, $32

DATA kmask30<>+0(SB)/8, $0x3030303030303030
DATA kmask30<>+8(SB)/8, $0x3030303030303030
DATA kmask30<>+16(SB)/8, $0x3030303030303030
DATA kmask30<>+24(SB)/8, $0x3030303030303030
GLOBL kmask30<>(SB), RODATA|NOPTR, $32

DATA kones<>+0(SB)/8, $0x0001000100010001
DATA kones<>+8(SB)/8, $0x0001000100010001
DATA kones<>+16(SB)/8, $0x0001000100010001
DATA kones<>+24(SB)/8, $0x0001000100010001
GLOBL kones<>(SB), RODATA|NOPTR, $32

// Registers, as in matmul_k_amd64.s: SI nibbles, R12 plane, R8 the
// super-block's scale record, R13 the block's sub-scales, CX blocks left,
// DI/R10/R11/R14/DX the activations' values, scales, corrections (lo, hi)
// and sums. Y8–Y11 hold a half block's 4 chunks of levels, Y12–Y14 are
// scratch and Y15 bytes 0x0f.

// ALO leaves chunks 0–3 (the low nibbles) of the 8 rows at r(SI) in Y8–Y11.
#define ALO(r) \
	VPAND (r+0)(SI), Y15, Y8; \
	VPAND (r+64)(SI), Y15, Y9; \
	VPAND (r+128)(SI), Y15, Y10; \
	VPAND (r+192)(SI), Y15, Y11

// AHI leaves chunks 4–7 (the high nibbles) in Y8–Y11.
#define AHI(r) \
	VMOVDQU (r+0)(SI), Y8; \
	VMOVDQU (r+64)(SI), Y9; \
	VMOVDQU (r+128)(SI), Y10; \
	VMOVDQU (r+192)(SI), Y11; \
	VPSRLW  $4, Y8, Y8; \
	VPSRLW  $4, Y9, Y9; \
	VPSRLW  $4, Y10, Y10; \
	VPSRLW  $4, Y11, Y11; \
	VPAND   Y15, Y8, Y8; \
	VPAND   Y15, Y9, Y9; \
	VPAND   Y15, Y10, Y10; \
	VPAND   Y15, Y11, Y11

// ABIT5 and ABIT6 merge the bits of the plane in Y12 that op·n moves to
// their place into dst.
#define ABIT5(op, n, dst) \
	op    $n, Y12, Y13; \
	VPAND kmask10<>(SB), Y13, Y13; \
	VPOR  Y13, dst, dst

#define ABIT6(op, n, dst) \
	op    $n, Y12, Y13; \
	VPAND kmask30<>(SB), Y13, Y13; \
	VPOR  Y13, dst, dst

// AP5LO and AP5HI add Q5_K's fifth bits to chunks 0–3 and 4–7.
#define AP5LO(r) \
	VMOVDQU r(R12), Y12; \
	ABIT5(VPSLLW, 4, Y8); \
	ABIT5(VPSLLW, 3, Y9); \
	ABIT5(VPSLLW, 2, Y10); \
	ABIT5(VPSLLW, 1, Y11)

#define AP5HI(r) \
	VMOVDQU r(R12), Y12; \
	VPAND   kmask10<>(SB), Y12, Y13; \
	VPOR    Y13, Y8, Y8; \
	ABIT5(VPSRLW, 1, Y9); \
	ABIT5(VPSRLW, 2, Y10); \
	ABIT5(VPSRLW, 3, Y11)

// AP6LO and AP6HI add Q6_K's bits 4–5 to chunks 0–3 and 4–7.
#define AP6LO(r) \
	VMOVDQU r(R12), Y12; \
	ABIT6(VPSLLW, 4, Y8); \
	ABIT6(VPSLLW, 2, Y9); \
	VPAND   kmask30<>(SB), Y12, Y13; \
	VPOR    Y13, Y10, Y10; \
	ABIT6(VPSRLW, 2, Y11)

#define AP6HI(r) \
	VMOVDQU (r+64)(R12), Y12; \
	ABIT6(VPSLLW, 4, Y8); \
	ABIT6(VPSLLW, 2, Y9); \
	VPAND   kmask30<>(SB), Y12, Y13; \
	VPOR    Y13, Y10, Y10; \
	ABIT6(VPSRLW, 2, Y11)

// --- x8: a tile's 8 tokens, in two passes over the group's blocks, one per
// half of its rows (AX: 0 or 32, the half's byte offset in the vectors and
// results). Y0–Y7 are the tokens' accumulators. ---

// A8SUM4 leaves token t's Σu·a over Y8–Y11 in Y12 (c: 0 for the block's
// first half, 16 for its second).
#define A8SUM4(t, c) \
	VPBROADCASTD (t*32+c)(DI), Y12; \
	VPMADDUBSW   Y12, Y8, Y12; \
	VPBROADCASTD (t*32+c+4)(DI), Y13; \
	VPMADDUBSW   Y13, Y9, Y13; \
	VPADDW       Y13, Y12, Y12; \
	VPBROADCASTD (t*32+c+8)(DI), Y13; \
	VPMADDUBSW   Y13, Y10, Y13; \
	VPADDW       Y13, Y12, Y12; \
	VPBROADCASTD (t*32+c+12)(DI), Y13; \
	VPMADDUBSW   Y13, Y11, Y13; \
	VPADDW       Y13, Y12, Y12; \
	VPMADDWD     kones<>(SB), Y12, Y12

// A8SUM6 is A8SUM4 for Q6_K's wider levels, widening every 2 chunks, plus
// the offset correction at corr.
#define A8SUM6(t, c, corr) \
	VPBROADCASTD (t*32+c)(DI), Y12; \
	VPMADDUBSW   Y12, Y8, Y12; \
	VPBROADCASTD (t*32+c+4)(DI), Y13; \
	VPMADDUBSW   Y13, Y9, Y13; \
	VPADDW       Y13, Y12, Y12; \
	VPMADDWD     kones<>(SB), Y12, Y12; \
	VPBROADCASTD (t*32+c+8)(DI), Y13; \
	VPMADDUBSW   Y13, Y10, Y13; \
	VPBROADCASTD (t*32+c+12)(DI), Y14; \
	VPMADDUBSW   Y14, Y11, Y14; \
	VPADDW       Y14, Y13, Y13; \
	VPMADDWD     kones<>(SB), Y13, Y13; \
	VPADDD       Y13, Y12, Y12; \
	VPBROADCASTD (t*4)(corr), Y13; \
	VPADDD       Y13, Y12, Y12

// A8ADD does acc += float32(Y12)·float32(S·da) for token t, S at s.
#define A8ADD(t, s, acc) \
	VCVTDQ2PS    Y12, Y12; \
	VBROADCASTSS (t*4)(R10), Y13; \
	VMULPS       s, Y13, Y13; \
	VMULPS       Y13, Y12, Y12; \
	VADDPS       Y12, acc, acc

// A8MIN does acc −= float32(M·da)·sum for token t, M in Y8.
#define A8MIN(t, acc) \
	VBROADCASTSS (t*4)(R10), Y12; \
	VMULPS       Y8, Y12, Y12; \
	VBROADCASTSS (t*4)(DX), Y13; \
	VMULPS       Y13, Y12, Y12; \
	VSUBPS       Y12, acc, acc

// A8HALF45 runs the 8 tokens through half c of the block, S in Y14.
#define A8HALF45(c) \
	A8SUM4(0, c); \
	A8ADD(0, Y14, Y0); \
	A8SUM4(1, c); \
	A8ADD(1, Y14, Y1); \
	A8SUM4(2, c); \
	A8ADD(2, Y14, Y2); \
	A8SUM4(3, c); \
	A8ADD(3, Y14, Y3); \
	A8SUM4(4, c); \
	A8ADD(4, Y14, Y4); \
	A8SUM4(5, c); \
	A8ADD(5, Y14, Y5); \
	A8SUM4(6, c); \
	A8ADD(6, Y14, Y6); \
	A8SUM4(7, c); \
	A8ADD(7, Y14, Y7)

// A8HALF6 runs the 8 tokens through half c of a Q6_K block, its S at s.
#define A8HALF6(c, corr, s) \
	A8SUM6(0, c, corr); \
	A8ADD(0, s, Y0); \
	A8SUM6(1, c, corr); \
	A8ADD(1, s, Y1); \
	A8SUM6(2, c, corr); \
	A8ADD(2, s, Y2); \
	A8SUM6(3, c, corr); \
	A8ADD(3, s, Y3); \
	A8SUM6(4, c, corr); \
	A8ADD(4, s, Y4); \
	A8SUM6(5, c, corr); \
	A8ADD(5, s, Y5); \
	A8SUM6(6, c, corr); \
	A8ADD(6, s, Y6); \
	A8SUM6(7, c, corr); \
	A8ADD(7, s, Y7)

// A8MIN45 computes M = float32(dmin·m) into Y8 and takes the 8 tokens'
// min terms.
#define A8MIN45 \
	VPMOVZXBD 16(R13), Y8; \
	VCVTPH2PS 32(R8), Y9; \
	VCVTDQ2PS Y8, Y8; \
	VMULPS    Y9, Y8, Y8; \
	A8MIN(0, Y0); \
	A8MIN(1, Y1); \
	A8MIN(2, Y2); \
	A8MIN(3, Y3); \
	A8MIN(4, Y4); \
	A8MIN(5, Y5); \
	A8MIN(6, Y6); \
	A8MIN(7, Y7)

// A8START points the registers at the pass's half of the rows (sub: the
// record's sub-scale offset; AX/2 into the f16 scales, AX/4 into the
// sub-scales) and clears the accumulators.
#define A8START(sub) \
	MOVQ      R8, R13; \
	ADDQ      $sub, R13; \
	MOVQ      AX, BX; \
	SHRQ      $1, BX; \
	ADDQ      BX, R8; \
	SHRQ      $1, BX; \
	ADDQ      BX, R13; \
	ADDQ      AX, SI; \
	ADDQ      AX, R12; \
	VXORPS    Y0, Y0, Y0; \
	VXORPS    Y1, Y1, Y1; \
	VXORPS    Y2, Y2, Y2; \
	VXORPS    Y3, Y3, Y3; \
	VXORPS    Y4, Y4, Y4; \
	VXORPS    Y5, Y5, Y5; \
	VXORPS    Y6, Y6, Y6; \
	VXORPS    Y7, Y7, Y7

// A8STORE writes the 8 accumulators to R9, BX bytes apart.
#define A8STORE \
	VMOVUPS Y0, (R9); \
	ADDQ    BX, R9; \
	VMOVUPS Y1, (R9); \
	ADDQ    BX, R9; \
	VMOVUPS Y2, (R9); \
	ADDQ    BX, R9; \
	VMOVUPS Y3, (R9); \
	ADDQ    BX, R9; \
	VMOVUPS Y4, (R9); \
	ADDQ    BX, R9; \
	VMOVUPS Y5, (R9); \
	ADDQ    BX, R9; \
	VMOVUPS Y6, (R9); \
	ADDQ    BX, R9; \
	VMOVUPS Y7, (R9)

// ASTEP moves the activation pointers to the next block.
#define ASTEP \
	ADDQ $256, DI; \
	ADDQ $32, R10; \
	ADDQ $32, R11; \
	ADDQ $32, R14; \
	ADDQ $32, DX

// The kernels take the arguments of matmul_k_amd64.s's and read and
// write the same memory.

// func k4x8AVX2(w, h, sc *byte, nb int, q *int8, d *float32, clo, chi *int32, sum *float32, out *float32, stride int)
TEXT ·k4x8AVX2(SB), NOSPLIT, $0-88
	VMOVDQU kmask0f<>(SB), Y15
	XORQ    AX, AX

k4x8pass:
	MOVQ w+0(FP), SI
	MOVQ w+0(FP), R12
	MOVQ sc+16(FP), R8
	MOVQ nb+24(FP), CX
	MOVQ q+32(FP), DI
	MOVQ d+40(FP), R10
	MOVQ sum+64(FP), DX
	A8START(64)

k4x8block:
	VPMOVZXBD (R13), Y14
	VCVTPH2PS (R8), Y13
	VCVTDQ2PS Y14, Y14
	VMULPS    Y13, Y14, Y14
	ALO(0)
	A8HALF45(0)
	AHI(0)
	A8HALF45(16)
	A8MIN45
	ADDQ  $256, SI
	ADDQ  $32, R13
	ASTEP
	DECQ  CX
	JZ    k4x8end
	TESTQ $7, CX
	JNZ   k4x8block
	ADDQ  $320, R8
	ADDQ  $64, R13
	JMP   k4x8block

k4x8end:
	MOVQ out+72(FP), R9
	ADDQ AX, R9
	MOVQ stride+80(FP), BX
	A8STORE
	ADDQ $32, AX
	CMPQ AX, $64
	JNE  k4x8pass
	VZEROUPPER
	RET

// func k5x8AVX2(w, h, sc *byte, nb int, q *int8, d *float32, clo, chi *int32, sum *float32, out *float32, stride int)
TEXT ·k5x8AVX2(SB), NOSPLIT, $0-88
	VMOVDQU kmask0f<>(SB), Y15
	XORQ    AX, AX

k5x8pass:
	MOVQ w+0(FP), SI
	MOVQ h+8(FP), R12
	MOVQ sc+16(FP), R8
	MOVQ nb+24(FP), CX
	MOVQ q+32(FP), DI
	MOVQ d+40(FP), R10
	MOVQ sum+64(FP), DX
	A8START(64)

k5x8block:
	VPMOVZXBD (R13), Y14
	VCVTPH2PS (R8), Y13
	VCVTDQ2PS Y14, Y14
	VMULPS    Y13, Y14, Y14
	ALO(0)
	AP5LO(0)
	A8HALF45(0)
	AHI(0)
	AP5HI(0)
	A8HALF45(16)
	A8MIN45
	ADDQ  $256, SI
	ADDQ  $64, R12
	ADDQ  $32, R13
	ASTEP
	DECQ  CX
	JZ    k5x8end
	TESTQ $7, CX
	JNZ   k5x8block
	ADDQ  $320, R8
	ADDQ  $64, R13
	JMP   k5x8block

k5x8end:
	MOVQ out+72(FP), R9
	ADDQ AX, R9
	MOVQ stride+80(FP), BX
	A8STORE
	ADDQ $32, AX
	CMPQ AX, $64
	JNE  k5x8pass
	VZEROUPPER
	RET

// func k6x8AVX2(w, h, sc *byte, nb int, q *int8, d *float32, clo, chi *int32, sum *float32, out *float32, stride int)
//
// Y14 is scratch here, so the halves' S live in the frame.
TEXT ·k6x8AVX2(SB), NOSPLIT, $64-88
	VMOVDQU kmask0f<>(SB), Y15
	XORQ    AX, AX

k6x8pass:
	MOVQ w+0(FP), SI
	MOVQ h+8(FP), R12
	MOVQ sc+16(FP), R8
	MOVQ nb+24(FP), CX
	MOVQ q+32(FP), DI
	MOVQ d+40(FP), R10
	MOVQ clo+48(FP), R11
	MOVQ chi+56(FP), R14
	A8START(32)

k6x8block:
	VPMOVSXBD (R13), Y12
	VPMOVSXBD 16(R13), Y13
	VCVTPH2PS (R8), Y14
	VCVTDQ2PS Y12, Y12
	VCVTDQ2PS Y13, Y13
	VMULPS    Y14, Y12, Y12
	VMULPS    Y14, Y13, Y13
	VMOVUPS   Y12, 0(SP)
	VMOVUPS   Y13, 32(SP)
	ALO(0)
	AP6LO(0)
	A8HALF6(0, R11, 0(SP))
	AHI(0)
	AP6HI(0)
	A8HALF6(16, R14, 32(SP))
	ADDQ  $256, SI
	ADDQ  $128, R12
	ADDQ  $32, R13
	ASTEP
	DECQ  CX
	JZ    k6x8end
	TESTQ $7, CX
	JNZ   k6x8block
	ADDQ  $288, R8
	ADDQ  $32, R13
	JMP   k6x8block

k6x8end:
	MOVQ out+72(FP), R9
	ADDQ AX, R9
	MOVQ stride+80(FP), BX
	A8STORE
	ADDQ $32, AX
	CMPQ AX, $64
	JNE  k6x8pass
	VZEROUPPER
	RET

// --- x1: one token, both halves of the rows in one pass: Y0/Y1 are rows
// 0–7's and 8–15's accumulators, Y2/Y3 their S·da, Y4–Y7 the token's 4
// values of a half block's chunks, broadcast. ---

// A1ACTS broadcasts the token's values of half c of the block.
#define A1ACTS(c) \
	VPBROADCASTD (c+0)(DI), Y4; \
	VPBROADCASTD (c+4)(DI), Y5; \
	VPBROADCASTD (c+8)(DI), Y6; \
	VPBROADCASTD (c+12)(DI), Y7

// A1SDA sets Y2, Y3 = float32(float32(d·s)·da), s the 8-bit scales at
// off(R13) (signed with VPMOVSXBD), d the f16 scales at d(R8).
#define A1SDA(mov, off, d) \
	mov          (off)(R13), Y2; \
	mov          (off+8)(R13), Y3; \
	VCVTPH2PS    (d)(R8), Y12; \
	VCVTPH2PS    (d+16)(R8), Y13; \
	VCVTDQ2PS    Y2, Y2; \
	VCVTDQ2PS    Y3, Y3; \
	VMULPS       Y12, Y2, Y2; \
	VMULPS       Y13, Y3, Y3; \
	VBROADCASTSS (R10), Y12; \
	VMULPS       Y12, Y2, Y2; \
	VMULPS       Y12, Y3, Y3

// A1DOT4 leaves Σu·a of Y8–Y11 in Y8 (Q4_K, Q5_K).
#define A1DOT4 \
	VPMADDUBSW Y4, Y8, Y8; \
	VPMADDUBSW Y5, Y9, Y9; \
	VPMADDUBSW Y6, Y10, Y10; \
	VPMADDUBSW Y7, Y11, Y11; \
	VPADDW     Y9, Y8, Y8; \
	VPADDW     Y11, Y10, Y10; \
	VPADDW     Y10, Y8, Y8; \
	VPMADDWD   kones<>(SB), Y8, Y8

// A1DOT6 leaves Σu·a of Y8–Y11 plus the correction in Y14 in Y8 (Q6_K).
#define A1DOT6 \
	VPMADDUBSW Y4, Y8, Y8; \
	VPMADDUBSW Y5, Y9, Y9; \
	VPMADDUBSW Y6, Y10, Y10; \
	VPMADDUBSW Y7, Y11, Y11; \
	VPADDW     Y9, Y8, Y8; \
	VPADDW     Y11, Y10, Y10; \
	VPMADDWD   kones<>(SB), Y8, Y8; \
	VPMADDWD   kones<>(SB), Y10, Y10; \
	VPADDD     Y10, Y8, Y8; \
	VPADDD     Y14, Y8, Y8

// A1ADD does acc += float32(Y8)·sda.
#define A1ADD(sda, acc) \
	VCVTDQ2PS Y8, Y8; \
	VMULPS    sda, Y8, Y8; \
	VADDPS    Y8, acc, acc

// A1MIN45 takes the min terms: acc −= float32(float32(dmin·m)·da)·sum.
#define A1MIN45 \
	VPMOVZXBD    16(R13), Y2; \
	VPMOVZXBD    24(R13), Y3; \
	VCVTPH2PS    32(R8), Y12; \
	VCVTPH2PS    48(R8), Y13; \
	VCVTDQ2PS    Y2, Y2; \
	VCVTDQ2PS    Y3, Y3; \
	VMULPS       Y12, Y2, Y2; \
	VMULPS       Y13, Y3, Y3; \
	VBROADCASTSS (R10), Y12; \
	VMULPS       Y12, Y2, Y2; \
	VMULPS       Y12, Y3, Y3; \
	VBROADCASTSS (DX), Y12; \
	VMULPS       Y12, Y2, Y2; \
	VMULPS       Y12, Y3, Y3; \
	VSUBPS       Y2, Y0, Y0; \
	VSUBPS       Y3, Y1, Y1

// func k4x1AVX2(w, h, sc *byte, nb int, q *int8, d *float32, clo, chi *int32, sum *float32, out *float32)
TEXT ·k4x1AVX2(SB), NOSPLIT, $0-80
	MOVQ    w+0(FP), SI
	MOVQ    sc+16(FP), R8
	MOVQ    nb+24(FP), CX
	MOVQ    q+32(FP), DI
	MOVQ    d+40(FP), R10
	MOVQ    sum+64(FP), DX
	MOVQ    out+72(FP), R9
	VMOVDQU kmask0f<>(SB), Y15
	LEAQ    64(R8), R13
	VXORPS  Y0, Y0, Y0
	VXORPS  Y1, Y1, Y1

k4x1block:
	A1SDA(VPMOVZXBD, 0, 0)
	A1ACTS(0)
	ALO(0)
	A1DOT4
	A1ADD(Y2, Y0)
	ALO(32)
	A1DOT4
	A1ADD(Y3, Y1)
	A1ACTS(16)
	AHI(0)
	A1DOT4
	A1ADD(Y2, Y0)
	AHI(32)
	A1DOT4
	A1ADD(Y3, Y1)
	A1MIN45
	ADDQ  $256, SI
	ADDQ  $32, R13
	ASTEP
	DECQ  CX
	JZ    k4x1done
	TESTQ $7, CX
	JNZ   k4x1block
	ADDQ  $320, R8
	ADDQ  $64, R13
	JMP   k4x1block

k4x1done:
	VMOVUPS Y0, (R9)
	VMOVUPS Y1, 32(R9)
	VZEROUPPER
	RET

// func k5x1AVX2(w, h, sc *byte, nb int, q *int8, d *float32, clo, chi *int32, sum *float32, out *float32)
TEXT ·k5x1AVX2(SB), NOSPLIT, $0-80
	MOVQ    w+0(FP), SI
	MOVQ    h+8(FP), R12
	MOVQ    sc+16(FP), R8
	MOVQ    nb+24(FP), CX
	MOVQ    q+32(FP), DI
	MOVQ    d+40(FP), R10
	MOVQ    sum+64(FP), DX
	MOVQ    out+72(FP), R9
	VMOVDQU kmask0f<>(SB), Y15
	LEAQ    64(R8), R13
	VXORPS  Y0, Y0, Y0
	VXORPS  Y1, Y1, Y1

k5x1block:
	A1SDA(VPMOVZXBD, 0, 0)
	A1ACTS(0)
	ALO(0)
	AP5LO(0)
	A1DOT4
	A1ADD(Y2, Y0)
	ALO(32)
	AP5LO(32)
	A1DOT4
	A1ADD(Y3, Y1)
	A1ACTS(16)
	AHI(0)
	AP5HI(0)
	A1DOT4
	A1ADD(Y2, Y0)
	AHI(32)
	AP5HI(32)
	A1DOT4
	A1ADD(Y3, Y1)
	A1MIN45
	ADDQ  $256, SI
	ADDQ  $64, R12
	ADDQ  $32, R13
	ASTEP
	DECQ  CX
	JZ    k5x1done
	TESTQ $7, CX
	JNZ   k5x1block
	ADDQ  $320, R8
	ADDQ  $64, R13
	JMP   k5x1block

k5x1done:
	VMOVUPS Y0, (R9)
	VMOVUPS Y1, 32(R9)
	VZEROUPPER
	RET

// func k6x1AVX2(w, h, sc *byte, nb int, q *int8, d *float32, clo, chi *int32, sum *float32, out *float32)
TEXT ·k6x1AVX2(SB), NOSPLIT, $0-80
	MOVQ    w+0(FP), SI
	MOVQ    h+8(FP), R12
	MOVQ    sc+16(FP), R8
	MOVQ    nb+24(FP), CX
	MOVQ    q+32(FP), DI
	MOVQ    d+40(FP), R10
	MOVQ    clo+48(FP), R11
	MOVQ    chi+56(FP), R14
	MOVQ    out+72(FP), R9
	VMOVDQU kmask0f<>(SB), Y15
	LEAQ    32(R8), R13
	VXORPS  Y0, Y0, Y0
	VXORPS  Y1, Y1, Y1

k6x1block:
	A1SDA(VPMOVSXBD, 0, 0)
	A1ACTS(0)
	VPBROADCASTD (R11), Y14
	ALO(0)
	AP6LO(0)
	A1DOT6
	A1ADD(Y2, Y0)
	ALO(32)
	AP6LO(32)
	A1DOT6
	A1ADD(Y3, Y1)
	A1SDA(VPMOVSXBD, 16, 0)
	A1ACTS(16)
	VPBROADCASTD (R14), Y14
	AHI(0)
	AP6HI(0)
	A1DOT6
	A1ADD(Y2, Y0)
	AHI(32)
	AP6HI(32)
	A1DOT6
	A1ADD(Y3, Y1)
	ADDQ  $256, SI
	ADDQ  $128, R12
	ADDQ  $32, R13
	ASTEP
	DECQ  CX
	JZ    k6x1done
	TESTQ $7, CX
	JNZ   k6x1block
	ADDQ  $288, R8
	ADDQ  $32, R13
	JMP   k6x1block

k6x1done:
	VMOVUPS Y0, (R9)
	VMOVUPS Y1, 32(R9)
	VZEROUPPER
	RET
