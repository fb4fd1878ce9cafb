#include "textflag.h"

// Each kernel keeps four 8-wide accumulators (32 floats an iteration, enough independent FMAs
// to hide their latency), then 8 floats at a time, then single floats; the sums are reduced once
// at the end. Registers: SI walks a, DI walks b, CX counts the floats left, X0 ends with the sum.

#define ZERO4 \
	VXORPS Y0, Y0, Y0 \
	VXORPS Y1, Y1, Y1 \
	VXORPS Y2, Y2, Y2 \
	VXORPS Y3, Y3, Y3

#define REDUCE \
	VADDPS Y1, Y0, Y0 \
	VADDPS Y3, Y2, Y2 \
	VADDPS Y2, Y0, Y0 \
	VEXTRACTF128 $1, Y0, X1 \
	VADDPS X1, X0, X0 \
	VHADDPS X0, X0, X0 \
	VHADDPS X0, X0, X0

#define DOT \
	ZERO4 \
dot32: \
	CMPQ CX, $32 \
	JL   dot8 \
	VMOVUPS (SI), Y4 \
	VMOVUPS 32(SI), Y5 \
	VMOVUPS 64(SI), Y6 \
	VMOVUPS 96(SI), Y7 \
	VFMADD231PS (DI), Y4, Y0 \
	VFMADD231PS 32(DI), Y5, Y1 \
	VFMADD231PS 64(DI), Y6, Y2 \
	VFMADD231PS 96(DI), Y7, Y3 \
	ADDQ $128, SI \
	ADDQ $128, DI \
	SUBQ $32, CX \
	JMP  dot32 \
dot8: \
	CMPQ CX, $8 \
	JL   dot1 \
	VMOVUPS (SI), Y4 \
	VFMADD231PS (DI), Y4, Y0 \
	ADDQ $32, SI \
	ADDQ $32, DI \
	SUBQ $8, CX \
	JMP  dot8 \
dot1: \
	REDUCE \
dotTail: \
	CMPQ CX, $0 \
	JE   dotDone \
	VMOVSS (SI), X1 \
	VFMADD231SS (DI), X1, X0 \
	ADDQ $4, SI \
	ADDQ $4, DI \
	DECQ CX \
	JMP  dotTail \
dotDone:

#define L2 \
	ZERO4 \
l232: \
	CMPQ CX, $32 \
	JL   l28 \
	VMOVUPS (SI), Y4 \
	VMOVUPS 32(SI), Y5 \
	VMOVUPS 64(SI), Y6 \
	VMOVUPS 96(SI), Y7 \
	VSUBPS (DI), Y4, Y4 \
	VSUBPS 32(DI), Y5, Y5 \
	VSUBPS 64(DI), Y6, Y6 \
	VSUBPS 96(DI), Y7, Y7 \
	VFMADD231PS Y4, Y4, Y0 \
	VFMADD231PS Y5, Y5, Y1 \
	VFMADD231PS Y6, Y6, Y2 \
	VFMADD231PS Y7, Y7, Y3 \
	ADDQ $128, SI \
	ADDQ $128, DI \
	SUBQ $32, CX \
	JMP  l232 \
l28: \
	CMPQ CX, $8 \
	JL   l21 \
	VMOVUPS (SI), Y4 \
	VSUBPS (DI), Y4, Y4 \
	VFMADD231PS Y4, Y4, Y0 \
	ADDQ $32, SI \
	ADDQ $32, DI \
	SUBQ $8, CX \
	JMP  l28 \
l21: \
	REDUCE \
l2Tail: \
	CMPQ CX, $0 \
	JE   l2Done \
	VMOVSS (SI), X1 \
	VSUBSS (DI), X1, X1 \
	VFMADD231SS X1, X1, X0 \
	ADDQ $4, SI \
	ADDQ $4, DI \
	DECQ CX \
	JMP  l2Tail \
l2Done:

// func dotAVX2(a, b []float32) float32
TEXT ·dotAVX2(SB), NOSPLIT, $0-52
	MOVQ a_base+0(FP), SI
	MOVQ a_len+8(FP), CX
	MOVQ b_base+24(FP), DI
	DOT
	VZEROUPPER
	MOVSS X0, ret+48(FP)
	RET

// func l2AVX2(a, b []float32) float32
TEXT ·l2AVX2(SB), NOSPLIT, $0-52
	MOVQ a_base+0(FP), SI
	MOVQ a_len+8(FP), CX
	MOVQ b_base+24(FP), DI
	L2
	VZEROUPPER
	MOVSS X0, ret+48(FP)
	RET

// func dotBatchAVX2(q, rows, out []float32): the rows follow one another, so DI walks on from
// one row into the next.
TEXT ·dotBatchAVX2(SB), NOSPLIT, $0-72
	MOVQ q_base+0(FP), R8
	MOVQ q_len+8(FP), R9
	MOVQ rows_base+24(FP), DI
	MOVQ out_base+48(FP), R10
	MOVQ out_len+56(FP), R11
dotRow:
	CMPQ R11, $0
	JE   dotEnd
	MOVQ R8, SI
	MOVQ R9, CX
	DOT
	VMOVSS X0, (R10)
	ADDQ $4, R10
	DECQ R11
	JMP  dotRow
dotEnd:
	VZEROUPPER
	RET

// func l2BatchAVX2(q, rows, out []float32)
TEXT ·l2BatchAVX2(SB), NOSPLIT, $0-72
	MOVQ q_base+0(FP), R8
	MOVQ q_len+8(FP), R9
	MOVQ rows_base+24(FP), DI
	MOVQ out_base+48(FP), R10
	MOVQ out_len+56(FP), R11
l2Row:
	CMPQ R11, $0
	JE   l2End
	MOVQ R8, SI
	MOVQ R9, CX
	L2
	VMOVSS X0, (R10)
	ADDQ $4, R10
	DECQ R11
	JMP  l2Row
l2End:
	VZEROUPPER
	RET
