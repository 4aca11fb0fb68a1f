#include "textflag.h"
#include "neon_arm64.h"

// Integer Q4_0 and Q5_0 kernels for arm64 (NEON); see matmul_q4.go for the
// compact layout and the order of operations they share with
// q4TilePortable, and matmul_q8_arm64.s for the q8Packed kernels these
// follow register for register. A 128-bit register holds 4 rows of a
// 64-byte vector, so nibble vector p of a block is 4 registers (rows 0–3,
// 4–7, 8–11, 12–15); masking its low nibbles (AND 0x0f) gives the levels
// of chunk p, shifting it right by 4 (USHR on bytes, which needs no mask)
// those of chunk p+4, in the chunk layout of matmul_q8.go.
//
// Q5_0's fifth bit of chunk k is bit k of each byte of the high plane H.
// SHL #(7−k) then USHR #3 moves it to bit 4 with bits 5–7 clear (bits 0–3
// are left with lower bits of H); BIT under mask 0x0f then puts the low
// nibbles in bits 0–3 (chunk k = p < 4), or SRI #4 the high nibbles
// shifted down (chunk k = p+4): three instructions a register, none of them
// needing a scratch register (for chunk 7 the SHL is #0 and left out).
//
// The levels u (Q4_0 0..15, Q5_0 0..31) fit in signed bytes, so SDOT (or,
// without the dot-product extension, SMULL/SADALP) multiplies them by the
// signed activations as they are, and each block sum starts at −off·Σa,
// the activations' c = −128·Σa shifted right by 4 (Q4_0) or 3 (Q5_0),
// exactly (c is a multiple of 128): isum = Σ (u − off)·a, the portable
// kernel's int32 (|Σ u·a| ≤ 32·31·128 < 2^17; a product ≤ 31·128 fits
// SMULL's int16). The float part is X4FLOAT and X1FLOAT of neon_arm64.h,
// op for op the portable one: FMUL then FADD, never FMLA.

// In q4x4SDOT and q5x4SDOT a pass computes 8 rows (half a group: R0 its
// levels, R9 its high plane, R1 its scales) for 4 tokens of a tile (R3
// their values, R4 their scales, R8 their corrections c), the registers of
// q8x4SDOT: token j's block sums V(2j) (rows 0–3 of the half) and V(2j+1)
// (rows 4–7), its accumulators V(8+2j) and V(9+2j), its values V(16+2j)
// (chunks 0–3) and V(17+2j) (chunks 4–7). A vector's half is loaded into
// V24/V25, a chunk's levels built in V26/V27 (Q4_0's high chunks: in
// V24/V25, in place); V28 holds bytes 0x0f; V29/V30 the high plane's half
// (Q5_0), then the half's scales; V31 the 4 tokens' c, then their scales.

// X4DOT adds chunk k (levels of rows 0–3 and 4–7 in registers a and b) to
// the 4 tokens' block sums: 8 SDOTs, each 4 rows by the chunk's 4 values.
#define X4DOT(k, a, b) \
	SDOTE(0, a, 16+(k)/4, (k)%4); \
	SDOTE(1, b, 16+(k)/4, (k)%4); \
	SDOTE(2, a, 18+(k)/4, (k)%4); \
	SDOTE(3, b, 18+(k)/4, (k)%4); \
	SDOTE(4, a, 20+(k)/4, (k)%4); \
	SDOTE(5, b, 20+(k)/4, (k)%4); \
	SDOTE(6, a, 22+(k)/4, (k)%4); \
	SDOTE(7, b, 22+(k)/4, (k)%4)

// Q5LO sets L to the levels of chunk k < 4 of one register: fifth bits
// from the high plane H (sh = 7 − k), low nibbles from the nibbles N (M:
// bytes 0x0f).
#define Q5LO(sh, H, N, L, M) \
	VSHL  $sh, H.B16, L.B16; \
	VUSHR $3, L.B16, L.B16; \
	VBIT  M.B16, N.B16, L.B16

// Q5HI sets L to the levels of chunk k ≥ 4 (sh = 7 − k), high nibbles
// from N; Q5HI7 is Q5HI for chunk 7 (no SHL).
#define Q5HI(sh, H, N, L) \
	VSHL  $sh, H.B16, L.B16; \
	VUSHR $3, L.B16, L.B16; \
	VSRI  $4, N.B16, L.B16

#define Q5HI7(H, N, L) \
	VUSHR $3, H.B16, L.B16; \
	VSRI  $4, N.B16, L.B16

// Q4X4VEC adds the chunks p and p+4 of nibble vector p (its half at R0).
#define Q4X4VEC(p) \
	VLD1.P (R0)(R7), [V24.B16, V25.B16]; \
	VAND   V28.B16, V24.B16, V26.B16; \
	VAND   V28.B16, V25.B16, V27.B16; \
	X4DOT(p, 26, 27); \
	VUSHR  $4, V24.B16, V24.B16; \
	VUSHR  $4, V25.B16, V25.B16; \
	X4DOT((p)+4, 24, 25)

// Q5X4VEC is Q4X4VEC with the fifth bits (lo = 7 − p, hi = 3 − p; p < 3).
#define Q5X4VEC(p, lo, hi) \
	VLD1.P (R0)(R7), [V24.B16, V25.B16]; \
	Q5LO(lo, V29, V24, V26, V28); \
	Q5LO(lo, V30, V25, V27, V28); \
	X4DOT(p, 26, 27); \
	Q5HI(hi, V29, V24, V26); \
	Q5HI(hi, V30, V25, V27); \
	X4DOT((p)+4, 26, 27)

// Q5X4VEC3 is Q5X4VEC for p = 3.
#define Q5X4VEC3 \
	VLD1.P (R0)(R7), [V24.B16, V25.B16]; \
	Q5LO(4, V29, V24, V26, V28); \
	Q5LO(4, V30, V25, V27, V28); \
	X4DOT(3, 26, 27); \
	Q5HI7(V29, V24, V26); \
	Q5HI7(V30, V25, V27); \
	X4DOT(7, 26, 27)

#define X4ARGS \
	MOVD  w+0(FP), R0; \
	MOVD  ws+8(FP), R1; \
	MOVD  nb+16(FP), R2; \
	MOVD  q+24(FP), R3; \
	MOVD  d+32(FP), R4; \
	MOVD  c+40(FP), R8; \
	MOVD  out+48(FP), R5; \
	MOVD  stride+56(FP), R6; \
	MOVD  $64, R7; \
	ADD   $256, R0, R9; \
	VMOVI $15, V28.B16; \
	VEOR  V8.B16, V8.B16, V8.B16; \
	VEOR  V9.B16, V9.B16, V9.B16; \
	VEOR  V10.B16, V10.B16, V10.B16; \
	VEOR  V11.B16, V11.B16, V11.B16; \
	VEOR  V12.B16, V12.B16, V12.B16; \
	VEOR  V13.B16, V13.B16, V13.B16; \
	VEOR  V14.B16, V14.B16, V14.B16; \
	VEOR  V15.B16, V15.B16, V15.B16

// X4START starts the 4 tokens' block sums at c >> s and loads their
// values.
#define X4START(s) \
	VLD1   (R8), [V31.S4]; \
	ADD    $32, R8; \
	SSHR4S(31, 31, s); \
	VDUP   V31.S[0], V0.S4; \
	VDUP   V31.S[0], V1.S4; \
	VDUP   V31.S[1], V2.S4; \
	VDUP   V31.S[1], V3.S4; \
	VDUP   V31.S[2], V4.S4; \
	VDUP   V31.S[2], V5.S4; \
	VDUP   V31.S[3], V6.S4; \
	VDUP   V31.S[3], V7.S4; \
	VLD1.P 64(R3), [V16.B16, V17.B16, V18.B16, V19.B16]; \
	VLD1.P 64(R3), [V20.B16, V21.B16, V22.B16, V23.B16]; \
	ADD    $128, R3

// X4END folds the block's sums into the accumulators.
#define X4END \
	VLD1 (R1), [V29.S4, V30.S4]; \
	ADD  $64, R1; \
	VLD1 (R4), [V31.S4]; \
	ADD  $32, R4; \
	X4FLOAT(0, 24, 25); \
	X4FLOAT(1, 26, 27); \
	X4FLOAT(2, 24, 25); \
	X4FLOAT(3, 26, 27)

#define X4STORE \
	VST1 [V8.S4, V9.S4], (R5); \
	ADD  R6, R5; \
	VST1 [V10.S4, V11.S4], (R5); \
	ADD  R6, R5; \
	VST1 [V12.S4, V13.S4], (R5); \
	ADD  R6, R5; \
	VST1 [V14.S4, V15.S4], (R5)

// func q4x4SDOT(w *byte, ws *float32, nb int, q *int8, d *float32, c *int32, out *float32, stride int)
//
// Q4_0: half of a group's rows (w and ws point at the half: +32 bytes and
// +8 scales for rows 8–15) times 4 consecutive tokens of a tile (q, d and
// c point at the first one's values, scale and correction in block 0);
// token j's 8 results go to out + j*stride (bytes).
TEXT ·q4x4SDOT(SB), NOSPLIT, $0-64
	X4ARGS

q4x4block:
	X4START(4)
	Q4X4VEC(0)
	Q4X4VEC(1)
	Q4X4VEC(2)
	Q4X4VEC(3)
	X4END
	SUBS $1, R2
	BNE  q4x4block
	X4STORE
	RET

// func q5x4SDOT(w *byte, ws *float32, nb int, q *int8, d *float32, c *int32, out *float32, stride int)
//
// q4x4SDOT for Q5_0 (the half's high plane 256 bytes on, at R9).
TEXT ·q5x4SDOT(SB), NOSPLIT, $0-64
	X4ARGS

q5x4block:
	VLD1 (R9), [V29.B16, V30.B16]
	ADD  $320, R9
	X4START(3)
	Q5X4VEC(0, 7, 3)
	Q5X4VEC(1, 6, 2)
	Q5X4VEC(2, 5, 1)
	Q5X4VEC3
	ADD  $64, R0
	X4END
	SUBS $1, R2
	BNE  q5x4block
	X4STORE
	RET

// In the one-token kernels the token meets all 16 rows (R0 the group's
// levels, R7 its high plane, R1 its scales; R3 the token's values, R4 its
// scale, R6 its correction c), in q8x1SDOT's registers: the block sums of
// row quad r are V(r) (from c >> s; the low-nibble chunks) and V(4+r)
// (from 0; the high-nibble chunks) in q4x1SDOT and q5x1SDOT, the low and
// high row pairs in q4x1NEON and q5x1NEON; the accumulators are V8–V11.
// V12–V15 hold the high plane, V16/V17 the token's 32 values, V18 bytes
// 0x0f, V20–V23 a nibble vector; the SDOT kernels build a low chunk's
// levels in V24–V27 and a high one's in V28–V31, the NEON kernels both in
// V24–V27 (V19: the chunk's 4 values broadcast; V28–V31 SMULL's products).

// X1DOT adds chunk k (levels in registers l..l+3) to the sums V(s)..V(s+3).
#define X1DOT(k, s, l) \
	SDOTE(s, l, 16+(k)/4, (k)%4); \
	SDOTE((s)+1, (l)+1, 16+(k)/4, (k)%4); \
	SDOTE((s)+2, (l)+2, 16+(k)/4, (k)%4); \
	SDOTE((s)+3, (l)+3, 16+(k)/4, (k)%4)

// Q4X1VEC adds the chunks p and p+4 of nibble vector p (at R0).
#define Q4X1VEC(p) \
	VLD1.P 64(R0), [V20.B16, V21.B16, V22.B16, V23.B16]; \
	VAND   V18.B16, V20.B16, V24.B16; \
	VAND   V18.B16, V21.B16, V25.B16; \
	VAND   V18.B16, V22.B16, V26.B16; \
	VAND   V18.B16, V23.B16, V27.B16; \
	X1DOT(p, 0, 24); \
	VUSHR  $4, V20.B16, V28.B16; \
	VUSHR  $4, V21.B16, V29.B16; \
	VUSHR  $4, V22.B16, V30.B16; \
	VUSHR  $4, V23.B16, V31.B16; \
	X1DOT((p)+4, 4, 28)

// Q5LO4 and Q5HI4 build one chunk's levels of all 16 rows in L0..L3
// (nibbles V20–V23, high plane V12–V15), Q5HI74 chunk 7's.
#define Q5LO4(sh, L0, L1, L2, L3) \
	Q5LO(sh, V12, V20, L0, V18); \
	Q5LO(sh, V13, V21, L1, V18); \
	Q5LO(sh, V14, V22, L2, V18); \
	Q5LO(sh, V15, V23, L3, V18)

#define Q5HI4(sh, L0, L1, L2, L3) \
	Q5HI(sh, V12, V20, L0); \
	Q5HI(sh, V13, V21, L1); \
	Q5HI(sh, V14, V22, L2); \
	Q5HI(sh, V15, V23, L3)

#define Q5HI74(L0, L1, L2, L3) \
	Q5HI7(V12, V20, L0); \
	Q5HI7(V13, V21, L1); \
	Q5HI7(V14, V22, L2); \
	Q5HI7(V15, V23, L3)

// Q5X1VEC is Q4X1VEC with the fifth bits (lo = 7 − p, hi = 3 − p; p < 3),
// Q5X1VEC3 for p = 3.
#define Q5X1VEC(p, lo, hi) \
	VLD1.P 64(R0), [V20.B16, V21.B16, V22.B16, V23.B16]; \
	Q5LO4(lo, V24, V25, V26, V27); \
	X1DOT(p, 0, 24); \
	Q5HI4(hi, V28, V29, V30, V31); \
	X1DOT((p)+4, 4, 28)

#define Q5X1VEC3 \
	VLD1.P 64(R0), [V20.B16, V21.B16, V22.B16, V23.B16]; \
	Q5LO4(4, V24, V25, V26, V27); \
	X1DOT(3, 0, 24); \
	Q5HI74(V28, V29, V30, V31); \
	X1DOT(7, 4, 28)

#define X1ARGS \
	MOVD  w+0(FP), R0; \
	MOVD  ws+8(FP), R1; \
	MOVD  nb+16(FP), R2; \
	MOVD  q+24(FP), R3; \
	MOVD  d+32(FP), R4; \
	MOVD  c+40(FP), R6; \
	MOVD  out+48(FP), R5; \
	ADD   $256, R0, R7; \
	VMOVI $15, V18.B16; \
	VEOR  V8.B16, V8.B16, V8.B16; \
	VEOR  V9.B16, V9.B16, V9.B16; \
	VEOR  V10.B16, V10.B16, V10.B16; \
	VEOR  V11.B16, V11.B16, V11.B16

// X1C leaves the token's c >> s in R10 and steps to its next block's.
#define X1C(s) \
	MOVW (R6), R10; \
	ADD  $32, R6; \
	ASR  $s, R10

// X1START starts the block's sums (V0–V3 at c >> s, V4–V7 at 0) and loads
// the token's values.
#define X1START(s) \
	X1C(s); \
	VDUP R10, V0.S4; \
	VDUP R10, V1.S4; \
	VDUP R10, V2.S4; \
	VDUP R10, V3.S4; \
	VEOR V4.B16, V4.B16, V4.B16; \
	VEOR V5.B16, V5.B16, V5.B16; \
	VEOR V6.B16, V6.B16, V6.B16; \
	VEOR V7.B16, V7.B16, V7.B16; \
	VLD1 (R3), [V16.B16, V17.B16]; \
	ADD  $256, R3

// X1END adds the high chunks' sums to the low ones' and folds them into
// the accumulators.
#define X1END \
	VADD V4.S4, V0.S4, V0.S4; \
	VADD V5.S4, V1.S4, V1.S4; \
	VADD V6.S4, V2.S4, V2.S4; \
	VADD V7.S4, V3.S4, V3.S4; \
	X1FLOAT

// func q4x1SDOT(w *byte, ws *float32, nb int, q *int8, d *float32, c *int32, out *float32)
//
// Q4_0: a group's 16 rows times one token of a tile (q, d and c point at
// the token's values, scale and correction in block 0; the tile's blocks
// are 256, 32 and 32 bytes apart); the 16 results go to out.
TEXT ·q4x1SDOT(SB), NOSPLIT, $0-56
	X1ARGS

q4x1block:
	X1START(4)
	Q4X1VEC(0)
	Q4X1VEC(1)
	Q4X1VEC(2)
	Q4X1VEC(3)
	X1END
	SUBS $1, R2
	BNE  q4x1block

	VST1 [V8.S4, V9.S4, V10.S4, V11.S4], (R5)
	RET

// func q5x1SDOT(w *byte, ws *float32, nb int, q *int8, d *float32, c *int32, out *float32)
//
// q4x1SDOT for Q5_0.
TEXT ·q5x1SDOT(SB), NOSPLIT, $0-56
	X1ARGS

q5x1block:
	VLD1 (R7), [V12.B16, V13.B16, V14.B16, V15.B16]
	ADD  $320, R7
	X1START(3)
	Q5X1VEC(0, 7, 3)
	Q5X1VEC(1, 6, 2)
	Q5X1VEC(2, 5, 1)
	Q5X1VEC3
	ADD  $64, R0
	X1END
	SUBS $1, R2
	BNE  q5x1block

	VST1 [V8.S4, V9.S4, V10.S4, V11.S4], (R5)
	RET

// N1QUAD multiplies row quad r's levels (register l) by the chunk's 4
// values broadcast in V19, as q8x1NEON's N1QUAD: SMULL takes rows 4r and
// 4r+1, SMULL2 rows 4r+2 and 4r+3, 8 exact int16 products each; SADALP adds
// them in pairs into V(r) and V(4+r), two int32 lanes a row.
#define N1QUAD(r, l, t, u) \
	SMULL8H(t, l, 19); \
	SMULL28H(u, l, 19); \
	SADALP4S(r, t); \
	SADALP4S(4+(r), u)

// N1CHUNK adds a chunk (levels in V24–V27, values in V19) to the sums.
#define N1CHUNK \
	N1QUAD(0, 24, 28, 29); \
	N1QUAD(1, 25, 30, 31); \
	N1QUAD(2, 26, 28, 29); \
	N1QUAD(3, 27, 30, 31)

// Q4N1VEC adds the chunks p and p+4 of nibble vector p (at R0).
#define Q4N1VEC(p) \
	VLD1.P 64(R0), [V20.B16, V21.B16, V22.B16, V23.B16]; \
	VDUP   V16.S[p], V19.S4; \
	VAND   V18.B16, V20.B16, V24.B16; \
	VAND   V18.B16, V21.B16, V25.B16; \
	VAND   V18.B16, V22.B16, V26.B16; \
	VAND   V18.B16, V23.B16, V27.B16; \
	N1CHUNK; \
	VDUP   V17.S[p], V19.S4; \
	VUSHR  $4, V20.B16, V24.B16; \
	VUSHR  $4, V21.B16, V25.B16; \
	VUSHR  $4, V22.B16, V26.B16; \
	VUSHR  $4, V23.B16, V27.B16; \
	N1CHUNK

// Q5N1VEC is Q4N1VEC with the fifth bits (lo = 7 − p, hi = 3 − p; p < 3),
// Q5N1VEC3 for p = 3.
#define Q5N1VEC(p, lo, hi) \
	VLD1.P 64(R0), [V20.B16, V21.B16, V22.B16, V23.B16]; \
	VDUP   V16.S[p], V19.S4; \
	Q5LO4(lo, V24, V25, V26, V27); \
	N1CHUNK; \
	VDUP   V17.S[p], V19.S4; \
	Q5HI4(hi, V24, V25, V26, V27); \
	N1CHUNK

#define Q5N1VEC3 \
	VLD1.P 64(R0), [V20.B16, V21.B16, V22.B16, V23.B16]; \
	VDUP   V16.S[3], V19.S4; \
	Q5LO4(4, V24, V25, V26, V27); \
	N1CHUNK; \
	VDUP   V17.S[3], V19.S4; \
	Q5HI74(V24, V25, V26, V27); \
	N1CHUNK

// N1START clears the block's sums and loads the token's values.
#define N1START \
	ZERO8; \
	VLD1 (R3), [V16.B16, V17.B16]; \
	ADD  $256, R3

// N1END pairs the sums up into one int32 a row (VADDP: V(r) = [V(r).0 +
// V(r).1, V(r).2 + V(r).3, V(4+r).0 + V(4+r).1, …], rows 4r..4r+3 in
// order), adds c >> s and folds them into the accumulators.
#define N1END(s) \
	VADDP V4.S4, V0.S4, V0.S4; \
	VADDP V5.S4, V1.S4, V1.S4; \
	VADDP V6.S4, V2.S4, V2.S4; \
	VADDP V7.S4, V3.S4, V3.S4; \
	X1C(s); \
	VDUP  R10, V19.S4; \
	VADD  V19.S4, V0.S4, V0.S4; \
	VADD  V19.S4, V1.S4, V1.S4; \
	VADD  V19.S4, V2.S4, V2.S4; \
	VADD  V19.S4, V3.S4, V3.S4; \
	X1FLOAT

// func q4x1NEON(w *byte, ws *float32, nb int, q *int8, d *float32, c *int32, out *float32)
//
// q4x1SDOT without the dot-product extension (plain ARMv8 Advanced SIMD).
TEXT ·q4x1NEON(SB), NOSPLIT, $0-56
	X1ARGS

q4n1block:
	N1START
	Q4N1VEC(0)
	Q4N1VEC(1)
	Q4N1VEC(2)
	Q4N1VEC(3)
	N1END(4)
	SUBS $1, R2
	BNE  q4n1block

	VST1 [V8.S4, V9.S4, V10.S4, V11.S4], (R5)
	RET

// func q5x1NEON(w *byte, ws *float32, nb int, q *int8, d *float32, c *int32, out *float32)
//
// q5x1SDOT without the dot-product extension.
TEXT ·q5x1NEON(SB), NOSPLIT, $0-56
	X1ARGS

q5n1block:
	VLD1 (R7), [V12.B16, V13.B16, V14.B16, V15.B16]
	ADD  $320, R7
	N1START
	Q5N1VEC(0, 7, 3)
	Q5N1VEC(1, 6, 2)
	Q5N1VEC(2, 5, 1)
	Q5N1VEC3
	ADD  $64, R0
	N1END(3)
	SUBS $1, R2
	BNE  q5n1block

	VST1 [V8.S4, V9.S4, V10.S4, V11.S4], (R5)
	RET
