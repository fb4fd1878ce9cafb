package ivf

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/weir-db/weir/internal/mnist"
	"github.com/weir-db/weir/internal/vecdata"
	"github.com/weir-db/weir/internal/vsearch"
)

var metrics = []vsearch.Metric{vsearch.L2, vsearch.IP, vsearch.COSINE}

// mnistRows is how many training images the recall tests index: 10,000 by default (quick under
// -race); WEIR_MNIST_ROWS=60000 runs them on all of MNIST.
func mnistRows() int {
	if v, err := strconv.Atoi(os.Getenv("WEIR_MNIST_ROWS")); err == nil {
		return v
	}
	return 10000
}

// TestRecallMNIST: on MNIST with nlist=128, recall@10 against exact search under L2, IP and
// COSINE is at least 0.90 for IVF_FLAT at nprobe=16, and at least 0.95 for IVF_SQ8 at
// nprobe=32 with its refine (the best 4·k by codes scored again).
func TestRecallMNIST(t *testing.T) {
	train, test, err := mnist.Load()
	if err != nil {
		t.Fatal(err)
	}
	base, qs := train.Head(mnistRows()), test.Head(200)
	for _, m := range metrics {
		gt := vecdata.Truth(m, base.Vectors, mnist.Dim, qs.Vectors, 10)
		for _, c := range []struct {
			name           string
			sq8            bool
			nprobe, refine int
			bar            float64
		}{{"IVF_FLAT", false, 16, 1, 0.90}, {"IVF_SQ8", true, 32, 4, 0.95}} {
			t.Run(c.name+"/"+string(m), func(t *testing.T) {
				start := time.Now()
				ix, err := Build(m, base.Vectors, mnist.Dim, Params{Nlist: 128, SQ8: c.sq8, Seed: 1})
				if err != nil {
					t.Fatal(err)
				}
				built := time.Since(start)
				var r float64
				for q := range qs.Rows {
					hits, err := ix.Search(qs.Row(q), 10, c.nprobe, c.refine, nil)
					if err != nil {
						t.Fatal(err)
					}
					r += vecdata.Recall(vecdata.Rows(hits), gt[q])
				}
				r /= float64(qs.Rows)
				t.Logf("%s %s: %d rows built in %s, recall@10 %.4f at nprobe %d", c.name, m, base.Rows, built.Round(time.Millisecond), r, c.nprobe)
				if r < c.bar {
					t.Fatalf("recall@10 %.4f, want ≥ %.2f", r, c.bar)
				}
			})
		}
	}
}
