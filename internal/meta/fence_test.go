package meta

import (
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/metastore"
)

func TestFenceRejectsStaleLeasesAndSupersededClaims(t *testing.T) {
	ctx := context.Background()
	c, kv := newCatalog(t)
	_, err := c.ReadLease(ctx, "ch")
	require.ErrorIs(t, err, metastore.ErrNotFound)
	l1, err := c.AssignChannel(ctx, "ch", 1, 7)
	require.NoError(t, err)
	got, err := c.ReadLease(ctx, "ch")
	require.NoError(t, err)
	require.Equal(t, l1.Revision, got.Revision)
	require.Equal(t, int64(7), got.NodeID)

	f1 := c.Fence(l1)
	require.Equal(t, l1, f1.Lease())
	require.NoError(t, f1.Claim(ctx, 7))
	seg := &Segment{ID: 5, CollectionID: 1, Channel: "ch", Level: L1, State: Growing, Rows: 3, MaxPos: 9}
	ops, err := f1.SegmentOps(seg, []File{{ID: 50, SegmentID: 5, Kind: InsertFile, Key: "k"}})
	require.NoError(t, err)
	rev, err := f1.Commit(ctx, []metastore.Cmp{f1.SegmentCmp(seg, 0)}, ops)
	require.NoError(t, err)
	s, err := c.GetSegment(ctx, 1, 5)
	require.NoError(t, err)
	require.Equal(t, rev, s.ModRevision)
	require.Equal(t, l1.Revision, s.Lease, "records say which lease wrote them")
	files, err := c.ListFiles(ctx, 1, 5)
	require.NoError(t, err)
	require.Len(t, files, 1)

	// The segment's own compare-and-swap: a stale write fails without being a lease loss.
	_, err = f1.Commit(ctx, []metastore.Cmp{f1.SegmentCmp(seg, 0)}, ops)
	require.ErrorIs(t, err, metastore.ErrPredicateFailed)
	require.NotErrorIs(t, err, ErrLeaseLost)

	// A second pipeline under the same lease claims the channel: the first is superseded.
	f2 := c.Fence(l1)
	require.NoError(t, f2.Claim(ctx, 7))
	op, err := f1.CheckpointOp(Checkpoint{Position: 9})
	require.NoError(t, err)
	_, err = f1.Commit(ctx, []metastore.Cmp{f1.CheckpointCmp(0)}, []metastore.Op{op})
	require.ErrorIs(t, err, ErrLeaseLost)
	require.ErrorContains(t, err, "claimed by a newer pipeline")
	cpRev, err := f2.Commit(ctx, []metastore.Cmp{f2.CheckpointCmp(0)}, []metastore.Op{op})
	require.NoError(t, err)
	cp, err := c.ReadCheckpoint(ctx, "ch")
	require.NoError(t, err)
	require.Equal(t, Checkpoint{Position: 9, ModRevision: cpRev}, cp)

	// A new lease fences both.
	l2, err := c.AssignChannel(ctx, "ch", 1, 8)
	require.NoError(t, err)
	_, err = f2.Commit(ctx, nil, []metastore.Op{op})
	require.ErrorIs(t, err, ErrLeaseLost)
	require.ErrorIs(t, c.Fence(l1).Claim(ctx, 7), ErrLeaseLost)
	require.NoError(t, c.Fence(l2).Claim(ctx, 8))
	require.NoError(t, c.Fence(l2).Check(nil, ops))

	// Corrupt records are reported, not trusted.
	_, err = kv.Put(ctx, "weir/meta/channels/bad/lease", []byte("{"))
	require.NoError(t, err)
	_, err = c.ReadLease(ctx, "bad")
	require.ErrorContains(t, err, "decode lease")
	_, err = kv.Put(ctx, "weir/meta/channels/bad/checkpoint", []byte("{"))
	require.NoError(t, err)
	_, err = c.ReadCheckpoint(ctx, "bad")
	require.ErrorContains(t, err, "decode checkpoint")
	cp, err = c.ReadCheckpoint(ctx, "never")
	require.NoError(t, err)
	require.Zero(t, cp.Position)
}

func TestListSegmentsOrdersByID(t *testing.T) {
	ctx := context.Background()
	c, _ := newCatalog(t)
	l, err := c.AssignChannel(ctx, "a", 1, 1)
	require.NoError(t, err)
	f := c.Fence(l)
	for _, id := range []int64{10, 9, 100, 2} {
		ch := "a"
		if id == 9 {
			ch = "b"
		}
		ops, err := f.SegmentOps(&Segment{ID: id, CollectionID: 1, Channel: ch}, nil)
		require.NoError(t, err)
		_, err = f.Commit(ctx, nil, ops)
		require.NoError(t, err)
	}
	all, err := c.ListSegments(ctx, 1)
	require.NoError(t, err)
	var ids []int64
	for _, s := range all {
		ids = append(ids, s.ID)
	}
	require.Equal(t, []int64{2, 9, 10, 100}, ids)
	onA, err := c.ListChannelSegments(ctx, 1, "a")
	require.NoError(t, err)
	require.Len(t, onA, 3)
	recs, err := c.ListCollectionRecords(ctx)
	require.NoError(t, err)
	require.Empty(t, recs)
	require.NoError(t, c.DeleteSegmentMeta(ctx, []Segment{{ID: 2, CollectionID: 1}, {ID: 100, CollectionID: 1}}))
	all, err = c.ListSegments(ctx, 1)
	require.NoError(t, err)
	require.Len(t, all, 2)
}

// TestDropCollectionReleasesItsChannels: the drop deletes the channels' leases in its own
// transaction, so no data node write for the collection can land after it (a pipeline that
// claimed the channel and one that had not yet are both fenced), and no assignment can give
// the channels a new lease afterwards (issue 11, item 5).
func TestDropCollectionReleasesItsChannels(t *testing.T) {
	ctx := context.Background()
	c, _ := newCatalog(t)
	coll := create(t, c, "a", 2)
	claimed, err := c.AssignChannel(ctx, coll.VChannels[0], coll.ID, 1)
	require.NoError(t, err)
	fClaimed := c.Fence(claimed)
	require.NoError(t, fClaimed.Claim(ctx, 1))
	unclaimed, err := c.AssignChannel(ctx, coll.VChannels[1], coll.ID, 1)
	require.NoError(t, err)
	fUnclaimed := c.Fence(unclaimed)

	_, err = c.DropCollection(ctx, DefaultDatabase, "a")
	require.NoError(t, err)
	for i, f := range []*Fence{fClaimed, fUnclaimed} {
		_, err := c.ReadLease(ctx, coll.VChannels[i])
		require.ErrorIs(t, err, metastore.ErrNotFound, "the lease of channel %d is released", i)
		op, err := f.CheckpointOp(Checkpoint{Position: 9})
		require.NoError(t, err)
		_, err = f.Commit(ctx, nil, []metastore.Op{op})
		require.ErrorIs(t, err, ErrLeaseLost, "channel %d", i)
	}
	_, err = c.AssignChannel(ctx, coll.VChannels[0], coll.ID, 1)
	require.ErrorIs(t, err, ErrCollectionDropped)
	_, err = c.AssignChannelLegacy(ctx, coll.VChannels[0], coll.ID, 1)
	require.ErrorIs(t, err, ErrCollectionDropped)
	leases, err := c.ListLeases(ctx)
	require.NoError(t, err)
	require.Empty(t, leases)
}

// TestAssignmentRacingADropIsRefused: an assignment decided from a collection list read before
// the drop must not write a lease after it.
func TestAssignmentRacingADropIsRefused(t *testing.T) {
	ctx := context.Background()
	kv := metastore.NewMemory()
	t.Cleanup(func() { kv.Close() })
	hs := &hookStore{Memory: kv}
	c := NewCatalog(hs, "weir", NewIDAllocator(kv, "weir", 10), slog.New(slog.DiscardHandler))
	coll := create(t, c, "a", 1)
	// The drop lands between the assignment's read of the collection and its write.
	hs.before = func() {
		hs.before = nil
		_, err := c.DropCollection(ctx, DefaultDatabase, "a")
		require.NoError(t, err)
	}
	_, err := c.AssignChannel(ctx, coll.VChannels[0], coll.ID, 1)
	require.ErrorIs(t, err, ErrCollectionDropped)
	leases, err := c.ListLeases(ctx)
	require.NoError(t, err)
	require.Empty(t, leases)
}

// hookStore runs before (once set) ahead of the next transaction.
type hookStore struct {
	*metastore.Memory
	before func()
}

func (h *hookStore) Txn(ctx context.Context, cmps []metastore.Cmp, ops []metastore.Op) (int64, error) {
	if f := h.before; f != nil {
		f()
	}
	return h.Memory.Txn(ctx, cmps, ops)
}

// TestHighestAbove: the records a reader checks before it trusts the log: the highest position
// a segment above the checkpoint holds, and the highest one that has a log time when that one
// has none (a segment written before Weir kept it).
func TestHighestAbove(t *testing.T) {
	seg := func(id int64, maxPos uint64, at int64) *Segment {
		return &Segment{ID: id, MaxPos: maxPos, MaxLogTime: at}
	}
	a, b, c, d := seg(1, 5, 50), seg(2, 9, 0), seg(3, 7, 70), seg(4, 3, 30)
	require.Nil(t, HighestAbove(9, []*Segment{a, b, c, d}), "nothing above the checkpoint")
	require.Equal(t, []*Segment{b, c}, HighestAbove(4, []*Segment{a, b, c, d}), "the highest, and the highest with a time")
	require.Equal(t, []*Segment{c}, HighestAbove(4, []*Segment{a, c, d}))
	require.Equal(t, []*Segment{b}, HighestAbove(7, []*Segment{a, b, c, d}), "only b lies above 7")
}
