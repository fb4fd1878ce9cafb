package datanode

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/dml"
	"github.com/weir-db/weir/internal/meta"
)

// TestUpsertAllPartitionsDeletesInEveryPartition: the upsert of a collection with a partition
// key deletes its keys in every partition — the row it replaces may sit in another one, when
// the key value changed — and inserts its rows into its own. Its delete goes to the channel's
// all-partitions L0 segment. After a crash the replay filters each half by the segments of its
// own scope: the delete by that L0 segment, the rows by their partition's; filtered by the rows'
// partition, the committed delete would be stored twice.
func TestUpsertAllPartitionsDeletesInEveryPartition(t *testing.T) {
	e := newEnv(t, envOpts{})
	ch, n1 := e.watched(1)
	keys := make([]int64, 200) // over the 1 KiB sync threshold: each half syncs on its own
	for i := range keys {
		keys[i] = 5000 + int64(i)
	}
	now := func() uint64 { return uint64(time.Now().UnixMilli()) << 18 }
	e.rowsMessage(ch, dml.Insert, "p1", keys, now()) // the rows before they move
	e.insert(ch, "p2", 1)                            // small: stays buffered, holding the checkpoint back
	last := e.rowsMessage(ch, dml.UpsertAllPartitions, meta.DefaultPartition, keys, now())
	def := e.partition(meta.DefaultPartition)
	require.Eventually(t, func() bool {
		segs, err := e.catalog.ListSegments(e.ctx, e.coll.ID)
		if err != nil {
			return false
		}
		var del, rows bool
		for _, s := range segs {
			del = del || s.Level == meta.L0 && s.PartitionID == dml.AllPartitions && s.MaxPos >= last
			rows = rows || s.Level != meta.L0 && s.PartitionID == def && s.MaxPos >= last
		}
		return del && rows
	}, 10*time.Second, 5*time.Millisecond, "both halves of the upsert commit")
	cp, err := e.catalog.ReadCheckpoint(e.ctx, ch)
	require.NoError(t, err)
	require.Less(t, cp.Position, last, "the buffered insert holds the checkpoint below the upsert")
	n1.Close() // a crash: the buffered insert is lost with the process

	n2 := e.node(testConfig(1))
	require.NoError(t, n2.Watch(e.ctx, ch))
	e.waitCheckpoint(ch, e.flush(ch))
	_, deleted := e.stored()
	require.Len(t, deleted, len(keys))
	for k, n := range deleted {
		require.Equal(t, 1, n, "key %d deleted %d times", k, n)
	}
	segs, err := e.catalog.ListSegments(e.ctx, e.coll.ID)
	require.NoError(t, err)
	for _, s := range segs {
		if s.Level == meta.L0 {
			require.Equal(t, dml.AllPartitions, s.PartitionID, "segment %d: the upsert deletes in every partition", s.ID)
		}
	}
	require.Equal(t, float64(1), testutil.ToFloat64(n2.m.replayDropped.WithLabelValues("delete")))
	e.requireExactlyOnce() // each key twice: its old row in p1 (hidden by the delete) and the new one
}
