#include "textflag.h"

// Element-wise kernels: each computes its portable twin in elementwise.go
// (or quantizeBlock in matmul_q8.go) lane by lane, every float operation
// the same single-rounded IEEE one in the same order (MULPS and ADDPS,
// never fused), so the bits match on every CPU.
//
// expf (expf.go) in vector form: the same Cody–Waite reduction and
// polynomial. Its last step y·2^k rounds once in every branch of expf (the
// first factor of its two-step scalings is exact), so it is one rounding
// of the exact y·2^k here too: VSCALEFPS on AVX-512; on AVX2 two factors
// 2^k1·2^k2 with k2 = 1 for k > 127, −64 for k < −126, else 0, exactly as
// expf splits them. Lanes that are NaN, above 88.72283 or below −103.97208
// then take expf's early results: x itself, +Inf and 0.

// ewConst rows (64 bytes each), in elementwise_amd64.go's order.
#define C_LOG2E ·ewConst+0(SB)
#define C_ROUND ·ewConst+64(SB)
#define C_LN2HI ·ewConst+128(SB)
#define C_LN2LO ·ewConst+192(SB)
#define C_P0 ·ewConst+256(SB)
#define C_P1 ·ewConst+320(SB)
#define C_P2 ·ewConst+384(SB)
#define C_P3 ·ewConst+448(SB)
#define C_P4 ·ewConst+512(SB)
#define C_P5 ·ewConst+576(SB)
#define C_ONE ·ewConst+640(SB)
#define C_HI ·ewConst+704(SB)
#define C_LO ·ewConst+768(SB)
#define C_INF ·ewConst+832(SB)
#define C_SIGN ·ewConst+896(SB)
#define C_I127 ·ewConst+960(SB)
#define C_IM126 ·ewConst+1024(SB)
#define C_IM64 ·ewConst+1088(SB)
#define C_ABS ·ewConst+1152(SB)
#define C_F127 ·ewConst+1216(SB)
#define C_FM127 ·ewConst+1280(SB)
#define C_B80 ·ewConst+1344(SB)

// EXPF512 sets y = expf(x) in 16 lanes, with fk, r, rr, K4, K5, K6 as
// scratch and the constants in Z16–Z29 (LOADEXPF512).
#define LOADEXPF512 \
	VMOVUPS C_LOG2E, Z16; \
	VMOVUPS C_ROUND, Z17; \
	VMOVUPS C_LN2HI, Z18; \
	VMOVUPS C_LN2LO, Z19; \
	VMOVUPS C_P0, Z20; \
	VMOVUPS C_P1, Z21; \
	VMOVUPS C_P2, Z22; \
	VMOVUPS C_P3, Z23; \
	VMOVUPS C_P4, Z24; \
	VMOVUPS C_P5, Z25; \
	VMOVUPS C_ONE, Z26; \
	VMOVUPS C_HI, Z27; \
	VMOVUPS C_LO, Z28; \
	VMOVUPS C_INF, Z29

// Step by step as in expf: fk = (x·log2e + 1.5·2^23) − 1.5·2^23 (round to
// an integer), r = (x − fk·ln2Hi) − fk·ln2Lo, rr = r·r, p by Horner from
// the highest coefficient, y = (p·rr + r) + 1, then the scaling and the
// special lanes (x > hi: +Inf, x < lo: 0, NaN: x).
#define EXPF512(x, y, fk, r, rr) \
	VMULPS    Z16, x, fk; \
	VADDPS    Z17, fk, fk; \
	VSUBPS    Z17, fk, fk; \
	VMULPS    Z18, fk, r; \
	VSUBPS    r, x, r; \
	VMULPS    Z19, fk, rr; \
	VSUBPS    rr, r, r; \
	VMULPS    r, r, rr; \
	VMULPS    Z20, r, y; \
	VADDPS    Z21, y, y; \
	VMULPS    r, y, y; \
	VADDPS    Z22, y, y; \
	VMULPS    r, y, y; \
	VADDPS    Z23, y, y; \
	VMULPS    r, y, y; \
	VADDPS    Z24, y, y; \
	VMULPS    r, y, y; \
	VADDPS    Z25, y, y; \
	VMULPS    rr, y, y; \
	VADDPS    r, y, y; \
	VADDPS    Z26, y, y; \
	VSCALEFPS fk, y, y; \
	VCMPPS    $0x1e, Z27, x, K4; \
	VCMPPS    $0x11, Z28, x, K5; \
	VCMPPS    $3, x, x, K6; \
	VMOVAPS   Z29, K4, y; \
	VXORPS    y, y, K5, y; \
	VMOVAPS   x, K6, y

// EXPF256 sets y = expf(x) in 8 lanes, with fk, r, rr, k, t as scratch;
// the constants are memory operands. The steps are EXPF512's; then
// k = int32(fk), k2 = (k < −126 ? −64 : 0) − (k > 127 ? −1 : 0) from two
// compares, k1 = k − k2, and y = (y·2^k1)·2^k2 with each power of two built
// in the exponent bits: the first product is exact, the second the one
// rounding (and 2^0 = 1 changes nothing).
#define EXPF256(x, y, fk, r, rr, k, t) \
	VMULPS     C_LOG2E, x, fk; \
	VADDPS     C_ROUND, fk, fk; \
	VSUBPS     C_ROUND, fk, fk; \
	VMULPS     C_LN2HI, fk, r; \
	VSUBPS     r, x, r; \
	VMULPS     C_LN2LO, fk, rr; \
	VSUBPS     rr, r, r; \
	VMULPS     r, r, rr; \
	VMULPS     C_P0, r, y; \
	VADDPS     C_P1, y, y; \
	VMULPS     r, y, y; \
	VADDPS     C_P2, y, y; \
	VMULPS     r, y, y; \
	VADDPS     C_P3, y, y; \
	VMULPS     r, y, y; \
	VADDPS     C_P4, y, y; \
	VMULPS     r, y, y; \
	VADDPS     C_P5, y, y; \
	VMULPS     rr, y, y; \
	VADDPS     r, y, y; \
	VADDPS     C_ONE, y, y; \
	VCVTTPS2DQ fk, k; \
	VPCMPGTD   C_I127, k, t; \
	VMOVDQU    C_IM126, rr; \
	VPCMPGTD   k, rr, rr; \
	VPAND      C_IM64, rr, rr; \
	VPSUBD     t, rr, rr; \
	VPSUBD     rr, k, k; \
	VPADDD     C_I127, k, k; \
	VPSLLD     $23, k, k; \
	VPADDD     C_I127, rr, rr; \
	VPSLLD     $23, rr, rr; \
	VMULPS     k, y, y; \
	VMULPS     rr, y, y; \
	VCMPPS     $0x1e, C_HI, x, t; \
	VBLENDVPS  t, C_INF, y, y; \
	VCMPPS     $0x11, C_LO, x, t; \
	VANDNPS    y, t, y; \
	VCMPPS     $3, x, x, t; \
	VBLENDVPS  t, x, y, y

// TAILMASK sets the register m to a mask of the first n (1..7, in reg,
// which it clobbers) of 8 lanes.
#define TAILMASK(reg, m) \
	NEGQ    reg; \
	LEAQ    ·ewTail+32(SB), R14; \
	VMOVDQU (R14)(reg*4), m

// func siluMulAVX512(dst, gate, up []float32)
// Any length ≥ 1: the last partial chunk goes under mask K1.
TEXT ·siluMulAVX512(SB), NOSPLIT, $0-72
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), BX
	MOVQ gate_base+24(FP), SI
	MOVQ up_base+48(FP), DX
	LOADEXPF512
	VMOVUPS C_SIGN, Z30
	MOVQ BX, CX
	SHRQ $4, CX
	JZ   silu512tail

silu512loop:
	VMOVUPS (SI), Z0
	VXORPS  Z30, Z0, Z1    // −g
	EXPF512(Z1, Z3, Z4, Z5, Z6)
	VADDPS  Z26, Z3, Z3    // t = 1 + e
	VDIVPS  Z3, Z0, Z3     // g / t
	VMULPS  (DX), Z3, Z3   // · up
	VMOVUPS Z3, (DI)
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $64, DI
	DECQ CX
	JNZ  silu512loop

silu512tail:
	MOVQ BX, CX
	ANDQ $15, CX
	JZ   silu512done
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	KMOVW AX, K1
	VMOVUPS.Z (SI), K1, Z0
	VXORPS  Z30, Z0, Z1
	EXPF512(Z1, Z3, Z4, Z5, Z6)
	VADDPS  Z26, Z3, Z3
	VDIVPS  Z3, Z0, Z3
	VMOVUPS.Z (DX), K1, Z7
	VMULPS  Z7, Z3, Z3
	VMOVUPS Z3, K1, (DI)

silu512done:
	VZEROUPPER
	RET

// func siluMulAVX2(dst, gate, up []float32)
// len(dst) a multiple of 8, ≥ 8.
TEXT ·siluMulAVX2(SB), NOSPLIT, $0-72
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ gate_base+24(FP), SI
	MOVQ up_base+48(FP), DX
	SHRQ $3, CX

silu256loop:
	VMOVUPS (SI), Y0
	VXORPS  C_SIGN, Y0, Y1
	EXPF256(Y1, Y3, Y4, Y5, Y6, Y7, Y8)
	VADDPS  C_ONE, Y3, Y3
	VDIVPS  Y3, Y0, Y3
	VMULPS  (DX), Y3, Y3
	VMOVUPS Y3, (DI)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, DI
	DECQ CX
	JNZ  silu256loop
	VZEROUPPER
	RET

// func softmaxAVX512(x []float32)
// The sixteen partial sums are the lanes of Z2; a partial last chunk loads
// and stores under mask K1 and adds only its own lanes.
TEXT ·softmaxAVX512(SB), NOSPLIT, $0-24
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), BX
	LOADEXPF512
	MOVQ BX, CX
	ANDQ $15, CX
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	KMOVW AX, K1           // the partial chunk's lanes
	MOVQ BX, DX
	SHRQ $4, DX            // whole chunks

	// The maximum. VMAXPS may drop NaNs, but a NaN's own expf makes the sum
	// and so every result NaN, as in softmaxPortable.
	VBROADCASTSS (SI), Z0
	MOVQ SI, DI
	MOVQ DX, R8
	TESTQ R8, R8
	JZ   sm512maxtail

sm512maxloop:
	VMOVUPS (DI), Z1
	VMAXPS  Z1, Z0, Z0
	ADDQ $64, DI
	DECQ R8
	JNZ  sm512maxloop

sm512maxtail:
	KORTESTW K1, K1
	JZ   sm512maxdone
	VMOVAPS Z0, Z1
	VMOVUPS (DI), K1, Z1   // other lanes keep the running maximum
	VMAXPS  Z1, Z0, Z0

sm512maxdone:
	VEXTRACTF64X4 $1, Z0, Y1
	VMAXPS    Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VMAXPS    X1, X0, X0
	VPERMILPS $0x4e, X0, X1
	VMAXPS    X1, X0, X0
	VPERMILPS $0xb1, X0, X1
	VMAXPS    X1, X0, X0
	VBROADCASTSS X0, Z0

	// x = expf(x − max), summed into the lanes of Z2.
	VXORPS Z2, Z2, Z2
	MOVQ SI, DI
	MOVQ DX, R8
	TESTQ R8, R8
	JZ   sm512exptail

sm512exploop:
	VMOVUPS (DI), Z1
	VSUBPS  Z0, Z1, Z1
	EXPF512(Z1, Z3, Z4, Z5, Z6)
	VMOVUPS Z3, (DI)
	VADDPS  Z3, Z2, Z2
	ADDQ $64, DI
	DECQ R8
	JNZ  sm512exploop

sm512exptail:
	KORTESTW K1, K1
	JZ   sm512sum
	VMOVUPS.Z (DI), K1, Z1
	VSUBPS  Z0, Z1, Z1
	EXPF512(Z1, Z3, Z4, Z5, Z6)
	VMOVUPS Z3, K1, (DI)
	VADDPS  Z3, Z2, K1, Z2

sm512sum:
	VEXTRACTF64X4 $1, Z2, Y4
	VADDPS    Y4, Y2, Y2   // p[j] + p[j+8]
	VEXTRACTF128 $1, Y2, X4
	VADDPS    X4, X2, X2   // p[j] + p[j+4]
	VPERMILPS $0x4e, X2, X4
	VADDPS    X4, X2, X2   // p[j] + p[j+2]
	VMOVSHDUP X2, X4
	VADDSS    X4, X2, X2   // p[0] + p[1]
	VBROADCASTSS X2, Z2

	// x /= sum.
	MOVQ SI, DI
	MOVQ DX, R8
	TESTQ R8, R8
	JZ   sm512divtail

sm512divloop:
	VMOVUPS (DI), Z1
	VDIVPS  Z2, Z1, Z1
	VMOVUPS Z1, (DI)
	ADDQ $64, DI
	DECQ R8
	JNZ  sm512divloop

sm512divtail:
	KORTESTW K1, K1
	JZ   sm512done
	VMOVUPS.Z (DI), K1, Z1
	VDIVPS  Z2, Z1, Z1
	VMOVUPS Z1, K1, (DI)

sm512done:
	VZEROUPPER
	RET

// SMEXP256 replaces the 8 values at (DI) by expf(x − Y0) and adds them
// to acc.
#define SMEXP256(acc) \
	VMOVUPS (DI), Y1; \
	VSUBPS  Y0, Y1, Y1; \
	EXPF256(Y1, Y3, Y4, Y5, Y6, Y7, Y8); \
	VMOVUPS Y3, (DI); \
	VADDPS  Y3, acc, acc

// SMEXPPART256 is SMEXP256 for the first CX (1..7) values at (DI).
#define SMEXPPART256(acc) \
	TAILMASK(CX, Y9); \
	VMASKMOVPS (DI), Y9, Y1; \
	VSUBPS  Y0, Y1, Y1; \
	EXPF256(Y1, Y3, Y4, Y5, Y6, Y7, Y8); \
	VMASKMOVPS Y3, Y9, (DI); \
	VANDPS  Y9, Y3, Y3; \
	VADDPS  Y3, acc, acc

// func softmaxAVX2(x []float32)
// The sixteen partial sums are the lanes of Y10 (0–7) and Y11 (8–15).
TEXT ·softmaxAVX2(SB), NOSPLIT, $0-24
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), BX

	// The maximum (NaNs as in softmaxAVX512).
	VBROADCASTSS (SI), Y0
	MOVQ SI, DI
	MOVQ BX, CX
	SHRQ $3, CX
	JZ   sm256maxtail

sm256maxloop:
	VMOVUPS (DI), Y1
	VMAXPS  Y1, Y0, Y0
	ADDQ $32, DI
	DECQ CX
	JNZ  sm256maxloop

sm256maxtail:
	MOVQ BX, CX
	ANDQ $7, CX
	JZ   sm256maxdone
	TAILMASK(CX, Y9)
	VMASKMOVPS (DI), Y9, Y1
	VBLENDVPS Y9, Y1, Y0, Y1  // other lanes keep the running maximum
	VMAXPS  Y1, Y0, Y0

sm256maxdone:
	VEXTRACTF128 $1, Y0, X1
	VMAXPS    X1, X0, X0
	VPERMILPS $0x4e, X0, X1
	VMAXPS    X1, X0, X0
	VPERMILPS $0xb1, X0, X1
	VMAXPS    X1, X0, X0
	VBROADCASTSS X0, Y0

	// x = expf(x − max), element i into lane i%16.
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	MOVQ SI, DI
	MOVQ BX, DX
	SHRQ $4, DX
	JZ   sm256exptail

sm256exploop:
	SMEXP256(Y10)
	ADDQ $32, DI
	SMEXP256(Y11)
	ADDQ $32, DI
	DECQ DX
	JNZ  sm256exploop

sm256exptail:
	MOVQ BX, CX
	ANDQ $15, CX
	JZ   sm256sum
	CMPQ CX, $8
	JLT  sm256explow
	SMEXP256(Y10)
	ADDQ $32, DI
	SUBQ $8, CX
	JZ   sm256sum
	SMEXPPART256(Y11)
	JMP  sm256sum

sm256explow:
	SMEXPPART256(Y10)

sm256sum:
	VADDPS    Y11, Y10, Y10 // p[j] + p[j+8]
	VEXTRACTF128 $1, Y10, X4
	VADDPS    X4, X10, X10  // p[j] + p[j+4]
	VPERMILPS $0x4e, X10, X4
	VADDPS    X4, X10, X10  // p[j] + p[j+2]
	VMOVSHDUP X10, X4
	VADDSS    X4, X10, X10  // p[0] + p[1]
	VBROADCASTSS X10, Y10

	// x /= sum.
	MOVQ SI, DI
	MOVQ BX, CX
	SHRQ $3, CX
	JZ   sm256divtail

sm256divloop:
	VMOVUPS (DI), Y1
	VDIVPS  Y10, Y1, Y1
	VMOVUPS Y1, (DI)
	ADDQ $32, DI
	DECQ CX
	JNZ  sm256divloop

sm256divtail:
	MOVQ BX, CX
	ANDQ $7, CX
	JZ   sm256done
	TAILMASK(CX, Y9)
	VMASKMOVPS (DI), Y9, Y1
	VDIVPS  Y10, Y1, Y1
	VMASKMOVPS Y1, Y9, (DI)

sm256done:
	VZEROUPPER
	RET

// QSUMS stores a quantized block's sums from its 32 levels in Y (clobbering
// it and T): −128·Σ to (R9), −32·Σlo to (R10), −32·Σhi to (R11) and Σ as a
// float to (R12). Biased by 0x80 the levels are bytes 1..255, which VPSADBW
// sums in fours of eight; each half is two of those minus 16·128.
#define QSUMS(Y, X, T, XT) \
	VPXOR   Y8, Y, Y; \
	VPSADBW Y9, Y, Y; \
	VPSHUFD $0x4e, Y, T; \
	VPADDQ  T, Y, Y; \
	VMOVQ   X, AX; \
	VEXTRACTI128 $1, Y, XT; \
	VMOVQ   XT, DX; \
	SUBL    $2048, AX; \
	SUBL    $2048, DX; \
	LEAL    (AX)(DX*1), R14; \
	VCVTSI2SSL R14, XT, XT; \
	VMOVSS  XT, (R12); \
	SHLL    $7, R14; \
	NEGL    R14; \
	MOVL    R14, (R9); \
	SHLL    $5, AX; \
	NEGL    AX; \
	MOVL    AX, (R10); \
	SHLL    $5, DX; \
	NEGL    DX; \
	MOVL    DX, (R11)

// QNEXT moves every pointer to the next block and loops to label while
// blocks remain.
#define QNEXT(label) \
	ADDQ $128, SI; \
	ADDQ BX, DI; \
	ADDQ R13, R8; \
	ADDQ R13, R9; \
	ADDQ R13, R10; \
	ADDQ R13, R11; \
	ADDQ R13, R12; \
	DECQ CX; \
	JNZ  label

// QZERO writes a zero block (levels, scale and sums).
#define QZERO \
	VMOVDQU Y9, (DI); \
	MOVL $0, (R8); \
	MOVL $0, (R9); \
	MOVL $0, (R10); \
	MOVL $0, (R11); \
	MOVL $0, (R12)

// QROUND rounds f (a register of f = float32(v·id)) half away from zero
// and clamps it below at −127, then converts it to int32: t = trunc(f);
// the remainder f − t is exact, and trunc(2(f − t)) is ±1 exactly when
// |f − t| ≥ 0.5, so t + that is quantizeBlock's rounding. The clamp above
// at 127 is the packing's signed saturation. (Neither bound can bite while
// 1/d is finite, |f| ≤ 127.00002, but they keep quantizeBlock's clamp.)
#define QROUND512(f, t) \
	VRNDSCALEPS $0x0b, f, t; \
	VSUBPS      t, f, f; \
	VADDPS      f, f, f; \
	VRNDSCALEPS $0x0b, f, f; \
	VADDPS      f, t, f; \
	VMAXPS      Z11, f, f; \
	VCVTTPS2DQ  f, f

#define QROUND256(f, t) \
	VROUNDPS   $0x0b, f, t; \
	VSUBPS     t, f, f; \
	VADDPS     f, f, f; \
	VROUNDPS   $0x0b, f, f; \
	VADDPS     f, t, f; \
	VMAXPS     Y11, f, f; \
	VCVTTPS2DQ f, f

// func quantizeActsAVX512(x *float32, nb int, q *int8, d *float32, c, clo, chi *int32, sum *float32, stride int)
// nb ≥ 1; x SI, nb CX, q DI, d R8, c R9, clo R10, chi R11, sum R12. Per
// block: amax as the largest |x| bit pattern (so NaN and Inf are at or
// above 0x7f800000), d = amax/127 and id = 1/d rounded like
// quantizeBlock's, a zero block when amax is not finite or id is +Inf.
TEXT ·quantizeActsAVX512(SB), NOSPLIT, $0-72
	MOVQ x+0(FP), SI
	MOVQ nb+8(FP), CX
	MOVQ q+16(FP), DI
	MOVQ d+24(FP), R8
	MOVQ c+32(FP), R9
	MOVQ clo+40(FP), R10
	MOVQ chi+48(FP), R11
	MOVQ sum+56(FP), R12
	MOVQ stride+64(FP), R13
	MOVQ R13, BX
	SHLQ $5, BX            // q's stride in bytes
	SHLQ $2, R13           // the others' stride in bytes
	VMOVUPS C_ABS, Z10
	VMOVUPS C_FM127, Z11
	VMOVSS  C_F127, X12
	VMOVSS  C_ONE, X13
	VMOVDQU C_B80, Y8
	VPXOR   Y9, Y9, Y9

q512block:
	VMOVUPS (SI), Z0
	VMOVUPS 64(SI), Z1
	VPANDD  Z10, Z0, Z2
	VPANDD  Z10, Z1, Z3
	VPMAXUD Z3, Z2, Z2
	VEXTRACTI64X4 $1, Z2, Y3
	VPMAXUD Y3, Y2, Y2
	VEXTRACTI128 $1, Y2, X3
	VPMAXUD X3, X2, X2
	VPSHUFD $0x4e, X2, X3
	VPMAXUD X3, X2, X2
	VPSHUFD $0xb1, X2, X3
	VPMAXUD X3, X2, X2
	VMOVD   X2, AX
	CMPL    AX, $0x7f800000
	JAE     q512zero
	VDIVSS  X12, X2, X4    // d = amax / 127
	VDIVSS  X4, X13, X5    // id = 1 / d
	VMOVD   X5, AX
	CMPL    AX, $0x7f800000
	JAE     q512zero
	VMOVSS  X4, (R8)
	VBROADCASTSS X5, Z5
	VMULPS  Z5, Z0, Z0
	VMULPS  Z5, Z1, Z1
	QROUND512(Z0, Z2)
	QROUND512(Z1, Z3)
	VPMOVSDB Z0, X0
	VPMOVSDB Z1, X1
	VINSERTI128 $1, X1, Y0, Y0
	VMOVDQU Y0, (DI)
	QSUMS(Y0, X0, Y1, X1)

q512next:
	QNEXT(q512block)
	VZEROUPPER
	RET

q512zero:
	QZERO
	JMP q512next

// func quantizeActsAVX2(x *float32, nb int, q *int8, d *float32, c, clo, chi *int32, sum *float32, stride int)
// As quantizeActsAVX512, in four vectors a block.
TEXT ·quantizeActsAVX2(SB), NOSPLIT, $0-72
	MOVQ x+0(FP), SI
	MOVQ nb+8(FP), CX
	MOVQ q+16(FP), DI
	MOVQ d+24(FP), R8
	MOVQ c+32(FP), R9
	MOVQ clo+40(FP), R10
	MOVQ chi+48(FP), R11
	MOVQ sum+56(FP), R12
	MOVQ stride+64(FP), R13
	MOVQ R13, BX
	SHLQ $5, BX            // q's stride in bytes
	SHLQ $2, R13           // the others' stride in bytes
	VMOVUPS C_ABS, Y10
	VMOVUPS C_FM127, Y11
	VMOVSS  C_F127, X12
	VMOVSS  C_ONE, X13
	VMOVDQU C_B80, Y8
	VPXOR   Y9, Y9, Y9
	VMOVDQU ·ewPack(SB), Y14

q256block:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS 64(SI), Y2
	VMOVUPS 96(SI), Y3
	VPAND   Y10, Y0, Y4
	VPAND   Y10, Y1, Y5
	VPMAXUD Y5, Y4, Y4
	VPAND   Y10, Y2, Y5
	VPAND   Y10, Y3, Y6
	VPMAXUD Y6, Y5, Y5
	VPMAXUD Y5, Y4, Y4
	VEXTRACTI128 $1, Y4, X5
	VPMAXUD X5, X4, X4
	VPSHUFD $0x4e, X4, X5
	VPMAXUD X5, X4, X4
	VPSHUFD $0xb1, X4, X5
	VPMAXUD X5, X4, X4
	VMOVD   X4, AX
	CMPL    AX, $0x7f800000
	JAE     q256zero
	VDIVSS  X12, X4, X6    // d = amax / 127
	VDIVSS  X6, X13, X7    // id = 1 / d
	VMOVD   X7, AX
	CMPL    AX, $0x7f800000
	JAE     q256zero
	VMOVSS  X6, (R8)
	VBROADCASTSS X7, Y7
	VMULPS  Y7, Y0, Y0
	VMULPS  Y7, Y1, Y1
	VMULPS  Y7, Y2, Y2
	VMULPS  Y7, Y3, Y3
	QROUND256(Y0, Y4)
	QROUND256(Y1, Y5)
	QROUND256(Y2, Y6)
	QROUND256(Y3, Y7)
	VPACKSSDW Y1, Y0, Y0
	VPACKSSDW Y3, Y2, Y2
	VPACKSSWB Y2, Y0, Y0
	VPERMD  Y0, Y14, Y0
	VMOVDQU Y0, (DI)
	QSUMS(Y0, X0, Y1, X1)

q256next:
	QNEXT(q256block)
	VZEROUPPER
	RET

q256zero:
	QZERO
	JMP q256next

// func expfsAVX512(dst, x []float32)
// dst[i] = expf(x[i]) for any len(dst) ≥ 1 (tests check the vector expf
// against expf with it).
TEXT ·expfsAVX512(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), BX
	MOVQ x_base+24(FP), SI
	LOADEXPF512
	MOVQ BX, CX
	SHRQ $4, CX
	JZ   ex512tail

ex512loop:
	VMOVUPS (SI), Z1
	EXPF512(Z1, Z3, Z4, Z5, Z6)
	VMOVUPS Z3, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	DECQ CX
	JNZ  ex512loop

ex512tail:
	MOVQ BX, CX
	ANDQ $15, CX
	JZ   ex512done
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	KMOVW AX, K1
	VMOVUPS.Z (SI), K1, Z1
	EXPF512(Z1, Z3, Z4, Z5, Z6)
	VMOVUPS Z3, K1, (DI)

ex512done:
	VZEROUPPER
	RET

// func expfsAVX2(dst, x []float32)
// As expfsAVX512 for len(dst) a multiple of 8, ≥ 8.
TEXT ·expfsAVX2(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ x_base+24(FP), SI
	SHRQ $3, CX

ex256loop:
	VMOVUPS (SI), Y1
	EXPF256(Y1, Y3, Y4, Y5, Y6, Y7, Y8)
	VMOVUPS Y3, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  ex256loop
	VZEROUPPER
	RET

// func sumSquaresAVX512(x []float32) float32
// The sixteen partial sums are the lanes of Z2; a partial last chunk loads
// zeros in its missing lanes, whose +0 squares change no sum.
TEXT ·sumSquaresAVX512(SB), NOSPLIT, $0-28
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), BX
	VXORPS Z2, Z2, Z2
	MOVQ BX, CX
	SHRQ $4, CX
	JZ   ss512tail

ss512loop:
	VMOVUPS (SI), Z1
	VMULPS  Z1, Z1, Z1
	VADDPS  Z1, Z2, Z2
	ADDQ $64, SI
	DECQ CX
	JNZ  ss512loop

ss512tail:
	MOVQ BX, CX
	ANDQ $15, CX
	JZ   ss512sum
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	KMOVW AX, K1
	VMOVUPS.Z (SI), K1, Z1
	VMULPS  Z1, Z1, Z1
	VADDPS  Z1, Z2, Z2

ss512sum:
	VEXTRACTF64X4 $1, Z2, Y4
	VADDPS    Y4, Y2, Y2
	VEXTRACTF128 $1, Y2, X4
	VADDPS    X4, X2, X2
	VPERMILPS $0x4e, X2, X4
	VADDPS    X4, X2, X2
	VMOVSHDUP X2, X4
	VADDSS    X4, X2, X2
	VMOVSS    X2, ret+24(FP)
	VZEROUPPER
	RET

// func sumSquaresAVX2(x []float32) float32
// The sixteen partial sums are the lanes of Y10 (0–7) and Y11 (8–15); the
// last partial sixteen load under masks, zeros elsewhere.
TEXT ·sumSquaresAVX2(SB), NOSPLIT, $0-28
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), BX
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	MOVQ BX, CX
	SHRQ $4, CX
	JZ   ss256tail

ss256loop:
	VMOVUPS (SI), Y1
	VMULPS  Y1, Y1, Y1
	VADDPS  Y1, Y10, Y10
	VMOVUPS 32(SI), Y2
	VMULPS  Y2, Y2, Y2
	VADDPS  Y2, Y11, Y11
	ADDQ $64, SI
	DECQ CX
	JNZ  ss256loop

ss256tail:
	MOVQ BX, CX
	ANDQ $15, CX
	JZ   ss256sum
	MOVQ CX, DX
	CMPQ DX, $8
	JLE  ss256low
	MOVQ $8, DX

ss256low:
	SUBQ DX, CX            // CX for Y11, DX (≤ 8) for Y10
	TAILMASK(DX, Y9)
	VMASKMOVPS (SI), Y9, Y1
	VMULPS  Y1, Y1, Y1
	VADDPS  Y1, Y10, Y10
	TAILMASK(CX, Y9)
	VMASKMOVPS 32(SI), Y9, Y1
	VMULPS  Y1, Y1, Y1
	VADDPS  Y1, Y11, Y11

ss256sum:
	VADDPS    Y11, Y10, Y10
	VEXTRACTF128 $1, Y10, X4
	VADDPS    X4, X10, X10
	VPERMILPS $0x4e, X10, X4
	VADDPS    X4, X10, X10
	VMOVSHDUP X10, X4
	VADDSS    X4, X10, X10
	VMOVSS    X10, ret+24(FP)
	VZEROUPPER
	RET

// func mulScaledAVX512(out, x, w []float32, s float32)
// len(out) ≥ 1: w·(s·x), a partial last chunk under mask K1.
TEXT ·mulScaledAVX512(SB), NOSPLIT, $0-76
	MOVQ out_base+0(FP), DI
	MOVQ out_len+8(FP), BX
	MOVQ x_base+24(FP), SI
	MOVQ w_base+48(FP), DX
	VBROADCASTSS s+72(FP), Z0
	MOVQ BX, CX
	SHRQ $4, CX
	JZ   ms512tail

ms512loop:
	VMULPS  (SI), Z0, Z1
	VMULPS  (DX), Z1, Z1
	VMOVUPS Z1, (DI)
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $64, DI
	DECQ CX
	JNZ  ms512loop

ms512tail:
	MOVQ BX, CX
	ANDQ $15, CX
	JZ   ms512done
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	KMOVW AX, K1
	VMOVUPS.Z (SI), K1, Z1
	VMOVUPS.Z (DX), K1, Z2
	VMULPS  Z1, Z0, Z1
	VMULPS  Z2, Z1, Z1
	VMOVUPS Z1, K1, (DI)

ms512done:
	VZEROUPPER
	RET

// func mulScaledAVX2(out, x, w []float32, s float32)
// len(out) a multiple of 8, ≥ 8.
TEXT ·mulScaledAVX2(SB), NOSPLIT, $0-76
	MOVQ out_base+0(FP), DI
	MOVQ out_len+8(FP), CX
	MOVQ x_base+24(FP), SI
	MOVQ w_base+48(FP), DX
	VBROADCASTSS s+72(FP), Y0
	SHRQ $3, CX

ms256loop:
	VMULPS  (SI), Y0, Y1
	VMULPS  (DX), Y1, Y1
	VMOVUPS Y1, (DI)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, DI
	DECQ CX
	JNZ  ms256loop
	VZEROUPPER
	RET

// func addIntoAVX512(dst, src []float32)
// len(dst) ≥ 1, a partial last chunk under mask K1.
TEXT ·addIntoAVX512(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), BX
	MOVQ src_base+24(FP), SI
	MOVQ BX, CX
	SHRQ $4, CX
	JZ   ai512tail

ai512loop:
	VMOVUPS (DI), Z1
	VADDPS  (SI), Z1, Z1
	VMOVUPS Z1, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	DECQ CX
	JNZ  ai512loop

ai512tail:
	MOVQ BX, CX
	ANDQ $15, CX
	JZ   ai512done
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	KMOVW AX, K1
	VMOVUPS.Z (DI), K1, Z1
	VMOVUPS.Z (SI), K1, Z2
	VADDPS  Z2, Z1, Z1
	VMOVUPS Z1, K1, (DI)

ai512done:
	VZEROUPPER
	RET

// func addIntoAVX2(dst, src []float32)
// len(dst) a multiple of 8, ≥ 8.
TEXT ·addIntoAVX2(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ src_base+24(FP), SI
	SHRQ $3, CX

ai256loop:
	VMOVUPS (DI), Y1
	VADDPS  (SI), Y1, Y1
	VMOVUPS Y1, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  ai256loop
	VZEROUPPER
	RET
