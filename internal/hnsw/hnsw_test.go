package hnsw

import (
	"bytes"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/bits-and-blooms/bitset"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/weir-db/weir/internal/hugepage/hugepagetest"
	"github.com/weir-db/weir/internal/vecdata"
	"github.com/weir-db/weir/internal/vsearch"
)

var metrics = []struct{ m, vm Metric }{{L2, L2}, {IP, IP}, {COSINE, COSINE}}

// clustered returns n rows of dim values around centres centres.
func clustered(seed uint64, n, dim, centres int) []float32 {
	return vecdata.Clustered(seed, seed, n, dim, centres, 10)
}

// TestFindsEachRowsNearest: for every indexed row as a query, the graph's best hit scores as
// exact search's best, to float32 rounding (under L2 and COSINE that is the row itself).
func TestFindsEachRowsNearest(t *testing.T) {
	const n, dim = 3000, 24
	vecs := clustered(7, n, dim, 20)
	for _, c := range metrics {
		g, err := Build(c.m, vecs, dim, Params{M: 16, EfConstruction: 100, Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			q := vecs[i*dim : (i+1)*dim]
			hits, err := g.Search(q, 1, 64, nil)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := vsearch.Search(c.vm, vecs, dim, q, 1, nil)
			if len(hits) != 1 || c.vm.Score(q, vecs[hits[0].Row*dim:][:dim]) != want[0].Score {
				t.Fatalf("%s: row %d: found %v, exact search %v", c.vm, i, hits, want)
			}
		}
	}
}

// TestFilteredSearchReturnsOnlyAllowedRows: whatever rows are allowed (a deleted row is one not
// allowed), the graph returns only allowed rows, as many as asked for when enough are allowed,
// and no row twice.
func TestFilteredSearchReturnsOnlyAllowedRows(t *testing.T) {
	const n, dim = 1500, 16
	vecs := clustered(11, n, dim, 10)
	graphs := map[Metric]*Graph{}
	for _, c := range metrics {
		g, err := Build(c.m, vecs, dim, Params{M: 8, EfConstruction: 64, Seed: 5})
		if err != nil {
			t.Fatal(err)
		}
		graphs[c.m] = g
	}
	rapid.Check(t, func(t *rapid.T) {
		c := rapid.SampledFrom(metrics).Draw(t, "metric")
		keep := rapid.Float64Range(0, 1).Draw(t, "selectivity")
		r := rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 2))
		allow := bitset.New(n)
		for i := range n {
			if r.Float64() < keep {
				allow.Set(uint(i))
			}
		}
		k := rapid.IntRange(1, 50).Draw(t, "k")
		q := vecs[r.IntN(n)*dim:][:dim]
		hits, err := graphs[c.m].Search(q, k, rapid.IntRange(1, 100).Draw(t, "ef"), allow)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[int]bool{}
		for _, h := range hits {
			if !allow.Test(uint(h.Row)) {
				t.Fatalf("row %d is not allowed", h.Row)
			}
			if seen[h.Row] {
				t.Fatalf("row %d twice", h.Row)
			}
			seen[h.Row] = true
		}
		if len(hits) > k {
			t.Fatalf("%d hits for k %d", len(hits), k)
		}
	})
}

// TestBuildIsDeterministic: the same rows, parameters and seed give the same graph byte for
// byte; another seed gives another graph.
func TestBuildIsDeterministic(t *testing.T) {
	const n, dim = 2000, 16
	vecs := clustered(13, n, dim, 8)
	enc := func(seed uint64) []byte {
		g, err := Build(COSINE, vecs, dim, Params{M: 12, EfConstruction: 80, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := g.AppendBinary(nil)
		return b
	}
	a, b, c := enc(1), enc(1), enc(2)
	if !bytes.Equal(a, b) {
		t.Fatal("two builds with seed 1 differ")
	}
	if bytes.Equal(a, c) {
		t.Fatal("builds with seeds 1 and 2 are the same")
	}
}

// TestSaveLoadSearchIsIdentical: a graph decoded from its encoding answers every query as the
// built one, and encodes to the same bytes.
func TestSaveLoadSearchIsIdentical(t *testing.T) {
	const n, dim = 2500, 20
	vecs := clustered(17, n, dim, 12)
	queries := clustered(19, 200, dim, 12)
	for _, c := range metrics {
		g, err := Build(c.m, vecs, dim, Params{M: 10, EfConstruction: 60, Seed: 9})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := g.AppendBinary(nil)
		h, err := Decode(b, c.m, vecs, dim)
		if err != nil {
			t.Fatal(err)
		}
		if b2, _ := h.AppendBinary(nil); !bytes.Equal(b, b2) {
			t.Fatalf("%s: the decoded graph encodes differently", c.vm)
		}
		for i := range 200 {
			q := queries[i*dim : (i+1)*dim]
			x, _ := g.Search(q, 10, 32, nil)
			y, _ := h.Search(q, 10, 32, nil)
			if len(x) != len(y) {
				t.Fatalf("%s: %d hits, then %d", c.vm, len(x), len(y))
			}
			for j := range x {
				if x[j] != y[j] {
					t.Fatalf("%s: query %d hit %d: %v, then %v", c.vm, i, j, x[j], y[j])
				}
			}
		}
	}
}

// TestDecodeNeverPanics: truncated encodings are refused, and an encoding with bytes changed
// either is refused or decodes to a graph that searches without panicking (the file's checksum
// is what refuses corruption; this is the defence behind it).
func TestDecodeNeverPanics(t *testing.T) {
	const n, dim = 300, 8
	vecs := clustered(23, n, dim, 4)
	g, err := Build(L2, vecs, dim, Params{M: 4, EfConstruction: 20, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := g.AppendBinary(nil)
	for cut := 0; cut < len(enc); cut += max(1, len(enc)/97) {
		if _, err := Decode(enc[:cut], L2, vecs, dim); err == nil {
			t.Fatalf("an encoding cut at %d of %d bytes decoded", cut, len(enc))
		}
	}
	if _, err := Decode(enc, L2, vecs[:dim*(n-1)], dim); err == nil {
		t.Fatal("a graph of 300 rows decoded over 299")
	}
	rapid.Check(t, func(t *rapid.T) {
		b := bytes.Clone(enc)
		for range rapid.IntRange(1, 8).Draw(t, "changes") {
			i := rapid.IntRange(0, len(b)-1).Draw(t, "at")
			b[i] = rapid.Byte().Draw(t, "to")
		}
		h, err := Decode(b, L2, vecs, dim)
		if err != nil {
			return
		}
		for i := range 10 {
			if _, err := h.Search(vecs[i*dim:(i+1)*dim], 5, 16, nil); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestEmptyAndTinyGraphs: no rows, one row, fewer rows than k.
func TestEmptyAndTinyGraphs(t *testing.T) {
	g, err := Build(L2, nil, 4, Params{M: 16, EfConstruction: 10})
	if err != nil {
		t.Fatal(err)
	}
	if hits, err := g.Search([]float32{1, 2, 3, 4}, 10, 10, nil); err != nil || len(hits) != 0 {
		t.Fatalf("empty graph: %v, %v", hits, err)
	}
	b, _ := g.AppendBinary(nil)
	if _, err := Decode(b, L2, nil, 4); err != nil {
		t.Fatal(err)
	}
	vecs := []float32{0, 0, 1, 1, 5, 5}
	g, err = Build(L2, vecs, 2, Params{M: 2, EfConstruction: 1})
	if err != nil {
		t.Fatal(err)
	}
	hits, err := g.Search([]float32{4, 4}, 10, 1, nil)
	if err != nil || len(hits) != 3 || hits[0].Row != 2 || hits[0].Score != 2 {
		t.Fatalf("3 rows, k 10: %v, %v", hits, err)
	}
	if _, err := g.Search([]float32{1}, 1, 1, nil); err == nil {
		t.Fatal("a query of the wrong dimension was searched")
	}
}

// TestHugePagesLastWhileTheGraphLives: a graph asks for huge pages under the rows it borrows
// and its layer-0 lists, and gives the advice back once it is unreachable, so that the heap's
// memory is not collapsed again under whatever comes there next.
func TestHugePagesLastWhileTheGraphLives(t *testing.T) {
	const dim = 128
	rows := hugepagetest.Rows(t, dim)
	g, err := Build(L2, rows, dim, Params{M: 4, EfConstruction: 8, Seed: 1})
	require.NoError(t, err)
	regions := g.huge
	hugepagetest.RequireAdvised(t, regions[0])
	require.Zero(t, regions[1].Len(), "links0 of 40,960 × 9 slots is below hugepage.MinBytes")

	runtime.KeepAlive(g)
	g = nil
	hugepagetest.RequireReleased(t, regions[0], "graph")
	runtime.KeepAlive(rows)
}
