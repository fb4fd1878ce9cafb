// Package vsearch is exact (FLAT) vector search: the distance of a query to every candidate row
// of a batch of vectors, by Milvus's metrics, keeping the k best. Milvus's conventions: L2 is the
// squared Euclidean distance, smaller is better; IP and COSINE are similarities, larger is
// better. The kernels are package distance's.
package vsearch

import (
	"container/heap"
	"fmt"
	"math"
	"slices"

	"github.com/weir-db/weir/internal/distance"
)

// Metric is a Milvus metric type.
type Metric string

// The metrics of float vectors.
const (
	L2     Metric = "L2"
	IP     Metric = "IP"
	COSINE Metric = "COSINE"
)

// ParseMetric returns the metric named s, as Milvus spells it.
func ParseMetric(s string) (Metric, error) {
	switch m := Metric(s); m {
	case L2, IP, COSINE:
		return m, nil
	}
	return "", fmt.Errorf("vsearch: unknown metric %q", s)
}

// Larger reports whether larger scores are better under m (similarities), not smaller
// (distances).
func (m Metric) Larger() bool { return m != L2 }

// Score returns the score of a and b under m: the squared Euclidean distance, the inner product,
// or the cosine similarity (0 when either vector is zero).
func (m Metric) Score(a, b []float32) float32 {
	switch m {
	case L2:
		return distance.L2(a, b)
	case IP:
		return distance.Dot(a, b)
	}
	dot := distance.Dot
	na, nb := dot(a, a), dot(b, b)
	if na == 0 || nb == 0 {
		return 0
	}
	return float32(float64(dot(a, b)) / math.Sqrt(float64(na)*float64(nb)))
}

// kernel returns the score function of m, chosen once per search rather than per row.
func (m Metric) kernel() func(a, b []float32) float32 {
	switch m {
	case L2:
		return distance.L2
	case IP:
		return distance.Dot
	}
	return m.Score
}

// Allow tells which rows a search may return; a nil Allow allows every row. A *bitset.BitSet is
// one; the query node's combines a filter's bitset with each row's visibility, tested only for
// the rows a search reaches.
type Allow interface {
	Test(row uint) bool
}

// counter is an Allow that knows how many rows it allows.
type counter interface{ Count() uint }

// Hit is one result: a row of the batch and its score.
type Hit struct {
	Row   int
	Score float32
}

// better reports whether x ranks before y under m: the better score, and of equal scores the
// earlier row, so that results are deterministic.
func better(m Metric, x, y Hit) bool {
	if x.Score != y.Score {
		if m.Larger() {
			return x.Score > y.Score
		}
		return x.Score < y.Score
	}
	return x.Row < y.Row
}

// worstFirst is a heap of the k best hits so far with the worst on top.
type worstFirst struct {
	m    Metric
	hits []Hit
}

func (h *worstFirst) Len() int           { return len(h.hits) }
func (h *worstFirst) Less(i, j int) bool { return better(h.m, h.hits[j], h.hits[i]) }
func (h *worstFirst) Swap(i, j int)      { h.hits[i], h.hits[j] = h.hits[j], h.hits[i] }
func (h *worstFirst) Push(x any)         { h.hits = append(h.hits, x.(Hit)) }
func (h *worstFirst) Pop() any {
	x := h.hits[len(h.hits)-1]
	h.hits = h.hits[:len(h.hits)-1]
	return x
}

// TopK keeps the k best scores offered under a metric, each with the caller's reference of
// what scored it; of equal scores the smaller reference wins, so results are deterministic.
type TopK struct {
	h      worstFirst
	k      int
	larger bool
}

// NewTopK returns an empty TopK of k under m.
func NewTopK(m Metric, k int) *TopK {
	return &TopK{h: worstFirst{m: m, hits: make([]Hit, 0, min(k, 1024))}, k: k, larger: m.Larger()}
}

// Offer considers ref with score; a NaN score is never kept. Most scores of a scan are worse
// than the worst kept: they are turned away here, in a call small enough to inline.
func (t *TopK) Offer(ref int, score float32) {
	if len(t.h.hits) == t.k && t.k > 0 {
		w := t.h.hits[0].Score
		if t.larger && score < w || !t.larger && score > w || score != score {
			return
		}
	}
	t.offer(ref, score)
}

func (t *TopK) offer(ref int, score float32) {
	if score != score || t.k <= 0 {
		return
	}
	hit := Hit{Row: ref, Score: score}
	switch {
	case t.h.Len() < t.k:
		heap.Push(&t.h, hit)
	case better(t.h.m, hit, t.h.hits[0]):
		t.h.hits[0] = hit
		heap.Fix(&t.h, 0)
	}
}

// Best returns what was kept, best first.
func (t *TopK) Best() []Hit {
	out := slices.Clone(t.h.hits)
	slices.SortFunc(out, func(x, y Hit) int {
		if better(t.h.m, x, y) {
			return -1
		}
		return 1
	})
	return out
}

// sparse reports whether allow is known to allow at most a quarter of rows.
func sparse(allow Allow, rows int) bool {
	c, ok := allow.(counter)
	return ok && c.Count()*4 <= uint(rows)
}

// BatchRows is how many rows a batch kernel call scores: enough to make the call's cost
// nothing, few enough that the scores stay in the first-level cache.
const BatchRows = 256

// Batch returns m's kernel scoring one query against consecutive rows (see package distance),
// or nil under COSINE, whose rows' norms the batch kernels do not compute.
func (m Metric) Batch() func(q, rows, out []float32) {
	switch m {
	case L2:
		return distance.L2Batch
	case IP:
		return distance.DotBatch
	}
	return nil
}

// Kernel returns m's score function, for callers that score rows one by one.
func (m Metric) Kernel() func(a, b []float32) float32 { return m.kernel() }

// Search returns the k rows of vectors (dim float32s a row) that score best against query under
// m, best first, among the rows allow holds (every row when allow is nil). A row whose score is
// NaN is never returned.
func Search(m Metric, vectors []float32, dim int, query []float32, k int, allow Allow) ([]Hit, error) {
	if dim <= 0 || len(vectors)%dim != 0 {
		return nil, fmt.Errorf("vsearch: %d values are not whole vectors of dim %d", len(vectors), dim)
	}
	if len(query) != dim {
		return nil, fmt.Errorf("vsearch: the query has dim %d, the vectors %d", len(query), dim)
	}
	if k <= 0 {
		return nil, nil
	}
	rows := len(vectors) / dim
	top := NewTopK(m, min(k, rows))
	if batch := m.Batch(); batch != nil && !sparse(allow, rows) {
		// Blocks of rows scored by one kernel call each (a fifth faster at 128 dimensions than
		// a call per row), then offered; a sparse allow scores row by row instead.
		scores := make([]float32, BatchRows)
		for r0 := 0; r0 < rows; r0 += BatchRows {
			out := scores[:min(BatchRows, rows-r0)]
			batch(query, vectors[r0*dim:], out)
			for i, s := range out {
				if allow == nil || allow.Test(uint(r0+i)) {
					top.Offer(r0+i, s)
				}
			}
		}
		return top.Best(), nil
	}
	score := m.kernel()
	for r := range rows {
		if allow != nil && !allow.Test(uint(r)) {
			continue
		}
		top.Offer(r, score(query, vectors[r*dim:(r+1)*dim]))
	}
	return top.Best(), nil
}
