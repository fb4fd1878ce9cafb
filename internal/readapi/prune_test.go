package readapi

import (
	"slices"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/batch"
	"github.com/weir-db/weir/internal/meta"
)

// TestKeyPartitionsPrune: a filter that pins the partition key reads only the partitions its
// values hash to, as rows are routed (batch.HashInt64/HashString modulo the partition count).
func TestKeyPartitionsPrune(t *testing.T) {
	intColl := &meta.Collection{KeyPartitions: 16, FirstKeyPartition: 100, Schema: &schemapb.CollectionSchema{Fields: []*schemapb.FieldSchema{
		{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
		{Name: "key", DataType: schemapb.DataType_Int64, IsPartitionKey: true},
		{Name: "age", DataType: schemapb.DataType_Int64},
	}}}
	p := func(k int64) int64 { return 100 + int64(batch.HashInt64(k)%16) }
	sorted := func(ps ...int64) []int64 { return slices.Compact(slices.Sorted(slices.Values(ps))) }
	require.Equal(t, []int64{p(5)}, keyPartitions(intColl, "key == 5"))
	require.Equal(t, sorted(p(1), p(2), p(3)), keyPartitions(intColl, "key in [1, 2, 3]"))
	require.Equal(t, []int64{p(7)}, keyPartitions(intColl, "age > 3 and key == 7"))
	require.Equal(t, sorted(p(7), p(8)), keyPartitions(intColl, "key == 7 or key == 8"))
	require.Nil(t, keyPartitions(intColl, "key == 7 or age > 1"), "an or with an unpinned side prunes nothing")
	require.Nil(t, keyPartitions(intColl, "key not in [1]"))
	require.Nil(t, keyPartitions(intColl, "key > 1"))
	require.Nil(t, keyPartitions(intColl, ""))
	if p(1) != p(2) {
		require.Equal(t, []int64{noPartition}, keyPartitions(intColl, "key == 1 and key == 2"), "no partition can match")
	}
	strColl := &meta.Collection{KeyPartitions: 4, FirstKeyPartition: 10, Schema: &schemapb.CollectionSchema{Fields: []*schemapb.FieldSchema{
		{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
		{Name: "key", DataType: schemapb.DataType_VarChar, IsPartitionKey: true},
	}}}
	require.Equal(t, []int64{10 + int64(batch.HashString("abc")%4)}, keyPartitions(strColl, `key == "abc"`))
	require.Nil(t, keyPartitions(&meta.Collection{Schema: intColl.Schema}, "key == 5"), "no partition key: no pruning")
}
