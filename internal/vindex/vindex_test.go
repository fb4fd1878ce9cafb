package vindex

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/bits-and-blooms/bitset"
	"pgregory.net/rapid"

	"github.com/weir-db/weir/internal/vecdata"
	"github.com/weir-db/weir/internal/vsearch"
)

var metrics = []vsearch.Metric{vsearch.L2, vsearch.IP, vsearch.COSINE}

func specs(m vsearch.Metric) []Spec {
	return []Spec{
		{Type: Flat, Metric: m},
		{Type: HNSW, Metric: m, M: 12, EfConstruction: 80},
		{Type: IVFFlat, Metric: m, Nlist: 16},
		{Type: IVFSQ8, Metric: m, Nlist: 16},
	}
}

// clustered returns n rows of dim values around centres centres.
func clustered(seed uint64, n, dim, centres int) []float32 {
	return vecdata.Clustered(seed, seed, n, dim, centres, 10)
}

func build(t testing.TB, s Spec, vecs []float32, dim int) *Index {
	ix, err := Build(s, vecs, dim, 1)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

// TestEachTypeFindsEachRowsNearest: for every indexed row as a query, every type's best hit
// scores as exact search's best (to float32 rounding).
func TestEachTypeFindsEachRowsNearest(t *testing.T) {
	const n, dim = 2000, 16
	vecs := clustered(3, n, dim, 16)
	for _, m := range metrics {
		for _, s := range specs(m) {
			ix := build(t, s, vecs, dim)
			for i := range n {
				q := vecs[i*dim : (i+1)*dim]
				hits, err := ix.Search(q, 1, SearchParams{Ef: 64, Nprobe: 4}, nil, -1)
				if err != nil {
					t.Fatal(err)
				}
				want, _ := vsearch.Search(m, vecs, dim, q, 1, nil)
				if len(hits) != 1 || !near(m.Score(q, vecs[hits[0].Row*dim:][:dim]), want[0].Score) {
					t.Fatalf("%s %s: row %d: found %v, exact %v", s.Type, m, i, hits, want)
				}
			}
		}
	}
}

func near(a, b float32) bool {
	d := a - b
	if d < 0 {
		d = -d
	}
	return d <= 1e-5*(1+max(a, -a, b, -b))
}

// TestSearchReturnsOnlyAllowedRows: whatever rows a read may see (the filter's and the visible
// ones: a deleted row is one it may not), no type returns another row, nor one twice, nor more
// than k; with at least k rows allowed an exact search (below ExactBelow) returns k.
func TestSearchReturnsOnlyAllowedRows(t *testing.T) {
	const n, dim = 3000, 12
	vecs := clustered(5, n, dim, 10)
	var all []*Index
	for _, m := range metrics {
		for _, s := range specs(m) {
			all = append(all, build(t, s, vecs, dim))
		}
	}
	rapid.Check(t, func(t *rapid.T) {
		ix := rapid.SampledFrom(all).Draw(t, "index")
		// Selectivities on both sides of ExactBelow.
		keep := rapid.SampledFrom([]float64{0.0005, 0.003, 0.009, 0.02, 0.3, 0.9}).Draw(t, "selectivity")
		r := rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 2))
		allow := bitset.New(n)
		for i := range n {
			if r.Float64() < keep {
				allow.Set(uint(i))
			}
		}
		k := rapid.IntRange(1, 40).Draw(t, "k")
		q := clustered(r.Uint64(), 1, dim, 1)
		hits, err := ix.Search(q, k, SearchParams{Ef: rapid.IntRange(1, 80).Draw(t, "ef"), Nprobe: rapid.IntRange(1, 16).Draw(t, "nprobe")}, allow, int(allow.Count()))
		if err != nil {
			t.Fatal(err)
		}
		seen := map[int]bool{}
		for _, h := range hits {
			if !allow.Test(uint(h.Row)) || seen[h.Row] {
				t.Fatalf("%s: row %d returned (allowed %v, twice %v)", ix.spec.Type, h.Row, allow.Test(uint(h.Row)), seen[h.Row])
			}
			seen[h.Row] = true
		}
		allowed := int(allow.Count())
		if len(hits) > k || float64(allowed) < ExactBelow*n && len(hits) != min(k, allowed) {
			t.Fatalf("%s: %d hits for k %d with %d rows allowed", ix.spec.Type, len(hits), k, allowed)
		}
	})
}

// TestFileRoundTripSearchesIdentically: every built type, encoded and decoded over the same
// rows, answers every query as before, and encodes to the same bytes.
func TestFileRoundTripSearchesIdentically(t *testing.T) {
	const n, dim = 1500, 10
	vecs := clustered(7, n, dim, 8)
	queries := clustered(8, 100, dim, 8)
	for _, m := range metrics {
		for _, s := range specs(m)[1:] {
			ix := build(t, s, vecs, dim)
			h := Header{Collection: 1, Segment: 2, Field: 101, IndexID: 3, Seed: 1}
			b, err := Encode(h, ix)
			if err != nil {
				t.Fatal(err)
			}
			back, got, err := Decode(b, vecs, dim)
			if err != nil {
				t.Fatalf("%s %s: %v", s.Type, m, err)
			}
			if got.Segment != 2 || got.Rows != n || got.Dim != dim || got.Spec != s {
				t.Fatalf("header %+v", got)
			}
			if b2, _ := Encode(h, back); !bytes.Equal(b, b2) {
				t.Fatalf("%s %s: the decoded index encodes differently", s.Type, m)
			}
			for i := range 100 {
				q := queries[i*dim : (i+1)*dim]
				x, _ := ix.Search(q, 10, SearchParams{Ef: 32, Nprobe: 4}, nil, -1)
				y, _ := back.Search(q, 10, SearchParams{Ef: 32, Nprobe: 4}, nil, -1)
				if len(x) != len(y) {
					t.Fatalf("%s %s: %d hits, then %d", s.Type, m, len(x), len(y))
				}
				for j := range x {
					if x[j] != y[j] {
						t.Fatalf("%s %s: query %d: %v, then %v", s.Type, m, i, x[j], y[j])
					}
				}
			}
		}
	}
}

// TestCorruptOrTruncatedFilesAreRefused: a file with any one byte changed, or cut anywhere, or
// decoded over other rows, is refused with an error; none decodes.
func TestCorruptOrTruncatedFilesAreRefused(t *testing.T) {
	const n, dim = 200, 8
	vecs := clustered(9, n, dim, 4)
	for _, s := range specs(vsearch.L2)[1:] {
		b, err := Encode(Header{Segment: 1}, build(t, s, vecs, dim))
		if err != nil {
			t.Fatal(err)
		}
		for i := range b {
			c := bytes.Clone(b)
			c[i] ^= 1 << (i % 8)
			if _, _, err := Decode(c, vecs, dim); err == nil {
				t.Fatalf("%s: byte %d of %d changed, and the file decoded", s.Type, i, len(b))
			}
		}
		for cut := range len(b) {
			if _, _, err := Decode(b[:cut], vecs, dim); err == nil {
				t.Fatalf("%s: cut at %d of %d, and the file decoded", s.Type, cut, len(b))
			}
		}
		if _, _, err := Decode(b, vecs[:len(vecs)-dim], dim); err == nil {
			t.Fatalf("%s: decoded over one row fewer", s.Type)
		}
	}
}

// TestBuildsAreDeterministic: the same rows, spec and seed give the same file.
func TestBuildsAreDeterministic(t *testing.T) {
	const n, dim = 1000, 8
	vecs := clustered(11, n, dim, 6)
	for _, s := range specs(vsearch.COSINE)[1:] {
		enc := func(seed uint64) []byte {
			ix, err := Build(s, vecs, dim, seed)
			if err != nil {
				t.Fatal(err)
			}
			b, err := Encode(Header{Seed: seed}, ix)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		if !bytes.Equal(enc(4), enc(4)) {
			t.Fatalf("%s: two builds with one seed differ", s.Type)
		}
		if bytes.Equal(enc(4), enc(5)) {
			t.Fatalf("%s: two seeds built the same index", s.Type)
		}
	}
}
