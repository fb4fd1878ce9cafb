package vsearch

import (
	"math"
	"slices"
	"testing"

	"github.com/bits-and-blooms/bitset"
	"pgregory.net/rapid"
)

// TestSearchMatchesASort: the k best rows are those a full sort by score ranks first (allowed
// rows only), for every metric, on random vectors.
func TestSearchMatchesASort(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		dim := rapid.IntRange(1, 9).Draw(t, "dim")
		rows := rapid.IntRange(0, 60).Draw(t, "rows")
		val := rapid.Float32Range(-4, 4)
		vectors := make([]float32, rows*dim)
		for i := range vectors {
			vectors[i] = val.Draw(t, "v")
		}
		query := make([]float32, dim)
		for i := range query {
			query[i] = val.Draw(t, "q")
		}
		allow := bitset.New(uint(rows))
		for r := range rows {
			if rapid.Bool().Draw(t, "allow") {
				allow.Set(uint(r))
			}
		}
		k := rapid.IntRange(1, 70).Draw(t, "k")
		m := rapid.SampledFrom([]Metric{L2, IP, COSINE}).Draw(t, "metric")
		got, err := Search(m, vectors, dim, query, k, allow)
		if err != nil {
			t.Fatal(err)
		}
		var all []Hit
		for r := range rows {
			if allow.Test(uint(r)) {
				all = append(all, Hit{Row: r, Score: m.Score(query, vectors[r*dim:(r+1)*dim])})
			}
		}
		slices.SortFunc(all, func(x, y Hit) int {
			if better(m, x, y) {
				return -1
			}
			return 1
		})
		want := all[:min(k, len(all))]
		if !slices.Equal(got, want) {
			t.Fatalf("%s k=%d: got %v, want %v", m, k, got, want)
		}
	})
}

func TestScores(t *testing.T) {
	a, b := []float32{1, 2, 3, 4, 5}, []float32{2, 0, 1, 1, -1}
	if got := L2.Score(a, b); got != 1+4+4+9+36 {
		t.Fatalf("L2 %v", got)
	}
	if got := IP.Score(a, b); got != 2+0+3+4-5 {
		t.Fatalf("IP %v", got)
	}
	want := float32(4 / math.Sqrt(55*7))
	if got := COSINE.Score(a, b); math.Abs(float64(got-want)) > 1e-6 {
		t.Fatalf("COSINE %v, want %v", got, want)
	}
	if got := COSINE.Score(a, make([]float32, 5)); got != 0 {
		t.Fatalf("COSINE with a zero vector %v", got)
	}
	hits, err := Search(L2, []float32{0, 0, 1, 1, 0, 0}, 2, []float32{0, 0}, 2, nil)
	if err != nil || len(hits) != 2 || hits[0].Row != 0 || hits[1].Row != 2 {
		t.Fatalf("ties rank by row: %v %v", hits, err)
	}
	if hits, err := Search(L2, []float32{1, 2}, 2, []float32{0, 0}, 1<<62, nil); err != nil || len(hits) != 1 {
		t.Fatalf("a k beyond the rows: %v %v", hits, err)
	}
	if _, err := Search(L2, []float32{1, 2, 3}, 2, []float32{0, 0}, 1, nil); err == nil {
		t.Fatal("partial vectors accepted")
	}
}
