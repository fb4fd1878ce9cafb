package meta

import (
	"context"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/metastore"
)

// TestSegmentIndexCommitsOnceUnderTheFence: a segment index record commits only through the
// channel's current fence, only while the segment and the index definition are as the builder
// read them, and only once; a record reported corrupt is replaced, its report deleted with it;
// dropping the index deletes its records.
func TestSegmentIndexCommitsOnceUnderTheFence(t *testing.T) {
	ctx := context.Background()
	c, _ := newCatalog(t)
	coll, _, err := c.CreateCollection(ctx, &Collection{DB: DefaultDatabase, Name: "c", Shards: 1, Schema: &schemapb.CollectionSchema{Fields: []*schemapb.FieldSchema{
		{FieldID: 100, Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
		{FieldID: 101, Name: "v", DataType: schemapb.DataType_FloatVector, TypeParams: []*commonpb.KeyValuePair{{Key: "dim", Value: "2"}}}}}})
	require.NoError(t, err)
	ch := coll.VChannels[0]
	idx, _, err := c.CreateIndex(ctx, &Index{CollectionID: coll.ID, FieldID: 101, Name: "v", Params: []Param{{Key: "index_type", Value: "HNSW"}}})
	require.NoError(t, err)
	_, revs, err := c.IndexRevisions(ctx, coll.ID)
	require.NoError(t, err)

	l1, err := c.AssignChannel(ctx, ch, coll.ID, 1)
	require.NoError(t, err)
	f1 := c.Fence(l1)
	require.NoError(t, f1.Claim(ctx, 1))
	seg := &Segment{ID: 5, CollectionID: coll.ID, Channel: ch, Level: L1, State: Flushed, Rows: 3000}
	ops, err := f1.SegmentOps(seg, nil)
	require.NoError(t, err)
	seg.ModRevision, err = f1.Commit(ctx, []metastore.Cmp{f1.SegmentCmp(seg, 0)}, ops)
	require.NoError(t, err)

	commit := func(f *Fence, b IndexBuilt, key string) error {
		si := &SegmentIndex{CollectionID: coll.ID, SegmentID: seg.ID, IndexID: idx.ID, FieldID: 101, Key: key}
		cmps, ops, err := f.SegmentIndexTxn(si, b)
		require.NoError(t, err)
		_, err = f.Commit(ctx, cmps, ops)
		return err
	}
	built := IndexBuilt{Segment: seg, IndexRev: revs[101]}

	// The segment changed since the build read it, or the index definition did: refused.
	stale := *seg
	stale.ModRevision--
	require.ErrorIs(t, commit(f1, IndexBuilt{Segment: &stale, IndexRev: revs[101]}, "a"), metastore.ErrPredicateFailed)
	require.ErrorIs(t, commit(f1, IndexBuilt{Segment: seg, IndexRev: revs[101] - 1}, "a"), metastore.ErrPredicateFailed)

	// A node whose lease moved: refused as a lost lease.
	l2, err := c.AssignChannel(ctx, ch, coll.ID, 2)
	require.NoError(t, err)
	f2 := c.Fence(l2)
	require.NoError(t, f2.Claim(ctx, 2))
	require.ErrorIs(t, commit(f1, built, "a"), ErrLeaseLost)

	// The owner: once.
	require.NoError(t, commit(f2, built, "b"))
	require.ErrorIs(t, commit(f2, built, "c"), metastore.ErrPredicateFailed)
	recs, err := c.ListSegmentIndexes(ctx, coll.ID)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Equal(t, "b", recs[0].Key)
	require.Equal(t, l2.Revision, recs[0].Lease)

	// Reported corrupt: replaced once, the report going with the old record.
	require.NoError(t, c.ReportCorruptIndex(ctx, recs[0], "checksum mismatch"))
	bad, err := c.CorruptIndexes(ctx, coll.ID)
	require.NoError(t, err)
	require.Equal(t, map[[2]int64]int64{{idx.ID, seg.ID}: recs[0].ModRevision}, bad)
	require.NoError(t, commit(f2, IndexBuilt{Segment: seg, IndexRev: revs[101], Replaces: recs[0].ModRevision}, "d"))
	require.ErrorIs(t, commit(f2, IndexBuilt{Segment: seg, IndexRev: revs[101], Replaces: recs[0].ModRevision}, "e"), metastore.ErrPredicateFailed)
	bad, err = c.CorruptIndexes(ctx, coll.ID)
	require.NoError(t, err)
	require.Empty(t, bad)

	// Dropping the index deletes its records.
	require.NoError(t, c.DropIndex(ctx, coll.ID, 101))
	recs, err = c.ListSegmentIndexes(ctx, coll.ID)
	require.NoError(t, err)
	require.Empty(t, recs)
}
