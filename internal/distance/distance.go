// Package distance holds the float32 kernels every vector search in Weir runs: the inner product
// and the squared Euclidean distance of two vectors, one against many, and their AVX2/FMA
// assembly on amd64. The kernel is chosen once at start-up from what the CPU reports; the plain-Go
// kernels are the fallback and are tested on their own (and beside the assembly) wherever they
// run.
package distance

// Dot returns the inner product of a and b (len(b) ≥ len(a)). Small enough to inline: a graph
// search calls it once per row it reaches, and at 128 dimensions a call through a function
// value costs a tenth of the kernel.
func Dot(a, b []float32) float32 {
	b = b[:len(a)] // the assembly reads len(a) values of b
	return dotK(a, b)
}

// L2 returns the squared Euclidean distance of a and b (len(b) ≥ len(a)), as Dot.
func L2(a, b []float32) float32 {
	b = b[:len(a)]
	return l2K(a, b)
}

// DotBatch writes to out[i] the inner product of q with the i-th of len(out) rows of len(q)
// values each, stored one after another in rows.
func DotBatch(q, rows []float32, out []float32) { dotBatch(q, rows, out) }

// L2Batch writes to out[i] the squared Euclidean distance of q to the i-th row of rows, as
// DotBatch.
func L2Batch(q, rows []float32, out []float32) { l2Batch(q, rows, out) }

// The kernels in use, set by init from the CPU's features (kernels_amd64.go).
var (
	dotK     = DotGo // the kernels themselves: the assembly, with no wrapper between
	l2K      = L2Go
	dotBatch = func(q, rows, out []float32) { batchGo(DotGo, q, rows, out) }
	l2Batch  = func(q, rows, out []float32) { batchGo(L2Go, q, rows, out) }
)

// Kernel names the kernels in use: "avx2" or "go".
var Kernel = "go"

// ForceGo is the environment variable that, set to anything at start-up, keeps the plain-Go
// kernels on a CPU that has AVX2: to compare them, or to rule the assembly out.
const ForceGo = "WEIR_GO_KERNELS"

// batchGo scores q against each row with f.
func batchGo(f func(a, b []float32) float32, q, rows, out []float32) {
	d := len(q)
	rows = rows[:len(out)*d]
	for i := range out {
		out[i] = f(q, rows[i*d:(i+1)*d])
	}
}

// DotGo is the plain-Go inner product: eight running sums on slices whose bounds the compiler
// can see, which drops its bounds checks (about 15% faster than four sums with checks on 128-dim
// rows).
func DotGo(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	i := 0
	for ; i+8 <= len(a); i += 8 {
		x, y := a[i:i+8:i+8], b[i:i+8:i+8]
		s0 += x[0] * y[0]
		s1 += x[1] * y[1]
		s2 += x[2] * y[2]
		s3 += x[3] * y[3]
		s4 += x[4] * y[4]
		s5 += x[5] * y[5]
		s6 += x[6] * y[6]
		s7 += x[7] * y[7]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3) + (s4 + s5) + (s6 + s7)
}

// L2Go is the plain-Go squared Euclidean distance, as DotGo.
func L2Go(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	i := 0
	for ; i+8 <= len(a); i += 8 {
		x, y := a[i:i+8:i+8], b[i:i+8:i+8]
		d0, d1, d2, d3 := x[0]-y[0], x[1]-y[1], x[2]-y[2], x[3]-y[3]
		d4, d5, d6, d7 := x[4]-y[4], x[5]-y[5], x[6]-y[6], x[7]-y[7]
		s0 += d0 * d0
		s1 += d1 * d1
		s2 += d2 * d2
		s3 += d3 * d3
		s4 += d4 * d4
		s5 += d5 * d5
		s6 += d6 * d6
		s7 += d7 * d7
	}
	for ; i < len(a); i++ {
		d := a[i] - b[i]
		s0 += d * d
	}
	return (s0 + s1) + (s2 + s3) + (s4 + s5) + (s6 + s7)
}
