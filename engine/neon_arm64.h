// Advanced SIMD (NEON) pieces shared by the integer kernels for arm64,
// matmul_q8_arm64.s and matmul_q4_arm64.s, which #include this file.
//
// Go's assembler knows none of SDOT, SMULL, SADALP, SSHR nor the vector
// forms of SCVTF, FMUL and FADD, so the macros below emit them as WORDs.
// Each is the fixed bits of its encoding in the Arm Architecture Reference
// Manual (DDI 0487, section C7.2, "Advanced SIMD" instruction pages) for
// the one arrangement used here, with the register numbers (and element
// index or shift) or'ed into their fields: Rd bits 4–0, Rn bits 9–5, Rm
// bits 20–16. The macros take plain register numbers in the manual's
// operand order, destination first. Each encoding was checked by
// disassembling the built kernels with GNU binutils (Debian
// binutils-aarch64-linux-gnu), which must print, register for register,
// the instruction each macro's comment names:
//
//	GOARCH=arm64 go test -c -o /tmp/e.test ./engine/
//	aarch64-linux-gnu-objdump -d /tmp/e.test \
//		--disassemble=github.com/agoranet/agora/engine.q8x4SDOT.abi0
//
// and by the tests, under qemu-aarch64 -cpu max (with dotprod) and -cpu
// cortex-a53 (without: there SDOT raises SIGILL and the plain NEON kernels
// run).

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

// SSHR4S: SSHR Vd.4S, Vn.4S, #s (arithmetic shift right of int32 lanes,
// s = 1..32).
//	0 Q=1 U=0 011110 immh:immb 00000 1 Rn Rd = 0x4f000400 | fields;
//	immh:immb (bits 22–16) = 64 − s, immh = 01xx for 32-bit lanes.
#define SSHR4S(d, n, s) WORD $(0x4f000400 | ((64-(s))<<16) | ((n)<<5) | (d))

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

// The float part of every kernel is q8TilePortable's, op for op: SCVTF
// (round to nearest, exact anyway below 2^24), FMUL ws·d, FMUL by it, FADD
// to the accumulator — never FMLA, whose single rounding would differ.

// X4FLOAT folds token j's block sums into its accumulators in the
// 4-token kernels (8 rows of a group: token j's int32 block sums in V(2j),
// rows 0–3, and V(2j+1), rows 4–7; its accumulators V(8+2j), V(9+2j); the
// 8 rows' scales in V29/V30, the 4 tokens' scales in V31):
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

// X1FLOAT folds the 16 rows' block sums of a one-token kernel, int32 in
// V0–V3, into the accumulators V8–V11: acc += float32(isum)·(ws·d), the
// scales read at R1 (16, then R1 steps to the next block's) and R4 (the
// token's, then R4 steps 32 bytes to its next block's); they pass through
// V20–V23 and F29.
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
