package batch

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// The word-at-a-time check finds exactly the values the one-at-a-time check finds, at any
// length and alignment, including the largest finite values and the subnormals around the
// exponent boundaries.
func TestNonFinite32MatchesScalar(t *testing.T) {
	specials := []float32{
		float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)),
		math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32, 0, float32(math.Copysign(0, -1)),
		math.Float32frombits(0x7fffffff), math.Float32frombits(0xff800001), math.Float32frombits(0x7f7fffff),
	}
	rapid.Check(t, func(t *rapid.T) {
		v := rapid.SliceOfN(rapid.Float32(), 0, 70).Draw(t, "v")
		if len(v) > 0 && rapid.Bool().Draw(t, "special") {
			v[rapid.IntRange(0, len(v)-1).Draw(t, "at")] = rapid.SampledFrom(specials).Draw(t, "which")
		}
		skip := rapid.IntRange(0, min(3, len(v))).Draw(t, "skip") // shifts the alignment
		v = v[skip:]
		require.Equal(t, nonFinite(v), nonFinite32(v), "%v", v)
	})
}

func TestNonFiniteKnown(t *testing.T) {
	require.Equal(t, -1, nonFinite32(nil))
	require.Equal(t, -1, nonFinite32([]float32{math.MaxFloat32, -math.MaxFloat32, 1, 2, 3, 4, 5, 6, 7, 8, 9}))
	require.Equal(t, 9, nonFinite32([]float32{0, 1, 2, 3, 4, 5, 6, 7, 8, float32(math.Inf(-1))}))
	require.Equal(t, 2, nonFinite([]float64{0, 1, math.NaN()}))
	require.Equal(t, -1, nonFinite16([]byte{0xff, 0x7b, 0x00, 0x3c}, 0x7c00), "65504 and 1 are finite float16s")
	require.Equal(t, 1, nonFinite16([]byte{0x00, 0x3c, 0x01, 0x7c}, 0x7c00), "0x7c01 is a float16 NaN")
}
