package distance

import (
	"math"
	"math/rand/v2"
	"testing"
)

// ref64 are the references: the same sums in float64.
func dot64(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

func l264(a, b []float32) float64 {
	var s float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		s += d * d
	}
	return s
}

func randVec(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

// close reports whether got is within float32 rounding of want, relative to the magnitude of
// the terms summed (mag).
func close(got float32, want, mag float64) bool {
	return math.Abs(float64(got)-want) <= 1e-5*(mag+1)
}

type kernels struct {
	name     string
	dot, l2  func(a, b []float32) float32
	dotBatch func(q, rows, out []float32)
	l2Batch  func(q, rows, out []float32)
}

// each returns the kernels to check here: the plain-Go ones always, and the ones in use when
// they are something else (the assembly on a CPU with AVX2), so that both are tested on their own.
func each() []kernels {
	ks := []kernels{{"go", DotGo, L2Go,
		func(q, rows, out []float32) { batchGo(DotGo, q, rows, out) },
		func(q, rows, out []float32) { batchGo(L2Go, q, rows, out) }}}
	if Kernel != "go" {
		ks = append(ks, kernels{Kernel, Dot, L2, DotBatch, L2Batch})
	}
	return ks
}

// TestKernelsMatchFloat64: every kernel, at every length from 0 to 300 (each path of the
// assembly: 32 at a time, 8 at a time, single floats), agrees with a float64 sum.
func TestKernelsMatchFloat64(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, k := range each() {
		for n := 0; n <= 300; n++ {
			a, b := randVec(r, n), randVec(r, n)
			mag := dot64(a, a) + dot64(b, b)
			if got, want := k.dot(a, b), dot64(a, b); !close(got, want, mag) {
				t.Fatalf("%s dot, n=%d: %v, want %v", k.name, n, got, want)
			}
			if got, want := k.l2(a, b), l264(a, b); !close(got, want, mag) {
				t.Fatalf("%s l2, n=%d: %v, want %v", k.name, n, got, want)
			}
		}
	}
}

// TestBatchesMatchOneByOne: the batch kernels score each row as the single kernels do, and
// write nothing past len(out).
func TestBatchesMatchOneByOne(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, k := range each() {
		for _, dim := range []int{1, 7, 8, 31, 32, 33, 128, 784} {
			for _, n := range []int{0, 1, 5, 17} {
				q, rows := randVec(r, dim), randVec(r, dim*n)
				out := make([]float32, n+1)
				out[n] = 42
				k.dotBatch(q, rows, out[:n])
				for i := range n {
					row := rows[i*dim : (i+1)*dim]
					if want := dot64(q, row); !close(out[i], want, dot64(q, q)+dot64(row, row)) {
						t.Fatalf("%s dot batch dim %d row %d: %v, want %v", k.name, dim, i, out[i], want)
					}
				}
				k.l2Batch(q, rows, out[:n])
				for i := range n {
					row := rows[i*dim : (i+1)*dim]
					if want := l264(q, row); !close(out[i], want, dot64(q, q)+dot64(row, row)) {
						t.Fatalf("%s l2 batch dim %d row %d: %v, want %v", k.name, dim, i, out[i], want)
					}
				}
				if out[n] != 42 {
					t.Fatalf("%s: a batch of %d wrote past its end", k.name, n)
				}
			}
		}
	}
}

// TestLongerSecondVector: b may be longer than a; only len(a) values count.
func TestLongerSecondVector(t *testing.T) {
	a := []float32{1, 2, 3}
	b := []float32{1, 1, 1, 100, 100}
	for _, k := range each() {
		if got := k.dot(a, b); got != 6 {
			t.Fatalf("%s: dot %v, want 6", k.name, got)
		}
		if got := k.l2(a, b); got != 5 {
			t.Fatalf("%s: l2 %v, want 5", k.name, got)
		}
	}
}

func BenchmarkKernels(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, dim := range []int{128, 784} {
		const n = 4096
		q, rows := randVec(r, dim), randVec(r, dim*n)
		out := make([]float32, n)
		for _, k := range each() {
			b.Run(k.name+"/l2batch/"+itoa(dim), func(b *testing.B) {
				b.SetBytes(int64(4 * dim * n))
				for b.Loop() {
					k.l2Batch(q, rows, out)
				}
			})
			b.Run(k.name+"/l2/"+itoa(dim), func(b *testing.B) {
				b.SetBytes(int64(4 * dim * n))
				for b.Loop() {
					for i := range n {
						out[i] = k.l2(q, rows[i*dim:(i+1)*dim])
					}
				}
			})
		}
	}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// TestSQ8KernelsMatchFloat64: both SQ8 kernels, plain Go and in use, at every length to 300.
func TestSQ8KernelsMatchFloat64(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	type sq8 struct {
		name string
		dot  func(q []float32, c []uint8) float32
		l2   func(q, step []float32, c []uint8) float32
	}
	ks := []sq8{{"go", SQ8DotGo, SQ8L2Go}}
	if Kernel != "go" {
		ks = append(ks, sq8{Kernel, SQ8Dot, SQ8L2})
	}
	for _, k := range ks {
		for n := 0; n <= 300; n++ {
			q, step := randVec(r, n), randVec(r, n)
			codes := make([]uint8, n+3) // longer than q: only len(q) count
			for i := range codes {
				codes[i] = uint8(r.IntN(256))
			}
			var dot, l2, mag float64
			for i := range n {
				c := float64(codes[i])
				dot += float64(q[i]) * c
				d := float64(q[i]) - float64(step[i])*c
				l2 += d * d
				mag += math.Abs(float64(q[i])*c) + d*d
			}
			if got := k.dot(q, codes); !close(got, dot, mag) {
				t.Fatalf("%s sq8 dot, n=%d: %v, want %v", k.name, n, got, dot)
			}
			if got := k.l2(q, step, codes); !close(got, l2, mag) {
				t.Fatalf("%s sq8 l2, n=%d: %v, want %v", k.name, n, got, l2)
			}
		}
	}
}
