package vindex

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/vsearch"
)

// TestParseBuildAsKnowhere: defaults, AUTOINDEX's mapping, and knowhere's words for a value
// out of range, not a number, or with a fractional part; numbers in the params object as written.
func TestParseBuildAsKnowhere(t *testing.T) {
	s, err := ParseBuild(map[string]string{"index_type": "HNSW"})
	require.NoError(t, err)
	require.Equal(t, Spec{Type: HNSW, Metric: vsearch.COSINE, M: DefaultM, EfConstruction: DefaultEfConstruction}, s)
	s, err = ParseBuild(map[string]string{"index_type": "AUTOINDEX", "metric_type": "l2"})
	require.NoError(t, err)
	require.Equal(t, Spec{Type: HNSW, Metric: vsearch.L2, M: AutoM, EfConstruction: AutoEfConstruction, Auto: true}, s)
	s, err = ParseBuild(Flatten(map[string]string{"index_type": "HNSW", "params": `{"M": 16, "efConstruction": 1000000}`}))
	require.NoError(t, err, "1000000 is in range, however JSON spells numbers")
	require.Equal(t, 1000000, s.EfConstruction)
	for params, want := range map[string]string{
		`{"index_type": "HNSW", "M": "4096"}`:               "Out of range in json: param 'M' (4096) should be in range [2, 2048]",
		`{"index_type": "HNSW", "M": "abc"}`:                "invalid integer value, key: 'M', value: 'abc'",
		`{"index_type": "HNSW", "M": "16.0"}`:               "wrong data type in json, key: 'M', value: '16.0'",
		`{"index_type": "HNSW", "refine": "true"}`:          "refine is not supported for this index",
		`{"index_type": "IVF_FLAT", "nlist": "0"}`:          "Out of range in json: param 'nlist' (0) should be in range [1, 65536]",
		`{"index_type": "IVF_SQ8", "nlist": "99999999999"}`: "integer value out of range, key: 'nlist', value: '99999999999'",
		`{"index_type": "FLAT", "metric_type": "HAMMING"}`:  "metric type HAMMING not found or not supported, supported: [L2 IP COSINE]",
	} {
		var m map[string]string
		require.NoError(t, json.Unmarshal([]byte(params), &m))
		_, err := ParseBuild(m)
		require.EqualError(t, err, want, params)
	}
}

// TestParseSearchAsKnowhere: ef at least k (max(k, 16) when absent; 64 for AUTOINDEX), nprobe
// within [1, 65536] and at most nlist, integers as knowhere takes them from JSON.
func TestParseSearchAsKnowhere(t *testing.T) {
	hnsw := Spec{Type: HNSW, M: 16, EfConstruction: 200}
	decode := func(s string) map[string]any {
		d := json.NewDecoder(strings.NewReader(s))
		d.UseNumber()
		var m map[string]any
		require.NoError(t, d.Decode(&m))
		return m
	}
	sp, err := ParseSearch(hnsw, nil, 10)
	require.NoError(t, err)
	require.Equal(t, 16, sp.Ef)
	sp, err = ParseSearch(hnsw, nil, 40)
	require.NoError(t, err)
	require.Equal(t, 40, sp.Ef)
	sp, err = ParseSearch(Spec{Type: HNSW, Auto: true}, nil, 10)
	require.NoError(t, err)
	require.Equal(t, AutoEf, sp.Ef)
	sp, err = ParseSearch(hnsw, decode(`{"ef": "32"}`), 10)
	require.NoError(t, err)
	require.Equal(t, 32, sp.Ef, "a string holding an integer is taken")
	sp, err = ParseSearch(Spec{Type: IVFFlat, Nlist: 64}, decode(`{"nprobe": 1000}`), 10)
	require.NoError(t, err)
	require.Equal(t, 64, sp.Nprobe, "more than nlist searches every list")
	for params, want := range map[string]string{
		`{"ef": 5}`:          "ef(5) should be larger than k(10)",
		`{"ef": 0}`:          "Out of range in json: param 'ef' (0) should be in range [1, 2147483647]",
		`{"ef": 64.0}`:       "Type conflict in json: param 'ef' (64.0) should be integer",
		`{"ef": 1e300}`:      "Type conflict in json: param 'ef' (1e300) should be integer",
		`{"ef": 3000000000}`: "Out of range in json: param 'ef' (3000000000) should be in range [1, 2147483647]",
		`{"ef": true}`:       "Type conflict in json: param 'ef' (true) should be integer",
		`{"ef": "x"}`:        "invalid integer value, key: 'ef', value: 'x'",
	} {
		_, err := ParseSearch(hnsw, decode(params), 10)
		require.EqualError(t, err, want, params)
	}
	_, err = ParseSearch(Spec{Type: IVFSQ8, Nlist: 8}, decode(`{"nprobe": 70000}`), 10)
	require.EqualError(t, err, "Out of range in json: param 'nprobe' (70000) should be in range [1, 65536]")
}
