package coord

import (
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/meta"
)

// TestLegacySaveBinlogPaths is the coordinator's side of invariant 7: it writes a legacy data
// node's meta only while that node watches the channel under the operation it presents, a
// resend stores nothing twice, a late duplicate rolls nothing back, and the checkpoint never
// moves backward.
func TestLegacySaveBinlogPaths(t *testing.T) {
	e := newEnv(t)
	coll := e.collection(t, "old", 1)
	ch := coll.VChannels[0]
	c := e.coordinator(t)
	w, err := e.catalog.AssignChannelLegacy(e.ctx, ch, coll.ID, 7)
	require.NoError(t, err)
	require.True(t, w.Legacy)

	seg := meta.Segment{ID: 40, CollectionID: coll.ID, PartitionID: 1, Channel: ch, Level: meta.L1, State: meta.Growing, Rows: 10, Files: 2, MaxPos: 5}
	first := []SegmentUpdate{{Segment: seg, Files: []meta.File{{ID: 400, SegmentID: 40, Kind: meta.InsertFile, Key: "a"}, {ID: 401, SegmentID: 40, Kind: meta.StatsFile, Key: "b"}}}}
	require.NoError(t, c.SaveBinlogPaths(e.ctx, ch, 7, w.Revision, first, &meta.Checkpoint{Position: 5}))
	rev, err := e.kv.Revision(e.ctx)
	require.NoError(t, err)

	// The reply was lost; the node sends the same call again: nothing changes.
	require.NoError(t, c.SaveBinlogPaths(e.ctx, ch, 7, w.Revision, first, &meta.Checkpoint{Position: 5}))
	again, err := e.kv.Revision(e.ctx)
	require.NoError(t, err)
	require.Equal(t, rev, again, "a resend stores nothing twice")

	// A later sync, then a late duplicate of the first call: nothing moves backward.
	seg2 := seg
	seg2.Rows, seg2.Files, seg2.MaxPos, seg2.State = 20, 4, 9, meta.Flushed
	second := []SegmentUpdate{{Segment: seg2, Files: []meta.File{{ID: 402, SegmentID: 40, Kind: meta.InsertFile, Key: "c"}, {ID: 403, SegmentID: 40, Kind: meta.StatsFile, Key: "d"}}}}
	require.NoError(t, c.SaveBinlogPaths(e.ctx, ch, 7, w.Revision, second, &meta.Checkpoint{Position: 9}))
	require.NoError(t, c.SaveBinlogPaths(e.ctx, ch, 7, w.Revision, first, &meta.Checkpoint{Position: 5}))
	require.NoError(t, c.UpdateChannelCheckpoint(e.ctx, ch, 7, w.Revision, meta.Checkpoint{Position: 3}))
	got, err := e.catalog.GetSegment(e.ctx, coll.ID, 40)
	require.NoError(t, err)
	require.Equal(t, int64(20), got.Rows)
	require.Equal(t, meta.Flushed, got.State)
	files, err := e.catalog.ListFiles(e.ctx, coll.ID, 40)
	require.NoError(t, err)
	require.Len(t, files, 4)
	cp, err := e.catalog.ReadCheckpoint(e.ctx, ch)
	require.NoError(t, err)
	require.Equal(t, uint64(9), cp.Position)
	require.NoError(t, c.UpdateChannelCheckpoint(e.ctx, ch, 7, w.Revision, meta.Checkpoint{Position: 12}))

	// The channel moves to node 8: node 7's calls, old operation or not, store nothing.
	moved, err := e.catalog.AssignChannelLegacy(e.ctx, ch, coll.ID, 8)
	require.NoError(t, err)
	before, err := e.kv.Revision(e.ctx)
	require.NoError(t, err)
	third := seg2
	third.Rows, third.Files, third.MaxPos = 30, 6, 15
	err = c.SaveBinlogPaths(e.ctx, ch, 7, w.Revision, []SegmentUpdate{{Segment: third}}, &meta.Checkpoint{Position: 15})
	require.ErrorIs(t, err, ErrNotWatcher)
	err = c.SaveBinlogPaths(e.ctx, ch, 7, moved.Revision, []SegmentUpdate{{Segment: third}}, nil)
	require.ErrorIs(t, err, ErrNotWatcher, "the right operation but the wrong node")
	require.ErrorIs(t, c.UpdateChannelCheckpoint(e.ctx, ch, 7, w.Revision, meta.Checkpoint{Position: 15}), ErrNotWatcher)
	after, err := e.kv.Revision(e.ctx)
	require.NoError(t, err)
	require.Equal(t, before, after, "a rejected legacy call stores nothing")
	require.NoError(t, c.SaveBinlogPaths(e.ctx, ch, 8, moved.Revision, []SegmentUpdate{{Segment: third}}, nil))

	// Unassigned channels and segments of another channel are refused.
	require.ErrorIs(t, c.UpdateChannelCheckpoint(e.ctx, "nope", 7, 1, meta.Checkpoint{}), ErrNotWatcher)
	other := third
	other.Channel = "elsewhere"
	require.ErrorContains(t, c.SaveBinlogPaths(e.ctx, ch, 8, moved.Revision, []SegmentUpdate{{Segment: other}}, nil), "belongs to channel")
}

// TestUpgradeOnCoordinatorStart: a current coordinator finds lease-less watch info. Channels of a
// node that already runs the current protocol are upgraded — release, then watch with a lease,
// same node — while a node still on the legacy protocol keeps its watch info (and its gRPC
// path) until it restarts as current. A legacy coordinator writes lease-less watch info.
func TestUpgradeOnCoordinatorStart(t *testing.T) {
	e := newEnv(t)
	coll := e.collection(t, "up", 2)
	e.nodes.live = []int64{1, 2}
	e.nodes.protocols = map[int64]string{1: ProtocolLegacy, 2: ProtocolLegacy}
	cfg := Defaults()
	cfg.Protocol = ProtocolLegacy
	legacy, err := New(cfg, e.catalog, meta.NewView(e.kv, "weir", meta.ReloadChanged), e.nodes, e.bucket, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	_, err = legacy.Assign(e.ctx)
	require.NoError(t, err)
	leases, err := e.catalog.ListLeases(e.ctx)
	require.NoError(t, err)
	owner := map[int64]string{}
	for _, ch := range coll.VChannels {
		require.True(t, leases[ch].Legacy, "a legacy coordinator writes watch info without a lease")
		owner[leases[ch].NodeID] = ch
	}

	current := e.coordinator(t)
	moves, err := current.Assign(e.ctx)
	require.NoError(t, err)
	require.Empty(t, moves, "legacy nodes keep their watch info")

	e.nodes.protocols[1] = ProtocolCurrent // node 1 restarted as current
	moves, err = current.Assign(e.ctx)
	require.NoError(t, err)
	require.Equal(t, []Move{{Channel: owner[1], Collection: coll.ID, From: 1, To: 1, Reason: "upgrade"}}, moves)
	require.Contains(t, e.nodes.releases, "1:"+owner[1], "release, then watch with a lease")
	leases, err = e.catalog.ListLeases(e.ctx)
	require.NoError(t, err)
	require.False(t, leases[owner[1]].Legacy)
	require.Equal(t, int64(1), leases[owner[1]].NodeID)
	require.True(t, leases[owner[2]].Legacy)
	moves, err = current.Assign(e.ctx)
	require.NoError(t, err)
	require.Empty(t, moves)
}
