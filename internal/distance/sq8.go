package distance

// The kernels of 8-bit scalar quantization: a row is stored as one byte per dimension, value
// min_d + code_d·step_d. The caller folds the per-dimension constants into the query once per
// search, so that the kernels see only the query and the codes:
//   - the inner product q·x = Σ q_d·min_d + Σ (q_d·step_d)·code_d: SQ8Dot(q·step, codes);
//   - the squared distance ‖q − x‖² = Σ ((q_d − min_d) − step_d·code_d)²: SQ8L2(q − min, step, codes).

// SQ8Dot returns Σ q[d]·codes[d] (len(codes) ≥ len(q)).
func SQ8Dot(q []float32, codes []uint8) float32 { return sq8Dot(q, codes) }

// SQ8L2 returns Σ (q[d] − step[d]·codes[d])² (len(step), len(codes) ≥ len(q)).
func SQ8L2(q, step []float32, codes []uint8) float32 { return sq8L2(q, step, codes) }

var (
	sq8Dot = SQ8DotGo
	sq8L2  = SQ8L2Go
)

// SQ8DotGo is the plain-Go SQ8Dot.
func SQ8DotGo(q []float32, codes []uint8) float32 {
	codes = codes[:len(q)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(q); i += 4 {
		x, c := q[i:i+4:i+4], codes[i:i+4:i+4]
		s0 += x[0] * float32(c[0])
		s1 += x[1] * float32(c[1])
		s2 += x[2] * float32(c[2])
		s3 += x[3] * float32(c[3])
	}
	for ; i < len(q); i++ {
		s0 += q[i] * float32(codes[i])
	}
	return (s0 + s1) + (s2 + s3)
}

// SQ8L2Go is the plain-Go SQ8L2.
func SQ8L2Go(q, step []float32, codes []uint8) float32 {
	codes, step = codes[:len(q)], step[:len(q)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(q); i += 4 {
		x, st, c := q[i:i+4:i+4], step[i:i+4:i+4], codes[i:i+4:i+4]
		d0 := x[0] - st[0]*float32(c[0])
		d1 := x[1] - st[1]*float32(c[1])
		d2 := x[2] - st[2]*float32(c[2])
		d3 := x[3] - st[3]*float32(c[3])
		s0 += d0 * d0
		s1 += d1 * d1
		s2 += d2 * d2
		s3 += d3 * d3
	}
	for ; i < len(q); i++ {
		d := q[i] - step[i]*float32(codes[i])
		s0 += d * d
	}
	return (s0 + s1) + (s2 + s3)
}
