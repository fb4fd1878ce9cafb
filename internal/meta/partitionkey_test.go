package meta

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/apierr"
	"github.com/weir-db/weir/internal/metastore"
	"github.com/weir-db/weir/internal/schema"
)

func keyedSchema(t testing.TB, name string) *schemapb.CollectionSchema {
	s, err := schema.Normalize(name, &schemapb.CollectionSchema{Fields: []*schemapb.FieldSchema{
		{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
		{Name: "vec", DataType: schemapb.DataType_FloatVector, TypeParams: []*commonpb.KeyValuePair{{Key: "dim", Value: "8"}}},
		{Name: "tenant", DataType: schemapb.DataType_Int64, IsPartitionKey: true},
	}})
	require.NoError(t, err)
	return s
}

// TestKeyPartitionsAreCreatedWithTheCollection: a collection with a partition key is created
// with partitions _default_0 … _default_{n-1} (no _default), IDs consecutive after the
// collection's, in the one transaction that creates it — even with Milvus's maximum of 1024
// partitions, far more than etcd's 128 operations per transaction would allow as keys.
func TestKeyPartitionsAreCreatedWithTheCollection(t *testing.T) {
	for _, n := range []int{1, 16, MaxPartitions} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			ctx := context.Background()
			c, kv := newCatalog(t)
			_, before, err := kv.Range(ctx, "weir/meta/collections/")
			require.NoError(t, err)
			coll, exists, err := c.CreateCollection(ctx, &Collection{DB: DefaultDatabase, Name: "docs", Schema: keyedSchema(t, "docs"), Shards: 2, KeyPartitions: n})
			require.NoError(t, err)
			require.False(t, exists)
			_, after, err := kv.Range(ctx, "weir/meta/collections/")
			require.NoError(t, err)
			// The ID allocator's write is one revision, the create's transaction the other.
			require.Equal(t, before+2, after, "one transaction creates the collection and its partitions")
			require.Equal(t, coll.ID+1, coll.FirstKeyPartition)

			parts, err := c.ListPartitions(ctx, coll.ID)
			require.NoError(t, err)
			require.Len(t, parts, n)
			for i, p := range parts {
				require.Equal(t, fmt.Sprintf("_default_%d", i), p.Name)
				require.Equal(t, coll.ID+1+int64(i), p.ID)
				require.Equal(t, coll.ID, p.CollectionID)
				require.Equal(t, Created, p.State)
			}

			got, err := c.GetCollectionByName(ctx, DefaultDatabase, "docs")
			require.NoError(t, err)
			require.Equal(t, n, got.KeyPartitions, "the count round-trips through the record")
			require.Equal(t, coll.FirstKeyPartition, got.FirstKeyPartition)

			// A repeated create writes nothing and returns the record: the caller compares.
			again, exists, err := c.CreateCollection(ctx, &Collection{DB: DefaultDatabase, Name: "docs", Schema: keyedSchema(t, "docs"), Shards: 2, KeyPartitions: 3})
			require.NoError(t, err)
			require.True(t, exists)
			require.Equal(t, n, again.KeyPartitions)
		})
	}
}

func TestKeyPartitionsAreFixed(t *testing.T) {
	ctx := context.Background()
	c, _ := newCatalog(t)
	coll, _, err := c.CreateCollection(ctx, &Collection{DB: DefaultDatabase, Name: "docs", Schema: keyedSchema(t, "docs"), Shards: 1, KeyPartitions: 4})
	require.NoError(t, err)

	_, err = c.CreatePartition(ctx, coll.ID, "extra")
	require.Equal(t, apierr.Unexpected, apierr.KindOf(err), "a plain error in Milvus")
	require.ErrorContains(t, err, "disable create partition if partition key mode is used")
	_, err = c.CreatePartition(ctx, coll.ID, "_default_0")
	require.ErrorContains(t, err, "disable create partition if partition key mode is used")
	parts, err := c.ListPartitions(ctx, coll.ID)
	require.NoError(t, err)
	require.Len(t, parts, 4)

	_, _, err = c.CreateCollection(ctx, &Collection{DB: DefaultDatabase, Name: "big", Schema: keyedSchema(t, "big"), Shards: 1, KeyPartitions: MaxPartitions + 1})
	require.Error(t, err)

	_, err = c.DropCollection(ctx, DefaultDatabase, "docs")
	require.NoError(t, err)
	parts, err = c.ListPartitions(ctx, coll.ID)
	require.NoError(t, err)
	require.Empty(t, parts, "a dropped collection has no live partitions")
	parts, err = c.ListPartitions(ctx, 424242)
	require.NoError(t, err)
	require.Empty(t, parts)
}

// TestKeyPartitionsSurviveAnEarlierReleasesCreatePartition: a process of the earlier release sees
// no partitions in a collection with a partition key and may add one by name; the collection
// still has the partitions its record names.
func TestKeyPartitionsSurviveAnEarlierReleasesCreatePartition(t *testing.T) {
	ctx := context.Background()
	c, store := newCatalog(t)
	coll, _, err := c.CreateCollection(ctx, &Collection{DB: DefaultDatabase, Name: "keyed", Schema: keyedSchema(t, "keyed"), Shards: 1, KeyPartitions: 4})
	require.NoError(t, err)
	// What CreatePartition of the earlier release writes: a record and a name key.
	rec, err := json.Marshal(Partition{ID: 999, CollectionID: coll.ID, Name: "extra", State: Created})
	require.NoError(t, err)
	_, err = store.Txn(ctx, nil, []metastore.Op{
		metastore.Put(c.keys.partition(coll.ID, 999), rec),
		metastore.Put(c.keys.partitionName(coll.ID, "extra"), []byte("999")),
	})
	require.NoError(t, err)
	parts, err := c.ListPartitions(ctx, coll.ID)
	require.NoError(t, err)
	var names []string
	for _, p := range parts {
		names = append(names, p.Name)
	}
	require.Equal(t, []string{"_default_0", "_default_1", "_default_2", "_default_3"}, names)
}
