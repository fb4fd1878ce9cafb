package batch

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/stretchr/testify/require"
)

// The partition-key vectors of the research notes (spec section 2.3), computed with
// spaolacci/murmur3 v1.1.0 and hash/crc32 as Milvus 2.6's typeutil does: the hash of each key
// and its partition index among 16 (Milvus's default partition count).
var keyVectors = []struct {
	int64Key  int64
	strKey    string
	isStr     bool
	hash      uint32
	partition int32
}{
	{int64Key: 0, hash: 1669671676, partition: 12},
	{int64Key: 1, hash: 1392991556, partition: 4},
	{int64Key: 2, hash: 1176478452, partition: 4},
	{int64Key: 3, hash: 591091635, partition: 3},
	{int64Key: 100, hash: 1177227376, partition: 0},
	{int64Key: 1000, hash: 679959820, partition: 12},
	{int64Key: -1, hash: 1651860712, partition: 8},
	{isStr: true, strKey: "", hash: 0, partition: 0},
	{isStr: true, strKey: "a", hash: 3904355907, partition: 3},
	{isStr: true, strKey: "abc", hash: 891568578, partition: 2},
	{isStr: true, strKey: "0", hash: 4108050209, partition: 1},
	{isStr: true, strKey: "1", hash: 2212294583, partition: 7},
	{isStr: true, strKey: "parkey", hash: 2857756723, partition: 3},
}

func TestPartitionKeyHashesMatchMilvus(t *testing.T) {
	for _, v := range keyVectors {
		if v.isStr {
			// Unmasked: a VarChar key's hash keeps its top bit (3904355907 > 2^31).
			require.Equal(t, v.hash, HashString(v.strKey), "varchar %q", v.strKey)
			require.Equal(t, v.partition, int32(v.hash%16), "varchar %q", v.strKey)
			continue
		}
		require.Equal(t, v.hash, HashInt64(v.int64Key), "int64 %d", v.int64Key)
		require.Equal(t, v.partition, int32(v.hash%16), "int64 %d", v.int64Key)
	}
}

// TestKeyPartitions routes rows by a partition key column, Int64 and VarChar, to the partition
// indexes of the vectors above.
func TestKeyPartitions(t *testing.T) {
	mem := checked(t)
	s := collection(false,
		pkField("id", schemapb.DataType_Int64, false),
		field("vec", schemapb.DataType_FloatVector, "dim", "2"),
		field("tenant", schemapb.DataType_Int64),
		field("region", schemapb.DataType_VarChar, "max_length", "16"),
	)
	var ids, tenants []int64
	var regions []string
	var wantInt, wantStr []int32
	for i, v := range keyVectors {
		ids = append(ids, int64(i))
		if v.isStr {
			regions = append(regions, v.strKey)
			wantStr = append(wantStr, v.partition)
			tenants = append(tenants, 0)
			wantInt = append(wantInt, 12)
		} else {
			tenants = append(tenants, v.int64Key)
			wantInt = append(wantInt, v.partition)
			regions = append(regions, "parkey")
			wantStr = append(wantStr, 3)
		}
	}
	n := len(keyVectors)
	cols := []*schemapb.FieldData{
		scalarCol("id", 0, longs(ids...)),
		vectorCol("vec", 0, floatVec(2, make([]float32, 2*n))),
		scalarCol("tenant", 0, longs(tenants...)),
		scalarCol("region", 0, strs(regions...)),
	}
	r, err := FromFieldData(s, cols, uint32(n), FromOptions{Allocator: mem})
	require.NoError(t, err)
	defer r.Release()

	got, err := r.KeyPartitions("tenant", 16)
	require.NoError(t, err)
	require.Equal(t, wantInt, got)
	got, err = r.KeyPartitions("region", 16)
	require.NoError(t, err)
	require.Equal(t, wantStr, got)
	got, err = r.KeyPartitions("tenant", 1)
	require.NoError(t, err)
	require.Equal(t, make([]int32, n), got, "one partition takes every row")

	_, err = r.KeyPartitions("vec", 16)
	require.ErrorContains(t, err, "want int64 or utf8")
	_, err = r.KeyPartitions("nope", 16)
	require.ErrorContains(t, err, `no column "nope"`)
	_, err = r.KeyPartitions("tenant", 0)
	require.Error(t, err)
}

func TestGroup(t *testing.T) {
	mem := checked(t)
	r, err := FromFieldData(allTypes(false), allColumns(0, 5), 5, FromOptions{Allocator: mem})
	require.NoError(t, err)
	defer r.Release()
	groups := r.Group([]int32{3, 0, 3, 3, 0}, 4)
	require.Len(t, groups, 4)
	require.Nil(t, groups[1])
	require.Nil(t, groups[2])
	require.Equal(t, []int64{1, 4}, groups[0].PrimaryKeys().Int64)
	require.Equal(t, []int64{0, 2, 3}, groups[3].PrimaryKeys().Int64)
	for _, g := range []*Rows{groups[0], groups[3]} {
		rec := g.Record(1)
		require.Equal(t, g.PrimaryKeys().Int64, rec.Column(0).(*array.Int64).Int64Values(), "the rows move with their keys")
		rec.Release()
		g.Release()
	}
	require.PanicsWithValue(t, "batch: row in group 4, want 0..3", func() { r.Group([]int32{0, 1, 2, 3, 4}, 4) })
	require.PanicsWithValue(t, "batch: 2 groups for 5 rows", func() { r.Group([]int32{0, 1}, 4) })
}
