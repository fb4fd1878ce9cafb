package gosdk_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/milvus-io/milvus/client/v2/column"
	"github.com/milvus-io/milvus/client/v2/entity"
	"github.com/milvus-io/milvus/client/v2/index"
	"github.com/milvus-io/milvus/client/v2/milvusclient"
)

const (
	searchDim  = 16
	searchRows = 20000
)

// searchVectors returns n random vectors of searchDim, the same for a seed.
func searchVectors(seed uint64, n int) [][]float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([][]float32, n)
	for i := range out {
		v := make([]float32, searchDim)
		for j := range v {
			v[j] = r.Float32()*2 - 1
		}
		out[i] = v
	}
	return out
}

// loadAndWait loads a collection and waits until the SDK's Await (GetLoadState polling) says
// it is loaded.
func loadAndWait(ctx context.Context, t *testing.T, c *milvusclient.Client, name string) {
	t.Helper()
	task, err := c.LoadCollection(ctx, milvusclient.NewLoadCollectionOption(name))
	require.NoError(t, err)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	require.NoError(t, task.Await(wctx), "load did not finish")
}

func countRows(ctx context.Context, t *testing.T, c *milvusclient.Client, name, filter string) int64 {
	t.Helper()
	rs, err := c.Query(ctx, milvusclient.NewQueryOption(name).WithFilter(filter).WithOutputFields("count(*)").
		WithConsistencyLevel(entity.ClStrong))
	require.NoError(t, err)
	n, err := rs.GetColumn("count(*)").GetAsInt64(0)
	require.NoError(t, err)
	return n
}

// TestSearchFlow is the SDK flow: insert 20,000 rows, delete 100, flush, FLAT index,
// load, search top-1 finds each probed row itself, deleted keys never come back, count(*) is
// inserted − deleted, a query by keys returns the output fields, an upsert is visible at once
// under Strong, and a released collection is "not loaded".
func TestSearchFlow(t *testing.T) {
	c := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	name := uniqueName("weir_search")
	dropAtCleanup(t, c, name)
	require.NoError(t, c.CreateCollection(ctx, milvusclient.NewCreateCollectionOption(name, schemaOf(pkInt64(),
		vecField("vec", searchDim), entity.NewField().WithName("age").WithDataType(entity.FieldTypeInt64),
		entity.NewField().WithName("title").WithDataType(entity.FieldTypeVarChar).WithMaxLength(64))).WithShardNum(2)))

	vecs := searchVectors(1, searchRows)
	ids := make([]int64, searchRows)
	ages := make([]int64, searchRows)
	titles := make([]string, searchRows)
	for i := range ids {
		ids[i], ages[i], titles[i] = int64(i), int64(i%100), fmt.Sprintf("t%d", i)
	}
	for from := 0; from < searchRows; from += 5000 {
		_, err := c.Insert(ctx, milvusclient.NewColumnBasedInsertOption(name,
			column.NewColumnInt64("id", ids[from:from+5000]), column.NewColumnFloatVector("vec", searchDim, vecs[from:from+5000]),
			column.NewColumnInt64("age", ages[from:from+5000]), column.NewColumnVarChar("title", titles[from:from+5000])))
		require.NoError(t, err)
	}
	deleted := make([]int64, 100)
	for i := range deleted {
		deleted[i] = int64(i * 7)
	}
	_, err := c.Delete(ctx, milvusclient.NewDeleteOption(name).WithInt64IDs("id", deleted))
	require.NoError(t, err)
	flushAndWait(ctx, t, c, name)

	_, err = c.LoadCollection(ctx, milvusclient.NewLoadCollectionOption(name))
	requireMilvusError(t, err, "index not found[collection="+name+"]", 700)

	task, err := c.CreateIndex(ctx, milvusclient.NewCreateIndexOption(name, "vec", index.NewFlatIndex(entity.L2)))
	require.NoError(t, err)
	require.NoError(t, task.Await(ctx))
	_, err = c.Search(ctx, milvusclient.NewSearchOption(name, 1, []entity.Vector{entity.FloatVector(vecs[1])}))
	requireMilvusError(t, err, "failed to search: collection not loaded[collection=", 101)
	loadAndWait(ctx, t, c, name)

	isDeleted := map[int64]bool{}
	for _, d := range deleted {
		isDeleted[d] = true
	}
	// Search top-1 for probed rows: each finds itself; a deleted row never.
	var probes []entity.Vector
	var want []int64
	for i := 0; i < searchRows; i += 97 {
		probes = append(probes, entity.FloatVector(vecs[i]))
		want = append(want, int64(i))
	}
	rs, err := c.Search(ctx, milvusclient.NewSearchOption(name, 1, probes).WithConsistencyLevel(entity.ClStrong).
		WithOutputFields("age", "title"))
	require.NoError(t, err)
	require.Len(t, rs, len(probes))
	for q, r := range rs {
		require.Equal(t, 1, r.ResultCount, "query %d", q)
		got, err := r.IDs.GetAsInt64(0)
		require.NoError(t, err)
		if isDeleted[want[q]] {
			require.NotEqual(t, want[q], got, "a deleted row came back")
			continue
		}
		require.Equal(t, want[q], got, "query %d finds its own row", q)
		require.InDelta(t, 0, r.Scores[0], 1e-4, "L2 to itself")
		age, err := r.GetColumn("age").GetAsInt64(0)
		require.NoError(t, err)
		require.Equal(t, want[q]%100, age)
		title, err := r.GetColumn("title").GetAsString(0)
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("t%d", want[q]), title)
	}
	// Deleted keys are never returned, not even to a search for their own vector with a larger k.
	rs, err = c.Search(ctx, milvusclient.NewSearchOption(name, 10, []entity.Vector{entity.FloatVector(vecs[7])}))
	require.NoError(t, err)
	for i := range rs[0].ResultCount {
		id, _ := rs[0].IDs.GetAsInt64(i)
		require.False(t, isDeleted[id], "deleted key %d returned", id)
	}

	require.Equal(t, int64(searchRows-len(deleted)), countRows(ctx, t, c, name, ""))
	require.Equal(t, int64(200-1), countRows(ctx, t, c, name, "age == 0"), "of the deleted keys (multiples of 7 below 700) only 0 has age 0")

	qr, err := c.Query(ctx, milvusclient.NewQueryOption(name).WithFilter("id in [3, 5, 7, 19999]").WithOutputFields("age", "vec").
		WithConsistencyLevel(entity.ClStrong))
	require.NoError(t, err)
	require.Equal(t, 3, qr.ResultCount, "7 is deleted")
	for i, id := range []int64{3, 5, 19999} {
		got, err := qr.GetColumn("id").GetAsInt64(i)
		require.NoError(t, err)
		require.Equal(t, id, got)
		age, err := qr.GetColumn("age").GetAsInt64(i)
		require.NoError(t, err)
		require.Equal(t, id%100, age)
		v, err := qr.GetColumn("vec").Get(i)
		require.NoError(t, err)
		require.Equal(t, entity.FloatVector(vecs[id]), v)
	}

	// An upsert is visible at once under Strong: the new row, not the old one.
	newVec := searchVectors(2, 1)[0]
	_, err = c.Upsert(ctx, milvusclient.NewColumnBasedInsertOption(name, column.NewColumnInt64("id", []int64{5}),
		column.NewColumnFloatVector("vec", searchDim, [][]float32{newVec}), column.NewColumnInt64("age", []int64{1000}),
		column.NewColumnVarChar("title", []string{"new"})))
	require.NoError(t, err)
	qr, err = c.Query(ctx, milvusclient.NewQueryOption(name).WithFilter("id == 5").WithOutputFields("age").WithConsistencyLevel(entity.ClStrong))
	require.NoError(t, err)
	require.Equal(t, 1, qr.ResultCount)
	age, _ := qr.GetColumn("age").GetAsInt64(0)
	require.Equal(t, int64(1000), age)
	require.Equal(t, int64(searchRows-len(deleted)), countRows(ctx, t, c, name, ""), "an upsert replaces its row")

	// Delete by a filter: the keys of the rows it matches, queried at Strong, are deleted.
	before := countRows(ctx, t, c, name, "")
	require.Equal(t, int64(9), countRows(ctx, t, c, name, "age == 1 and id < 1000"), "301 is deleted already")
	_, err = c.Delete(ctx, milvusclient.NewDeleteOption(name).WithExpr("age == 1 and id < 1000"))
	require.NoError(t, err)
	require.Zero(t, countRows(ctx, t, c, name, "age == 1 and id < 1000"))
	require.Equal(t, before-9, countRows(ctx, t, c, name, ""))

	// Released: reads fail with Milvus's words.
	require.NoError(t, c.ReleaseCollection(ctx, milvusclient.NewReleaseCollectionOption(name)))
	_, err = c.Search(ctx, milvusclient.NewSearchOption(name, 1, []entity.Vector{entity.FloatVector(vecs[1])}))
	requireMilvusError(t, err, "failed to search: collection not loaded[collection=", 101)
	_, err = c.Query(ctx, milvusclient.NewQueryOption(name).WithFilter("id == 1"))
	requireMilvusError(t, err, "failed to query: collection not loaded[collection=", 101)
}
