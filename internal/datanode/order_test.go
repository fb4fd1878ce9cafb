package datanode

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/metastore"
)

// TestCheckpointNeverPassesUncommittedData checks invariant 2 at every metastore revision of a
// run, not just at the end: whenever the checkpoint is P, the segment meta committed at that
// same revision holds every insert at a position ≤ P, and the checkpoint never moves backward.
// Committing the checkpoint before the segment meta it covers would fail here.
func TestCheckpointNeverPassesUncommittedData(t *testing.T) {
	e := newEnv(t, envOpts{memory: true})
	ch := e.coll.VChannels[0]
	e.assign(ch, 1)
	start, err := e.kv.Revision(e.ctx)
	require.NoError(t, err)
	n := e.node(testConfig(1))
	require.NoError(t, n.Watch(e.ctx, ch))

	type msg struct {
		pos  uint64
		part int64
	}
	var msgs []msg
	for i := 0; i < 40; i++ {
		part := []string{meta.DefaultPartition, "a", "b"}[i%3]
		pos := e.insert(ch, part, 5+i%4)
		msgs = append(msgs, msg{pos, e.partition(part)})
	}
	last := e.flush(ch)
	e.waitCheckpoint(ch, last)
	end, err := e.kv.Revision(e.ctx)
	require.NoError(t, err)

	cpKey := "weir/meta/channels/" + ch + "/checkpoint"
	var prev uint64
	checked := 0
	for rev := start; rev <= end; rev++ {
		kvs, _, err := e.kv.Range(context.Background(), cpKey, metastore.AtRevision(rev))
		require.NoError(t, err)
		if len(kvs) == 0 {
			continue
		}
		var cp meta.Checkpoint
		require.NoError(t, json.Unmarshal(kvs[0].Value, &cp))
		require.GreaterOrEqual(t, cp.Position, prev, "revision %d: checkpoint moved backward", rev)
		prev = cp.Position

		segs, _, err := e.kv.Range(context.Background(), "weir/meta/segments/", metastore.AtRevision(rev))
		require.NoError(t, err)
		maxPos := map[int64]uint64{}
		for _, kv := range segs {
			var s meta.Segment
			require.NoError(t, json.Unmarshal(kv.Value, &s))
			maxPos[s.PartitionID] = max(maxPos[s.PartitionID], s.MaxPos)
		}
		for _, m := range msgs {
			if m.pos <= cp.Position {
				require.GreaterOrEqual(t, maxPos[m.part], m.pos,
					"revision %d: checkpoint %d passes the insert at %d, which no committed segment holds", rev, cp.Position, m.pos)
			}
		}
		checked++
	}
	require.Greater(t, checked, 5, "the run moved the checkpoint many times")
	e.requireExactlyOnce()
}

// TestMetaValuesStayBounded is invariant 9 for values: a segment's record does not grow with
// the number of its files (each file is its own key), and a sync's transaction is bounded by
// the segments it touches, never by how many segments or files exist.
func TestMetaValuesStayBounded(t *testing.T) {
	e := newEnv(t, envOpts{memory: true})
	ch := e.coll.VChannels[0]
	e.assign(ch, 1)
	var maxOps int
	e.kv.(*metastore.Memory).InjectWriteFault(func(keys []string) metastore.WriteFault {
		if len(keys) > maxOps && strings.Contains(strings.Join(keys, ","), "/segments/") {
			maxOps = len(keys)
		}
		return metastore.NoFault
	})
	n := e.node(testConfig(1))
	require.NoError(t, n.Watch(e.ctx, ch))
	for i := 0; i < 200; i++ {
		e.insert(ch, meta.DefaultPartition, 10)
	}
	e.waitCheckpoint(ch, e.flush(ch))
	segs, err := e.catalog.ListChannelSegments(e.ctx, e.coll.ID, ch)
	require.NoError(t, err)
	require.Len(t, segs, 1)
	require.Greater(t, segs[0].Files, 100, "many syncs of one segment")
	kv, err := e.kv.Get(e.ctx, "weir/meta/segments/"+itoa(e.coll.ID)+"/"+itoa(segs[0].ID))
	require.NoError(t, err)
	require.Less(t, len(kv.Value), 1024, "the segment record stays small however many files it has")
	require.LessOrEqual(t, maxOps, 3, "a one-segment sync writes the record and its two files")
}

func itoa(v int64) string {
	b, _ := json.Marshal(v)
	return string(b)
}
