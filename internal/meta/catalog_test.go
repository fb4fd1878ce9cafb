package meta

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/weir-db/weir/internal/apierr"
	"github.com/weir-db/weir/internal/metastore"
	"github.com/weir-db/weir/internal/schema"
)

func newCatalog(t testing.TB) (*Catalog, *metastore.Memory) {
	kv := metastore.NewMemory()
	t.Cleanup(func() { kv.Close() })
	return NewCatalog(kv, "weir", NewIDAllocator(kv, "weir", 10), slog.New(slog.DiscardHandler)), kv
}

func testSchema(t testing.TB, name string, dim int) *schemapb.CollectionSchema {
	s, err := schema.Normalize(name, &schemapb.CollectionSchema{Fields: []*schemapb.FieldSchema{
		{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
		{Name: "vec", DataType: schemapb.DataType_FloatVector, TypeParams: []*commonpb.KeyValuePair{{Key: "dim", Value: fmt.Sprint(dim)}}},
	}})
	require.NoError(t, err)
	return s
}

func create(t testing.TB, c *Catalog, name string, shards int) *Collection {
	t.Helper()
	coll, exists, err := c.CreateCollection(context.Background(), &Collection{DB: DefaultDatabase, Name: name, Schema: testSchema(t, name, 8), Shards: shards})
	require.NoError(t, err)
	require.False(t, exists)
	return coll
}

func TestCreateCollectionStoresRecordAndDefaultPartition(t *testing.T) {
	ctx := context.Background()
	c, _ := newCatalog(t)
	coll := create(t, c, "books", 3)
	require.Equal(t, []string{VChannelName(coll.ID, 0), VChannelName(coll.ID, 1), VChannelName(coll.ID, 2)}, coll.VChannels)
	require.Equal(t, Created, coll.State)

	got, err := c.GetCollectionByName(ctx, DefaultDatabase, "books")
	require.NoError(t, err)
	require.Equal(t, coll.ID, got.ID)
	require.True(t, proto.Equal(coll.Schema, got.Schema), "schema round-trips through the stored JSON")
	require.Equal(t, coll.VChannels, got.VChannels)
	require.True(t, coll.CreatedAt.Equal(got.CreatedAt))

	parts, err := c.ListPartitions(ctx, coll.ID)
	require.NoError(t, err)
	require.Len(t, parts, 1)
	require.Equal(t, DefaultPartition, parts[0].Name)

	// A second create of the name writes nothing and returns the existing record.
	again, exists, err := c.CreateCollection(ctx, &Collection{DB: DefaultDatabase, Name: "books", Schema: testSchema(t, "books", 16), Shards: 1})
	require.NoError(t, err)
	require.True(t, exists)
	require.Equal(t, coll.ID, again.ID)
	require.Equal(t, 3, again.Shards)
}

func TestConcurrentCreatesMakeOneCollection(t *testing.T) {
	c, _ := newCatalog(t)
	var wg sync.WaitGroup
	ids := make([]int64, 8)
	created := make([]bool, 8)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			coll, exists, err := c.CreateCollection(context.Background(), &Collection{DB: DefaultDatabase, Name: "race", Schema: testSchema(t, "race", 8), Shards: 1})
			require.NoError(t, err)
			ids[i], created[i] = coll.ID, !exists
		}()
	}
	wg.Wait()
	n := 0
	for i := range ids {
		require.Equal(t, ids[0], ids[i], "every caller sees the one collection")
		if created[i] {
			n++
		}
	}
	require.Equal(t, 1, n, "exactly one caller created it")
}

func TestListAndDropCollections(t *testing.T) {
	ctx := context.Background()
	c, _ := newCatalog(t)
	a := create(t, c, "a", 1)
	create(t, c, "b", 1)
	list, err := c.ListCollections(ctx, DefaultDatabase)
	require.NoError(t, err)
	require.Len(t, list, 2)
	require.Equal(t, "a", list[0].Name)

	dropped, err := c.DropCollection(ctx, DefaultDatabase, "a")
	require.NoError(t, err)
	require.Equal(t, Dropped, dropped.State)
	_, err = c.GetCollectionByName(ctx, DefaultDatabase, "a")
	require.Equal(t, apierr.CollectionNotFound, apierr.KindOf(err))
	rec, err := c.GetCollection(ctx, a.ID)
	require.NoError(t, err, "the record stays for garbage collection")
	require.Equal(t, Dropped, rec.State)
	_, err = c.DropCollection(ctx, DefaultDatabase, "a")
	require.Equal(t, apierr.CollectionNotFound, apierr.KindOf(err))

	list, err = c.ListCollections(ctx, DefaultDatabase)
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, "b", list[0].Name)
	other, err := c.ListCollections(ctx, "other")
	require.NoError(t, err)
	require.Empty(t, other)

	// The name can be used again, by a new collection with a new ID.
	a2 := create(t, c, "a", 1)
	require.NotEqual(t, a.ID, a2.ID)
	_, err = c.GetCollection(ctx, 999999)
	require.Equal(t, apierr.CollectionNotFound, apierr.KindOf(err))
}

func TestPartitions(t *testing.T) {
	ctx := context.Background()
	c, _ := newCatalog(t)
	coll := create(t, c, "books", 1)
	p1, err := c.CreatePartition(ctx, coll.ID, "p1")
	require.NoError(t, err)
	again, err := c.CreatePartition(ctx, coll.ID, "p1")
	require.NoError(t, err)
	require.Equal(t, p1.ID, again.ID, "creating an existing partition returns it")

	parts, err := c.ListPartitions(ctx, coll.ID)
	require.NoError(t, err)
	require.Equal(t, []string{DefaultPartition, "p1"}, []string{parts[0].Name, parts[1].Name})

	err = c.DropPartition(ctx, coll.ID, DefaultPartition)
	require.Equal(t, apierr.Unexpected, apierr.KindOf(err), "Milvus's code 65535")
	require.EqualError(t, err, "default partition cannot be deleted")
	require.NoError(t, c.DropPartition(ctx, coll.ID, "p1"))
	require.Equal(t, apierr.PartitionNotFound, apierr.KindOf(c.DropPartition(ctx, coll.ID, "p1")))
	parts, err = c.ListPartitions(ctx, coll.ID)
	require.NoError(t, err)
	require.Len(t, parts, 1)

	// No partition can be added to a dropped collection.
	_, err = c.DropCollection(ctx, DefaultDatabase, "books")
	require.NoError(t, err)
	_, err = c.CreatePartition(ctx, coll.ID, "p2")
	require.Equal(t, apierr.CollectionNotFound, apierr.KindOf(err))
	_, err = c.CreatePartition(ctx, 12345, "p2")
	require.Equal(t, apierr.CollectionNotFound, apierr.KindOf(err))
}

func TestPartitionLimit(t *testing.T) {
	ctx := context.Background()
	c, _ := newCatalog(t)
	coll := create(t, c, "books", 1)
	for i := 1; i < MaxPartitions; i++ {
		_, err := c.CreatePartition(ctx, coll.ID, fmt.Sprintf("p%d", i))
		require.NoError(t, err)
	}
	_, err := c.CreatePartition(ctx, coll.ID, "one_too_many")
	require.Equal(t, apierr.Unexpected, apierr.KindOf(err), "Milvus's code 65535")
	require.Contains(t, err.Error(), "partition number (1024) exceeds max configuration (1024), collection: ")
}

func TestIDAllocatorIsUniqueAcrossAllocators(t *testing.T) {
	kv := metastore.NewMemory()
	defer kv.Close()
	ctx := context.Background()
	seen := map[int64]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for a := 0; a < 4; a++ {
		alloc := NewIDAllocator(kv, "weir", 7) // separate processes, one counter
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				n := int64(i%3 + 1)
				first, err := alloc.Alloc(ctx, n)
				require.NoError(t, err)
				mu.Lock()
				for id := first; id < first+n; id++ {
					require.False(t, seen[id], "id %d handed out twice", id)
					require.Positive(t, id)
					seen[id] = true
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	_, err := NewIDAllocator(kv, "weir", 0).Alloc(ctx, 0)
	require.Error(t, err)
	big, err := NewIDAllocator(kv, "weir", 5).Alloc(ctx, 100)
	require.NoError(t, err)
	require.False(t, seen[big])
}

func TestIDAllocatorRejectsCorruptCounter(t *testing.T) {
	kv := metastore.NewMemory()
	defer kv.Close()
	_, err := kv.Put(context.Background(), keys{"weir"}.id(), []byte("not a number"))
	require.NoError(t, err)
	_, err = NewIDAllocator(kv, "weir", 5).Alloc(context.Background(), 1)
	require.ErrorContains(t, err, "corrupt id counter")
}

// TestUnknownOutcomesAreRetriableAndRetriesConverge: a catalog write whose outcome is unknown is
// reported as retriable (never as a definite failure), and repeating the request converges on
// exactly one collection or partition whether or not the first attempt applied.
func TestUnknownOutcomesAreRetriableAndRetriesConverge(t *testing.T) {
	for _, fault := range []metastore.WriteFault{metastore.FailBeforeApply, metastore.FailAfterApply} {
		t.Run(fmt.Sprint(fault), func(t *testing.T) {
			ctx := context.Background()
			c, kv := newCatalog(t)
			_, err := c.ids.Alloc(ctx, 1) // reserve a batch so only catalog writes see the fault
			require.NoError(t, err)
			armed := true
			kv.InjectWriteFault(func([]string) metastore.WriteFault {
				if armed {
					armed = false
					return fault
				}
				return metastore.NoFault
			})
			_, _, err = c.CreateCollection(ctx, &Collection{DB: DefaultDatabase, Name: "books", Schema: testSchema(t, "books", 8), Shards: 1})
			require.Equal(t, apierr.Unavailable, apierr.KindOf(err))
			require.ErrorIs(t, err, metastore.ErrOutcomeUnknown)
			coll, exists, err := c.CreateCollection(ctx, &Collection{DB: DefaultDatabase, Name: "books", Schema: testSchema(t, "books", 8), Shards: 1})
			require.NoError(t, err)
			require.Equal(t, fault == metastore.FailAfterApply, exists, "the retry finds the first attempt's collection iff it applied")
			list, err := c.ListCollections(ctx, DefaultDatabase)
			require.NoError(t, err)
			require.Len(t, list, 1)

			armed = true
			_, err = c.CreatePartition(ctx, coll.ID, "p1")
			require.Equal(t, apierr.Unavailable, apierr.KindOf(err))
			_, err = c.CreatePartition(ctx, coll.ID, "p1")
			require.NoError(t, err)
			parts, err := c.ListPartitions(ctx, coll.ID)
			require.NoError(t, err)
			require.Len(t, parts, 2)

			armed = true
			require.Equal(t, apierr.Unavailable, apierr.KindOf(c.DropPartition(ctx, coll.ID, "p1")))
			err = c.DropPartition(ctx, coll.ID, "p1")
			if fault == metastore.FailAfterApply {
				require.Equal(t, apierr.PartitionNotFound, apierr.KindOf(err))
			} else {
				require.NoError(t, err)
			}

			armed = true
			_, err = c.DropCollection(ctx, DefaultDatabase, "books")
			require.Equal(t, apierr.Unavailable, apierr.KindOf(err))
			_, err = c.DropCollection(ctx, DefaultDatabase, "books")
			if fault == metastore.FailAfterApply {
				require.Equal(t, apierr.CollectionNotFound, apierr.KindOf(err))
			} else {
				require.NoError(t, err)
			}
			_, err = c.GetCollectionByName(ctx, DefaultDatabase, "books")
			require.Equal(t, apierr.CollectionNotFound, apierr.KindOf(err))
		})
	}
}

func TestIDAllocatorReportsUnknownOutcome(t *testing.T) {
	kv := metastore.NewMemory()
	defer kv.Close()
	kv.InjectWriteFault(func([]string) metastore.WriteFault { return metastore.FailAfterApply })
	_, err := NewIDAllocator(kv, "weir", 5).Alloc(context.Background(), 1)
	require.ErrorIs(t, err, metastore.ErrOutcomeUnknown)
}

func TestFlushRecordsAreNeverOverwrittenAndTokensResolve(t *testing.T) {
	ctx := context.Background()
	c, _ := newCatalog(t)
	fm := FlushMarkers{Timestamp: 42, Token: 7, Positions: map[string]uint64{"ch": 3}}
	require.NoError(t, c.SaveFlush(ctx, 1, fm))
	err := c.SaveFlush(ctx, 1, FlushMarkers{Timestamp: 42, Positions: map[string]uint64{"ch": 1}})
	require.ErrorIs(t, err, ErrFlushExists, "a second proxy's flush in the same millisecond takes another timestamp")
	coll, got, err := c.ReadFlushToken(ctx, 7)
	require.NoError(t, err)
	require.Equal(t, int64(1), coll)
	require.Equal(t, map[string]uint64{"ch": 3}, got.Positions)
	_, _, err = c.ReadFlushToken(ctx, 8)
	require.ErrorIs(t, err, metastore.ErrNotFound)
}
