package coord

import (
	"context"
	"fmt"
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
	e, coll, c, w := legacyWatch(t)
	ch := coll.VChannels[0]
	require.True(t, w.Legacy)

	seg := meta.Segment{ID: 40, CollectionID: coll.ID, PartitionID: 1, Channel: ch, Level: meta.L1, State: meta.Growing, Rows: 10, Files: 2, MaxPos: 5}
	first := []SegmentUpdate{{Segment: seg, Files: []meta.File{{ID: 400, SegmentID: 40, Kind: meta.InsertFile, Key: "a"}, {ID: 401, SegmentID: 40, Kind: meta.StatsFile, Key: "b"}}}}
	require.NoError(t, save(c, LegacyCaller{Channel: ch, Node: 7, OpID: w.Revision}, first, &meta.Checkpoint{Position: 5}))
	rev, err := e.kv.Revision(e.ctx)
	require.NoError(t, err)

	// The reply was lost; the node sends the same call again: nothing changes.
	require.NoError(t, save(c, LegacyCaller{Channel: ch, Node: 7, OpID: w.Revision}, first, &meta.Checkpoint{Position: 5}))
	again, err := e.kv.Revision(e.ctx)
	require.NoError(t, err)
	require.Equal(t, rev, again, "a resend stores nothing twice")

	// A later sync, then a late duplicate of the first call: nothing moves backward.
	seg2 := seg
	seg2.Rows, seg2.Files, seg2.MaxPos, seg2.State = 20, 4, 9, meta.Flushed
	second := []SegmentUpdate{{Segment: seg2, Files: []meta.File{{ID: 402, SegmentID: 40, Kind: meta.InsertFile, Key: "c"}, {ID: 403, SegmentID: 40, Kind: meta.StatsFile, Key: "d"}}}}
	require.NoError(t, save(c, LegacyCaller{Channel: ch, Node: 7, OpID: w.Revision}, second, &meta.Checkpoint{Position: 9}))
	require.NoError(t, save(c, LegacyCaller{Channel: ch, Node: 7, OpID: w.Revision}, first, &meta.Checkpoint{Position: 5}))
	require.NoError(t, c.UpdateChannelCheckpoint(e.ctx, LegacyCaller{Channel: ch, Node: 7, OpID: w.Revision}, meta.Checkpoint{Position: 3}))
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
	require.NoError(t, c.UpdateChannelCheckpoint(e.ctx, LegacyCaller{Channel: ch, Node: 7, OpID: w.Revision}, meta.Checkpoint{Position: 12}))

	// The channel moves to node 8: node 7's calls, old operation or not, store nothing.
	moved, err := e.catalog.AssignChannelLegacy(e.ctx, ch, coll.ID, 8)
	require.NoError(t, err)
	before, err := e.kv.Revision(e.ctx)
	require.NoError(t, err)
	third := seg2
	third.Rows, third.Files, third.MaxPos = 30, 6, 15
	_, err = c.SaveBinlogPaths(e.ctx, LegacyCaller{Channel: ch, Node: 7, OpID: w.Revision}, []SegmentUpdate{{Segment: third}}, &meta.Checkpoint{Position: 15})
	require.ErrorIs(t, err, ErrNotWatcher)
	_, err = c.SaveBinlogPaths(e.ctx, LegacyCaller{Channel: ch, Node: 7, OpID: moved.Revision}, []SegmentUpdate{{Segment: third}}, nil)
	require.ErrorIs(t, err, ErrNotWatcher, "the right operation but the wrong node")
	require.ErrorIs(t, c.UpdateChannelCheckpoint(e.ctx, LegacyCaller{Channel: ch, Node: 7, OpID: w.Revision}, meta.Checkpoint{Position: 15}), ErrNotWatcher)
	after, err := e.kv.Revision(e.ctx)
	require.NoError(t, err)
	require.Equal(t, before, after, "a rejected legacy call stores nothing")
	require.NoError(t, save(c, LegacyCaller{Channel: ch, Node: 8, OpID: moved.Revision}, []SegmentUpdate{{Segment: third}}, nil))

	// Unassigned channels and segments of another channel are refused.
	require.ErrorIs(t, c.UpdateChannelCheckpoint(e.ctx, LegacyCaller{Channel: "nope", Node: 7, OpID: 1}, meta.Checkpoint{}), ErrNotWatcher)
	other := third
	other.Channel = "elsewhere"
	require.ErrorContains(t, save(c, LegacyCaller{Channel: ch, Node: 8, OpID: moved.Revision}, []SegmentUpdate{{Segment: other}}, nil), "belongs to channel")
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

// legacyWatch creates a one-channel collection whose channel node 7 watches without a lease.
func legacyWatch(t *testing.T) (*env, *meta.Collection, *Coordinator, meta.Lease) {
	e := newEnv(t)
	coll := e.collection(t, "old", 1)
	c := e.coordinator(t)
	w, err := e.catalog.AssignChannelLegacy(e.ctx, coll.VChannels[0], coll.ID, 7)
	require.NoError(t, err)
	return e, coll, c, w
}

// save is SaveBinlogPaths for a test that needs only its error.
func save(c *Coordinator, caller LegacyCaller, segs []SegmentUpdate, cp *meta.Checkpoint) error {
	_, err := c.SaveBinlogPaths(context.Background(), caller, segs, cp)
	return err
}

// TestLegacyRestartFencesThePredecessor: a legacy pipeline restarts under the same watch info
// (same node, same operation). The first incarnation's call for segment 40 — positions 1 and 2
// in one file — is late; the second has meanwhile committed position 1 in a file of its own.
// The late call must store nothing, and the second incarnation's next write (position 2) must
// land: otherwise position 1 is stored twice (issue 11, item 4). On the code before the claim,
// the late call was stored and the second write taken as already applied: 1 and 2 twice.
func TestLegacyRestartFencesThePredecessor(t *testing.T) {
	e, coll, c, w := legacyWatch(t)
	ch := coll.VChannels[0]
	seg := func(rows int64, files int, maxPos uint64) meta.Segment {
		return meta.Segment{ID: 40, CollectionID: coll.ID, PartitionID: 1, Channel: ch, Level: meta.L1, State: meta.Growing, Rows: rows, Files: files, MaxPos: maxPos}
	}
	file := func(id int64, minPos, maxPos uint64) meta.File {
		return meta.File{ID: id, SegmentID: 40, Kind: meta.InsertFile, Key: fmt.Sprint("f", id), Rows: 3 * int64(maxPos-minPos+1), MinPos: minPos, MaxPos: maxPos}
	}
	none := int64(0)
	first, err := c.ClaimChannel(e.ctx, ch, 7, w.Revision)
	require.NoError(t, err)
	p1 := LegacyCaller{Channel: ch, Node: 7, OpID: w.Revision, Epoch: first}
	late := []SegmentUpdate{{Segment: seg(6, 1, 2), Files: []meta.File{file(1, 1, 2)}, Prev: &none}}

	// The second incarnation starts. The first one's late call arrives before the second
	// wrote anything: the record is as the late call expects, and only the claim stops it.
	second, err := c.ClaimChannel(e.ctx, ch, 7, w.Revision)
	require.NoError(t, err)
	p2 := LegacyCaller{Channel: ch, Node: 7, OpID: w.Revision, Epoch: second}
	before, err := e.kv.Revision(e.ctx)
	require.NoError(t, err)
	require.ErrorIs(t, save(c, p1, late, nil), ErrNotWatcher, "a superseded incarnation")
	require.ErrorIs(t, c.UpdateChannelCheckpoint(e.ctx, p1, meta.Checkpoint{Position: 2}), ErrNotWatcher)
	after, err := e.kv.Revision(e.ctx)
	require.NoError(t, err)
	require.Equal(t, before, after, "the late calls store nothing")
	// The second commits position 1; the late call again, after it: still refused.
	revs, err := c.SaveBinlogPaths(e.ctx, p2, []SegmentUpdate{{Segment: seg(3, 1, 1), Files: []meta.File{file(2, 1, 1)}, Prev: &none}}, nil)
	require.NoError(t, err)
	require.Error(t, save(c, p1, late, nil))
	// The second incarnation commits position 2, resends it (a lost reply), and a write from
	// a stale view of the record is refused.
	next := []SegmentUpdate{{Segment: seg(6, 2, 2), Files: []meta.File{file(3, 2, 2)}, Prev: &revs[0]}}
	revs2, err := c.SaveBinlogPaths(e.ctx, p2, next, nil)
	require.NoError(t, err)
	again, err := c.SaveBinlogPaths(e.ctx, p2, next, nil)
	require.NoError(t, err)
	require.Equal(t, revs2, again, "a resend is answered with the revision it got")
	stale := []SegmentUpdate{{Segment: seg(9, 3, 3), Files: []meta.File{file(4, 3, 3)}, Prev: &revs[0]}}
	require.ErrorIs(t, save(c, p2, stale, nil), ErrConflict)

	files, err := e.catalog.ListFiles(e.ctx, coll.ID, 40)
	require.NoError(t, err)
	held := map[uint64]int{}
	for _, f := range files {
		for p := f.MinPos; p <= f.MaxPos; p++ {
			held[p]++
		}
	}
	require.Equal(t, map[uint64]int{1: 1, 2: 1}, held, "each position stored once")
}

// TestClaimFencesCallersOfTheEarlierRelease: a data node of the earlier release claims nothing
// and presents no epoch. Once a pipeline of this release claimed the channel under the same
// watch info (the node restarted on the new release during a rolling upgrade), the old
// process's late calls must store nothing (found by review).
func TestClaimFencesCallersOfTheEarlierRelease(t *testing.T) {
	e, coll, c, w := legacyWatch(t)
	ch := coll.VChannels[0]
	old := LegacyCaller{Channel: ch, Node: 7, OpID: w.Revision}
	seg := meta.Segment{ID: 40, CollectionID: coll.ID, PartitionID: 1, Channel: ch, Level: meta.L1, State: meta.Growing, Rows: 3, Files: 1, MaxPos: 1}
	require.NoError(t, save(c, old, []SegmentUpdate{{Segment: seg}}, nil), "unclaimed, the earlier release's calls work")
	_, err := c.ClaimChannel(e.ctx, ch, 7, w.Revision)
	require.NoError(t, err)
	late := seg
	late.Rows, late.Files, late.MaxPos = 6, 2, 2
	require.ErrorIs(t, save(c, old, []SegmentUpdate{{Segment: late}}, nil), ErrNotWatcher)
	require.ErrorIs(t, c.UpdateChannelCheckpoint(e.ctx, old, meta.Checkpoint{Position: 2}), ErrNotWatcher)
	got, err := e.catalog.GetSegment(e.ctx, coll.ID, 40)
	require.NoError(t, err)
	require.Equal(t, int64(3), got.Rows)
}
