package datanode

import (
	"bytes"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/batch"
	"github.com/weir-db/weir/internal/dml"
	"github.com/weir-db/weir/internal/failpoint"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/segment"
	"github.com/weir-db/weir/internal/wal"
	"github.com/weir-db/weir/internal/wal/waltest"
)

func TestPipelineStoresEveryRowOnceAndFlushes(t *testing.T) {
	e := newEnv(t, envOpts{shards: 2})
	for _, ch := range e.coll.VChannels {
		e.assign(ch, 1)
	}
	n := e.node(testConfig(1))
	for _, ch := range e.coll.VChannels {
		require.NoError(t, n.Watch(e.ctx, ch))
	}
	var last []uint64
	for i, ch := range e.coll.VChannels {
		for j := 0; j < 20; j++ {
			part := meta.DefaultPartition
			if j%3 == 0 {
				part = "p1"
			}
			e.insert(ch, part, 10+i)
		}
		e.delete(ch, 1, 2, 3)
		last = append(last, e.flush(ch))
	}
	for i, ch := range e.coll.VChannels {
		cp := e.waitCheckpoint(ch, last[i])
		require.Equal(t, last[i], cp.Position, "a flush marker's checkpoint is the marker itself")
	}
	e.requireExactlyOnce()
	_, deleted := e.stored()
	require.Equal(t, map[int64]int{1: 2, 2: 2, 3: 2}, deleted, "each channel's L0 segment holds its deletes")

	segs, err := e.catalog.ListSegments(e.ctx, e.coll.ID)
	require.NoError(t, err)
	var l1, l0 int
	for _, s := range segs {
		switch s.Level {
		case meta.L1:
			l1++
			require.Equal(t, meta.Flushed, s.State, "a flush marker seals and flushes every growing segment")
			require.NotZero(t, s.MaxPos)
			require.Greater(t, s.Files, 2, "small sync buffers make several syncs per segment")
		case meta.L0:
			l0++
		}
	}
	require.Equal(t, 4, l1, "one segment per (channel, partition)")
	require.Equal(t, 2, l0, "one L0 segment per channel")

	// Inserts after the flush open new segments.
	pos := e.insert(e.coll.VChannels[0], meta.DefaultPartition, 5)
	e.flush(e.coll.VChannels[0])
	e.waitCheckpoint(e.coll.VChannels[0], pos+1)
	e.requireExactlyOnce()
	require.Equal(t, float64(2), testutil.ToFloat64(n.m.pipelines))
}

// TestCrashBetweenSyncStepsReplaysExactlyOnce stops a pipeline at each failpoint of a sync, as a
// crash would (nothing after the failpoint happens, everything in memory is lost), then starts a
// fresh node on the same channel: the replay from the checkpoint stores every acknowledged row
// exactly once (invariant 3), whatever the crash left behind.
func TestCrashBetweenSyncStepsReplaysExactlyOnce(t *testing.T) {
	for _, fp := range []string{FailAfterFiles, FailAfterSegmentMeta, FailAfterCheckpoint} {
		t.Run(fp, func(t *testing.T) {
			e := newEnv(t, envOpts{})
			ch := e.coll.VChannels[0]
			e.assign(ch, 1)
			crashed := make(chan struct{})
			var hits atomic.Int32
			off := failpoint.Enable(fp, func() error {
				if hits.Add(1) == 3 { // crash in the middle of the stream, not on the first sync
					close(crashed)
					return errCrash
				}
				return nil
			})
			defer off()
			n1 := e.node(testConfig(1))
			require.NoError(t, n1.Watch(e.ctx, ch))
			for i := 0; i < 30; i++ {
				e.insert(ch, meta.DefaultPartition, 7)
				if i%10 == 9 {
					e.delete(ch, int64(i))
				}
				if i%10 == 4 {
					e.upsert(ch, meta.DefaultPartition, int64(7*i), int64(7*i+1)) // its delete and rows commit separately
				}
			}
			<-crashed
			require.Eventually(t, func() bool { return n1.Err(ch) != nil }, 5*time.Second, 5*time.Millisecond)
			require.ErrorIs(t, n1.Err(ch), errCrash)
			n1.Close()
			off()

			// A new process: nothing of n1's memory survives.
			n2 := e.node(testConfig(1))
			require.NoError(t, n2.Watch(e.ctx, ch))
			last := e.flush(ch)
			e.waitCheckpoint(ch, last)
			e.requireExactlyOnce()
			_, deleted := e.stored()
			require.Equal(t, map[int64]int{9: 1, 19: 1, 28: 1, 29: 2, 98: 1, 99: 1, 168: 1, 169: 1}, deleted,
				"every delete stored exactly once (29 is deleted by the upsert of 28 and 29, then by a delete)")
			if fp != FailAfterCheckpoint {
				require.Positive(t, testutil.ToFloat64(n2.m.replayDropped.WithLabelValues("insert"))+
					testutil.ToFloat64(n2.m.messages.WithLabelValues("insert")), "the new node replayed from the checkpoint")
			}
		})
	}
}

var errCrash = errors.New("test: crash")

// TestStaleLeaseIsFenced: the lease key changes under a running pipeline (the channel moved to
// node 2). The old pipeline's next commit is rejected, it stops without panicking and without
// retrying, other channels go on, and the new owner's replay stores everything exactly once.
func TestStaleLeaseIsFenced(t *testing.T) {
	e := newEnv(t, envOpts{shards: 2})
	ch, other := e.coll.VChannels[0], e.coll.VChannels[1]
	e.assign(ch, 1)
	e.assign(other, 1)
	n1 := e.node(testConfig(1))
	require.NoError(t, n1.Watch(e.ctx, ch))
	require.NoError(t, n1.Watch(e.ctx, other))
	e.insert(ch, meta.DefaultPartition, 5)
	e.waitCheckpoint(ch, e.flush(ch))

	e.assign(ch, 2) // the coordinator moves the channel; node 1 is not told
	// Node 1 must be fenced by the new lease alone, before the new owner claims the channel
	// (its claim rewrites the epoch key and would fence node 1 by itself).
	for i := 0; i < 10; i++ {
		e.insert(ch, meta.DefaultPartition, 20)
	}
	e.flush(ch)
	require.Eventually(t, func() bool { return errors.Is(n1.Err(ch), meta.ErrLeaseLost) }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, float64(1), testutil.ToFloat64(n1.m.leaseLost))
	require.NotContains(t, n1.Channels(), ch)
	n2 := e.node(testConfig(2))
	require.NoError(t, n2.Watch(e.ctx, ch))

	// The other channel of node 1 is untouched.
	e.insert(other, meta.DefaultPartition, 3)
	e.waitCheckpoint(other, e.flush(other))

	last := e.flush(ch)
	e.waitCheckpoint(ch, last)
	e.requireExactlyOnce()

	segs, err := e.catalog.ListChannelSegments(e.ctx, e.coll.ID, ch)
	require.NoError(t, err)
	lease, err := e.catalog.ReadLease(e.ctx, ch)
	require.NoError(t, err)
	for _, s := range segs {
		if s.MaxPos > 1 {
			require.Equal(t, lease.Revision, s.Lease, "segment %d written after the move carries the new lease", s.ID)
		}
	}
	require.ErrorIs(t, n2.Watch(e.ctx, other), ErrNotOwner)
}

// TestABAReassignment: the channel goes from node 1 to node 2 and back to node 1 while node 1's
// first pipeline is still running. Node ids alone cannot tell the two node-1 owners apart; the
// lease revision does, so the first pipeline is fenced and the second one commits.
func TestABAReassignment(t *testing.T) {
	e := newEnv(t, envOpts{})
	ch := e.coll.VChannels[0]
	first := e.assign(ch, 1)
	old := e.node(testConfig(1))
	require.NoError(t, old.Watch(e.ctx, ch))
	e.insert(ch, meta.DefaultPartition, 5)
	e.waitCheckpoint(ch, e.flush(ch))

	e.assign(ch, 2)
	third := e.assign(ch, 1)
	require.Greater(t, third.Revision, first.Revision)
	fresh := e.node(testConfig(1)) // node 1 again, a new pipeline under the new lease
	require.NoError(t, fresh.Watch(e.ctx, ch))
	for i := 0; i < 5; i++ {
		e.insert(ch, meta.DefaultPartition, 30)
	}
	require.Eventually(t, func() bool { return errors.Is(old.Err(ch), meta.ErrLeaseLost) }, 10*time.Second, 5*time.Millisecond)
	last := e.flush(ch)
	e.waitCheckpoint(ch, last)
	require.NoError(t, fresh.Err(ch))
	e.requireExactlyOnce()
}

func TestWatchRejectsChannelsLeasedElsewhere(t *testing.T) {
	e := newEnv(t, envOpts{})
	ch := e.coll.VChannels[0]
	n := e.node(testConfig(1))
	_, err := e.catalog.ReadLease(e.ctx, ch)
	require.Error(t, err)
	require.Error(t, n.Watch(e.ctx, ch), "no lease at all")
	e.assign(ch, 7)
	require.ErrorIs(t, n.Watch(e.ctx, ch), ErrNotOwner)
	e.assign(ch, 1)
	require.NoError(t, n.Watch(e.ctx, ch))
	require.NoError(t, n.Watch(e.ctx, ch), "watching again under the same lease is a no-op")
	n.Release(ch)
	require.Empty(t, n.Channels())
	n.Close()
	require.ErrorIs(t, n.Watch(e.ctx, ch), ErrClosed)
}

// TestTimestampsGrowWithPositions: messages from proxies with different clocks arrive out of
// timestamp order; the data node stores them with timestamps that grow with their positions.
func TestTimestampsGrowWithPositions(t *testing.T) {
	e := newEnv(t, envOpts{})
	ch := e.coll.VChannels[0]
	e.assign(ch, 1)
	n := e.node(testConfig(1))
	require.NoError(t, n.Watch(e.ctx, ch))
	const t1 = uint64(1_000_000) << 18
	e.insertAt(ch, meta.DefaultPartition, 3, t1+50)
	e.insertAt(ch, meta.DefaultPartition, 3, t1) // a slower proxy clock, later position
	last := e.flush(ch)
	cp := e.waitCheckpoint(ch, last)

	segs, err := e.catalog.ListChannelSegments(e.ctx, e.coll.ID, ch)
	require.NoError(t, err)
	files, err := e.catalog.ListFiles(e.ctx, e.coll.ID, segs[0].ID)
	require.NoError(t, err)
	var ts []uint64
	for _, f := range files {
		if f.Kind != meta.InsertFile {
			continue
		}
		data, err := e.bucket.Get(e.ctx, f.Key)
		require.NoError(t, err)
		col, err := segment.ReadColumn(bytes.NewReader(data), int64(len(data)), "_ts")
		require.NoError(t, err)
		ts = append(ts, col.(*array.Uint64).Uint64Values()...)
		col.Release()
	}
	require.Equal(t, []uint64{t1 + 50, t1 + 50, t1 + 50, t1 + 51, t1 + 51, t1 + 51}, ts)
	require.Greater(t, cp.Timestamp, t1+51, "the checkpoint's timestamp is the flush marker's, after every row")
	require.Equal(t, float64(1), testutil.ToFloat64(n.m.restamped), "the second message was moved")
	e.requireExactlyOnce()
}

// TestUpsertDeletesItsKeysAtItsOwnTimestamp: an upsert message stores a delete of its rows' keys
// and the rows, both at the message's timestamp, so that the delete hides the keys' older rows
// and not the new ones (a delete hides rows stamped before it).
func TestUpsertDeletesItsKeysAtItsOwnTimestamp(t *testing.T) {
	e := newEnv(t, envOpts{})
	ch, _ := e.watched(1)
	e.insert(ch, meta.DefaultPartition, 10)
	e.upsert(ch, meta.DefaultPartition, 3, 4)
	e.waitCheckpoint(ch, e.flush(ch))
	e.requireExactlyOnce()

	segs, err := e.catalog.ListSegments(e.ctx, e.coll.ID)
	require.NoError(t, err)
	rowTs := map[int64][]uint64{}
	var dels segment.Deletes
	for _, s := range segs {
		files, err := e.catalog.ListFiles(e.ctx, e.coll.ID, s.ID)
		require.NoError(t, err)
		for _, f := range files {
			data, err := e.bucket.Get(e.ctx, f.Key)
			require.NoError(t, err)
			switch f.Kind {
			case meta.InsertFile:
				ids, err := segment.ReadColumn(bytes.NewReader(data), int64(len(data)), "id")
				require.NoError(t, err)
				tss, err := segment.ReadColumn(bytes.NewReader(data), int64(len(data)), batch.TimestampColumn)
				require.NoError(t, err)
				for i, id := range ids.(*array.Int64).Int64Values() {
					rowTs[id] = append(rowTs[id], tss.(*array.Uint64).Value(i))
				}
				ids.Release()
				tss.Release()
			case meta.DeleteFile:
				dels, err = segment.ReadDeletes(bytes.NewReader(data), int64(len(data)))
				require.NoError(t, err)
			}
		}
	}
	require.Equal(t, []int64{3, 4}, dels.IntPKs)
	for i, k := range dels.IntPKs {
		ts := rowTs[k]
		require.Len(t, ts, 2, "key %d: the old row and the upserted one", k)
		slices.Sort(ts)
		require.Less(t, ts[0], dels.TS[i], "key %d: the delete hides the old row", k)
		require.Equal(t, ts[1], dels.TS[i], "key %d: the upserted row has the delete's own timestamp", k)
	}
}

// TestChannelThatMovedBackwardStops: the channel's server lost its tail (positions past 2) after
// the checkpoint reached 4, and new records reused the lost positions. The pipeline must refuse
// to resume at 5 (skipping the new records at 3 and 4) and stop the channel loudly: an error,
// the metric, and the checkpoint left where it is (issue 11, item 2).
func TestChannelThatMovedBackwardStops(t *testing.T) {
	e := newEnv(t, envOpts{})
	ch, n1 := e.watched(1)
	e.insert(ch, meta.DefaultPartition, 3)
	e.insert(ch, meta.DefaultPartition, 3)
	e.insert(ch, meta.DefaultPartition, 3)
	cp := e.waitCheckpoint(ch, e.flush(ch))
	require.Equal(t, uint64(4), cp.Position)
	n1.Close()

	e.restartNATS(func(dir string) { require.NoError(t, waltest.LoseTail(dir, ch, 2)) })
	require.Eventually(t, func() bool {
		last, err := e.lastPosition(ch)
		return err == nil && last == 2
	}, 10*time.Second, 20*time.Millisecond, "the server is back with positions up to 2")
	for range 4 { // positions 3..6: 3 and 4 lie at or below the checkpoint
		e.insert(ch, meta.DefaultPartition, 2)
	}
	n2 := e.node(testConfig(1))
	err := n2.Watch(e.ctx, ch)
	if err == nil {
		require.Eventually(t, func() bool { return n2.Err(ch) != nil }, 10*time.Second, 5*time.Millisecond,
			"the pipeline resumed on a channel that moved backward")
		err = n2.Err(ch)
	}
	require.ErrorIs(t, err, wal.ErrRewound)
	require.Equal(t, float64(1), testutil.ToFloat64(n2.m.logRewound.WithLabelValues(ch)))
	require.Equal(t, cp.Position, e.waitCheckpoint(ch, 0).Position, "the checkpoint stays")
}

// TestCommittedDeletesAreNotReplayed: deletes of three scopes (partition p1, partition p2, every
// partition) are committed in L0 segments while a buffered insert holds the checkpoint below
// them; the node crashes. Its successor replays the channel from the checkpoint and must drop
// every delete an L0 segment of its scope already holds: each delete is stored once (issue 11,
// item 13; without the L0 replay filter they are stored twice).
func TestCommittedDeletesAreNotReplayed(t *testing.T) {
	e := newEnv(t, envOpts{})
	ch, n1 := e.watched(1)
	p1, p2 := e.partition("p1"), e.partition("p2")
	e.insert(ch, meta.DefaultPartition, 2) // a few bytes: stays buffered, holding the checkpoint at 0
	keys := func(from int64) []int64 {
		out := make([]int64, 200) // over the 1 KiB sync threshold: the L0 segment syncs
		for i := range out {
			out[i] = from + int64(i)
		}
		return out
	}
	last := e.deleteIn(ch, p1, keys(1000)...)
	last = max(last, e.deleteIn(ch, p2, keys(2000)...))
	last = max(last, e.deleteIn(ch, dml.AllPartitions, keys(3000)...))
	require.Eventually(t, func() bool {
		segs, err := e.catalog.ListSegments(e.ctx, e.coll.ID)
		if err != nil {
			return false
		}
		var l0 int
		for _, s := range segs {
			if s.Level == meta.L0 && s.MaxPos > 0 {
				l0++
			}
		}
		return l0 == 3
	}, 10*time.Second, 5*time.Millisecond, "the three L0 segments commit")
	cp, err := e.catalog.ReadCheckpoint(e.ctx, ch)
	require.NoError(t, err)
	require.Less(t, cp.Position, last, "the buffered insert holds the checkpoint below the deletes")
	n1.Close() // a crash: the buffered insert is lost with the process

	n2 := e.node(testConfig(1))
	require.NoError(t, n2.Watch(e.ctx, ch))
	e.waitCheckpoint(ch, e.flush(ch))
	_, deleted := e.stored()
	require.Len(t, deleted, 600)
	for k, n := range deleted {
		require.Equal(t, 1, n, "key %d deleted %d times", k, n)
	}
	require.Equal(t, float64(3), testutil.ToFloat64(n2.m.replayDropped.WithLabelValues("delete")))
	e.requireExactlyOnce()
}

// TestLostTailAboveTheCheckpointStops: the server loses a tail that lies above the checkpoint but
// at or below the highest position a committed segment holds (a small buffered insert of
// another partition holds the checkpoint back), then new records reuse those positions. The
// checkpoint's own record is intact; the pipeline must still refuse to start, or its replay
// filter drops the new records as committed ones (found by review of issue 11, item 2).
func TestLostTailAboveTheCheckpointStops(t *testing.T) {
	e := newEnv(t, envOpts{})
	ch, n1 := e.watched(1)
	e.insert(ch, meta.DefaultPartition, 3)
	e.waitCheckpoint(ch, e.flush(ch))
	e.insert(ch, "p1", 1) // small: stays buffered, holding the checkpoint back
	var last uint64
	for range 3 {
		last = e.insert(ch, meta.DefaultPartition, 60) // over 1 KiB each: the default partition syncs
	}
	require.Eventually(t, func() bool {
		segs, err := e.catalog.ListSegments(e.ctx, e.coll.ID)
		return err == nil && slices.ContainsFunc(segs, func(s *meta.Segment) bool { return s.MaxPos == last })
	}, 10*time.Second, 5*time.Millisecond)
	cp, err := e.catalog.ReadCheckpoint(e.ctx, ch)
	require.NoError(t, err)
	require.Less(t, cp.Position, last-1, "the checkpoint lies below the lost records")
	n1.Close()

	e.restartNATS(func(dir string) { require.NoError(t, waltest.LoseTail(dir, ch, last-2)) })
	require.Eventually(t, func() bool {
		l, err := e.lastPosition(ch)
		return err == nil && l == last-2
	}, 10*time.Second, 20*time.Millisecond)
	e.insert(ch, meta.DefaultPartition, 2) // at the reused positions
	e.insert(ch, meta.DefaultPartition, 2)

	n2 := e.node(testConfig(1))
	err = n2.Watch(e.ctx, ch)
	require.ErrorIs(t, err, wal.ErrRewound)
	require.Equal(t, float64(1), testutil.ToFloat64(n2.m.logRewound.WithLabelValues(ch)))
	// Lease syncs call Watch every second: a refused start is tried again only after a backoff.
	require.ErrorContains(t, n2.Watch(e.ctx, ch), "trying again in")
	require.Equal(t, float64(1), testutil.ToFloat64(n2.m.logRewound.WithLabelValues(ch)))
}
