package hnsw

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/weir-db/weir/internal/mnist"
	"github.com/weir-db/weir/internal/vecdata"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// mnistRows is how many training images the recall tests index: 10,000 by default, so that the
// suite stays quick under -race; WEIR_MNIST_ROWS=60000 runs them on all of MNIST.
func mnistRows() int { return envInt("WEIR_MNIST_ROWS", 10000) }

// TestRecallMNIST: with M=16, efConstruction=200 and ef=64, recall@10 against exact search is
// at least 0.95 on MNIST under L2, IP and COSINE (200 test images as queries).
func TestRecallMNIST(t *testing.T) {
	train, test, err := mnist.Load()
	if err != nil {
		t.Fatal(err)
	}
	base, qs := train.Head(mnistRows()), test.Head(200)
	for _, c := range metrics {
		t.Run(string(c.vm), func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			g, err := Build(c.m, base.Vectors, mnist.Dim, Params{M: 16, EfConstruction: 200, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			built := time.Since(start)
			gt := vecdata.Truth(c.vm, base.Vectors, mnist.Dim, qs.Vectors, 10)
			var r float64
			for q := range qs.Rows {
				hits, err := g.Search(qs.Row(q), 10, 64, nil)
				if err != nil {
					t.Fatal(err)
				}
				r += vecdata.Recall(vecdata.Rows(hits), gt[q])
			}
			r /= float64(qs.Rows)
			t.Logf("%s: %d rows built in %s, recall@10 %.4f at ef 64", c.vm, base.Rows, built.Round(time.Millisecond), r)
			if r < 0.95 {
				t.Fatalf("%s: recall@10 %.4f, want ≥ 0.95", c.vm, r)
			}
		})
	}
}
