// Package vecdata makes and measures vector data sets for the indexes' tests and benchmarks:
// clustered vectors (structure, as embeddings have, where uniform noise would hide the failures
// clusters show), the exact top k of queries, and recall against it.
package vecdata

import (
	"math/rand/v2"
	"runtime"
	"sync"

	"github.com/weir-db/weir/internal/vsearch"
)

// Clustered returns n vectors of dim around centres centres drawn from N(0, spread²) per
// dimension, each vector its centre plus N(0, 1) noise; the same for the same arguments. Two
// calls with the same centres seed and different row seeds draw rows and queries from one
// distribution.
func Clustered(centresSeed, rowsSeed uint64, n, dim, centres int, spread float64) []float32 {
	r := rand.New(rand.NewPCG(centresSeed, 1))
	cs := make([]float32, centres*dim)
	for i := range cs {
		cs[i] = float32(r.NormFloat64() * spread)
	}
	r = rand.New(rand.NewPCG(rowsSeed, 2))
	v := make([]float32, n*dim)
	for i := range n {
		c := r.IntN(centres)
		for j := range dim {
			v[i*dim+j] = cs[c*dim+j] + float32(r.NormFloat64())
		}
	}
	return v
}

// Truth returns the exact k best rows of base for each of queries (both dim float32s a row)
// under m, computed on every core.
func Truth(m vsearch.Metric, base []float32, dim int, queries []float32, k int) [][]int {
	out := make([][]int, len(queries)/dim)
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for q := range next {
				hits, _ := vsearch.Search(m, base, dim, queries[q*dim:(q+1)*dim], k, nil)
				ids := make([]int, len(hits))
				for i, h := range hits {
					ids[i] = h.Row
				}
				out[q] = ids
			}
		})
	}
	for q := range out {
		next <- q
	}
	close(next)
	wg.Wait()
	return out
}

// Recall is the share of want among got.
func Recall(got []int, want []int) float64 {
	if len(want) == 0 {
		return 1
	}
	set := make(map[int]bool, len(want))
	for _, w := range want {
		set[w] = true
	}
	n := 0
	for _, g := range got {
		if set[g] {
			n++
		}
	}
	return float64(n) / float64(len(want))
}

// Rows returns the rows of hits.
func Rows(hits []vsearch.Hit) []int {
	out := make([]int, len(hits))
	for i, h := range hits {
		out[i] = h.Row
	}
	return out
}
