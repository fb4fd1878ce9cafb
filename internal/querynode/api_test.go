package querynode

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestWireKeepsEveryFloat: scores and query vectors cross the internal gRPC (JSON) exactly,
// infinities and NaN included, which plain JSON numbers cannot carry.
func TestWireKeepsEveryFloat(t *testing.T) {
	inf := float32(math.Inf(1))
	res := SearchResult{Hits: [][]Hit{{{IntKey: 7, Score: inf}, {StrKey: "a", Score: -0.5}, {IntKey: -1, Score: float32(math.Inf(-1))}}}}
	b, err := json.Marshal(res)
	require.NoError(t, err)
	var back SearchResult
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, res.Hits, back.Hits)

	req := SearchRequest{Vectors: Vectors{{1, inf, float32(math.NaN())}, {}}, K: 3}
	b, err = json.Marshal(req)
	require.NoError(t, err)
	var got SearchRequest
	require.NoError(t, json.Unmarshal(b, &got))
	require.Equal(t, float32(1), got.Vectors[0][0])
	require.True(t, math.IsInf(float64(got.Vectors[0][1]), 1))
	require.True(t, math.IsNaN(float64(got.Vectors[0][2])))
	require.Empty(t, got.Vectors[1])
	require.Equal(t, 3, got.K)
}
