package querynode_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/datanode"
	"github.com/weir-db/weir/internal/proxy"
	"github.com/weir-db/weir/internal/querynode"
	"github.com/weir-db/weir/internal/tso"
	"github.com/weir-db/weir/internal/wal"
	"github.com/weir-db/weir/internal/wal/waltest"
)

// TestEachRowOnceAcrossFlushesHandoffsAndRestarts is R1 and R2: rows inserted, deleted and
// flushed in random order, the node handing off at random moments; after every step a Strong
// count and query equal the acknowledged rows exactly (none twice, none missing), and so does
// a node started from scratch on what is committed plus the channel after it.
func TestEachRowOnceAcrossFlushesHandoffsAndRestarts(t *testing.T) {
	w := newWorld(t, 2)
	w.assign(7)
	n := w.queryNode(7)
	r := rand.New(rand.NewPCG(1, 2))
	next := int64(0)
	check := func(n *querynode.Node, step string) {
		t.Helper()
		want := w.want()
		require.Equal(t, int64(len(want)), w.count(n, strong(), ""), "count(*) after %s", step)
		require.Equal(t, want, w.rows(n, strong()), "rows after %s", step)
	}
	for round := range 12 {
		k := 10 + r.IntN(40)
		ids := make([]int64, k)
		for i := range ids {
			ids[i] = next
			next++
		}
		w.insert(ids...)
		check(n, fmt.Sprintf("insert %d", round))
		if round%3 == 1 {
			victims := []int64{ids[0], ids[k/2]}
			if next > 60 {
				victims = append(victims, int64(r.IntN(int(next))))
			}
			w.delete(victims...)
			check(n, fmt.Sprintf("delete %d", round))
		}
		if round%2 == 0 {
			w.upsert(ids[1], 1000+int64(round))
			check(n, fmt.Sprintf("upsert %d", round))
		}
		if r.IntN(2) == 0 {
			w.flush()
		}
		if r.IntN(2) == 0 {
			require.NoError(t, n.Check(w.ctx))
			check(n, fmt.Sprintf("handoff %d", round))
		}
	}
	w.flush()
	require.NoError(t, n.Check(w.ctx))
	check(n, "the last handoff")
	for _, s := range n.Shards() {
		require.Greater(t, s.Files, 0, "shard %s holds files after the handoffs", s.Channel)
		require.Greater(t, s.Segments, 0, "shard %s holds segments after the handoffs", s.Channel)
	}
	// A node started now loads the files and follows the channel after the checkpoint.
	w.insert(next, next+1)
	w.assign(8)
	fresh := w.queryNode(8)
	check(fresh, "a fresh load")
}

// TestHandoffIsOneChange is R3 (milvus#36257, #41570, #24171: count(*) counting rows twice
// while a segment is handed off or flushed): while rows are inserted and flushed and the node
// hands off, readers that never wait see a count that never decreases and never passes the
// acknowledged rows, and ends equal to them.
func TestHandoffIsOneChange(t *testing.T) {
	w := newWorld(t, 1)
	w.assign(7)
	n := w.queryNode(7)
	var started atomic.Int64 // rows whose insert began
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads atomic.Int64
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := int64(0)
			eventually := querynode.Consistency{Level: commonpb.ConsistencyLevel_Eventually}
			for {
				select {
				case <-stop:
					return
				default:
				}
				c := w.count(n, eventually, "")
				require.GreaterOrEqual(t, c, last, "count(*) went back")
				require.LessOrEqual(t, c, started.Load(), "count(*) passed the rows written")
				last = c
				reads.Add(1)
			}
		}()
	}
	next := int64(0)
	for round := range 15 {
		ids := make([]int64, 20)
		for i := range ids {
			ids[i] = next
			next++
		}
		started.Add(20)
		w.insert(ids...)
		if round%3 == 2 {
			w.flush()
			require.NoError(t, n.Check(w.ctx))
		}
	}
	w.flush()
	require.NoError(t, n.Check(w.ctx))
	close(stop)
	wg.Wait()
	require.Equal(t, next, w.count(n, strong(), ""))
	require.Positive(t, reads.Load())
}

// TestDeletesByTimestamp is R4 (and milvus#32915, #35261: a delete just before a flush lost
// after the handoff; #35311: deletes committed in L0 files not applied to rows consumed from
// the channel): a read at T sees the rows stamped ≤ T and the deletes stamped ≤ T; an upsert
// keeps its new row; deleted rows stay deleted across a flush, a handoff and a fresh load.
func TestDeletesByTimestamp(t *testing.T) {
	w := newWorld(t, 1)
	w.assign(7)
	n := w.queryNode(7)
	at := func(ts uint64) querynode.Consistency {
		return querynode.Consistency{Level: commonpb.ConsistencyLevel_Strong, ReadTs: ts}
	}
	tIns := w.insert(1, 2, 3, 4)
	tDel := w.delete(2)
	tUps := w.upsert(3, 300)
	require.Equal(t, int64(4), w.count(n, at(tIns), ""), "before the delete")
	require.Equal(t, int64(3), w.count(n, at(tDel), ""), "at the delete")
	require.Equal(t, int64(0), w.count(n, at(tIns-1), ""), "before the insert")
	require.Equal(t, map[int64]int64{1: 1, 3: 300, 4: 4}, w.rows(n, at(tUps)), "the upsert keeps its new row")
	require.Equal(t, map[int64]int64{1: 1, 3: 3, 4: 4}, w.rows(n, at(tUps-1)), "before the upsert, the old row")

	// A delete just before a flush survives the handoff that replaces the channel's rows.
	w.delete(4)
	w.flush()
	require.NoError(t, n.Check(w.ctx))
	require.Equal(t, map[int64]int64{1: 1, 3: 300}, w.rows(n, strong()))

	// Deletes committed in L0 files apply to rows a fresh node consumes from the channel: the
	// rows of keys 5 and 6 come after the checkpoint, their deletes from the files.
	w.insert(5, 6)
	w.delete(5)
	w.flush() // 5, 6 and the delete of 5 in files
	w.delete(6)
	w.insert(7)
	w.assign(8)
	fresh := w.queryNode(8)
	require.Equal(t, map[int64]int64{1: 1, 3: 300, 7: 7}, w.rows(fresh, strong()))
	require.Equal(t, int64(3), w.count(fresh, strong(), ""))
}

// TestStrongSeesEveryAcknowledgedWrite is R5 (and milvus#16949: a Strong query right after an
// insert returning nothing): 8 clients each insert a row and at once count and search it at
// Strong, with no sleep; every one sees its own write. An idle channel answers at once.
func TestStrongSeesEveryAcknowledgedWrite(t *testing.T) {
	w := newWorld(t, 2)
	w.assign(7)
	n := w.queryNode(7)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				k := int64(g*1000 + i)
				w.insert(k)
				require.Equal(t, int64(1), w.count(n, strong(), fmt.Sprintf("id == %d", k)), "client %d does not see key %d", g, k)
				found := false
				for _, ch := range w.coll.VChannels {
					res, err := n.Search(w.ctx, &querynode.SearchRequest{ShardRequest: querynode.ShardRequest{CollectionID: w.coll.ID, Channel: ch,
						Consistency: strong()}, FieldID: fieldID(w, "vec"), Metric: "L2", Vectors: [][]float32{vecOf(k)}, K: 1})
					require.NoError(t, err)
					for _, h := range res.Hits[0] {
						if h.IntKey == k && h.Score == 0 {
							found = true
						}
					}
					res.Fields.Release()
				}
				require.True(t, found, "client %d's search does not find key %d", g, k)
			}
		}()
	}
	wg.Wait()
	// Idle: nothing is written; a Strong read needs no new message to answer.
	ctx, cancel := context.WithTimeout(w.ctx, 2*time.Second)
	defer cancel()
	for _, ch := range w.coll.VChannels {
		_, err := n.Query(ctx, &querynode.QueryRequest{ShardRequest: querynode.ShardRequest{CollectionID: w.coll.ID, Channel: ch, Consistency: strong()}, Limit: -1, Count: true})
		require.NoError(t, err, "an idle channel answers a Strong read")
	}
}

func fieldID(w *world, name string) int64 {
	for _, f := range w.coll.Schema.GetFields() {
		if f.GetName() == name {
			return f.GetFieldID()
		}
	}
	return 0
}

// TestReplayFilterAtLoad is R1 where it matters: a committed segment holds positions above the
// channel's checkpoint (a small buffer of another partition holds the checkpoint back), so a
// node that loads the files and follows the channel from the checkpoint meets rows the files
// hold already; the data node's replay filter drops them.
func TestReplayFilterAtLoad(t *testing.T) {
	w := newWorld(t, 1, func(c *datanode.Config) { c.SyncBufferBytes = 2 << 10 })
	st, err := w.proxy.CreatePartition(w.ctx, &milvuspb.CreatePartitionRequest{CollectionName: "books", PartitionName: "small"})
	require.NoError(t, err)
	require.Zero(t, st.GetCode(), st.GetReason())
	w.insertInto("small", 1) // stays buffered: holds the checkpoint before it
	big := make([]int64, 200)
	for i := range big {
		big[i] = int64(100 + i)
	}
	w.insert(big...) // past the sync buffer: committed at once, above the checkpoint
	require.Eventually(t, func() bool {
		segs, err := w.catalog.ListSegments(w.ctx, w.coll.ID)
		require.NoError(t, err)
		cp, err := w.catalog.ReadCheckpoint(w.ctx, w.coll.VChannels[0])
		require.NoError(t, err)
		for _, s := range segs {
			if s.Rows == 200 && s.MaxPos > cp.Position {
				return true
			}
		}
		return false
	}, 10*time.Second, 5*time.Millisecond, "the big insert is committed above the checkpoint")
	w.assign(7)
	n := w.queryNode(7)
	require.Equal(t, int64(201), w.count(n, strong(), ""))
	require.Equal(t, w.want(), w.rows(n, strong()))
}

// TestLoadOverTheMemoryLimitFails: a node whose --memory-limit the shard's files would pass
// refuses the load with a clear error, reported in the shard's state for clients to see,
// instead of being killed; it serves nothing meanwhile.
func TestLoadOverTheMemoryLimitFails(t *testing.T) {
	w := newWorld(t, 1)
	ids := make([]int64, 2000)
	for i := range ids {
		ids[i] = int64(i)
	}
	w.insert(ids...)
	w.flush()
	w.assign(7)
	n := w.newNode(7, func(c *querynode.Config) { c.MemoryLimit = 1 << 10 })
	state := w.loadFailure(n)
	require.Contains(t, state, "over its memory limit of 1024 bytes")
	require.Empty(t, n.Shards(), "nothing serves")
}

// TestKeyLookupAnswersPkIn: `pk in [...]` and `pk == v` (answered from the key index:
// TestPkInIsAnsweredFromTheKeyIndex) return the rows a scan would, across a flush, a delete and
// an upsert.
func TestKeyLookupAnswersPkIn(t *testing.T) {
	w := newWorld(t, 1)
	w.insert(1, 2, 3, 4, 5)
	w.flush()
	w.insert(6, 7)
	w.delete(2)
	w.upsert(3, 33)
	w.assign(7)
	n := w.queryNode(7)
	for _, filter := range []string{"id in [1, 2, 3, 7, 99]", "id == 3", "id in [1, 2, 3, 7, 99] and age > 0", "id == 3 or id == 7"} {
		r, err := n.Query(w.ctx, &querynode.QueryRequest{ShardRequest: querynode.ShardRequest{CollectionID: w.coll.ID, Channel: w.coll.VChannels[0],
			Filter: filter, Output: []string{"age"}, Consistency: strong()}, Limit: -1})
		require.NoError(t, err)
		got := map[int64]int64{}
		ages := r.Fields.Column(0).(interface{ Value(int) int64 })
		for i, k := range r.Keys {
			got[k.IntKey] = ages.Value(i)
		}
		r.Fields.Release()
		want := map[int64]int64{1: 1, 3: 33, 7: 7}
		if filter == "id == 3" {
			want = map[int64]int64{3: 33}
		}
		if filter == "id == 3 or id == 7" {
			want = map[int64]int64{3: 33, 7: 7}
		}
		require.Equal(t, want, got, filter)
	}
}

// TestReadsDuringMovesNeverAnswerEmpty: while rows are written and the shard moves back and
// forth between two query nodes, a Strong count on either node answers "not serving" (the
// proxy then tries another replica) or counts every row acknowledged before it began; never
// fewer (an emptied shard), and never waits for a channel nobody follows any more (milvus#20841).
func TestReadsDuringMovesNeverAnswerEmpty(t *testing.T) {
	w := newWorld(t, 1)
	w.insert(0, 1, 2)
	w.assign(7)
	n7 := w.queryNode(7)
	w.assign(8)
	n8 := w.queryNode(8)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var acked atomic.Int64
	acked.Store(3)
	wg.Add(1)
	go func() { // the writer
		defer wg.Done()
		for k := int64(3); ; k++ {
			select {
			case <-stop:
				return
			default:
			}
			w.insert(k)
			acked.Store(k + 1)
		}
	}()
	for _, n := range []*querynode.Node{n7, n8} {
		wg.Add(1)
		go func() { // each node's loop
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
				}
				_ = n.Check(w.ctx)
			}
		}()
	}
	var served, refused atomic.Int64
	for _, n := range []*querynode.Node{n7, n8} {
		wg.Add(1)
		go func() { // readers
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				before := acked.Load()
				ctx, cancel := context.WithTimeout(w.ctx, 5*time.Second)
				r, err := n.Query(ctx, &querynode.QueryRequest{ShardRequest: querynode.ShardRequest{CollectionID: w.coll.ID,
					Channel: w.coll.VChannels[0], Consistency: strong()}, Limit: -1, Count: true})
				cancel()
				switch {
				case errors.Is(err, querynode.ErrNotServing):
					refused.Add(1)
					time.Sleep(time.Millisecond)
				case err != nil:
					t.Errorf("a read failed otherwise: %v", err)
					return
				case r.Count < before:
					t.Errorf("a Strong count answered %d, %d rows were acknowledged before it began", r.Count, before)
					return
				default:
					served.Add(1)
				}
			}
		}()
	}
	for i := range 16 {
		w.assign(int64(7 + i%2))
		time.Sleep(30 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	require.Positive(t, served.Load())
	t.Logf("%d counts served, %d refused while the shard moved 16 times", served.Load(), refused.Load())
}

// TestSessionSeesItsOwnWriteWhenProxyClocksDiffer: a proxy whose clock runs an hour ahead
// writes once; afterwards a client writing through the other proxy and reading at Session
// with the timestamp its write returned sees that write every time (R5: a guarantee timestamp
// does not stand for a position when proxies' clocks differ).
func TestSessionSeesItsOwnWriteWhenProxyClocksDiffer(t *testing.T) {
	w := newWorld(t, 1)
	w.assign(7)
	n := w.queryNode(7)
	ahead := proxy.New(proxy.Config{}, proxy.Deps{Catalog: w.catalog, Channels: w.openLog(), IDs: w.ids,
		Clock: tso.NewClock(func() time.Time { return time.Now().Add(time.Hour) })}, quiet())
	res, err := ahead.Insert(w.ctx, &milvuspb.InsertRequest{CollectionName: "books", NumRows: 1, FieldsData: w.columns([]int64{1000}, []int64{1000})})
	require.NoError(t, err)
	require.Zero(t, res.GetStatus().GetCode(), res.GetStatus().GetReason())
	for k := range int64(30) {
		ts := w.insert(k)
		for _, level := range []commonpb.ConsistencyLevel{commonpb.ConsistencyLevel_Session, commonpb.ConsistencyLevel_Customized} {
			c := querynode.Consistency{Level: level, GuaranteeTs: ts}
			require.Equal(t, int64(1), w.count(n, c, fmt.Sprintf("id == %d", k)), "a %s read with its write's timestamp misses the write of key %d", level, k)
		}
	}
}

// TestPartitionsAndLevels: deletes scoped to one partition hide only that partition's rows,
// reads naming partitions see only theirs, across a flush, a handoff and a fresh load; Bounded
// and Eventually reads see every row once the channel is applied.
func TestPartitionsAndLevels(t *testing.T) {
	w := newWorld(t, 1)
	st, err := w.proxy.CreatePartition(w.ctx, &milvuspb.CreatePartitionRequest{CollectionName: "books", PartitionName: "p1"})
	require.NoError(t, err)
	require.Zero(t, st.GetCode(), st.GetReason())
	parts, err := w.catalog.ListPartitions(w.ctx, w.coll.ID)
	require.NoError(t, err)
	ids := map[string]int64{}
	for _, p := range parts {
		ids[p.Name] = p.ID
	}
	w.assign(7)
	n := w.queryNode(7)
	// Keys 1-4 in _default, 3-6 in p1: keys 3 and 4 in both.
	w.insertInto("_default", 1, 2, 3, 4)
	w.insertInto("p1", 3, 4, 5, 6)
	w.deleteIn("p1", 3, 5)    // hides p1's 3 and 5 only
	w.deleteIn("_default", 1) // hides _default's 1 only
	in := func(n *querynode.Node, c querynode.Consistency, parts ...int64) int64 {
		var total int64
		r, err := n.Query(w.ctx, &querynode.QueryRequest{ShardRequest: querynode.ShardRequest{CollectionID: w.coll.ID, Channel: w.coll.VChannels[0],
			Partitions: parts, Consistency: c}, Limit: -1, Count: true})
		require.NoError(t, err)
		total += r.Count
		return total
	}
	check := func(n *querynode.Node, step string) {
		t.Helper()
		require.Equal(t, int64(3), in(n, strong(), ids["_default"]), "_default keeps 2, 3, 4 (%s)", step)
		require.Equal(t, int64(2), in(n, strong(), ids["p1"]), "p1 keeps 4, 6 (%s)", step)
		require.Equal(t, int64(5), in(n, strong()), "both (%s)", step)
	}
	check(n, "from the channel")
	w.flush()
	require.NoError(t, n.Check(w.ctx))
	check(n, "after the handoff")
	w.assign(8)
	fresh := w.queryNode(8)
	check(fresh, "on a fresh node")
	for _, level := range []commonpb.ConsistencyLevel{commonpb.ConsistencyLevel_Bounded, commonpb.ConsistencyLevel_Eventually} {
		require.Eventually(t, func() bool { return in(fresh, querynode.Consistency{Level: level}) == 5 }, 10*time.Second, 10*time.Millisecond, "%s", level)
	}
}

// TestDroppedPartitionStopsServing: a partition dropped while loaded (a load racing the drop,
// which the proxy refuses otherwise) stops being served: its rows from files and from the
// channel go at the next check, and a fresh load skips its files.
func TestDroppedPartitionStopsServing(t *testing.T) {
	w := newWorld(t, 1)
	st, err := w.proxy.CreatePartition(w.ctx, &milvuspb.CreatePartitionRequest{CollectionName: "books", PartitionName: "p1"})
	require.NoError(t, err)
	require.Zero(t, st.GetCode(), st.GetReason())
	w.insertInto("p1", 1, 2, 3)
	w.flush()
	w.insertInto("p1", 4)
	w.insert(5)
	w.assign(7)
	n := w.queryNode(7)
	require.Equal(t, int64(5), w.count(n, strong(), ""))
	require.NoError(t, w.catalog.DropPartition(w.ctx, w.coll.ID, "p1"))
	require.NoError(t, n.Check(w.ctx))
	require.Equal(t, int64(1), w.count(n, strong(), ""), "only _default's row")
	w.assign(8)
	require.Equal(t, int64(1), w.count(w.queryNode(8), strong(), ""), "a fresh load skips the dropped partition")
}

// TestIgnoreGrowing: a read that ignores growing rows sees only what files hold; a committed
// row replaced only by a row still in the channel is, to it, still the key's latest row.
func TestIgnoreGrowing(t *testing.T) {
	w := newWorld(t, 1)
	w.insert(1, 2, 3)
	w.flush()
	w.insert(4)
	// Key 2 inserted again (no delete, unlike an upsert): its newer row is in the channel only.
	res0, err := w.proxy.Insert(w.ctx, &milvuspb.InsertRequest{CollectionName: "books", NumRows: 1, FieldsData: w.columns([]int64{2}, []int64{200})})
	require.NoError(t, err)
	require.Zero(t, res0.GetStatus().GetCode(), res0.GetStatus().GetReason())
	w.assign(7)
	n := w.queryNode(7)
	committed := querynode.ShardRequest{CollectionID: w.coll.ID, Channel: w.coll.VChannels[0], Consistency: strong(), IgnoreGrowing: true}
	r, err := n.Query(w.ctx, &querynode.QueryRequest{ShardRequest: committed, Limit: -1, Count: true})
	require.NoError(t, err)
	require.Equal(t, int64(3), r.Count)
	q := committed
	q.Filter, q.Output = "id >= 0", []string{"age"}
	rows, err := n.Query(w.ctx, &querynode.QueryRequest{ShardRequest: q, Limit: -1})
	require.NoError(t, err)
	got := map[int64]int64{}
	for i, k := range rows.Keys {
		got[k.IntKey] = rows.Fields.Column(0).(interface{ Value(int) int64 }).Value(i)
	}
	rows.Fields.Release()
	require.Equal(t, map[int64]int64{1: 1, 2: 2, 3: 3}, got, "key 2's committed row")
	q.Filter = "id == 2"
	rows, err = n.Query(w.ctx, &querynode.QueryRequest{ShardRequest: q, Limit: -1})
	require.NoError(t, err)
	rows.Fields.Release()
	require.Len(t, rows.Keys, 1, "through the key index too")
	res, err := n.Search(w.ctx, &querynode.SearchRequest{ShardRequest: committed, FieldID: fieldID(w, "vec"), Metric: "L2", Vectors: querynode.Vectors{vecOf(2)}, K: 1})
	require.NoError(t, err)
	res.Fields.Release()
	require.Equal(t, []querynode.Hit{{IntKey: 2}}, res.Hits[0], "search finds the committed row")
	require.Equal(t, int64(5), w.count(n, strong(), ""), "count(*) counts both rows of key 2")
	require.Equal(t, map[int64]int64{1: 1, 2: 200, 3: 3, 4: 4}, w.rows(n, strong()), "without ignore_growing, key 2's newest row")
}

// TestSearchWithAKeyInTwoPartitions: a key inserted in two partitions has a latest row in each;
// a search of k returns k distinct keys, not the two rows of one key and k-1 others.
func TestSearchWithAKeyInTwoPartitions(t *testing.T) {
	w := newWorld(t, 1)
	st, err := w.proxy.CreatePartition(w.ctx, &milvuspb.CreatePartitionRequest{CollectionName: "books", PartitionName: "p1"})
	require.NoError(t, err)
	require.Zero(t, st.GetCode(), st.GetReason())
	w.insertInto("_default", 1, 5)
	w.insertInto("p1", 1)
	w.assign(7)
	n := w.queryNode(7)
	res, err := n.Search(w.ctx, &querynode.SearchRequest{ShardRequest: querynode.ShardRequest{CollectionID: w.coll.ID, Channel: w.coll.VChannels[0],
		Consistency: strong()}, FieldID: fieldID(w, "vec"), Metric: "L2", Vectors: querynode.Vectors{vecOf(1)}, K: 2})
	require.NoError(t, err)
	res.Fields.Release()
	var keys []int64
	for _, h := range res.Hits[0] {
		keys = append(keys, h.IntKey)
	}
	require.Equal(t, []int64{1, 5}, keys)
	r, err := n.Query(w.ctx, &querynode.QueryRequest{ShardRequest: querynode.ShardRequest{CollectionID: w.coll.ID, Channel: w.coll.VChannels[0],
		Filter: "id == 1", Consistency: strong()}, Limit: -1})
	require.NoError(t, err)
	r.Fields.Release()
	require.Len(t, r.Keys, 1, "a query returns one row per key")
	require.Equal(t, int64(3), w.count(n, strong(), ""), "count(*) counts both rows of key 1")
}

// TestHandoffWithinTheMemoryLimit: a shard whose files take most of the node's limit still
// hands off a small new file: its own memory is counted once.
func TestHandoffWithinTheMemoryLimit(t *testing.T) {
	w := newWorld(t, 1)
	ids := make([]int64, 1000)
	for i := range ids {
		ids[i] = int64(i)
	}
	w.insert(ids...)
	w.flush()
	segs, err := w.catalog.ListSegments(w.ctx, w.coll.ID)
	require.NoError(t, err)
	var fileBytes int64
	for _, s := range segs {
		fileBytes += s.Bytes
	}
	require.Positive(t, fileBytes)
	w.assign(7)
	// The shard reserves twice its files' bytes; the limit leaves room for a small file more
	// but not for the shard counted twice.
	n := w.newNode(7, func(c *querynode.Config) { c.MemoryLimit = 2*fileBytes + fileBytes })
	require.Eventually(t, func() bool {
		require.NoError(t, n.Check(w.ctx))
		return len(n.Shards()) == 1
	}, 20*time.Second, 10*time.Millisecond)
	w.insert(5000)
	w.flush()
	require.NoError(t, n.Check(w.ctx), "the handoff of a small file fits")
	require.Equal(t, int64(1001), w.count(n, strong(), ""))
	require.Equal(t, 2, n.Shards()[0].Files)
}

// TestDroppedPartitionRowsInTheChannel: rows of a dropped partition still in the channel are
// not served by a node that loads after the drop, from its first answer on.
func TestDroppedPartitionRowsInTheChannel(t *testing.T) {
	w := newWorld(t, 1)
	st, err := w.proxy.CreatePartition(w.ctx, &milvuspb.CreatePartitionRequest{CollectionName: "books", PartitionName: "p1"})
	require.NoError(t, err)
	require.Zero(t, st.GetCode(), st.GetReason())
	w.insertInto("p1", 1, 2)
	w.insert(3)
	require.NoError(t, w.catalog.DropPartition(w.ctx, w.coll.ID, "p1"))
	w.assign(7)
	n := w.newNode(7, nil)
	require.NoError(t, n.Check(w.ctx)) // starts the load; no further check (and handoff) after it
	require.Eventually(t, func() bool { return len(n.Shards()) == 1 }, 20*time.Second, 10*time.Millisecond)
	require.Equal(t, int64(1), w.count(n, strong(), ""), "the load alone skips the dropped partition's channel rows")
}

// TestLoadRefusesALogThatMovedBackward: a committed segment holds positions above the
// checkpoint; the NATS server then loses them and reuses them for new writes. A node loading
// the shard must not drop the new records as replays of the committed ones (the filter's
// premise): it refuses to serve, loudly, as the data node does (replay.CheckHighest).
func TestLoadRefusesALogThatMovedBackward(t *testing.T) {
	w := newWorld(t, 1, func(c *datanode.Config) { c.SyncBufferBytes = 2 << 10 })
	st, err := w.proxy.CreatePartition(w.ctx, &milvuspb.CreatePartitionRequest{CollectionName: "books", PartitionName: "small"})
	require.NoError(t, err)
	require.Zero(t, st.GetCode(), st.GetReason())
	ch := w.coll.VChannels[0]
	w.insertInto("small", 1) // stays buffered: holds the checkpoint back
	big := make([]int64, 200)
	for i := range big {
		big[i] = int64(100 + i)
	}
	w.insert(big...) // past the sync buffer: committed at once, above the checkpoint
	for i := range big {
		big[i] += 1000
	}
	w.insert(big...)
	var highest uint64
	require.Eventually(t, func() bool {
		segs, err := w.catalog.ListSegments(w.ctx, w.coll.ID)
		require.NoError(t, err)
		for _, s := range segs {
			highest = max(highest, s.MaxPos)
		}
		cp, err := w.catalog.ReadCheckpoint(w.ctx, ch)
		require.NoError(t, err)
		return highest == 3 && cp.Position < 2
	}, 10*time.Second, 5*time.Millisecond, "positions 2 and 3 committed above the checkpoint")
	w.dn.Close()
	w.restartNATS(func(dir string) { require.NoError(t, waltest.LoseTail(dir, ch, 1)) })
	require.Eventually(t, func() bool {
		res, err := w.proxy.Insert(w.ctx, &milvuspb.InsertRequest{CollectionName: "books", NumRows: 1, FieldsData: w.columns([]int64{5000}, []int64{1})})
		return err == nil && res.GetStatus().GetCode() == 0
	}, 10*time.Second, 50*time.Millisecond, "a write at the reused position")

	w.assign(7)
	n := w.newNode(7, nil)
	state := w.loadFailure(n)
	require.Contains(t, state, wal.ErrRewound.Error())
	require.Empty(t, n.Shards(), "nothing served")
}
