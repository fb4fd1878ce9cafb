package meta

import (
	"context"
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
