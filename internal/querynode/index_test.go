package querynode_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/datanode"
	"github.com/weir-db/weir/internal/failpoint"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/querynode"
)

// hnswWorld is a world of one channel with an HNSW index, whose data node syncs every few
// kilobytes: a segment has many files, which the query node gathers into one piece for its index.
func hnswWorld(t *testing.T) *world {
	return newIndexedWorld(t, 1, []*commonpb.KeyValuePair{{Key: "index_type", Value: "HNSW"}, {Key: "metric_type", Value: "L2"},
		{Key: "params", Value: `{"M": 8, "efConstruction": 64}`}}, func(c *datanode.Config) { c.SyncBufferBytes = 16 << 10 })
}

// insertRange inserts keys [0, n) in batches of 500 (so that the segment has many files).
func (w *world) insertRange(n int64) {
	w.t.Helper()
	for lo := int64(0); lo < n; lo += 500 {
		var ids []int64
		for k := lo; k < min(lo+500, n); k++ {
			ids = append(ids, k)
		}
		w.insert(ids...)
	}
}

// search returns the keys of node n's top k for key q's vector (filter optional), at Strong.
func (w *world) search(n *querynode.Node, q int64, k int, filter string) []int64 {
	w.t.Helper()
	res, err := n.Search(w.ctx, &querynode.SearchRequest{ShardRequest: querynode.ShardRequest{CollectionID: w.coll.ID, Channel: w.coll.VChannels[0],
		Filter: filter, Consistency: strong()}, FieldID: w.coll.Schema.GetFields()[1].GetFieldID(), Metric: "L2",
		Vectors: [][]float32{vecOf(q)}, K: k, Params: map[string]any{"ef": 64.0}})
	require.NoError(w.t, err)
	var out []int64
	for _, h := range res.Hits[0] {
		out = append(out, h.IntKey)
	}
	return out
}

// indexRecords waits until the collection has n segment index records and returns them.
func (w *world) indexRecords(n int) []*meta.SegmentIndex {
	w.t.Helper()
	var recs []*meta.SegmentIndex
	require.Eventually(w.t, func() bool {
		var err error
		recs, err = w.catalog.ListSegmentIndexes(w.ctx, w.coll.ID)
		require.NoError(w.t, err)
		return len(recs) == n
	}, 30*time.Second, 20*time.Millisecond)
	return recs
}

// indexed waits until node n searches a segment of the collection through its index.
func (w *world) indexed(n *querynode.Node) querynode.ShardInfo {
	w.t.Helper()
	var info querynode.ShardInfo
	require.Eventually(w.t, func() bool {
		require.NoError(w.t, n.Check(w.ctx))
		info = n.Shards()[0]
		return info.Indexed > 0
	}, 30*time.Second, 20*time.Millisecond)
	return info
}

// TestIndexedSegmentIsSearchedThroughItsIndex: once the data node committed a flushed
// segment's HNSW index, the query node searches the segment through it: each key's own vector
// finds the key first, a deleted row is never returned, a filter is kept, count(*) is unchanged.
func TestIndexedSegmentIsSearchedThroughItsIndex(t *testing.T) {
	w := hnswWorld(t)
	w.insertRange(3000)
	w.flush()
	w.assign(1)
	n := w.queryNode(1)
	info := w.indexed(n)
	require.Equal(t, int64(3000), info.Rows)
	require.Greater(t, info.Files, 2, "the segment has several files")
	require.Positive(t, info.IndexBytes)
	require.Equal(t, int64(3000), w.count(n, strong(), ""))

	for _, k := range []int64{0, 1, 777, 1500, 2999} {
		got := w.search(n, k, 5, "")
		require.Len(t, got, 5)
		require.Equal(t, k, got[0], "key %d's own vector finds it first", k)
	}
	w.delete(1500)
	got := w.search(n, 1500, 5, "")
	require.NotContains(t, got, int64(1500))
	require.Len(t, got, 5)
	for _, k := range w.search(n, 2000, 10, "id < 100") {
		require.Less(t, k, int64(100))
	}
	require.Equal(t, int64(2999), w.count(n, strong(), ""))
}

// TestIndexSwapsInAtomically: a segment is searched exactly until its index is committed, then
// through its index, in one change: readers running meanwhile always count every row once and
// always find each key first.
func TestIndexSwapsInAtomically(t *testing.T) {
	held, release, disable := failpoint.HoldFirst("indexbuild/before-commit")
	defer disable()
	w := hnswWorld(t)
	w.insertRange(2500)
	w.flush()
	w.assign(1)
	n := w.queryNode(1)
	select { // the index is built, not committed: the segment is searched exactly
	case <-held:
	case <-time.After(30 * time.Second):
		release()
		t.Fatal("the data node never built the index")
	}
	require.Zero(t, n.Shards()[0].Indexed)
	require.Equal(t, int64(0), w.search(n, 0, 3, "")[0])

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads atomic.Int64
	errs := make(chan string, 1)
	wg.Go(func() {
		for k := int64(0); ; k = (k + 97) % 2500 {
			select {
			case <-stop:
				return
			default:
			}
			if c := w.count(n, strong(), ""); c != 2500 {
				select {
				case errs <- fmt.Sprintf("count(*) %d", c):
				default:
				}
			}
			if got := w.search(n, k, 3, ""); len(got) != 3 || got[0] != k {
				select {
				case errs <- fmt.Sprintf("key %d's search answer %v", k, got):
				default:
				}
			}
			reads.Add(1)
		}
	})
	release()
	w.indexed(n)
	for before := reads.Load(); reads.Load() < before+20; {
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	select {
	case e := <-errs:
		t.Fatalf("a reader saw %s during the swap", e)
	default:
	}
}

// TestIndexesCountAgainstTheMemoryLimit: a node whose --memory-limit holds a segment's rows but
// not its index as well refuses the load with the memory-limit error; with room for both it
// loads and serves the index.
func TestIndexesCountAgainstTheMemoryLimit(t *testing.T) {
	w := hnswWorld(t)
	w.insertRange(3000)
	w.flush()
	recs := w.indexRecords(1)
	files, err := w.catalog.ListFiles(w.ctx, w.coll.ID, recs[0].SegmentID)
	require.NoError(t, err)
	var fileBytes int64
	for _, f := range files {
		fileBytes += f.Bytes
	}
	// A load reserves twice a file's bytes, and as much again while it gathers the segment's
	// pieces for its index.
	rows := 2 * fileBytes
	w.assign(7)
	n := w.newNode(7, func(c *querynode.Config) { c.MemoryLimit = 2*rows + recs[0].IndexBytes/2 })
	require.Contains(t, w.loadFailure(n), "over its memory limit")
	require.Empty(t, n.Shards())

	w.assign(8)
	m := w.newNode(8, func(c *querynode.Config) { c.MemoryLimit = 2*rows + recs[0].IndexBytes + 1<<20 })
	require.Eventually(t, func() bool {
		require.NoError(t, m.Check(w.ctx))
		s := m.Shards()
		return len(s) == 1 && s[0].Indexed == 1
	}, 30*time.Second, 20*time.Millisecond)
}

// TestCorruptIndexFileIsRefusedAndRebuilt: an index file damaged in object storage is refused
// by the query node (never searched: the segment is searched exactly and answers right),
// reported, built again by the channel's data node under a new record, and then served.
func TestCorruptIndexFileIsRefusedAndRebuilt(t *testing.T) {
	w := hnswWorld(t)
	w.insertRange(3000)
	w.flush()
	recs := w.indexRecords(1)
	first := recs[0]
	b, err := w.bucket.Get(w.ctx, first.Key)
	require.NoError(t, err)
	b[len(b)/2] ^= 0xff
	require.NoError(t, w.bucket.Put(w.ctx, first.Key, b))

	w.assign(1)
	n := w.queryNode(1)
	require.Zero(t, n.Shards()[0].Indexed, "the damaged file is not served")
	for _, k := range []int64{3, 2100} {
		require.Equal(t, k, w.search(n, k, 3, "")[0], "the segment is searched exactly meanwhile")
	}
	// Reported, rebuilt under a new record (its report deleted with the old one), served.
	info := w.indexed(n)
	require.Equal(t, 1, info.Indexed)
	recs = w.indexRecords(1)
	require.NotEqual(t, first.Key, recs[0].Key)
	bad, err := w.catalog.CorruptIndexes(w.ctx, w.coll.ID)
	require.NoError(t, err)
	require.Empty(t, bad)
	require.Equal(t, int64(2100), w.search(n, 2100, 3, "")[0])
}

// TestInterimIndexCoversGrowingRows: once a channel's growing rows pass InterimRows, the shard
// builds an interim index over them and searches them through it: each key's own vector still
// finds it first, a deleted row is never returned, a filter is kept, count(*) is unchanged;
// after a flush hands the rows off to files, the interim index goes with the growing rows.
func TestInterimIndexCoversGrowingRows(t *testing.T) {
	w := newIndexedWorld(t, 1, []*commonpb.KeyValuePair{{Key: "index_type", Value: "HNSW"}, {Key: "metric_type", Value: "L2"}})
	w.assign(1)
	n := w.queryNode(1)
	const rows = querynode.InterimRows + 4000
	for lo := int64(0); lo < rows; lo += 2000 {
		ids := make([]int64, 0, 2000)
		for k := lo; k < min(lo+2000, rows); k++ {
			ids = append(ids, k)
		}
		w.insert(ids...)
	}
	require.Equal(t, int64(rows), w.count(n, strong(), ""))
	require.Eventually(t, func() bool {
		require.NoError(t, n.Check(w.ctx))
		return n.Shards()[0].Interim >= querynode.InterimRows
	}, 60*time.Second, 50*time.Millisecond, "no interim index")
	for _, k := range []int64{0, 12345, 15000, rows - 1} {
		require.Equal(t, k, w.search(n, k, 3, "")[0], "key %d's own vector finds it first", k)
	}
	w.delete(12345)
	require.NotContains(t, w.search(n, 12345, 5, ""), int64(12345))
	for _, k := range w.search(n, 15000, 10, "id < 100") {
		require.Less(t, k, int64(100))
	}
	require.Equal(t, int64(rows-1), w.count(n, strong(), ""))

	w.flush()
	require.Eventually(t, func() bool {
		require.NoError(t, n.Check(w.ctx))
		return n.Shards()[0].Interim == 0
	}, 60*time.Second, 50*time.Millisecond, "the interim index outlived its rows")
	require.Equal(t, int64(rows-1), w.count(n, strong(), ""))
	require.Equal(t, int64(15000), w.search(n, 15000, 3, "")[0])
}

// TestInterimIndexWithAKeyInTwoPartitions: keys inserted in two partitions have a growing row
// in each, both covered by one interim index, at the same distance from any query. A search of
// k still returns k distinct keys: the interim search asks for k hits per partition it covers,
// since k hits alone would be the two rows of k/2 keys.
func TestInterimIndexWithAKeyInTwoPartitions(t *testing.T) {
	w := newIndexedWorld(t, 1, []*commonpb.KeyValuePair{{Key: "index_type", Value: "HNSW"}, {Key: "metric_type", Value: "L2"}})
	st, err := w.proxy.CreatePartition(w.ctx, &milvuspb.CreatePartitionRequest{CollectionName: "books", PartitionName: "p1"})
	require.NoError(t, err)
	require.Zero(t, st.GetCode(), st.GetReason())
	const keys = querynode.InterimRows/2 + 1000
	ids := make([]int64, keys)
	for k := range ids {
		ids[k] = int64(k)
	}
	// One message per partition, so that no prefix of the channel the node may have read when
	// it first builds an interim index passes InterimRows: the index then covers both at once
	// (rows left uncovered by an earlier index would wait for InterimRows more).
	w.insertInto("_default", ids...)
	w.insertInto("p1", ids...)
	// Loaded after the inserts, the node finds every row growing and covers them at once.
	w.assign(1)
	n := w.queryNode(1)
	require.Eventually(t, func() bool {
		require.NoError(t, n.Check(w.ctx))
		return n.Shards()[0].Interim == 2*keys
	}, 60*time.Second, 50*time.Millisecond, "no interim index over both partitions")
	for _, q := range []int64{100, 5000, keys - 100} {
		require.Equal(t, []int64{q, q - 1, q + 1, q - 2}, w.search(n, q, 4, ""), "key %d", q)
	}
}
