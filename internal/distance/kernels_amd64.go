package distance

import (
	"os"
	"unsafe"

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

// Prefetch asks the CPU to bring the first two cache lines at p into its caches: a graph search
// calls it for the rows it is about to score, so that their memory latency overlaps the work on
// the rows before them.
//
//go:noescape
func Prefetch(p unsafe.Pointer)

//go:noescape
func sq8DotAVX2(q []float32, codes []uint8) float32

//go:noescape
func sq8L2AVX2(q, step []float32, codes []uint8) float32

func init() {
	if !cpu.X86.HasAVX2 || !cpu.X86.HasFMA || os.Getenv(ForceGo) != "" {
		return
	}
	Kernel, dotK, l2K = "avx2", dotAVX2, l2AVX2
	dotBatch = func(q, rows, out []float32) { dotBatchAVX2(q, rows[:len(out)*len(q)], out) }
	l2Batch = func(q, rows, out []float32) { l2BatchAVX2(q, rows[:len(out)*len(q)], out) }
	sq8Dot = func(q []float32, codes []uint8) float32 { return sq8DotAVX2(q, codes[:len(q)]) }
	sq8L2 = func(q, step []float32, codes []uint8) float32 {
		return sq8L2AVX2(q, step[:len(q)], codes[:len(q)])
	}
}
