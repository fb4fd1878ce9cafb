package gosdk_test

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/milvus-io/milvus/client/v2/column"
	"github.com/milvus-io/milvus/client/v2/entity"
	"github.com/milvus-io/milvus/client/v2/index"
	"github.com/milvus-io/milvus/client/v2/milvusclient"
)

const (
	annRows    = 100_000
	annDim     = 32
	annQueries = 100
)

// clusteredVectors returns n vectors of annDim around 200 centres that overlap (the spread
// around a centre is the spread of the centres): structure, as embeddings have, without clusters
// so apart that any index finds the nearest.
func clusteredVectors(seed uint64, n int) [][]float32 {
	r := rand.New(rand.NewPCG(42, 42))
	centres := make([][]float32, 200)
	for i := range centres {
		centres[i] = make([]float32, annDim)
		for j := range centres[i] {
			centres[i][j] = float32(r.NormFloat64())
		}
	}
	r = rand.New(rand.NewPCG(seed, 7))
	out := make([][]float32, n)
	for i := range out {
		c := centres[r.IntN(len(centres))]
		v := make([]float32, annDim)
		for j := range v {
			v[j] = c[j] + float32(r.NormFloat64())
		}
		out[i] = v
	}
	return out
}

// exactTop returns the k best rows of vecs for q under metric (L2 or COSINE).
func exactTop(vecs [][]float32, q []float32, k int, metric entity.MetricType) []int64 {
	type hit struct {
		id    int64
		score float64
	}
	hits := make([]hit, len(vecs))
	for i, v := range vecs {
		var dot, l2, nv, nq float64
		for j := range v {
			d := float64(v[j] - q[j])
			l2 += d * d
			dot += float64(v[j]) * float64(q[j])
			nv += float64(v[j]) * float64(v[j])
			nq += float64(q[j]) * float64(q[j])
		}
		if metric == entity.L2 {
			hits[i] = hit{int64(i), l2}
		} else {
			hits[i] = hit{int64(i), -dot / math.Sqrt(nv*nq)}
		}
	}
	slices.SortFunc(hits, func(a, b hit) int {
		if a.score < b.score {
			return -1
		}
		if a.score > b.score {
			return 1
		}
		return int(a.id - b.id)
	})
	out := make([]int64, k)
	for i := range out {
		out[i] = hits[i].id
	}
	return out
}

// annCollection creates a 2-shard collection of annRows clustered vectors, flushes it, builds
// idx with the SDK's CreateIndex(...).Await, loads it and returns the vectors.
func annCollection(ctx context.Context, t *testing.T, c *milvusclient.Client, name string, idx index.Index) [][]float32 {
	t.Helper()
	require.NoError(t, c.CreateCollection(ctx, milvusclient.NewCreateCollectionOption(name, schemaOf(pkInt64(),
		vecField("vec", annDim))).WithShardNum(2)))
	vecs := clusteredVectors(1, annRows)
	ids := make([]int64, annRows)
	for i := range ids {
		ids[i] = int64(i)
	}
	for from := 0; from < annRows; from += 10000 {
		_, err := c.Insert(ctx, milvusclient.NewColumnBasedInsertOption(name,
			column.NewColumnInt64("id", ids[from:from+10000]), column.NewColumnFloatVector("vec", annDim, vecs[from:from+10000])))
		require.NoError(t, err)
	}
	flushAndWait(ctx, t, c, name)
	task, err := c.CreateIndex(ctx, milvusclient.NewCreateIndexOption(name, "vec", idx))
	require.NoError(t, err)
	// Builds run at a low priority: beside a busy test suite they take minutes.
	wctx, cancel := context.WithTimeout(ctx, 8*time.Minute)
	defer cancel()
	require.NoError(t, task.Await(wctx), "the index was never built")
	desc, err := c.DescribeIndex(ctx, milvusclient.NewDescribeIndexOption(name, "vec"))
	require.NoError(t, err)
	require.Equal(t, int64(annRows), desc.TotalRows)
	require.Equal(t, int64(annRows), desc.IndexedRows)
	require.Zero(t, desc.PendingIndexRows)
	loadAndWait(ctx, t, c, name)
	return vecs
}

// recallAt searches annQueries new vectors through the SDK with ap and returns recall@10
// against exact search.
func recallAt(ctx context.Context, t *testing.T, c *milvusclient.Client, name string, vecs [][]float32, metric entity.MetricType, ap index.AnnParam) float64 {
	t.Helper()
	qs := clusteredVectors(99, annQueries)
	probes := make([]entity.Vector, len(qs))
	for i, q := range qs {
		probes[i] = entity.FloatVector(q)
	}
	opt := milvusclient.NewSearchOption(name, 10, probes).WithConsistencyLevel(entity.ClStrong)
	if ap != nil {
		opt = opt.WithAnnParam(ap)
	}
	rs, err := c.Search(ctx, opt)
	require.NoError(t, err)
	require.Len(t, rs, annQueries)
	var found int
	for q, r := range rs {
		want := map[int64]bool{}
		for _, id := range exactTop(vecs, qs[q], 10, metric) {
			want[id] = true
		}
		require.Equal(t, 10, r.ResultCount)
		for i := range r.ResultCount {
			id, err := r.IDs.GetAsInt64(i)
			require.NoError(t, err)
			if want[id] {
				found++
			}
		}
	}
	return float64(found) / float64(10*annQueries)
}

// TestANNIndexesThroughTheSDK is the end-to-end proof: HNSW with COSINE, IVF_FLAT with
// L2 and AUTOINDEX, each created with CreateIndex(...).Await over 100,000 flushed rows (two
// channels: built by the data node, loaded by the query node), searched through the SDK with
// ef or nprobe: recall@10 ≥ 0.95 against exact results.
func TestANNIndexesThroughTheSDK(t *testing.T) {
	c := connect(t)
	for _, tc := range []struct {
		name   string
		idx    index.Index
		metric entity.MetricType
		ap     func() index.AnnParam
	}{
		{"hnsw", index.NewHNSWIndex(entity.COSINE, 16, 100), entity.COSINE, func() index.AnnParam { return index.NewHNSWAnnParam(64) }},
		{"ivf_flat", index.NewIvfFlatIndex(entity.L2, 128), entity.L2, func() index.AnnParam { return index.NewIvfAnnParam(16) }},
		{"autoindex", index.NewAutoIndex(entity.COSINE), entity.COSINE, func() index.AnnParam { return index.NewAutoAnnParam(1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			name := uniqueName("weir_ann_" + tc.name)
			dropAtCleanup(t, c, name)
			vecs := annCollection(ctx, t, c, name, tc.idx)
			r := recallAt(ctx, t, c, name, vecs, tc.metric, tc.ap())
			t.Logf("%s: recall@10 %.4f", tc.name, r)
			require.GreaterOrEqual(t, r, 0.95, "recall@10")
			if tc.name == "hnsw" {
				// knowhere's rule, through Milvus's wrappers: ef must be at least topk.
				_, err := c.Search(ctx, milvusclient.NewSearchOption(name, 10, []entity.Vector{entity.FloatVector(vecs[0])}).
					WithAnnParam(index.NewHNSWAnnParam(5)))
				requireMilvusError(t, err, "query failed: failed to search: ef(5) should be larger than k(10)", unexpected)
			}
		})
	}
}
