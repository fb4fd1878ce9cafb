package distance

import (
	"os"

	"golang.org/x/sys/cpu"
)

// The assembly of kernels_amd64.s. Each takes slices the Go wrappers below have checked.
//
//go:noescape
func dotAVX2(a, b []float32) float32

//go:noescape
func l2AVX2(a, b []float32) float32

//go:noescape
func dotBatchAVX2(q, rows, out []float32)

//go:noescape
func l2BatchAVX2(q, rows, out []float32)

//go:noescape
func sq8DotAVX2(q []float32, codes []uint8) float32

//go:noescape
func sq8L2AVX2(q, step []float32, codes []uint8) float32

func init() {
	if !cpu.X86.HasAVX2 || !cpu.X86.HasFMA || os.Getenv(ForceGo) != "" {
		return
	}
	Kernel = "avx2"
	dot = func(a, b []float32) float32 { return dotAVX2(a, b[:len(a)]) }
	l2 = func(a, b []float32) float32 { return l2AVX2(a, b[:len(a)]) }
	dotBatch = func(q, rows, out []float32) { dotBatchAVX2(q, rows[:len(out)*len(q)], out) }
	l2Batch = func(q, rows, out []float32) { l2BatchAVX2(q, rows[:len(out)*len(q)], out) }
	sq8Dot = func(q []float32, codes []uint8) float32 { return sq8DotAVX2(q, codes[:len(q)]) }
	sq8L2 = func(q, step []float32, codes []uint8) float32 {
		return sq8L2AVX2(q, step[:len(q)], codes[:len(q)])
	}
}
