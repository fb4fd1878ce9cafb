package vecdata

import (
	"slices"
	"testing"

	"github.com/weir-db/weir/internal/vsearch"
)

// TestTruthIsExactAndRecallCounts: each row of a data set is its own nearest (L2), recall of the
// exact answer is 1, of nothing 0; Clustered is deterministic.
func TestTruthIsExactAndRecallCounts(t *testing.T) {
	const n, dim = 500, 8
	base := Clustered(1, 2, n, dim, 5, 3)
	if !slices.Equal(base, Clustered(1, 2, n, dim, 5, 3)) {
		t.Fatal("Clustered is not deterministic")
	}
	gt := Truth(vsearch.L2, base, dim, base[:50*dim], 3)
	for q, ids := range gt {
		if ids[0] != q {
			t.Fatalf("row %d's nearest is %d", q, ids[0])
		}
		if Recall(ids, ids) != 1 || Recall(nil, ids) != 0 {
			t.Fatal("recall")
		}
	}
}
