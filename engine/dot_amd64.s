#include "textflag.h"

// func dotF32SSE(w, x []float32) float32
// Lane j of X0 sums w[4i+j]·x[4i+j] (MULPS then ADDPS: no fusion), the
// tail goes into lane 0, and the lanes reduce as (s0+s1)+(s2+s3): exactly
// dotF32Portable. The caller makes len(x) ≥ len(w).
TEXT ·dotF32SSE(SB), NOSPLIT, $0-52
	MOVQ w_base+0(FP), SI
	MOVQ w_len+8(FP), CX
	MOVQ x_base+24(FP), DI
	XORPS X0, X0
	MOVQ CX, DX
	SHRQ $2, DX
	JZ dottail
dotloop:
	MOVUPS (SI), X1
	MOVUPS (DI), X2
	MULPS X2, X1
	ADDPS X1, X0
	ADDQ $16, SI
	ADDQ $16, DI
	DECQ DX
	JNZ dotloop
dottail:
	ANDQ $3, CX
	JZ dotreduce
dottailloop:
	MOVSS (SI), X1
	MOVSS (DI), X2
	MULSS X2, X1
	ADDSS X1, X0
	ADDQ $4, SI
	ADDQ $4, DI
	DECQ CX
	JNZ dottailloop
dotreduce:
	MOVAPS X0, X1
	SHUFPS $0x55, X1, X1
	MOVAPS X0, X2
	SHUFPS $0xAA, X2, X2
	MOVAPS X0, X3
	SHUFPS $0xFF, X3, X3
	ADDSS X1, X0
	ADDSS X3, X2
	ADDSS X2, X0
	MOVSS X0, ret+48(FP)
	RET

// func axpySSE(o []float32, a float32, v []float32)
// o[j] += a·v[j], four lanes at a time, MULPS then ADDPS: exactly
// axpyPortable. The caller makes len(v) ≥ len(o).
TEXT ·axpySSE(SB), NOSPLIT, $0-56
	MOVQ o_base+0(FP), DI
	MOVQ o_len+8(FP), CX
	MOVSS a+24(FP), X3
	SHUFPS $0x00, X3, X3
	MOVQ v_base+32(FP), SI
	MOVQ CX, DX
	SHRQ $2, DX
	JZ axpytail
axpyloop:
	MOVUPS (SI), X1
	MULPS X3, X1
	MOVUPS (DI), X2
	ADDPS X1, X2
	MOVUPS X2, (DI)
	ADDQ $16, SI
	ADDQ $16, DI
	DECQ DX
	JNZ axpyloop
axpytail:
	ANDQ $3, CX
	JZ axpydone
axpytailloop:
	MOVSS (SI), X1
	MULSS X3, X1
	MOVSS (DI), X2
	ADDSS X1, X2
	MOVSS X2, (DI)
	ADDQ $4, SI
	ADDQ $4, DI
	DECQ CX
	JNZ axpytailloop
axpydone:
	RET
