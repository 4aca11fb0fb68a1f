#include "textflag.h"
#include "neon_arm64.h"

// Integer Q8_0 kernels for arm64 (NEON); see matmul_q8.go for the layout
// and the order of operations they share with q8TilePortable. A 128-bit
// register holds 4 rows of a chunk (16 bytes: 4 weights each), so chunk k
// of a group's block is 4 registers, rows 0–3, 4–7, 8–11, 12–15.
//
// The weights are unbiased as they are loaded (u^0x80 = w, a signed byte)
// and multiplied by the signed activations, so the sums are Σ w·a itself
// and the correction c that undoes the bias is never needed: like the AVX2
// kernels, these ignore c. Every product and sum is exact in int32 (|w·a|
// ≤ 2^14, 32 of them a block), so isum is the portable kernel's integer.
// The float part is then the portable one, op for op: SCVTF (round to
// nearest, exact anyway below 2^24), FMUL ws·d, FMUL by it, FADD to the
// accumulator — never FMLA, whose single rounding would differ. SDOT,
// SMULL and the other instructions Go's assembler lacks are WORD macros,
// with their encodings, in neon_arm64.h (shared with matmul_q4_arm64.s).

// In q8x4SDOT a pass computes 8 rows (two row quads: R0 the half's
// weights, R1 its scales) for 4 tokens of a tile (R3 their values, R4 their
// scales). Token j's block sums are V(2j) (rows 0–3 of the half) and
// V(2j+1) (rows 4–7), its accumulators V(8+2j) and V(9+2j); its 32 values
// are V(16+2j) (chunks 0–3) and V(17+2j) (chunks 4–7); a chunk's two
// weight registers alternate between V24/V25 and V26/V27; V28 holds bytes
// 0x80; V29/V30 the half's scales, V31 the 4 tokens' scales.

// X4CHUNK adds chunk k (weights into A and B, numbers a and b) to the 4
// tokens' block sums: 8 SDOTs, each 4 rows by the chunk's 4 values.
#define X4CHUNK(k, A, B, a, b) \
	VLD1.P (R0)(R7), [A.B16, B.B16]; \
	VEOR   V28.B16, A.B16, A.B16; \
	VEOR   V28.B16, B.B16, B.B16; \
	SDOTE(0, a, 16+(k)/4, (k)%4); \
	SDOTE(1, b, 16+(k)/4, (k)%4); \
	SDOTE(2, a, 18+(k)/4, (k)%4); \
	SDOTE(3, b, 18+(k)/4, (k)%4); \
	SDOTE(4, a, 20+(k)/4, (k)%4); \
	SDOTE(5, b, 20+(k)/4, (k)%4); \
	SDOTE(6, a, 22+(k)/4, (k)%4); \
	SDOTE(7, b, 22+(k)/4, (k)%4)

// func q8x4SDOT(w *byte, ws *float32, nb int, q *int8, d *float32, out *float32, stride int)
//
// Half of a group's rows (w and ws point at the half: +32 bytes and +8
// scales for rows 8–15) times 4 consecutive tokens of a tile (q and d
// point at the first one's values and scale in block 0); token j's 8
// results go to out + j*stride (bytes).
TEXT ·q8x4SDOT(SB), NOSPLIT, $0-56
	MOVD w+0(FP), R0
	MOVD ws+8(FP), R1
	MOVD nb+16(FP), R2
	MOVD q+24(FP), R3
	MOVD d+32(FP), R4
	MOVD out+40(FP), R5
	MOVD stride+48(FP), R6
	MOVD $64, R7
	VMOVI $128, V28.B16
	VEOR V8.B16, V8.B16, V8.B16
	VEOR V9.B16, V9.B16, V9.B16
	VEOR V10.B16, V10.B16, V10.B16
	VEOR V11.B16, V11.B16, V11.B16
	VEOR V12.B16, V12.B16, V12.B16
	VEOR V13.B16, V13.B16, V13.B16
	VEOR V14.B16, V14.B16, V14.B16
	VEOR V15.B16, V15.B16, V15.B16

x4block:
	ZERO8
	VLD1.P 64(R3), [V16.B16, V17.B16, V18.B16, V19.B16]
	VLD1.P 64(R3), [V20.B16, V21.B16, V22.B16, V23.B16]
	ADD    $128, R3
	X4CHUNK(0, V24, V25, 24, 25)
	X4CHUNK(1, V26, V27, 26, 27)
	X4CHUNK(2, V24, V25, 24, 25)
	X4CHUNK(3, V26, V27, 26, 27)
	X4CHUNK(4, V24, V25, 24, 25)
	X4CHUNK(5, V26, V27, 26, 27)
	X4CHUNK(6, V24, V25, 24, 25)
	X4CHUNK(7, V26, V27, 26, 27)
	VLD1   (R1), [V29.S4, V30.S4]
	ADD    $64, R1
	VLD1   (R4), [V31.S4]
	ADD    $32, R4
	X4FLOAT(0, 24, 25)
	X4FLOAT(1, 26, 27)
	X4FLOAT(2, 24, 25)
	X4FLOAT(3, 26, 27)
	SUBS   $1, R2
	BNE    x4block

	VST1 [V8.S4, V9.S4], (R5)
	ADD  R6, R5
	VST1 [V10.S4, V11.S4], (R5)
	ADD  R6, R5
	VST1 [V12.S4, V13.S4], (R5)
	ADD  R6, R5
	VST1 [V14.S4, V15.S4], (R5)
	RET

// In q8x1SDOT and q8x1NEON one token meets all 16 rows (R0 the group's
// weights, R1 its scales, R3 the token's values, R4 its scale). The block
// sums of row quad r are V(r) and V(4+r), for even and odd chunks in
// q8x1SDOT (so consecutive chunks do not wait on one another) and for the
// low and high row pairs in q8x1NEON; the accumulators are V8–V11; the
// token's 32 values are V16/V17 (q8x1SDOT) or chunk k's 4 broadcast in V16
// (q8x1NEON); a chunk's weights are V20–V23 (and V24–V27, alternating, in
// q8x1SDOT); V28 holds bytes 0x80 and F29 the token's scale.

// X1CHUNK adds chunk k (weights into A–D, numbers a..a+3) to the sums.
#define X1CHUNK(k, A, B, C, D, a) \
	VLD1.P 64(R0), [A.B16, B.B16, C.B16, D.B16]; \
	VEOR   V28.B16, A.B16, A.B16; \
	VEOR   V28.B16, B.B16, B.B16; \
	VEOR   V28.B16, C.B16, C.B16; \
	VEOR   V28.B16, D.B16, D.B16; \
	SDOTE(4*((k)%2)+0, a+0, 16+(k)/4, (k)%4); \
	SDOTE(4*((k)%2)+1, a+1, 16+(k)/4, (k)%4); \
	SDOTE(4*((k)%2)+2, a+2, 16+(k)/4, (k)%4); \
	SDOTE(4*((k)%2)+3, a+3, 16+(k)/4, (k)%4)

// X1START clears the accumulators and loads the constant 0x80 bytes.
#define X1START \
	MOVD  w+0(FP), R0; \
	MOVD  ws+8(FP), R1; \
	MOVD  nb+16(FP), R2; \
	MOVD  q+24(FP), R3; \
	MOVD  d+32(FP), R4; \
	MOVD  out+40(FP), R5; \
	VMOVI $128, V28.B16; \
	VEOR  V8.B16, V8.B16, V8.B16; \
	VEOR  V9.B16, V9.B16, V9.B16; \
	VEOR  V10.B16, V10.B16, V10.B16; \
	VEOR  V11.B16, V11.B16, V11.B16

// func q8x1SDOT(w *byte, ws *float32, nb int, q *int8, d *float32, out *float32)
//
// A group's 16 rows times one token of a tile (q and d point at the token's
// values and scale in block 0; the tile's blocks are 256 and 32 bytes
// apart); the 16 results go to out.
TEXT ·q8x1SDOT(SB), NOSPLIT, $0-48
	X1START

x1block:
	ZERO8
	VLD1 (R3), [V16.B16, V17.B16]
	ADD  $256, R3
	X1CHUNK(0, V20, V21, V22, V23, 20)
	X1CHUNK(1, V24, V25, V26, V27, 24)
	X1CHUNK(2, V20, V21, V22, V23, 20)
	X1CHUNK(3, V24, V25, V26, V27, 24)
	X1CHUNK(4, V20, V21, V22, V23, 20)
	X1CHUNK(5, V24, V25, V26, V27, 24)
	X1CHUNK(6, V20, V21, V22, V23, 20)
	X1CHUNK(7, V24, V25, V26, V27, 24)
	VADD V4.S4, V0.S4, V0.S4
	VADD V5.S4, V1.S4, V1.S4
	VADD V6.S4, V2.S4, V2.S4
	VADD V7.S4, V3.S4, V3.S4
	X1FLOAT
	SUBS $1, R2
	BNE  x1block

	VST1 [V8.S4, V9.S4, V10.S4, V11.S4], (R5)
	RET

// N1QUAD multiplies row quad r's 4 weights a row (register number w) by
// the chunk's values: SMULL takes rows 4r and 4r+1 (the low 8 bytes),
// SMULL2 rows 4r+2 and 4r+3, each giving 8 exact int16 products (|w·a| ≤
// 2^14); SADALP adds them in pairs into V(r) and V(4+r), two int32 lanes a
// row: lanes 0–1 for the first row of the pair, 2–3 for the second.
#define N1QUAD(r, w, t, u) \
	SMULL8H(t, w, 16); \
	SMULL28H(u, w, 16); \
	SADALP4S(r, t); \
	SADALP4S(4+(r), u)

// N1CHUNK adds the next chunk to the sums, its 4 values broadcast.
#define N1CHUNK \
	VLD1R.P 4(R3), [V16.S4]; \
	VLD1.P  64(R0), [V20.B16, V21.B16, V22.B16, V23.B16]; \
	VEOR    V28.B16, V20.B16, V20.B16; \
	VEOR    V28.B16, V21.B16, V21.B16; \
	VEOR    V28.B16, V22.B16, V22.B16; \
	VEOR    V28.B16, V23.B16, V23.B16; \
	N1QUAD(0, 20, 24, 25); \
	N1QUAD(1, 21, 26, 27); \
	N1QUAD(2, 22, 24, 25); \
	N1QUAD(3, 23, 26, 27)

// func q8x1NEON(w *byte, ws *float32, nb int, q *int8, d *float32, out *float32)
//
// q8x1SDOT without the dot-product extension (plain ARMv8 Advanced SIMD).
TEXT ·q8x1NEON(SB), NOSPLIT, $0-48
	X1START

n1block:
	ZERO8
	N1CHUNK
	N1CHUNK
	N1CHUNK
	N1CHUNK
	N1CHUNK
	N1CHUNK
	N1CHUNK
	N1CHUNK
	ADD $224, R3
	// ADDP: V(r) = [V(r).0+V(r).1, V(r).2+V(r).3, V(4+r).0+V(4+r).1, …],
	// one int32 a row, rows 4r..4r+3 in order.
	VADDP V4.S4, V0.S4, V0.S4
	VADDP V5.S4, V1.S4, V1.S4
	VADDP V6.S4, V2.S4, V2.S4
	VADDP V7.S4, V3.S4, V3.S4
	X1FLOAT
	SUBS $1, R2
	BNE  n1block

	VST1 [V8.S4, V9.S4, V10.S4, V11.S4], (R5)
	RET
