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

// func sq8DotAVX2(q []float32, codes []uint8) float32: SI walks q, DI the codes (a byte a value).
TEXT ·sq8DotAVX2(SB), NOSPLIT, $0-52
	MOVQ q_base+0(FP), SI
	MOVQ q_len+8(FP), CX
	MOVQ codes_base+24(FP), DI
	ZERO4
sqd32:
	CMPQ CX, $32
	JL   sqd8
	VPMOVZXBD (DI), Y4
	VPMOVZXBD 8(DI), Y5
	VPMOVZXBD 16(DI), Y6
	VPMOVZXBD 24(DI), Y7
	VCVTDQ2PS Y4, Y4
	VCVTDQ2PS Y5, Y5
	VCVTDQ2PS Y6, Y6
	VCVTDQ2PS Y7, Y7
	VFMADD231PS (SI), Y4, Y0
	VFMADD231PS 32(SI), Y5, Y1
	VFMADD231PS 64(SI), Y6, Y2
	VFMADD231PS 96(SI), Y7, Y3
	ADDQ $128, SI
	ADDQ $32, DI
	SUBQ $32, CX
	JMP  sqd32
sqd8:
	CMPQ CX, $8
	JL   sqd1
	VPMOVZXBD (DI), Y4
	VCVTDQ2PS Y4, Y4
	VFMADD231PS (SI), Y4, Y0
	ADDQ $32, SI
	ADDQ $8, DI
	SUBQ $8, CX
	JMP  sqd8
sqd1:
	REDUCE
sqdTail:
	CMPQ CX, $0
	JE   sqdDone
	MOVBLZX (DI), AX
	VCVTSI2SSL AX, X1, X1
	VFMADD231SS (SI), X1, X0
	ADDQ $4, SI
	INCQ DI
	DECQ CX
	JMP  sqdTail
sqdDone:
	VZEROUPPER
	MOVSS X0, ret+48(FP)
	RET

// func sq8L2AVX2(q, step []float32, codes []uint8) float32: SI walks q, DX step, DI the codes;
// each difference is q − step·code by one negated FMA.
TEXT ·sq8L2AVX2(SB), NOSPLIT, $0-76
	MOVQ q_base+0(FP), SI
	MOVQ q_len+8(FP), CX
	MOVQ step_base+24(FP), DX
	MOVQ codes_base+48(FP), DI
	ZERO4
sql16:
	CMPQ CX, $16
	JL   sql8
	VPMOVZXBD (DI), Y4
	VPMOVZXBD 8(DI), Y5
	VCVTDQ2PS Y4, Y4
	VCVTDQ2PS Y5, Y5
	VMOVUPS (SI), Y6
	VMOVUPS 32(SI), Y7
	VFNMADD231PS (DX), Y4, Y6
	VFNMADD231PS 32(DX), Y5, Y7
	VFMADD231PS Y6, Y6, Y0
	VFMADD231PS Y7, Y7, Y1
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $16, DI
	SUBQ $16, CX
	JMP  sql16
sql8:
	CMPQ CX, $8
	JL   sql1
	VPMOVZXBD (DI), Y4
	VCVTDQ2PS Y4, Y4
	VMOVUPS (SI), Y6
	VFNMADD231PS (DX), Y4, Y6
	VFMADD231PS Y6, Y6, Y2
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $8, DI
	SUBQ $8, CX
	JMP  sql8
sql1:
	REDUCE
sqlTail:
	CMPQ CX, $0
	JE   sqlDone
	MOVBLZX (DI), AX
	VCVTSI2SSL AX, X1, X1
	VMOVSS (SI), X2
	VFNMADD231SS (DX), X1, X2
	VFMADD231SS X2, X2, X0
	ADDQ $4, SI
	ADDQ $4, DX
	INCQ DI
	DECQ CX
	JMP  sqlTail
sqlDone:
	VZEROUPPER
	MOVSS X0, ret+72(FP)
	RET

// func Prefetch(p unsafe.Pointer)
TEXT ·Prefetch(SB), NOSPLIT, $0-8
	MOVQ p+0(FP), AX
	PREFETCHT0 (AX)
	PREFETCHT0 64(AX)
	RET
