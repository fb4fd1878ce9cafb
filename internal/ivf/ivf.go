// Package ivf is Weir's inverted-file index: k-means (k-means++ seeded, trained on a sample)
// splits the rows into nlist lists around centroids; a search scores the query against the
// centroids and scans the nprobe nearest lists. IVF_FLAT scans the rows themselves, borrowed from
// the segment like package hnsw's; IVF_SQ8 scans a byte per dimension (8-bit scalar quantization,
// a quarter of the rows' size, so a quarter of the memory traffic) and refines: the best
// refine·k rows by their codes are scored again on their own values, so that results carry exact
// scores. Builds are single-threaded and deterministic for a seed.
//
// The training, assignment and scanning loops are marked //go:norace, as package hnsw's are and
// for the same reason: a race-built Weir otherwise builds and searches indexes several times
// slower, and what these loops touch is an index written by one goroutine or only read.
package ivf

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"unsafe"

	"github.com/weir-db/weir/internal/distance"
	"github.com/weir-db/weir/internal/hugepage"
	"github.com/weir-db/weir/internal/vsearch"
)

// Params are an index's build parameters.
type Params struct {
	Nlist int // lists (Milvus's nlist)
	SQ8   bool
	Seed  uint64
	// Stop, when set, is asked every 16 centroids seeded, every 1024 rows of each k-means
	// iteration and every 1024 rows assigned whether to give up (the build then fails with
	// ErrStopped).
	Stop func() bool
	// Iterations and SampleFactor override Lloyd's iterations and the training rows per list
	// (0: iterations and sampleFactor): a quick index for rows that will soon be indexed
	// properly trains on less.
	Iterations, SampleFactor int
}

// ErrStopped is a build given up because Params.Stop said so.
var ErrStopped = errors.New("ivf: build stopped")

// sampleFactor bounds k-means's training sample at this many rows per list, as faiss's
// max_points_per_centroid: more rows move centroids little and cost time linearly.
const sampleFactor = 256

// prefetchAhead is how many rows ahead of the one scored IVF_FLAT prefetches.
const prefetchAhead = 4

// iterations of Lloyd's algorithm after k-means++ seeding.
const iterations = 12

// minRefine is the fewest rows IVF_SQ8 scores again on their values: for a small k, refine·k
// rows leave little room for the codes' error (at k = 1 under IP, a row's own code can rank a
// few places low), and 32 more row scores cost little beside the lists' scan.
const minRefine = 32

// Index is a built IVF index over borrowed rows.
type Index struct {
	metric    vsearch.Metric
	dim       int
	vecs      []float32
	inv       []float32 // COSINE: 1/‖row‖
	nlist     int
	seed      uint64
	sq8       bool
	centroids []float32 // nlist·dim; unit length under COSINE
	offs      []uint32  // list l holds ids[offs[l]:offs[l+1]]
	ids       []uint32
	vmin      []float32 // SQ8: per dimension, the smallest value and the step of a code
	step      []float32
	codes     []uint8         // SQ8: dim codes a row, in list order (as ids)
	huge      hugepage.Region // the rows, advised while the index lives
}

// Build indexes the rows of vecs (dim float32s each) under m.
func Build(m vsearch.Metric, vecs []float32, dim int, p Params) (*Index, error) {
	if p.Nlist < 1 {
		return nil, fmt.Errorf("ivf: nlist %d must be at least 1", p.Nlist)
	}
	ix, err := newIndex(m, vecs, dim)
	if err != nil {
		return nil, err
	}
	ix.seed, ix.sq8 = p.Seed, p.SQ8
	n := len(vecs) / dim
	if n == 0 {
		ix.offs = []uint32{0}
		return ix, nil
	}
	ix.nlist = min(p.Nlist, n)
	rng := rand.New(rand.NewPCG(p.Seed, 0x2545f4914f6cdd1d))
	if ix.centroids = ix.train(rng, p); ix.centroids == nil {
		return nil, ErrStopped
	}
	if !ix.assign(p.Stop) {
		return nil, ErrStopped
	}
	if p.SQ8 {
		ix.quantize()
	}
	return ix, nil
}

func newIndex(m vsearch.Metric, vecs []float32, dim int) (*Index, error) {
	switch {
	case m != vsearch.L2 && m != vsearch.IP && m != vsearch.COSINE:
		return nil, fmt.Errorf("ivf: unknown metric %q", m)
	case dim <= 0 || len(vecs)%dim != 0:
		return nil, fmt.Errorf("ivf: %d values are not whole vectors of dim %d", len(vecs), dim)
	case len(vecs)/dim >= math.MaxUint32:
		return nil, fmt.Errorf("ivf: %d rows are more than an index holds", len(vecs)/dim)
	}
	ix := &Index{metric: m, dim: dim, vecs: vecs}
	// A list's rows lie scattered over the set: on huge pages, not one TLB miss each, until the
	// index is unreachable (best effort, see package hugepage).
	if ix.huge, _ = hugepage.Floats(vecs); ix.huge.Len() > 0 {
		runtime.AddCleanup(ix, hugepage.Region.Release, ix.huge)
	}
	if m == vsearch.COSINE {
		n := len(vecs) / dim
		ix.inv = make([]float32, n)
		for i := range n {
			r := ix.row(i)
			if s := distance.Dot(r, r); s > 0 {
				ix.inv[i] = float32(1 / math.Sqrt(float64(s)))
			}
		}
	}
	return ix, nil
}

// Len is the number of rows indexed.
func (ix *Index) Len() int { return len(ix.vecs) / ix.dim }

func (ix *Index) row(i int) []float32 { return ix.vecs[i*ix.dim : (i+1)*ix.dim : (i+1)*ix.dim] }

// clustered copies row i into buf as it is clustered: unit length under COSINE, as is.
func (ix *Index) clustered(i int, buf []float32) []float32 {
	buf = append(buf[:0], ix.row(i)...)
	if ix.inv != nil {
		for j := range buf {
			buf[j] *= ix.inv[i]
		}
	}
	return buf
}

// train returns nlist centroids from a sample of the rows: k-means++ seeding (Arthur &
// Vassilvitskii, 2007), then Lloyd's iterations; under COSINE the centroids are kept at unit
// length (spherical k-means).
//
//go:norace
func (ix *Index) train(rng *rand.Rand, p Params) []float32 {
	n, d, k := ix.Len(), ix.dim, ix.nlist
	s := min(n, k*cmp.Or(p.SampleFactor, sampleFactor))
	perm := make([]int, n)
	for i := range perm {
		perm[i] = i
	}
	for i := range s { // the first s of a Fisher–Yates shuffle
		j := i + rng.IntN(n-i)
		perm[i], perm[j] = perm[j], perm[i]
	}
	sample := make([]float32, 0, s*d)
	var buf []float32
	for _, i := range perm[:s] {
		buf = ix.clustered(i, buf)
		sample = append(sample, buf...)
	}
	row := func(i int) []float32 { return sample[i*d : (i+1)*d] }

	// k-means++: each next centroid a sample row drawn with probability ∝ its squared distance
	// to the nearest centroid so far.
	cents := make([]float32, 0, k*d)
	cents = append(cents, row(rng.IntN(s))...)
	near := make([]float64, s)
	for i := range s {
		near[i] = float64(distance.L2(row(i), cents[:d]))
	}
	for c := 1; c < k; c++ {
		if c%16 == 0 && p.Stop != nil && p.Stop() {
			return nil
		}
		var sum float64
		for _, v := range near {
			sum += v
		}
		pick, x := s-1, rng.Float64()*sum
		for i, v := range near {
			if x -= v; x < 0 {
				pick = i
				break
			}
		}
		cents = append(cents, row(pick)...)
		cc := cents[c*d:]
		for i := range s {
			near[i] = min(near[i], float64(distance.L2(row(i), cc)))
		}
	}
	if ix.metric == vsearch.COSINE {
		normalize(cents, d)
	}

	assign := make([]int, s)
	dist := make([]float32, s)
	scores := make([]float32, k)
	sums := make([]float64, k*d)
	counts := make([]int, k)
	for range cmp.Or(p.Iterations, iterations) {
		if p.Stop != nil && p.Stop() {
			return nil
		}
		for i := range s {
			if i%1024 == 1023 && p.Stop != nil && p.Stop() {
				return nil
			}
			assign[i], dist[i] = nearest(row(i), cents, scores)
		}
		clear(sums)
		clear(counts)
		for i, c := range assign {
			counts[c]++
			for j, v := range row(i) {
				sums[c*d+j] += float64(v)
			}
		}
		for c := range k {
			if counts[c] == 0 {
				// An empty list takes the sample row farthest from its centroid, which is then
				// no longer counted as far.
				far := 0
				for i := range s {
					if dist[i] > dist[far] {
						far = i
					}
				}
				copy(cents[c*d:(c+1)*d], row(far))
				dist[far] = 0
				continue
			}
			for j := range d {
				cents[c*d+j] = float32(sums[c*d+j] / float64(counts[c]))
			}
		}
		if ix.metric == vsearch.COSINE {
			normalize(cents, d)
		}
	}
	return cents
}

func normalize(vs []float32, d int) {
	for i := 0; i < len(vs); i += d {
		v := vs[i : i+d]
		if s := distance.Dot(v, v); s > 0 {
			f := float32(1 / math.Sqrt(float64(s)))
			for j := range v {
				v[j] *= f
			}
		}
	}
}

// nearest returns the centroid nearest v by L2 and its distance (scores is scratch, one per
// centroid).
//
//go:norace
func nearest(v, cents, scores []float32) (int, float32) {
	distance.L2Batch(v, cents, scores)
	best := 0
	for c, s := range scores {
		if s < scores[best] {
			best = c
		}
	}
	return best, scores[best]
}

// assign puts every row in the list of its nearest centroid (as clustered), lists in row order,
// or reports false when stop said to give up.
//
//go:norace
func (ix *Index) assign(stop func() bool) bool {
	n := ix.Len()
	of := make([]uint32, n)
	counts := make([]uint32, ix.nlist+1)
	scores := make([]float32, ix.nlist)
	var buf []float32
	for i := range n {
		if i%1024 == 1023 && stop != nil && stop() {
			return false
		}
		buf = ix.clustered(i, buf)
		c, _ := nearest(buf, ix.centroids, scores)
		of[i] = uint32(c)
		counts[c+1]++
	}
	ix.offs = make([]uint32, ix.nlist+1)
	for c := range ix.nlist {
		ix.offs[c+1] = ix.offs[c] + counts[c+1]
	}
	next := append([]uint32(nil), ix.offs[:ix.nlist]...)
	ix.ids = make([]uint32, n)
	for i, c := range of {
		ix.ids[next[c]] = uint32(i)
		next[c]++
	}
	return true
}

// quantize sets each dimension's range from the rows (as clustered) and codes every row.
//
//go:norace
func (ix *Index) quantize() {
	d := ix.dim
	lo, hi := make([]float32, d), make([]float32, d)
	for j := range d {
		lo[j], hi[j] = float32(math.Inf(1)), float32(math.Inf(-1))
	}
	var buf []float32
	for i := range ix.Len() {
		buf = ix.clustered(i, buf)
		for j, v := range buf {
			lo[j], hi[j] = min(lo[j], v), max(hi[j], v)
		}
	}
	ix.vmin, ix.step = lo, make([]float32, d)
	for j := range d {
		ix.step[j] = (hi[j] - lo[j]) / 255
	}
	ix.codes = make([]uint8, len(ix.ids)*d)
	for p, id := range ix.ids {
		buf = ix.clustered(int(id), buf)
		code := ix.codes[p*d : (p+1)*d]
		for j, v := range buf {
			if ix.step[j] > 0 {
				code[j] = uint8(min(255, max(0, math.Round(float64((v-lo[j])/ix.step[j])))))
			}
		}
	}
}

// Search returns the k best rows for q (Milvus's scores, best first) among those allow holds
// (all when nil), scanning the nprobe lists whose centroids score best. IVF_SQ8 ranks by codes,
// then scores the best refine·k rows (refine ≥ 1; at least minRefine) on their values.
//
//go:norace
func (ix *Index) Search(q []float32, k, nprobe, refine int, allow vsearch.Allow) ([]vsearch.Hit, error) {
	if len(q) != ix.dim {
		return nil, fmt.Errorf("ivf: the query has dim %d, the index %d", len(q), ix.dim)
	}
	if k <= 0 || ix.nlist == 0 {
		return nil, nil
	}
	qc := q // the query as rows are clustered
	if ix.metric == vsearch.COSINE {
		qc = append([]float32(nil), q...)
		normalize(qc, ix.dim)
	}
	lists := ix.probe(qc, min(max(nprobe, 1), ix.nlist))
	if !ix.sq8 {
		top := vsearch.NewTopK(ix.metric, k)
		for _, l := range lists {
			ids := ix.ids[ix.offs[l]:ix.offs[l+1]]
			for p, id := range ids {
				// A list's rows lie where the segment holds them, scattered: the row a few
				// ahead is prefetched while this one is scored.
				if p+prefetchAhead < len(ids) {
					distance.Prefetch(unsafe.Pointer(&ix.vecs[int(ids[p+prefetchAhead])*ix.dim]))
				}
				if allow == nil || allow.Test(uint(id)) {
					top.Offer(int(id), ix.score(qc, id))
				}
			}
		}
		return top.Best(), nil
	}
	cands := ix.scanCodes(qc, lists, max(k*max(refine, 1), minRefine), allow)
	top := vsearch.NewTopK(ix.metric, k)
	for _, h := range cands {
		top.Offer(h.Row, ix.score(qc, uint32(h.Row)))
	}
	return top.Best(), nil
}

// score is row id's score for the query as clustered (unit length under COSINE).
//
//go:norace
func (ix *Index) score(qc []float32, id uint32) float32 {
	r := ix.row(int(id))
	switch ix.metric {
	case vsearch.L2:
		return distance.L2(qc, r)
	case vsearch.IP:
		return distance.Dot(qc, r)
	}
	return distance.Dot(qc, r) * ix.inv[id]
}

// probe returns the nprobe lists whose centroids score best for qc.
//
//go:norace
func (ix *Index) probe(qc []float32, nprobe int) []int {
	scores := make([]float32, ix.nlist)
	m := vsearch.L2 // COSINE's centroids and query are unit length: L2 orders as cosine
	if ix.metric == vsearch.IP {
		m = vsearch.IP
		distance.DotBatch(qc, ix.centroids, scores)
	} else {
		distance.L2Batch(qc, ix.centroids, scores)
	}
	top := vsearch.NewTopK(m, nprobe)
	for c, s := range scores {
		top.Offer(c, s)
	}
	out := make([]int, 0, nprobe)
	for _, h := range top.Best() {
		out = append(out, h.Row)
	}
	return out
}

// scanCodes returns the best r allowed rows of lists by their codes (approximate scores).
//
//go:norace
func (ix *Index) scanCodes(qc []float32, lists []int, r int, allow vsearch.Allow) []vsearch.Hit {
	d := ix.dim
	// Fold the quantizer's constants into the query (see package distance's SQ8 kernels).
	fq := make([]float32, d)
	var base float32
	if ix.metric == vsearch.L2 {
		for j := range d {
			fq[j] = qc[j] - ix.vmin[j]
		}
	} else {
		for j := range d {
			fq[j] = qc[j] * ix.step[j]
			base += qc[j] * ix.vmin[j]
		}
	}
	top := vsearch.NewTopK(ix.metric, r)
	for _, l := range lists {
		for p := ix.offs[l]; p < ix.offs[l+1]; p++ {
			id := ix.ids[p]
			if allow != nil && !allow.Test(uint(id)) {
				continue
			}
			code := ix.codes[int(p)*d : (int(p)+1)*d]
			if ix.metric == vsearch.L2 {
				top.Offer(int(id), distance.SQ8L2(fq, ix.step, code))
			} else {
				top.Offer(int(id), base+distance.SQ8Dot(fq, code))
			}
		}
	}
	return top.Best()
}

// Bytes is the memory the index holds beyond the borrowed rows.
func (ix *Index) Bytes() int64 {
	return int64(4*(len(ix.inv)+len(ix.centroids)+len(ix.offs)+len(ix.ids)+len(ix.vmin)+len(ix.step)) + len(ix.codes))
}

// SQ8 reports whether the index scans codes (IVF_SQ8) rather than rows (IVF_FLAT).
func (ix *Index) SQ8() bool { return ix.sq8 }
