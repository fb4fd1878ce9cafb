package gosdk_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/milvus-io/milvus/client/v2/column"
	"github.com/milvus-io/milvus/client/v2/entity"
	"github.com/milvus-io/milvus/client/v2/index"
	"github.com/milvus-io/milvus/client/v2/milvusclient"
)

// TestReadTexts sends the loads, searches and queries Milvus refuses and checks its words and
// codes, in the order Milvus checks them.
func TestReadTexts(t *testing.T) {
	c := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	// Two vector fields, one indexed: the load names the other.
	two := uniqueName("weir_rtexts2")
	dropAtCleanup(t, c, two)
	require.NoError(t, c.CreateCollection(ctx, milvusclient.NewCreateCollectionOption(two, schemaOf(pkInt64(), vecField("v1", 4), vecField("v2", 4)))))
	idx, err := c.CreateIndex(ctx, milvusclient.NewCreateIndexOption(two, "v1", index.NewFlatIndex(entity.L2)))
	require.NoError(t, err)
	require.NoError(t, idx.Await(ctx))
	_, err = c.LoadCollection(ctx, milvusclient.NewLoadCollectionOption(two))
	requireMilvusError(t, err, "there is no vector index on field: [v2], please create index firstly", unexpected)
	idx, err = c.CreateIndex(ctx, milvusclient.NewCreateIndexOption(two, "v2", index.NewFlatIndex(entity.IP)))
	require.NoError(t, err)
	require.NoError(t, idx.Await(ctx))
	loadAndWait(ctx, t, c, two)
	q := []entity.Vector{entity.FloatVector{1, 2, 3, 4}}
	_, err = c.Search(ctx, milvusclient.NewSearchOption(two, 3, q))
	requireMilvusError(t, err, "multiple anns_fields exist, please specify a anns_field in search_params", unexpected)
	rs, err := c.Search(ctx, milvusclient.NewSearchOption(two, 3, q).WithANNSField("v2"))
	require.NoError(t, err, "an empty collection answers")
	require.Zero(t, rs[0].ResultCount)

	// One vector field, a scalar, a partition.
	name := uniqueName("weir_rtexts")
	dropAtCleanup(t, c, name)
	require.NoError(t, c.CreateCollection(ctx, milvusclient.NewCreateCollectionOption(name, schemaOf(pkInt64(), vecField("vec", 4),
		entity.NewField().WithName("age").WithDataType(entity.FieldTypeInt64)))))
	require.NoError(t, c.CreatePartition(ctx, milvusclient.NewCreatePartitionOption(name, "p1")))
	_, err = c.Insert(ctx, milvusclient.NewColumnBasedInsertOption(name, column.NewColumnInt64("id", []int64{1, 2, 3}),
		column.NewColumnFloatVector("vec", 4, [][]float32{{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}}), column.NewColumnInt64("age", []int64{10, 20, 30})))
	require.NoError(t, err)
	idx, err = c.CreateIndex(ctx, milvusclient.NewCreateIndexOption(name, "vec", index.NewFlatIndex(entity.L2)))
	require.NoError(t, err)
	require.NoError(t, idx.Await(ctx))
	_, err = c.LoadCollection(ctx, milvusclient.NewLoadCollectionOption(name).WithReplica(2))
	requireMilvusError(t, err, "when load 2 replica count: service resource insufficient", 12)
	state, err := c.GetLoadState(ctx, milvusclient.NewGetLoadStateOption(name))
	require.NoError(t, err)
	require.Equal(t, entity.LoadStateNotLoad, state.State)
	state, err = c.GetLoadState(ctx, milvusclient.NewGetLoadStateOption(uniqueName("nope")))
	require.NoError(t, err, "Milvus answers NotExist, not an error")
	require.Equal(t, entity.LoadStateUnloading, state.State, "the SDK calls NotExist (0) Unloading")
	_, err = c.Query(ctx, milvusclient.NewQueryOption(name).WithFilter("id > 0"))
	requireMilvusError(t, err, "failed to query: collection not loaded[collection=", 101)
	loadAndWait(ctx, t, c, name)
	state, err = c.GetLoadState(ctx, milvusclient.NewGetLoadStateOption(name))
	require.NoError(t, err)
	require.Equal(t, entity.LoadStateLoaded, state.State)
	// Only p1 loaded: reads of _default are refused, reads of p1 served.
	require.NoError(t, c.ReleaseCollection(ctx, milvusclient.NewReleaseCollectionOption(name)))
	task, err := c.LoadPartitions(ctx, milvusclient.NewLoadPartitionsOption(name, "p1"))
	require.NoError(t, err)
	require.NoError(t, task.Await(ctx))
	_, err = c.Query(ctx, milvusclient.NewQueryOption(name).WithFilter("id > 0").WithPartitions("_default"))
	requireMilvusError(t, err, "partition not loaded[partition=", 201)
	pr, err := c.Query(ctx, milvusclient.NewQueryOption(name).WithFilter("id > 0").WithPartitions("p1").WithConsistencyLevel(entity.ClStrong))
	require.NoError(t, err)
	require.Zero(t, pr.ResultCount, "the rows are in _default")
	require.NoError(t, c.ReleaseCollection(ctx, milvusclient.NewReleaseCollectionOption(name)))
	loadAndWait(ctx, t, c, name)
	_, err = c.LoadPartitions(ctx, milvusclient.NewLoadPartitionsOption(name, "p1").WithReplica(3))
	requireMilvusError(t, err, "can't change the replica number for loaded partitions: invalid parameter[expected=1][actual=3]", 1100)
	err = c.DropPartition(ctx, milvusclient.NewDropPartitionOption(name, "p1"))
	requireMilvusError(t, err, "partition cannot be dropped, partition is loaded, please release it first", unexpected)
	err = c.DropIndex(ctx, milvusclient.NewDropIndexOption(name, "vec"))
	requireMilvusError(t, err, "vector index cannot be dropped on loaded collection: ", 1100)

	for _, tc := range []struct {
		name string
		opt  milvusclient.SearchOption
		text string
		code int32
	}{
		{"topk 0", milvusclient.NewSearchOption(name, 0, q), "topk [0] is invalid, it should be in range [1, 16384], but got 0", unexpected},
		{"topk too large", milvusclient.NewSearchOption(name, 16385, q), "topk [16385] is invalid, it should be in range [1, 16384], but got 16385", unexpected},
		{"topk not a number", milvusclient.NewSearchOption(name, 2, q).WithSearchParam("topk", "x"), "topk [x] is invalid", unexpected},
		{"offset not a number", milvusclient.NewSearchOption(name, 2, q).WithSearchParam("offset", "x"), "offset [x] is invalid", unexpected},
		{"offset too large", milvusclient.NewSearchOption(name, 2, q).WithOffset(20000), "offset [20000] is invalid, it should be in range [1, 16384], but got 20000", unexpected},
		{"offset+topk too large", milvusclient.NewSearchOption(name, 10000, q).WithOffset(10000), "offset+topk [20000] is invalid, it should be in range [1, 16384], but got 20000", unexpected},
		{"round_decimal 7", milvusclient.NewSearchOption(name, 2, q).WithSearchParam("round_decimal", "7"), "round_decimal [7] is invalid, should be -1 or an integer in range [0, 6]", unexpected},
		{"no vectors", milvusclient.NewSearchOption(name, 2, []entity.Vector{}), "nq [0] is invalid, nq (number of search vector per search request) should be in range [1, 16384], but got 0", unexpected},
		{"unknown output field", milvusclient.NewSearchOption(name, 2, q).WithOutputFields("nope"), "field nope not exist", unexpected},
		{"unknown partition", milvusclient.NewSearchOption(name, 2, q).WithPartitions("nope"), "partition name nope not found", unexpected},
		{"unknown anns field", milvusclient.NewSearchOption(name, 2, q).WithANNSField("nope"), "failed to create query plan: failed to get field schema by name: fieldName(nope) not found: invalid parameter", 1100},
		{"scalar anns field", milvusclient.NewSearchOption(name, 2, q).WithANNSField("age"), "failed to create query plan: field (age) to search is not of vector data type: invalid parameter", 1100},
		{"bad filter", milvusclient.NewSearchOption(name, 2, q).WithFilter("age >"), "failed to create query plan: cannot parse expression: age >, error: ", 1100},
		{"another metric", milvusclient.NewSearchOption(name, 2, q).WithSearchParam("metric_type", "IP"), "query failed: metric type not match: invalid parameter[expected=L2][actual=IP]", unexpected},
		{"another dim", milvusclient.NewSearchOption(name, 2, []entity.Vector{entity.FloatVector{1, 2}}), "query failed: parser searchRequest failed:  => vector dimension mismatch, expected vector size(byte) 16, actual 8.", unexpected},
	} {
		_, err := c.Search(ctx, tc.opt)
		requireMilvusError(t, err, tc.text, tc.code)
		_ = tc.name
	}

	for _, tc := range []struct {
		name string
		opt  milvusclient.QueryOption
		text string
		code int32
	}{
		{"no filter, no limit", milvusclient.NewQueryOption(name), "empty expression should be used with limit: invalid parameter", 1100},
		{"count with a limit", milvusclient.NewQueryOption(name).WithOutputFields("count(*)").WithLimit(3), "count entities with pagination is not allowed: invalid parameter", 1100},
		{"bad filter", milvusclient.NewQueryOption(name).WithFilter("id in ["), "failed to create query plan: cannot parse expression: id in [, error: ", 1100},
		{"window too large", milvusclient.NewQueryOption(name).WithLimit(16000).WithOffset(1000), "invalid max query result window, (offset+limit) should be in range [1, 16384], but got 17000", unexpected},
		{"negative offset", milvusclient.NewQueryOption(name).WithLimit(10).WithOffset(-1), "invalid max query result window, offset [-1] is invalid, should be gte than 0", unexpected},
		{"limit 0", milvusclient.NewQueryOption(name).WithLimit(0), "invalid max query result window, limit [0] is invalid, should be greater than 0", unexpected},
		{"unknown output field", milvusclient.NewQueryOption(name).WithFilter("id > 0").WithOutputFields("nope"), "field nope not exist", unexpected},
		{"unknown partition", milvusclient.NewQueryOption(name).WithFilter("id > 0").WithPartitions("nope"), "partition name nope not found", unexpected},
	} {
		_, err := c.Query(ctx, tc.opt)
		requireMilvusError(t, err, tc.text, tc.code)
		_ = tc.name
	}

	// A collection with a partition key refuses named partitions in reads.
	keyed := uniqueName("weir_rtexts_key")
	dropAtCleanup(t, c, keyed)
	require.NoError(t, c.CreateCollection(ctx, milvusclient.NewCreateCollectionOption(keyed, keySchema(keyed, entity.FieldTypeInt64))))
	idx, err = c.CreateIndex(ctx, milvusclient.NewCreateIndexOption(keyed, "vec", index.NewFlatIndex(entity.L2)))
	require.NoError(t, err)
	require.NoError(t, idx.Await(ctx))
	loadAndWait(ctx, t, c, keyed)
	_, err = c.Search(ctx, milvusclient.NewSearchOption(keyed, 2, []entity.Vector{entity.FloatVector(keyVectors([]int64{1})[0])}).WithPartitions("_default_0"))
	requireMilvusError(t, err, "not support manually specifying the partition names if partition key mode is used", unexpected)
	_, err = c.Query(ctx, milvusclient.NewQueryOption(keyed).WithFilter("id > 0").WithPartitions("_default_0"))
	requireMilvusError(t, err, "not support manually specifying the partition names if partition key mode is used: invalid parameter", 1100)
}
