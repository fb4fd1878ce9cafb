// Package vindex is what the rest of Weir knows of vector indexes: the index types Weir builds
// (FLAT, HNSW, IVF_FLAT, IVF_SQ8; AUTOINDEX is HNSW), building one over a segment's vector column,
// its file (a versioned header, the index's encoding and a checksum checked on load), and search
// with the request's parameters and the rows a read may see. The indexes themselves are packages
// hnsw and ivf; exact search is package vsearch.
package vindex

import (
	"context"
	"fmt"
	"math"

	"github.com/weir-db/weir/internal/hnsw"
	"github.com/weir-db/weir/internal/ivf"
	"github.com/weir-db/weir/internal/vsearch"
)

// Type is an index type as Milvus names it.
type Type string

// The types Weir builds.
const (
	Flat    Type = "FLAT"
	HNSW    Type = "HNSW"
	IVFFlat Type = "IVF_FLAT"
	IVFSQ8  Type = "IVF_SQ8"
	Auto    Type = "AUTOINDEX"
)

// Spec is what a build needs: the type (never Auto: see Resolve), the metric and the type's
// parameters.
type Spec struct {
	Type           Type           `json:"type"`
	Metric         vsearch.Metric `json:"metric"`
	M              int            `json:"M,omitempty"`
	EfConstruction int            `json:"efConstruction,omitempty"`
	Nlist          int            `json:"nlist,omitempty"`
	// Auto marks an AUTOINDEX (built as HNSW): its searches get a wider default beam.
	Auto bool `json:"auto,omitempty"`
}

// Built reports whether spec's type has an index file (FLAT has none: it is the rows).
func (s Spec) Built() bool { return s.Type != Flat }

// SearchParams are a search's parameters: HNSW's ef, IVF's nprobe, IVF_SQ8's refine factor.
// Zero values take the type's defaults.
type SearchParams struct {
	Ef      int
	Nprobe  int
	RefineK int
}

// Index is a built index over a segment's rows.
type Index struct {
	spec Spec
	dim  int
	vecs []float32
	g    *hnsw.Graph
	iv   *ivf.Index
}

// Build builds spec's index over vecs (dim float32s a row), deterministically for seed. vecs
// stays the index's: the rows a search scores.
func Build(spec Spec, vecs []float32, dim int, seed uint64) (*Index, error) {
	return BuildContext(context.Background(), spec, vecs, dim, seed)
}

// BuildContext is Build that stops early, with ctx's error, once ctx ends (a dropped index or
// collection, a channel that moved).
func BuildContext(ctx context.Context, spec Spec, vecs []float32, dim int, seed uint64) (*Index, error) {
	return BuildPaced(ctx, spec, vecs, dim, seed, nil)
}

// BuildPaced is BuildContext calling pace, when set, every 1024 rows inserted or assigned and
// between k-means iterations: a pace that sleeps there slows the build down (the data node's
// builder does while its channels ingest). The result is the same whatever pace does.
func BuildPaced(ctx context.Context, spec Spec, vecs []float32, dim int, seed uint64, pace func()) (*Index, error) {
	ix := &Index{spec: spec, dim: dim, vecs: vecs}
	stop := func() bool {
		if pace != nil {
			pace()
		}
		return ctx.Err() != nil
	}
	var err error
	switch spec.Type {
	case HNSW:
		ix.g, err = hnsw.Build(spec.Metric, vecs, dim, hnsw.Params{M: spec.M, EfConstruction: spec.EfConstruction, Seed: seed, Stop: stop})
	case IVFFlat, IVFSQ8:
		ix.iv, err = ivf.Build(spec.Metric, vecs, dim, ivf.Params{Nlist: spec.Nlist, SQ8: spec.Type == IVFSQ8, Seed: seed, Stop: stop})
	case Flat:
		_, err = vsearch.ParseMetric(string(spec.Metric))
	default:
		err = fmt.Errorf("vindex: no index of type %q", spec.Type)
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	return ix, nil
}

// Spec is the index's spec.
func (ix *Index) Spec() Spec { return ix.spec }

// Len is the number of rows indexed.
func (ix *Index) Len() int { return len(ix.vecs) / ix.dim }

// Bytes is the memory the index holds beyond the rows it borrows.
func (ix *Index) Bytes() int64 {
	switch {
	case ix.g != nil:
		return ix.g.Bytes()
	case ix.iv != nil:
		return ix.iv.Bytes()
	}
	return 0
}

// ExactBelow is the share of a segment's rows under which a filtered search scores the allowed
// rows exactly instead of walking the index: with few rows allowed, a graph walk visits many
// rows it may not return, and an IVF probe may find fewer than k. From `weir bench ann` on MNIST
// (60,000 × 784, one thread): an exact scan of every row takes 20 ms, so of 1% of them 0.2 ms,
// while an unfiltered HNSW search at ef 64 takes 0.36 ms and a filtered one more; the switch is
// set where the exact scan is still the cheaper of the two.
const ExactBelow = 0.01

// Search returns the k best rows for q, best first, among those allow holds (every row when
// nil): a deleted or filtered-out row is never returned. allowed is how many rows allow holds,
// or -1 when unknown (then the index is walked whatever the share).
func (ix *Index) Search(q []float32, k int, sp SearchParams, allow vsearch.Allow, allowed int) ([]vsearch.Hit, error) {
	if len(q) != ix.dim {
		return nil, fmt.Errorf("vindex: the query has dim %d, the index %d", len(q), ix.dim)
	}
	n := ix.Len()
	if k <= 0 || n == 0 {
		return nil, nil
	}
	if allow != nil && allowed == 0 {
		return nil, nil
	}
	if ix.spec.Type == Flat || allow != nil && allowed >= 0 && float64(allowed) < ExactBelow*float64(n) {
		return vsearch.Search(ix.spec.Metric, ix.vecs, ix.dim, q, k, allow)
	}
	switch {
	case ix.g != nil:
		ef := sp.Ef
		if ef == 0 {
			ef = MinEf
			if ix.spec.Auto {
				ef = AutoEf
			}
		}
		return ix.g.Search(q, k, max(ef, k), allow)
	case ix.iv != nil:
		nprobe, refine := sp.Nprobe, sp.RefineK
		if nprobe == 0 {
			nprobe = DefaultNprobe
		}
		if refine == 0 {
			refine = DefaultRefineK
		}
		return ix.iv.Search(q, k, nprobe, refine, allow)
	}
	return vsearch.Search(ix.spec.Metric, ix.vecs, ix.dim, q, k, allow)
}

// Estimate is about the memory an index of spec over rows rows of dim holds beyond the rows
// (its Bytes once built), for deciding before a build whether it fits.
func Estimate(spec Spec, rows int64, dim int) int64 {
	switch spec.Type {
	case HNSW:
		// Layer 0's 2M links and a count per row, the upper layers' (1/(M−1) of the rows on
		// average, M links each), a level and a visited tag per row; the inverse norm or the
		// augmentation of COSINE and IP.
		m := int64(spec.M)
		return rows*(4*(2*m+1)+3+4) + rows/max(m-1, 1)*4*(m+1)
	case IVFFlat:
		return rows*4 + int64(spec.Nlist*dim*4)
	case IVFSQ8:
		return rows*(4+int64(dim)) + int64(spec.Nlist*dim*4)
	}
	return 0
}

// BuildInterim builds a quick IVF_FLAT index over rows that will soon be indexed properly (the
// query node's interim index of rows not yet in an indexed segment): √n lists trained by four
// Lloyd iterations on 32 rows a list, a tenth of a full build's training at 65,536 rows.
func BuildInterim(ctx context.Context, m vsearch.Metric, vecs []float32, dim int) (*Index, error) {
	n := len(vecs) / max(dim, 1)
	nlist := max(1, int(math.Sqrt(float64(n))))
	spec := Spec{Type: IVFFlat, Metric: m, Nlist: nlist}
	iv, err := ivf.Build(m, vecs, dim, ivf.Params{Nlist: nlist, Seed: 1, Iterations: 4, SampleFactor: 32, Stop: func() bool { return ctx.Err() != nil }})
	if err != nil {
		return nil, err
	}
	return &Index{spec: spec, dim: dim, vecs: vecs, iv: iv}, nil
}
