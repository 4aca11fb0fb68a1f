#include "textflag.h"

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
// accumulator — never FMLA, whose single rounding would differ.
//
// Go's assembler knows none of SDOT, SMULL, SADALP nor the vector forms of
// SCVTF, FMUL and FADD, so the macros below emit them as WORDs. Each is the
// fixed bits of its encoding in the Arm Architecture Reference Manual
// (DDI 0487, section C7.2, "Advanced SIMD" instruction pages) for the one
// arrangement used here, with the register numbers (and element index)
// or'ed into their fields: Rd bits 4–0, Rn bits 9–5, Rm bits 20–16. The
// macros take plain register numbers in the manual's operand order,
// destination first. Each encoding was checked by disassembling the built
// kernels with GNU binutils (Debian binutils-aarch64-linux-gnu), which must
// print, register for register, the instruction each macro's comment names:
//
//	GOARCH=arm64 go test -c -o /tmp/e.test ./engine/
//	aarch64-linux-gnu-objdump -d /tmp/e.test \
//		--disassemble=github.com/agoranet/agora/engine.q8x4SDOT.abi0
//
// and by the tests, under qemu-aarch64 -cpu max (with dotprod) and -cpu
// cortex-a53 (without: there SDOT raises SIGILL and q8x1NEON runs).

// SDOTE: SDOT Vd.4S, Vn.16B, Vm.4B[i] (by element; FEAT_DotProd).
//	0 Q=1 U=0 01111 size=10 L M Rm 1110 H 0 Rn Rd = 0x4f80e000 | fields;
//	index i = H:L (H bit 11, L bit 21); Vm = M:Rm, bits 20–16, any of V0–V31.
// Lane r of Vd gains Σ_e Vn.b[4r+e]·Vm.b[4i+e] (signed bytes), e = 0..3.
#define SDOTE(d, n, m, i) WORD $(0x4f80e000 | (((i)&1)<<21) | ((m)<<16) | (((i)>>1)<<11) | ((n)<<5) | (d))

// SMULL8H: SMULL Vd.8H, Vn.8B, Vm.8B (signed widening multiply, low halves).
//	0 Q=0 U=0 01110 size=00 1 Rm 1100 0 0 Rn Rd = 0x0e20c000 | fields.
#define SMULL8H(d, n, m) WORD $(0x0e20c000 | ((m)<<16) | ((n)<<5) | (d))

// SMULL28H: SMULL2 Vd.8H, Vn.16B, Vm.16B (the same of the high halves): Q=1.
#define SMULL28H(d, n, m) WORD $(0x4e20c000 | ((m)<<16) | ((n)<<5) | (d))

// SADALP4S: SADALP Vd.4S, Vn.8H (adds pairs of int16 lanes of Vn, widened,
// to the int32 lanes of Vd).
//	0 Q=1 U=0 01110 size=01 10000 00110 10 Rn Rd = 0x4e606800 | fields.
#define SADALP4S(d, n) WORD $(0x4e606800 | ((n)<<5) | (d))

// SCVTF4S: SCVTF Vd.4S, Vn.4S (int32 lanes to float32, FPCR rounding:
// nearest even, as Go's conversion).
//	0 Q=1 U=0 01110 0 sz=0 10000 11101 10 Rn Rd = 0x4e21d800 | fields.
#define SCVTF4S(d, n) WORD $(0x4e21d800 | ((n)<<5) | (d))

// FMUL4S: FMUL Vd.4S, Vn.4S, Vm.4S.
//	0 Q=1 U=1 01110 0 sz=0 1 Rm 11011 1 Rn Rd = 0x6e20dc00 | fields.
#define FMUL4S(d, n, m) WORD $(0x6e20dc00 | ((m)<<16) | ((n)<<5) | (d))

// FMULE4S: FMUL Vd.4S, Vn.4S, Vm.S[i] (by element).
//	0 Q=1 U=0 01111 1 sz=0 L M Rm 1001 H 0 Rn Rd = 0x4f809000 | fields;
//	index i = H:L; Vm = M:Rm, any of V0–V31 (single precision).
#define FMULE4S(d, n, m, i) WORD $(0x4f809000 | (((i)&1)<<21) | ((m)<<16) | (((i)>>1)<<11) | ((n)<<5) | (d))

// FADD4S: FADD Vd.4S, Vn.4S, Vm.4S.
//	0 Q=1 U=0 01110 0 sz=0 1 Rm 11010 1 Rn Rd = 0x4e20d400 | fields.
#define FADD4S(d, n, m) WORD $(0x4e20d400 | ((m)<<16) | ((n)<<5) | (d))

// ZERO8 clears V0–V7, a block's integer sums.
#define ZERO8 \
	VEOR V0.B16, V0.B16, V0.B16; \
	VEOR V1.B16, V1.B16, V1.B16; \
	VEOR V2.B16, V2.B16, V2.B16; \
	VEOR V3.B16, V3.B16, V3.B16; \
	VEOR V4.B16, V4.B16, V4.B16; \
	VEOR V5.B16, V5.B16, V5.B16; \
	VEOR V6.B16, V6.B16, V6.B16; \
	VEOR V7.B16, V7.B16, V7.B16

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

// X4FLOAT folds token j's block sums into its accumulators:
// acc += float32(isum)·(ws·d[j]), t and u scratch.
#define X4FLOAT(j, t, u) \
	SCVTF4S(2*(j), 2*(j)); \
	SCVTF4S(2*(j)+1, 2*(j)+1); \
	FMULE4S(t, 29, 31, j); \
	FMULE4S(u, 30, 31, j); \
	FMUL4S(2*(j), 2*(j), t); \
	FMUL4S(2*(j)+1, 2*(j)+1, u); \
	FADD4S(8+2*(j), 8+2*(j), 2*(j)); \
	FADD4S(9+2*(j), 9+2*(j), 2*(j)+1)

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

// X1FLOAT folds the 16 rows' block sums, int32 in V0–V3, into the
// accumulators: acc += float32(isum)·(ws·d); the scales pass through
// V20–V23.
#define X1FLOAT \
	SCVTF4S(0, 0); \
	SCVTF4S(1, 1); \
	SCVTF4S(2, 2); \
	SCVTF4S(3, 3); \
	VLD1.P 64(R1), [V20.S4, V21.S4, V22.S4, V23.S4]; \
	FMOVS  (R4), F29; \
	ADD    $32, R4; \
	FMULE4S(20, 20, 29, 0); \
	FMULE4S(21, 21, 29, 0); \
	FMULE4S(22, 22, 29, 0); \
	FMULE4S(23, 23, 29, 0); \
	FMUL4S(0, 0, 20); \
	FMUL4S(1, 1, 21); \
	FMUL4S(2, 2, 22); \
	FMUL4S(3, 3, 23); \
	FADD4S(8, 8, 0); \
	FADD4S(9, 9, 1); \
	FADD4S(10, 10, 2); \
	FADD4S(11, 11, 3)

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
