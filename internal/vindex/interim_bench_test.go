package vindex

import (
	"context"
	"fmt"
	"testing"

	"github.com/weir-db/weir/internal/vecdata"
	"github.com/weir-db/weir/internal/vsearch"
)

// BenchmarkInterimThreshold measures what the query node's interim index (IVF_FLAT, nlist √n,
// probing an eighth of the lists) saves over an exact scan of n rows of 128 dimensions, and
// what building it costs: the measurement behind querynode.InterimRows.
//
//	go test -run XXX -bench InterimThreshold ./internal/vindex
func BenchmarkInterimThreshold(b *testing.B) {
	const dim = 128
	for _, n := range []int{8192, 16384, 65536, 262144} {
		vecs := vecdata.Clustered(1, 2, n, dim, 64, 3)
		q := vecdata.Clustered(1, 3, 1, dim, 64, 3)
		b.Run(fmt.Sprintf("exact/%d", n), func(b *testing.B) {
			for b.Loop() {
				vsearch.Search(vsearch.L2, vecs, dim, q, 10, nil)
			}
		})
		nlist := 1
		for nlist*nlist < n {
			nlist++
		}
		var ix *Index
		b.Run(fmt.Sprintf("build/%d", n), func(b *testing.B) {
			for b.Loop() {
				ix, _ = BuildInterim(context.Background(), vsearch.L2, vecs, dim)
			}
		})
		b.Run(fmt.Sprintf("ivf/%d", n), func(b *testing.B) {
			sp := SearchParams{Nprobe: max(8, nlist/8)}
			for b.Loop() {
				ix.Search(q, 10, sp, nil, -1)
			}
		})
	}
}
