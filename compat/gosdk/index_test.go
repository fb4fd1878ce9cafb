package gosdk_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/milvus-io/milvus/client/v2/column"
	"github.com/milvus-io/milvus/client/v2/entity"
	"github.com/milvus-io/milvus/client/v2/index"
	"github.com/milvus-io/milvus/client/v2/milvusclient"
)

// TestFlatIndex defines a FLAT index through the SDK as a user's program does (CreateIndex, then
// Await, which polls DescribeIndex), describes it with the parameters as given, and drops it.
func TestFlatIndex(t *testing.T) {
	c := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	name := uniqueName("weir_index")
	dropAtCleanup(t, c, name)
	require.NoError(t, c.CreateCollection(ctx, milvusclient.NewCreateCollectionOption(name, schemaOf(pkInt64(), vecField("vec", 4), vecField("vec2", 2),
		entity.NewField().WithName("n").WithDataType(entity.FieldTypeInt64),
		entity.NewField().WithName("sp").WithDataType(entity.FieldTypeSparseVector)))))
	sp, err := entity.NewSliceSparseEmbedding([]uint32{1}, []float32{1})
	require.NoError(t, err)
	_, err = c.Insert(ctx, milvusclient.NewColumnBasedInsertOption(name,
		column.NewColumnInt64("id", []int64{1, 2, 3}), column.NewColumnFloatVector("vec", 4, [][]float32{{1, 2, 3, 4}, {1, 2, 3, 4}, {1, 2, 3, 4}}),
		column.NewColumnFloatVector("vec2", 2, [][]float32{{1, 2}, {1, 2}, {1, 2}}),
		column.NewColumnInt64("n", []int64{1, 2, 3}), column.NewColumnSparseVectors("sp", []entity.SparseEmbedding{sp, sp, sp})))
	require.NoError(t, err)
	flushAndWait(ctx, t, c, name)

	task, err := c.CreateIndex(ctx, milvusclient.NewCreateIndexOption(name, "vec", index.NewFlatIndex(entity.L2)))
	require.NoError(t, err)
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	require.NoError(t, task.Await(wctx))
	desc, err := c.DescribeIndex(ctx, milvusclient.NewDescribeIndexOption(name, "vec"))
	require.NoError(t, err)
	require.Equal(t, "vec", desc.Name(), "the index is named after its field")
	require.Equal(t, map[string]string{"index_type": "FLAT", "metric_type": "L2"}, desc.Params())
	require.Equal(t, index.IndexState(3), desc.State, "Finished")
	require.Equal(t, int64(3), desc.TotalRows)
	require.Equal(t, int64(3), desc.IndexedRows)
	require.Zero(t, desc.PendingIndexRows)
	names, err := c.ListIndexes(ctx, milvusclient.NewListIndexOption(name))
	require.NoError(t, err)
	require.Equal(t, []string{"vec"}, names)

	_, err = c.CreateIndex(ctx, milvusclient.NewCreateIndexOption(name, "vec", index.NewFlatIndex(entity.L2)))
	require.NoError(t, err, "the same index again")

	generic := func(params map[string]string) index.Index { return index.NewGenericIndex("", params) }
	for _, tc := range []struct {
		name  string
		field string
		idx   index.Index
		iname string
		text  string
		code  int32
	}{
		{"another metric on the field", "vec", index.NewFlatIndex(entity.IP), "", "CreateIndex failed: at most one distinct index is allowed per field", unexpected},
		{"another name on the field", "vec", index.NewFlatIndex(entity.L2), "other", "CreateIndex failed: creating multiple indexes on same field is not supported", unexpected},
		{"a missing field", "nope", index.NewFlatIndex(entity.L2), "", "cannot create index on non-exist field: nope", unexpected},
		{"an unknown type", "vec", generic(map[string]string{"index_type": "FLOT", "metric_type": "L2"}), "", "invalid parameter[expected=valid index][actual=invalid index type: FLOT]", 1100},
		{"no metric", "vec", generic(map[string]string{"index_type": "FLAT"}), "", "metric type not set for vector index", 1100},
		{"a metric of another kind", "vec", generic(map[string]string{"index_type": "FLAT", "metric_type": "HAMMING"}), "", "float vector index does not support metric type: HAMMING", 1100},
		{"FLAT on a sparse field with L2", "sp", generic(map[string]string{"index_type": "FLAT", "metric_type": "L2"}), "", "only IP&BM25 is the supported metric type for sparse index", 1100},
		{"an empty index type", "vec", generic(map[string]string{"index_type": "", "metric_type": "L2"}), "", "invalid index type: : invalid parameter", 1100},
		{"FLAT on a sparse field", "sp", generic(map[string]string{"index_type": "FLAT", "metric_type": "IP"}), "", "data type SparseFloatVector can't build with this index FLAT", 1100},
		{"a scalar field", "n", generic(map[string]string{"index_type": "FLAT", "metric_type": "L2"}), "", "index FLAT only supports vector data type", 1100},
		{"another dim", "vec", generic(map[string]string{"index_type": "FLAT", "metric_type": "L2", "dim": "8"}), "", "dimension mismatch, dimension in schema: 4, dimension: 8", 1100},
		{"bad params JSON", "vec", generic(map[string]string{"index_type": "FLAT", "metric_type": "L2", "params": "{"}), "", "unmarshal params failed", unexpected},
		{"autoindex with more than a metric", "vec", generic(map[string]string{"metric_type": "L2", "M": "8"}), "", "only metric type can be passed when use AutoIndex", unexpected},
		{"HNSW with M out of range", "vec", generic(map[string]string{"index_type": "HNSW", "metric_type": "L2", "M": "4096"}), "",
			"Out of range in json: param 'M' (4096) should be in range [2, 2048]: invalid parameter[expected=valid index params][actual=invalid index params]", 1100},
		{"IVF_FLAT with nlist not a number", "vec", generic(map[string]string{"index_type": "IVF_FLAT", "metric_type": "L2", "nlist": "abc"}), "",
			"invalid integer value, key: 'nlist', value: 'abc'", 1100},
		{"an index name starting with a digit", "vec", index.NewFlatIndex(entity.L2), "1idx", "The first character of a index name must be an underscore or letter", unexpected},
		{"an index name with a dash", "vec", index.NewFlatIndex(entity.L2), "a-b", "Index name can only contain numbers, letters, and underscores", unexpected},
		{"an index name too long", "vec", index.NewFlatIndex(entity.L2), strings.Repeat("a", 256), "The length of a index name must be less than 255 characters", unexpected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opt := milvusclient.NewCreateIndexOption(name, tc.field, tc.idx)
			if tc.iname != "" {
				opt = opt.WithIndexName(tc.iname)
			}
			_, err := c.CreateIndex(ctx, opt)
			requireMilvusError(t, err, tc.text, tc.code)
		})
	}

	_, err = c.DescribeIndex(ctx, milvusclient.NewDescribeIndexOption(name, "nope"))
	requireMilvusError(t, err, "index not found[indexName=nope]", 700)
	task, err = c.CreateIndex(ctx, milvusclient.NewCreateIndexOption(name, "vec2", index.NewFlatIndex(entity.COSINE)))
	require.NoError(t, err)
	require.NoError(t, task.Await(wctx))
	err = c.DropIndex(ctx, milvusclient.NewDropIndexOption(name, ""))
	requireMilvusError(t, err, "index duplicates[indexName=]", 702)
	require.NoError(t, c.DropIndex(ctx, milvusclient.NewDropIndexOption(name, "vec2")))
	require.NoError(t, c.DropIndex(ctx, milvusclient.NewDropIndexOption(name, "vec")))
	require.NoError(t, c.DropIndex(ctx, milvusclient.NewDropIndexOption(name, "vec")), "dropping a missing index succeeds")
	_, err = c.DescribeIndex(ctx, milvusclient.NewDescribeIndexOption(name, "vec"))
	requireMilvusError(t, err, "index not found[indexName=vec]", 700)
	_, err = c.DescribeIndex(ctx, milvusclient.NewDescribeIndexOption(name, ""))
	requireMilvusError(t, err, "index not found[collection="+name+"]", 700)
}
