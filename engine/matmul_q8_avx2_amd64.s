#include "textflag.h"

// Integer Q8_0 kernels for AVX2 CPUs without AVX-512 VNNI; see matmul_q8.go
// for the layout and the order of operations they share with
// q8TilePortable. A ymm holds 8 rows, so a 64-byte chunk is two halves:
// rows 0–7 in its first 32 bytes, rows 8–15 in the next.
//
// AVX2 has no VPDPBUSD, and VPMADDUBSW on the stored bytes u = w+128 would
// saturate (255·127·2 > 32767). So the weights are unbiased (u^0x80 = w)
// and multiplied by the sign trick: |w| (≤ 128, unsigned) times a·sign(w)
// (|a| ≤ 127, which the quantizer guarantees: negating −128 would wrap),
// whose pair sums stay within ±32512; VPMADDWD by ones then adds the pairs
// into one int32 per row of 4 products. The result is Σ w·a itself, so the
// correction c that undoes the bias is never added: these kernels ignore c.
// The float part is then the portable one, instruction for instruction.

// SIGNS sets Y14 to bytes 0x80 (unbiases the weights) and Y15 to int16 ones
// (VPMADDWD's pair adder).
#define SIGNS \
	VPCMPEQB Y15, Y15, Y15; \
	VPABSB   Y15, Y14; \
	VPSLLW   $7, Y14, Y14; \
	VPSRLW   $15, Y15, Y15

// In q8x8AVX2 a pass computes 8 rows (R12: the half's weights, R13: its
// scales) for the 8 tokens (R14: their values, DX: their scales). Y8 holds
// a chunk's signed weights and Y9 their magnitudes, shared by the 8 tokens;
// token j's block sum is Y(j), its products passing through Y10–Y13.

// X8UNBIAS loads chunk k's weights of the half.
#define X8UNBIAS(k) \
	VPXOR  (k*64)(R12), Y14, Y8; \
	VPABSB Y8, Y9

// X8PROD leaves token j's 4-product sums of chunk k in dst.
#define X8PROD(k, j, tmp, dst) \
	VPBROADCASTD (k*4+j*32)(R14), tmp; \
	VPSIGNB      Y8, tmp, tmp; \
	VPMADDUBSW   tmp, Y9, tmp; \
	VPMADDWD     Y15, tmp, dst

// X8FIRST starts the 8 tokens' block sums with chunk 0.
#define X8FIRST \
	X8UNBIAS(0); \
	X8PROD(0, 0, Y10, Y0); \
	X8PROD(0, 1, Y11, Y1); \
	X8PROD(0, 2, Y12, Y2); \
	X8PROD(0, 3, Y13, Y3); \
	X8PROD(0, 4, Y10, Y4); \
	X8PROD(0, 5, Y11, Y5); \
	X8PROD(0, 6, Y12, Y6); \
	X8PROD(0, 7, Y13, Y7)

// X8CHUNK adds chunk k to the 8 tokens' block sums.
#define X8CHUNK(k) \
	X8UNBIAS(k); \
	X8PROD(k, 0, Y10, Y10); \
	VPADDD Y10, Y0, Y0; \
	X8PROD(k, 1, Y11, Y11); \
	VPADDD Y11, Y1, Y1; \
	X8PROD(k, 2, Y12, Y12); \
	VPADDD Y12, Y2, Y2; \
	X8PROD(k, 3, Y13, Y13); \
	VPADDD Y13, Y3, Y3; \
	X8PROD(k, 4, Y10, Y10); \
	VPADDD Y10, Y4, Y4; \
	X8PROD(k, 5, Y11, Y11); \
	VPADDD Y11, Y5, Y5; \
	X8PROD(k, 6, Y12, Y12); \
	VPADDD Y12, Y6, Y6; \
	X8PROD(k, 7, Y13, Y13); \
	VPADDD Y13, Y7, Y7

// X8FLOAT folds token j's block sum isum into its accumulator, the frame's
// 32 bytes at j*32: acc += float32(isum)·(ws·d), Y8 holding the half's ws.
#define X8FLOAT(j, isum) \
	VCVTDQ2PS    isum, isum; \
	VBROADCASTSS (j*4)(DX), Y9; \
	VMULPS       Y9, Y8, Y9; \
	VMULPS       Y9, isum, isum; \
	VMOVUPS      (j*32)(SP), Y10; \
	VADDPS       isum, Y10, Y10; \
	VMOVUPS      Y10, (j*32)(SP)

// X8STORE copies token j's accumulator to its results at DX, then steps DX
// to the next token's.
#define X8STORE(j) \
	VMOVUPS (j*32)(SP), Y0; \
	VMOVUPS Y0, (DX); \
	ADDQ    BX, DX

// func q8x8AVX2(w *byte, ws *float32, nb int, q *int8, d *float32, c *int32, out *float32, stride int)
//
// Rows of one group times the 8 tokens of one activation tile; token j's 16
// results go to out + j*stride (bytes). The tile takes two passes over the
// group's blocks, one per half of the rows (AX: 0 or 32, the half's byte
// offset in a chunk, in the scales and in the results). Sixteen registers
// cannot hold 8 block sums, the weights and 8 accumulators, so the
// accumulators live in the frame: sharing each chunk's unbiasing among 8
// tokens rather than 4 costs that one load and store per block and token,
// and wins.
TEXT ·q8x8AVX2(SB), NOSPLIT, $256-64
	MOVQ w+0(FP), SI
	MOVQ ws+8(FP), R8
	MOVQ nb+16(FP), CX
	MOVQ q+24(FP), DI
	MOVQ d+32(FP), R10
	MOVQ out+48(FP), R9
	MOVQ stride+56(FP), BX
	SIGNS
	XORQ AX, AX

x8pass:
	LEAQ (SI)(AX*1), R12
	LEAQ (R8)(AX*1), R13
	MOVQ DI, R14
	MOVQ R10, DX
	MOVQ CX, R11
	VXORPS  Y0, Y0, Y0
	VMOVUPS Y0, 0(SP)
	VMOVUPS Y0, 32(SP)
	VMOVUPS Y0, 64(SP)
	VMOVUPS Y0, 96(SP)
	VMOVUPS Y0, 128(SP)
	VMOVUPS Y0, 160(SP)
	VMOVUPS Y0, 192(SP)
	VMOVUPS Y0, 224(SP)

x8block:
	X8FIRST
	X8CHUNK(1)
	X8CHUNK(2)
	X8CHUNK(3)
	X8CHUNK(4)
	X8CHUNK(5)
	X8CHUNK(6)
	X8CHUNK(7)
	VMOVUPS (R13), Y8
	X8FLOAT(0, Y0)
	X8FLOAT(1, Y1)
	X8FLOAT(2, Y2)
	X8FLOAT(3, Y3)
	X8FLOAT(4, Y4)
	X8FLOAT(5, Y5)
	X8FLOAT(6, Y6)
	X8FLOAT(7, Y7)
	ADDQ $512, R12
	ADDQ $64, R13
	ADDQ $256, R14
	ADDQ $32, DX
	DECQ R11
	JNZ  x8block

	LEAQ (R9)(AX*1), DX
	X8STORE(0)
	X8STORE(1)
	X8STORE(2)
	X8STORE(3)
	X8STORE(4)
	X8STORE(5)
	X8STORE(6)
	X8STORE(7)
	ADDQ $32, AX
	CMPQ AX, $64
	JNE  x8pass
	VZEROUPPER
	RET

// In q8x1AVX2 Y2 holds the token's 4 values of chunk k, broadcast; each
// half of the rows keeps two int32 sums (Y4/Y5 rows 0–7, Y6/Y7 rows 8–15)
// so consecutive chunks do not wait on one another's adds.

// X1PROD leaves half h's 4-product sums of chunk k in dst (w, aw: scratch).
#define X1PROD(k, h, w, aw, dst) \
	VPXOR      (k*64+h*32)(SI), Y14, w; \
	VPABSB     w, aw; \
	VPSIGNB    w, Y2, w; \
	VPMADDUBSW w, aw, w; \
	VPMADDWD   Y15, w, dst

// X1FIRST starts the sums lo and hi with chunk k.
#define X1FIRST(k, lo, hi) \
	VPBROADCASTD (k*4)(DI), Y2; \
	X1PROD(k, 0, Y8, Y9, lo); \
	X1PROD(k, 1, Y10, Y11, hi)

// X1CHUNK adds chunk k to the sums lo and hi.
#define X1CHUNK(k, lo, hi) \
	VPBROADCASTD (k*4)(DI), Y2; \
	X1PROD(k, 0, Y8, Y9, Y8); \
	X1PROD(k, 1, Y10, Y11, Y10); \
	VPADDD Y8, lo, lo; \
	VPADDD Y10, hi, hi

// func q8x1AVX2(w *byte, ws *float32, nb int, q *int8, d *float32, c *int32, out *float32)
//
// Rows of one group times one token of a tile (q and d point at the token's
// first block; the tile's blocks are 256 and 32 bytes apart).
TEXT ·q8x1AVX2(SB), NOSPLIT, $0-56
	MOVQ w+0(FP), SI
	MOVQ ws+8(FP), R8
	MOVQ nb+16(FP), CX
	MOVQ q+24(FP), DI
	MOVQ d+32(FP), R10
	MOVQ out+48(FP), R9
	SIGNS
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1

x1block:
	X1FIRST(0, Y4, Y6)
	X1FIRST(1, Y5, Y7)
	X1CHUNK(2, Y4, Y6)
	X1CHUNK(3, Y5, Y7)
	X1CHUNK(4, Y4, Y6)
	X1CHUNK(5, Y5, Y7)
	X1CHUNK(6, Y4, Y6)
	X1CHUNK(7, Y5, Y7)
	VPADDD Y5, Y4, Y4
	VPADDD Y7, Y6, Y6
	VCVTDQ2PS Y4, Y4
	VCVTDQ2PS Y6, Y6
	VBROADCASTSS (R10), Y2
	VMOVUPS (R8), Y8
	VMOVUPS 32(R8), Y9
	VMULPS Y2, Y8, Y8
	VMULPS Y2, Y9, Y9
	VMULPS Y8, Y4, Y4
	VMULPS Y9, Y6, Y6
	VADDPS Y4, Y0, Y0
	VADDPS Y6, Y1, Y1
	ADDQ $512, SI
	ADDQ $64, R8
	ADDQ $256, DI
	ADDQ $32, R10
	DECQ CX
	JNZ  x1block
	VMOVUPS Y0, (R9)
	VMOVUPS Y1, 32(R9)
	VZEROUPPER
	RET
