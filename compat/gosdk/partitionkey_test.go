package gosdk_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/milvus-io/milvus/client/v2/column"
	"github.com/milvus-io/milvus/client/v2/entity"
	"github.com/milvus-io/milvus/client/v2/index"
	"github.com/milvus-io/milvus/client/v2/milvusclient"
	"github.com/milvus-io/milvus/pkg/v2/util/merr"
)

// Milvus's routing of partition keys, from the research notes' vectors (murmur3-32 of an Int64
// key, CRC-32 of a VarChar key, modulo the partition count): the partition of each tenant among
// 16, and of each region among 4.
var (
	tenantPartition16 = map[int64]int{0: 12, 1: 4, 2: 4, 3: 3, 100: 0, 1000: 12, -1: 8}
	tenants           = []int64{0, 1, 2, 3, 100, 1000, -1}
	regionPartition4  = map[string]int{"a": 3, "abc": 2, "parkey": 3, "0": 1}
)

const msgNamedPartition = "not support manually specifying the partition names if partition key mode is used"

// keySchema is a collection whose partition key is the field key of type kt.
func keySchema(name string, kt entity.FieldType) *entity.Schema {
	key := entity.NewField().WithName("key").WithDataType(kt).WithIsPartitionKey(true)
	if kt == entity.FieldTypeVarChar {
		key = key.WithMaxLength(64)
	}
	return entity.NewSchema().WithName(name).
		WithField(entity.NewField().WithName("id").WithDataType(entity.FieldTypeInt64).WithIsPrimaryKey(true)).
		WithField(entity.NewField().WithName("vec").WithDataType(entity.FieldTypeFloatVector).WithDim(vecDim)).
		WithField(key)
}

func keyVectors(ids []int64) [][]float32 {
	out := make([][]float32, len(ids))
	for i, id := range ids {
		out[i] = make([]float32, vecDim)
		for j := range out[i] {
			out[i][j] = float32(id) + float32(j)/100
		}
	}
	return out
}

func partitionNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("_default_%d", i)
	}
	return out
}

// requirePartitionRows checks, after a flush, the row count of every partition.
func requirePartitionRows(ctx context.Context, t *testing.T, c *milvusclient.Client, name string, want []int) {
	t.Helper()
	for i, n := range want {
		stats, err := c.GetPartitionStats(ctx, milvusclient.NewGetPartitionStatsOption(name, fmt.Sprintf("_default_%d", i)))
		require.NoError(t, err)
		require.Equal(t, strconv.Itoa(n), stats[rowCountStat], "rows of partition _default_%d", i)
	}
}

// TestPartitionKey creates collections with a partition key through the SDK and checks what
// Milvus 2.6 does: partitions _default_0 … _default_{n-1} (16 by default), rows in the
// partition their key hashes to, and Milvus's refusals of partition names and partition DDL.
func TestPartitionKey(t *testing.T) {
	c := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*testTimeout)
	defer cancel()

	name := uniqueName("weir_compat_pkey")
	dropAtCleanup(t, c, name)
	// num_partitions 0 is what the SDK sends without WithNumPartitions: Milvus's default.
	create := func(numPartitions int64) milvusclient.CreateCollectionOption {
		return milvusclient.NewCreateCollectionOption(name, keySchema(name, entity.FieldTypeInt64)).WithShardNum(shardsNum).WithNumPartitions(numPartitions)
	}
	var ids, keys []int64
	for i := range 70 {
		ids = append(ids, int64(i))
		keys = append(keys, tenants[i%len(tenants)])
	}
	want := make([]int, 16)
	for _, k := range keys {
		want[tenantPartition16[k]]++
	}

	steps := []step{
		{"create with the default partition count", func(t *testing.T) {
			require.NoError(t, c.CreateCollection(ctx, create(0)))
		}},
		{"list partitions", func(t *testing.T) {
			parts, err := c.ListPartitions(ctx, milvusclient.NewListPartitionOption(name))
			require.NoError(t, err)
			require.ElementsMatch(t, partitionNames(16), parts, "no _default in partition-key mode")
		}},
		{"describe", func(t *testing.T) {
			coll, err := c.DescribeCollection(ctx, milvusclient.NewDescribeCollectionOption(name))
			require.NoError(t, err)
			require.Len(t, coll.Schema.Fields, 3)
			require.True(t, coll.Schema.Fields[2].IsPartitionKey)
			require.False(t, coll.Schema.Fields[1].IsPartitionKey)
		}},
		{"create again", func(t *testing.T) {
			require.NoError(t, c.CreateCollection(ctx, create(0)), "identical, the count left to the default")
			require.NoError(t, c.CreateCollection(ctx, create(16)), "identical, the default count given")
			requireMilvusError(t, c.CreateCollection(ctx, create(4)), "create duplicate collection with different parameters", unexpected)
		}},
		{"insert", func(t *testing.T) {
			res, err := c.Insert(ctx, milvusclient.NewColumnBasedInsertOption(name,
				column.NewColumnInt64("id", ids), column.NewColumnFloatVector("vec", vecDim, keyVectors(ids)), column.NewColumnInt64("key", keys)))
			require.NoError(t, err)
			require.Equal(t, int64(len(ids)), res.InsertCount)
			requireInt64IDs(t, res.IDs, ids)
		}},
		{"upsert moves a row to its new key's partition", func(t *testing.T) {
			// Key 0 (tenant 0, _default_12) becomes tenant 100 (_default_0). Row counts do not
			// subtract deletes until compaction, so _default_0 gains a row and _default_12 keeps its.
			res, err := c.Upsert(ctx, milvusclient.NewColumnBasedInsertOption(name,
				column.NewColumnInt64("id", []int64{0}), column.NewColumnFloatVector("vec", vecDim, keyVectors([]int64{0})), column.NewColumnInt64("key", []int64{100})))
			require.NoError(t, err)
			require.Equal(t, int64(1), res.UpsertCount)
			want[tenantPartition16[100]]++
		}},
		{"a partition name is refused", func(t *testing.T) {
			cols := []column.Column{column.NewColumnInt64("id", []int64{500}), column.NewColumnFloatVector("vec", vecDim, keyVectors([]int64{500})), column.NewColumnInt64("key", []int64{1})}
			_, err := c.Insert(ctx, milvusclient.NewColumnBasedInsertOption(name, cols...).WithPartition("_default_4"))
			requireMilvusError(t, err, msgNamedPartition, unexpected)
			_, err = c.Upsert(ctx, milvusclient.NewColumnBasedInsertOption(name, cols...).WithPartition("_default_4"))
			requireMilvusError(t, err, msgNamedPartition, unexpected)
			_, err = c.Delete(ctx, milvusclient.NewDeleteOption(name).WithInt64IDs("id", []int64{500}).WithPartition("_default_4"))
			requireMilvusError(t, err, msgNamedPartition, unexpected)
		}},
		{"partition DDL is refused", func(t *testing.T) {
			requireMilvusError(t, c.CreatePartition(ctx, milvusclient.NewCreatePartitionOption(name, "extra")), "disable create partition if partition key mode is used", unexpected)
			requireMilvusError(t, c.DropPartition(ctx, milvusclient.NewDropPartitionOption(name, "_default_3")), "disable drop partition if partition key mode is used", unexpected)
			has, err := c.HasPartition(ctx, milvusclient.NewHasPartitionOption(name, "_default_3"))
			require.NoError(t, err)
			require.True(t, has)
		}},
		{"flush, then each partition holds the rows its key hashes to", func(t *testing.T) {
			flushAndWait(ctx, t, c, name)
			requirePartitionRows(ctx, t, c, name, want)
			requireRowCount(ctx, t, c, name, strconv.Itoa(len(ids)+1))
		}},
		{"delete applies to every partition", func(t *testing.T) {
			res, err := c.Delete(ctx, milvusclient.NewDeleteOption(name).WithInt64IDs("id", []int64{1, 2, 3}))
			require.NoError(t, err)
			require.Equal(t, int64(3), res.DeleteCount)
		}},
		{"a filter on the key reads the rows of that key (the partitions it hashes to only)", func(t *testing.T) {
			idx, err := c.CreateIndex(ctx, milvusclient.NewCreateIndexOption(name, "vec", index.NewFlatIndex(entity.L2)))
			require.NoError(t, err)
			require.NoError(t, idx.Await(ctx))
			loadAndWait(ctx, t, c, name)
			live := map[int64]int64{} // id → key
			for i, id := range ids {
				live[id] = keys[i]
			}
			live[0] = 100
			delete(live, 1)
			delete(live, 2)
			delete(live, 3)
			for _, k := range append(tenants, 100) {
				rs, err := c.Query(ctx, milvusclient.NewQueryOption(name).WithFilter(fmt.Sprintf("key == %d", k)).WithOutputFields("key").
					WithConsistencyLevel(entity.ClStrong))
				require.NoError(t, err)
				var want []int64
				for id, key := range live {
					if key == k {
						want = append(want, id)
					}
				}
				var got []int64
				for i := range rs.ResultCount {
					id, _ := rs.GetColumn("id").GetAsInt64(i)
					got = append(got, id)
				}
				require.ElementsMatch(t, want, got, "rows of key %d", k)
			}
			rs, err := c.Search(ctx, milvusclient.NewSearchOption(name, 100, []entity.Vector{entity.FloatVector(keyVectors([]int64{5})[0])}).
				WithFilter(fmt.Sprintf("key in [%d, %d]", tenants[0], tenants[1])).WithConsistencyLevel(entity.ClStrong))
			require.NoError(t, err)
			for i := range rs[0].ResultCount {
				id, _ := rs[0].IDs.GetAsInt64(i)
				require.Contains(t, []int64{tenants[0], tenants[1]}, live[id], "search by key returned row %d of key %d", id, live[id])
			}
			require.Positive(t, rs[0].ResultCount)
		}},
	}
	runSteps(t, steps)
}

// TestPartitionKeyNumPartitions: WithNumPartitions sets the partition count of a collection
// with a VarChar partition key, and its rows are spread over that many partitions.
func TestPartitionKeyNumPartitions(t *testing.T) {
	c := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*testTimeout)
	defer cancel()

	name := uniqueName("weir_compat_pkey4")
	dropAtCleanup(t, c, name)
	require.NoError(t, c.CreateCollection(ctx, milvusclient.NewCreateCollectionOption(name, keySchema(name, entity.FieldTypeVarChar)).WithShardNum(shardsNum).WithNumPartitions(4)))
	parts, err := c.ListPartitions(ctx, milvusclient.NewListPartitionOption(name))
	require.NoError(t, err)
	require.ElementsMatch(t, partitionNames(4), parts)

	var ids []int64
	var regions []string
	want := make([]int, 4)
	for region, p := range regionPartition4 {
		ids = append(ids, int64(len(ids)))
		regions = append(regions, region)
		want[p]++
	}
	_, err = c.Insert(ctx, milvusclient.NewColumnBasedInsertOption(name,
		column.NewColumnInt64("id", ids), column.NewColumnFloatVector("vec", vecDim, keyVectors(ids)), column.NewColumnVarChar("key", regions)))
	require.NoError(t, err)
	flushAndWait(ctx, t, c, name)
	requirePartitionRows(ctx, t, c, name, want)
}

// TestPartitionKeyRejectsInvalidSchemas: the schemas and partition counts Milvus 2.6 refuses
// are refused with its texts and codes (65535 for its plain errors), and leave no collection
// behind.
func TestPartitionKeyRejectsInvalidSchemas(t *testing.T) {
	c := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	base := func(name string) *entity.Schema {
		return entity.NewSchema().WithName(name).
			WithField(entity.NewField().WithName("id").WithDataType(entity.FieldTypeInt64).WithIsPrimaryKey(true)).
			WithField(entity.NewField().WithName("vec").WithDataType(entity.FieldTypeFloatVector).WithDim(vecDim))
	}
	tests := []struct {
		name     string
		option   func(name string) milvusclient.CreateCollectionOption
		mentions string
		code     int32
	}{
		{"two keys", func(name string) milvusclient.CreateCollectionOption {
			s := base(name).
				WithField(entity.NewField().WithName("a").WithDataType(entity.FieldTypeInt64).WithIsPartitionKey(true)).
				WithField(entity.NewField().WithName("b").WithDataType(entity.FieldTypeVarChar).WithMaxLength(8).WithIsPartitionKey(true))
			return milvusclient.NewCreateCollectionOption(name, s)
		}, "there are more than one partition key, field name = a, b", unexpected},
		{"the primary key", func(name string) milvusclient.CreateCollectionOption {
			s := entity.NewSchema().WithName(name).
				WithField(entity.NewField().WithName("id").WithDataType(entity.FieldTypeInt64).WithIsPrimaryKey(true).WithIsPartitionKey(true)).
				WithField(entity.NewField().WithName("vec").WithDataType(entity.FieldTypeFloatVector).WithDim(vecDim))
			return milvusclient.NewCreateCollectionOption(name, s)
		}, "the partition key field must not be primary field", unexpected},
		{"nullable", func(name string) milvusclient.CreateCollectionOption {
			s := base(name).WithField(entity.NewField().WithName("k").WithDataType(entity.FieldTypeInt64).WithIsPartitionKey(true).WithNullable(true))
			return milvusclient.NewCreateCollectionOption(name, s)
		}, "partition key field not support nullable: invalid parameter", merr.Code(merr.ErrParameterInvalid)},
		{"float", func(name string) milvusclient.CreateCollectionOption {
			s := base(name).WithField(entity.NewField().WithName("k").WithDataType(entity.FieldTypeFloat).WithIsPartitionKey(true))
			return milvusclient.NewCreateCollectionOption(name, s)
		}, "the data type of partition key should be Int64 or VarChar", unexpected},
		{"negative count", func(name string) milvusclient.CreateCollectionOption {
			return milvusclient.NewCreateCollectionOption(name, keySchema(name, entity.FieldTypeInt64)).WithNumPartitions(-1)
		}, "the specified partitions should be greater than 0 if partition key is used", unexpected},
		{"too many", func(name string) milvusclient.CreateCollectionOption {
			return milvusclient.NewCreateCollectionOption(name, keySchema(name, entity.FieldTypeInt64)).WithNumPartitions(1025)
		}, "partition number (1025) exceeds max configuration (1024): invalid parameter", merr.Code(merr.ErrParameterInvalid)},
		{"a count without a key", func(name string) milvusclient.CreateCollectionOption {
			return milvusclient.NewCreateCollectionOption(name, base(name)).WithNumPartitions(4)
		}, "num_partitions should only be specified with partition key field enabled", unexpected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := uniqueName("weir_compat_pkey_bad")
			dropAtCleanup(t, c, name)
			requireMilvusError(t, c.CreateCollection(ctx, tt.option(name)), tt.mentions, tt.code)
			requireHas(ctx, t, c, name, false)
		})
	}
}
