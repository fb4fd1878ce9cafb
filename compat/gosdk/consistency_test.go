package gosdk_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/milvus-io/milvus/client/v2/column"
	"github.com/milvus-io/milvus/client/v2/entity"
	"github.com/milvus-io/milvus/client/v2/index"
	"github.com/milvus-io/milvus/client/v2/milvusclient"
)

// indexedLoaded creates a collection of id, vec (searchDim) and age, indexes and loads it.
func indexedLoaded(ctx context.Context, t *testing.T, c *milvusclient.Client, prefix string, shards int32) string {
	t.Helper()
	name := uniqueName(prefix)
	dropAtCleanup(t, c, name)
	require.NoError(t, c.CreateCollection(ctx, milvusclient.NewCreateCollectionOption(name, schemaOf(pkInt64(),
		vecField("vec", searchDim), entity.NewField().WithName("age").WithDataType(entity.FieldTypeInt64))).WithShardNum(shards)))
	task, err := c.CreateIndex(ctx, milvusclient.NewCreateIndexOption(name, "vec", index.NewFlatIndex(entity.L2)))
	require.NoError(t, err)
	require.NoError(t, task.Await(ctx))
	loadAndWait(ctx, t, c, name)
	return name
}

func insertRows(ctx context.Context, c *milvusclient.Client, name string, ids []int64) error {
	vecs := make([][]float32, len(ids))
	for i, k := range ids {
		vecs[i] = searchVectors(uint64(k)+100, 1)[0]
	}
	_, err := c.Insert(ctx, milvusclient.NewColumnBasedInsertOption(name, column.NewColumnInt64("id", ids),
		column.NewColumnFloatVector("vec", searchDim, vecs), column.NewColumnInt64("age", ids)))
	return err
}

// TestReadYourWrites: 8 clients each insert a row and at once count and search it with Strong
// consistency, with no sleep anywhere; every one sees its own write (R5, milvus#16949).
func TestReadYourWrites(t *testing.T) {
	c := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	name := indexedLoaded(ctx, t, c, "weir_ryw", 2)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				k := int64(g*100 + i)
				if !assertNoError(t, insertRows(ctx, c, name, []int64{k})) {
					return
				}
				rs, err := c.Query(ctx, milvusclient.NewQueryOption(name).WithFilter(fmt.Sprintf("id == %d", k)).
					WithOutputFields("count(*)").WithConsistencyLevel(entity.ClStrong))
				if !assertNoError(t, err) {
					return
				}
				n, _ := rs.GetColumn("count(*)").GetAsInt64(0)
				if n != 1 {
					t.Errorf("client %d: count of its key %d is %d", g, k, n)
				}
				sr, err := c.Search(ctx, milvusclient.NewSearchOption(name, 1, []entity.Vector{entity.FloatVector(searchVectors(uint64(k)+100, 1)[0])}).
					WithConsistencyLevel(entity.ClStrong))
				if !assertNoError(t, err) {
					return
				}
				if got, _ := sr[0].IDs.GetAsInt64(0); sr[0].ResultCount != 1 || got != k {
					t.Errorf("client %d: search for its key %d found %d", g, k, got)
				}
			}
		}()
	}
	wg.Wait()
}

func assertNoError(t *testing.T, err error) bool {
	t.Helper()
	if err != nil {
		t.Error(err)
		return false
	}
	return true
}

// TestCountDuringHandoffs: inserts and flushes run continuously while another client loops
// count(*) at Strong; the count never decreases, never exceeds the rows whose insert began,
// and ends equal to the acknowledged rows (R3).
func TestCountDuringHandoffs(t *testing.T) {
	c := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	name := indexedLoaded(ctx, t, c, "weir_handoff", 2)
	var started atomic.Int64
	done := make(chan struct{})
	var counts atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		last := int64(0)
		for {
			select {
			case <-done:
				return
			default:
			}
			n := countRows(ctx, t, c, name, "")
			if n < last {
				t.Errorf("count(*) went back from %d to %d", last, n)
			}
			if s := started.Load(); n > s {
				t.Errorf("count(*) %d passed the %d rows written", n, s)
			}
			last = n
			counts.Add(1)
		}
	}()
	next := int64(0)
	for round := range 30 {
		ids := make([]int64, 100)
		for i := range ids {
			ids[i] = next
			next++
		}
		started.Add(100)
		require.NoError(t, insertRows(ctx, c, name, ids))
		if round%5 == 4 {
			flushAndWait(ctx, t, c, name)
		}
	}
	flushAndWait(ctx, t, c, name)
	close(done)
	wg.Wait()
	require.Equal(t, next, countRows(ctx, t, c, name, ""))
	require.Positive(t, counts.Load())
	t.Logf("%d counts during 30 inserts and 7 flushes", counts.Load())
}
