#include "textflag.h"

// Integer Q4_0 and Q5_0 kernels for AVX2 CPUs without AVX-512 VNNI; see
// matmul_q4.go for the layout and the order of operations they share with
// q4TilePortable. As in matmul_q8_avx2_amd64.s a ymm holds 8 rows, so each
// 64-byte vector of a block is two halves: rows 0–7 in its first 32 bytes,
// rows 8–15 in the next.
//
// The levels are small and unsigned (Q4_0 ≤ 15, Q5_0 ≤ 31), so VPMADDUBSW
// multiplies them by the signed values directly, with no sign trick and no
// saturation: a pair sums to at most 2·31·128 = 7936 in magnitude. Pairs
// of up to 8 chunks (Q4_0: 8·2·15·128 = 30720) or 4 chunks (Q5_0: 4·7936
// = 31744) are added in int16 before one VPMADDWD by ones widens them, so
// every block sum is exact. Each token's sum starts from −off·Σa, the
// activations' −128·Σa shifted right by 4 (Q4_0) or 3 (Q5_0). The float
// part is q8x8AVX2's and q8x1AVX2's, instruction for instruction.

// ONES sets Y14 to bytes 0x0f (the nibble mask) and Y15 to int16 ones
// (VPMADDWD's pair adder).
#define ONES \
	VPBROADCASTD q4nib<>(SB), Y14; \
	VPCMPEQW     Y15, Y15, Y15; \
	VPSRLW       $15, Y15, Y15

// In q4x8AVX2 and q5x8AVX2 a pass computes 8 rows (R12: the half's levels,
// R13: its scales) for the 8 tokens (R14: their values; d and c at R10 and
// R11 plus DX, the block's byte offset among them). The block's 8 chunks
// of the half are unpacked into Y0–Y7 once, for all 8 tokens.

// UNPACK8 leaves the half's 8 chunks' levels in Y0–Y7.
#define UNPACK8 \
	VMOVDQU 0(R12), Y0; \
	VMOVDQU 64(R12), Y1; \
	VMOVDQU 128(R12), Y2; \
	VMOVDQU 192(R12), Y3; \
	VPSRLD  $4, Y0, Y4; \
	VPSRLD  $4, Y1, Y5; \
	VPSRLD  $4, Y2, Y6; \
	VPSRLD  $4, Y3, Y7; \
	VPAND   Y14, Y0, Y0; \
	VPAND   Y14, Y1, Y1; \
	VPAND   Y14, Y2, Y2; \
	VPAND   Y14, Y3, Y3; \
	VPAND   Y14, Y4, Y4; \
	VPAND   Y14, Y5, Y5; \
	VPAND   Y14, Y6, Y6; \
	VPAND   Y14, Y7, Y7

// BIT4 or-s bit 4 of T into the levels dst.
#define BIT4(T, dst) \
	VPAND q4bit4<>(SB), T, T; \
	VPOR  T, dst, dst

// HIGH8 adds the half's fifth bits (bit k of the high plane's bytes for
// chunk k, moved to bit 4) to the levels of UNPACK8.
#define HIGH8 \
	VMOVDQU 256(R12), Y8; \
	VPSLLD  $4, Y8, Y9; \
	BIT4(Y9, Y0); \
	VPSLLD  $3, Y8, Y9; \
	BIT4(Y9, Y1); \
	VPSLLD  $2, Y8, Y9; \
	BIT4(Y9, Y2); \
	VPSLLD  $1, Y8, Y9; \
	BIT4(Y9, Y3); \
	VMOVDQU Y8, Y9; \
	BIT4(Y9, Y4); \
	VPSRLD  $1, Y8, Y9; \
	BIT4(Y9, Y5); \
	VPSRLD  $2, Y8, Y9; \
	BIT4(Y9, Y6); \
	VPSRLD  $3, Y8, Y9; \
	BIT4(Y9, Y7)

// MADD adds chunk k's products with token j's values (levels in W) to the
// int16 pair sums S (T: scratch).
#define MADD(j, k, W, T, S) \
	VPBROADCASTD (j*32+k*4)(R14), T; \
	VPMADDUBSW   T, W, T; \
	VPADDW       T, S, S

// PROD leaves token j's int16 pair sums of chunks 0–3 in Y8 and of chunks
// 4–7 in Y12.
#define PROD(j) \
	VPBROADCASTD (j*32)(R14), Y8; \
	VPMADDUBSW   Y8, Y0, Y8; \
	VPBROADCASTD (j*32+16)(R14), Y12; \
	VPMADDUBSW   Y12, Y4, Y12; \
	MADD(j, 1, Y1, Y9, Y8); \
	MADD(j, 5, Y5, Y10, Y12); \
	MADD(j, 2, Y2, Y9, Y8); \
	MADD(j, 6, Y6, Y10, Y12); \
	MADD(j, 3, Y3, Y9, Y8); \
	MADD(j, 7, Y7, Y10, Y12)

// SUM4 turns PROD's sums into token j's int32 block sum in Y8 (Q4_0: the
// 8 chunks' pairs fit one int16).
#define SUM4 \
	VPADDW   Y12, Y8, Y8; \
	VPMADDWD Y15, Y8, Y8

// SUM5 is SUM4 for Q5_0, whose 8 chunks' pairs need two int16 sums.
#define SUM5 \
	VPMADDWD Y15, Y8, Y8; \
	VPMADDWD Y15, Y12, Y12; \
	VPADDD   Y12, Y8, Y8

// FLOAT8 folds token j's block sum Y8, plus −off·Σa (c >> s), into its
// accumulator, the frame's 32 bytes at j*32: acc += float32(isum)·(ws·d),
// Y11 holding the half's ws.
#define FLOAT8(j, s) \
	VPBROADCASTD (j*4)(R11)(DX*1), Y9; \
	VPSRAD       $s, Y9, Y9; \
	VPADDD       Y9, Y8, Y8; \
	VCVTDQ2PS    Y8, Y8; \
	VBROADCASTSS (j*4)(R10)(DX*1), Y9; \
	VMULPS       Y9, Y11, Y9; \
	VMULPS       Y9, Y8, Y8; \
	VMOVUPS      (j*32)(SP), Y10; \
	VADDPS       Y8, Y10, Y10; \
	VMOVUPS      Y10, (j*32)(SP)

// TOKEN4 and TOKEN5 add token j's block to its accumulator.
#define TOKEN4(j) \
	PROD(j); \
	SUM4; \
	FLOAT8(j, 4)

#define TOKEN5(j) \
	PROD(j); \
	SUM5; \
	FLOAT8(j, 3)

// X8PASS starts a pass over the half at AX.
#define X8PASS \
	LEAQ    (SI)(AX*1), R12; \
	LEAQ    (R8)(AX*1), R13; \
	MOVQ    DI, R14; \
	XORQ    DX, DX; \
	VXORPS  Y0, Y0, Y0; \
	VMOVUPS Y0, 0(SP); \
	VMOVUPS Y0, 32(SP); \
	VMOVUPS Y0, 64(SP); \
	VMOVUPS Y0, 96(SP); \
	VMOVUPS Y0, 128(SP); \
	VMOVUPS Y0, 160(SP); \
	VMOVUPS Y0, 192(SP); \
	VMOVUPS Y0, 224(SP)

// X8STORE copies token j's accumulator to its results at R12, then steps
// R12 to the next token's.
#define X8STORE(j) \
	VMOVUPS (j*32)(SP), Y0; \
	VMOVUPS Y0, (R12); \
	ADDQ    BX, R12

#define X8STOREALL \
	LEAQ (R9)(AX*1), R12; \
	X8STORE(0); \
	X8STORE(1); \
	X8STORE(2); \
	X8STORE(3); \
	X8STORE(4); \
	X8STORE(5); \
	X8STORE(6); \
	X8STORE(7)

#define X8ARGS \
	MOVQ w+0(FP), SI; \
	MOVQ ws+8(FP), R8; \
	MOVQ nb+16(FP), CX; \
	MOVQ q+24(FP), DI; \
	MOVQ d+32(FP), R10; \
	MOVQ c+40(FP), R11; \
	MOVQ out+48(FP), R9; \
	MOVQ stride+56(FP), BX; \
	SHLQ $5, CX; \
	ONES; \
	XORQ AX, AX

// func q4x8AVX2(w *byte, ws *float32, nb int, q *int8, d *float32, c *int32, out *float32, stride int)
//
// Q4_0 rows of one group times the 8 tokens of one activation tile; token
// j's 16 results go to out + j*stride (bytes). Two passes over the group's
// blocks, one per half of the rows (AX: 0 or 32); CX is nb·32, the end of
// DX. The accumulators live in the frame, as in q8x8AVX2.
TEXT ·q4x8AVX2(SB), NOSPLIT, $256-64
	X8ARGS

q4x8pass:
	X8PASS

q4x8block:
	UNPACK8
	VMOVUPS (R13), Y11
	TOKEN4(0)
	TOKEN4(1)
	TOKEN4(2)
	TOKEN4(3)
	TOKEN4(4)
	TOKEN4(5)
	TOKEN4(6)
	TOKEN4(7)
	ADDQ $256, R12
	ADDQ $64, R13
	ADDQ $256, R14
	ADDQ $32, DX
	CMPQ DX, CX
	JNE  q4x8block

	X8STOREALL
	ADDQ $32, AX
	CMPQ AX, $64
	JNE  q4x8pass
	VZEROUPPER
	RET

// func q5x8AVX2(w *byte, ws *float32, nb int, q *int8, d *float32, c *int32, out *float32, stride int)
//
// q4x8AVX2 for Q5_0.
TEXT ·q5x8AVX2(SB), NOSPLIT, $256-64
	X8ARGS

q5x8pass:
	X8PASS

q5x8block:
	UNPACK8
	HIGH8
	VMOVUPS (R13), Y11
	TOKEN5(0)
	TOKEN5(1)
	TOKEN5(2)
	TOKEN5(3)
	TOKEN5(4)
	TOKEN5(5)
	TOKEN5(6)
	TOKEN5(7)
	ADDQ $320, R12
	ADDQ $64, R13
	ADDQ $256, R14
	ADDQ $32, DX
	CMPQ DX, CX
	JNE  q5x8block

	X8STOREALL
	ADDQ $32, AX
	CMPQ AX, $64
	JNE  q5x8pass
	VZEROUPPER
	RET

// In q4x1AVX2 and q5x1AVX2 a block takes its chunks in pairs p and p+4
// (one nibble vector): Y2 and Y3 hold the token's 4 values of each,
// broadcast, and both halves of the rows are done at once. The int16 pair
// sums are Y6 (rows 0–7) and Y8 (rows 8–15), and for Q5_0 also Y7 and Y9
// (pairs p = 2, 3). Q5_0's high plane is in Y12 and Y13 (its halves), the
// bit-4 mask in Y11.

// PAIRLV leaves half h's levels of chunks p and p+4 in Y4 and Y5.
#define PAIRLV(p, h) \
	VMOVDQU (p*64+h*32)(SI), Y4; \
	VPSRLD  $4, Y4, Y5; \
	VPAND   Y14, Y4, Y4; \
	VPAND   Y14, Y5, Y5

// PAIRHI adds the fifth bits of chunks p and p+4 from the half's plane H.
#define PAIRHI(p, H) \
	VPSLLD $(4-p), H, Y10; \
	VPAND  Y11, Y10, Y10; \
	VPOR   Y10, Y4, Y4; \
	VPSRLD $p, H, Y10; \
	VPAND  Y11, Y10, Y10; \
	VPOR   Y10, Y5, Y5

// PAIRSUM adds the pair's products to the int16 sums S.
#define PAIRSUM(S) \
	VPMADDUBSW Y2, Y4, Y4; \
	VPMADDUBSW Y3, Y5, Y5; \
	VPADDW     Y4, S, S; \
	VPADDW     Y5, S, S

#define PAIRACTS(p) \
	VPBROADCASTD (p*4)(DI), Y2; \
	VPBROADCASTD (p*4+16)(DI), Y3

#define PAIR4(p) \
	PAIRACTS(p); \
	PAIRLV(p, 0); \
	PAIRSUM(Y6); \
	PAIRLV(p, 1); \
	PAIRSUM(Y8)

#define PAIR5(p, S0, S1) \
	PAIRACTS(p); \
	PAIRLV(p, 0); \
	PAIRHI(p, Y12); \
	PAIRSUM(S0); \
	PAIRLV(p, 1); \
	PAIRHI(p, Y13); \
	PAIRSUM(S1)

// FLOAT1 folds the block sums Y6 and Y8, plus −off·Σa (c >> s), into the
// accumulators Y0 and Y1 (q8x1AVX2's float operations).
#define FLOAT1(s) \
	VPBROADCASTD (R11), Y2; \
	VPSRAD       $s, Y2, Y2; \
	VPADDD       Y2, Y6, Y6; \
	VPADDD       Y2, Y8, Y8; \
	VCVTDQ2PS    Y6, Y6; \
	VCVTDQ2PS    Y8, Y8; \
	VBROADCASTSS (R10), Y2; \
	VMOVUPS      (R8), Y4; \
	VMOVUPS      32(R8), Y5; \
	VMULPS       Y2, Y4, Y4; \
	VMULPS       Y2, Y5, Y5; \
	VMULPS       Y4, Y6, Y6; \
	VMULPS       Y5, Y8, Y8; \
	VADDPS       Y6, Y0, Y0; \
	VADDPS       Y8, Y1, Y1; \
	ADDQ         $64, R8; \
	ADDQ         $256, DI; \
	ADDQ         $32, R10; \
	ADDQ         $32, R11

#define X1ARGS \
	MOVQ   w+0(FP), SI; \
	MOVQ   ws+8(FP), R8; \
	MOVQ   nb+16(FP), CX; \
	MOVQ   q+24(FP), DI; \
	MOVQ   d+32(FP), R10; \
	MOVQ   c+40(FP), R11; \
	MOVQ   out+48(FP), R9; \
	ONES; \
	VXORPS Y0, Y0, Y0; \
	VXORPS Y1, Y1, Y1

// func q4x1AVX2(w *byte, ws *float32, nb int, q *int8, d *float32, c *int32, out *float32)
//
// Q4_0 rows of one group times one token of a tile (q, d, c point at the
// token's first block; the tile's blocks are 256, 32 and 32 bytes apart).
TEXT ·q4x1AVX2(SB), NOSPLIT, $0-56
	X1ARGS

q4x1block:
	VPXOR Y6, Y6, Y6
	VPXOR Y8, Y8, Y8
	PAIR4(0)
	PAIR4(1)
	PAIR4(2)
	PAIR4(3)
	VPMADDWD Y15, Y6, Y6
	VPMADDWD Y15, Y8, Y8
	FLOAT1(4)
	ADDQ $256, SI
	DECQ CX
	JNZ  q4x1block
	VMOVUPS Y0, (R9)
	VMOVUPS Y1, 32(R9)
	VZEROUPPER
	RET

// func q5x1AVX2(w *byte, ws *float32, nb int, q *int8, d *float32, c *int32, out *float32)
//
// q4x1AVX2 for Q5_0.
TEXT ·q5x1AVX2(SB), NOSPLIT, $0-56
	X1ARGS
	VPBROADCASTD q4bit4<>(SB), Y11

q5x1block:
	VMOVDQU 256(SI), Y12
	VMOVDQU 288(SI), Y13
	VPXOR   Y6, Y6, Y6
	VPXOR   Y7, Y7, Y7
	VPXOR   Y8, Y8, Y8
	VPXOR   Y9, Y9, Y9
	PAIR5(0, Y6, Y8)
	PAIR5(1, Y6, Y8)
	PAIR5(2, Y7, Y9)
	PAIR5(3, Y7, Y9)
	VPMADDWD Y15, Y6, Y6
	VPMADDWD Y15, Y7, Y7
	VPMADDWD Y15, Y8, Y8
	VPMADDWD Y15, Y9, Y9
	VPADDD   Y7, Y6, Y6
	VPADDD   Y9, Y8, Y8
	FLOAT1(3)
	ADDQ $320, SI
	DECQ CX
	JNZ  q5x1block
	VMOVUPS Y0, (R9)
	VMOVUPS Y1, 32(R9)
	VZEROUPPER
	RET

DATA q4nib<>+0(SB)/4, $0x0f0f0f0f
GLOBL q4nib<>(SB), RODATA|NOPTR, $4
DATA q4bit4<>+0(SB)/8, $0x1010101010101010
DATA q4bit4<>+8(SB)/8, $0x1010101010101010
DATA q4bit4<>+16(SB)/8, $0x1010101010101010
DATA q4bit4<>+24(SB)/8, $0x1010101010101010
GLOBL q4bit4<>(SB), RODATA|NOPTR, $32
