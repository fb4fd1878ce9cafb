package coord

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/batch"
	"github.com/weir-db/weir/internal/datanode"
	"github.com/weir-db/weir/internal/dml"
	"github.com/weir-db/weir/internal/failpoint"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/metastore"
	"github.com/weir-db/weir/internal/segment"
	"github.com/weir-db/weir/internal/vindex"
	"github.com/weir-db/weir/internal/wal"
)

// startLog runs an embedded NATS server and returns a Log on it.
func startLog(t *testing.T) *wal.Log {
	t.Helper()
	srv, err := wal.StartEmbedded(wal.EmbeddedConfig{Dir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown)
	l, err := wal.Open(context.Background(), srv.ClientURL(), wal.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	return l
}

// appendRows appends an insert of rows with keys ids to ch and returns its position.
func appendRows(t *testing.T, l *wal.Log, coll *meta.Collection, part int64, ch string, ids ...int64) uint64 {
	t.Helper()
	vecs := make([]float32, 2*len(ids))
	rows, err := batch.FromFieldData(coll.Schema, []*schemapb.FieldData{
		{FieldName: "id", Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: ids}}}}},
		{FieldName: "v", Field: &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{Dim: 2, Data: &schemapb.VectorField_FloatVector{FloatVector: &schemapb.FloatArray{Data: vecs}}}}},
	}, uint32(len(ids)), batch.FromOptions{})
	require.NoError(t, err)
	defer rows.Release()
	ts := uint64(time.Now().UnixMilli()) << 18
	rec := rows.Record(ts)
	defer rec.Release()
	body, err := batch.EncodeIPC(rec)
	require.NoError(t, err)
	return appendMsg(t, l, ch, dml.Message{Header: dml.Header{Kind: dml.Insert, CollectionID: coll.ID, PartitionID: part, Timestamp: ts, Rows: uint32(len(ids))}, Body: body})
}

func appendMsg(t *testing.T, l *wal.Log, ch string, m dml.Message) uint64 {
	t.Helper()
	pos, err := l.Append(context.Background(), ch, []wal.Record{{Data: dml.Encode(m)}})
	require.NoError(t, err)
	return pos[0]
}

// assigned creates a one-channel collection and a coordinator that assigned it to node 1.
func assigned(t *testing.T, e *env) (*meta.Collection, *Coordinator) {
	t.Helper()
	coll := e.collection(t, "c", 1)
	e.nodes.live = []int64{1}
	c := e.coordinator(t)
	_, err := c.Assign(e.ctx)
	require.NoError(t, err)
	return coll, c
}

// requireFilesExist checks that every file segment meta of coll names is in the bucket.
func requireFilesExist(t *testing.T, e *env, coll int64) int {
	t.Helper()
	segs, err := e.catalog.ListSegments(e.ctx, coll)
	require.NoError(t, err)
	n := 0
	for _, s := range segs {
		files, err := e.catalog.ListFiles(e.ctx, coll, s.ID)
		require.NoError(t, err)
		for _, f := range files {
			_, err := e.bucket.Stat(e.ctx, f.Key)
			require.NoError(t, err, "segment %d names file %s, which is gone", s.ID, f.Key)
			n++
		}
	}
	return n
}

// TestGCKeepsTheFilesOfASyncStillCommitting: a sync has written its files and its commit is held
// back (etcd refusing writes, object storage refusing the sync's next file) for longer than the
// grace period; garbage collection runs meanwhile. The files must survive: the commit then lands
// and names them (issue 11, item 1).
func TestGCKeepsTheFilesOfASyncStillCommitting(t *testing.T) {
	e := newEnv(t)
	coll, c := assigned(t, e)
	ch := coll.VChannels[0]
	l := startLog(t)
	require.NoError(t, l.CreateChannel(e.ctx, ch))
	parts, err := e.catalog.ListPartitions(e.ctx, coll.ID)
	require.NoError(t, err)

	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	off := failpoint.Enable(datanode.FailAfterFiles, func() error {
		once.Do(func() { close(held) })
		<-release
		return nil
	})
	defer off()
	cfg := datanode.Defaults()
	cfg.CheckInterval = 10 * time.Millisecond
	node, err := datanode.New(cfg, e.catalog, meta.NewIDAllocator(e.kv, "weir", 10), l, e.bucket, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer node.Close()
	require.NoError(t, node.Watch(e.ctx, ch))
	appendRows(t, l, coll, parts[0].ID, ch, 1, 2, 3)
	marker := appendMsg(t, l, ch, dml.Message{Header: dml.Header{Kind: dml.Flush, CollectionID: coll.ID, Timestamp: uint64(time.Now().UnixMilli()) << 18}})
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("the sync never wrote its files")
	}

	// The commit is held past the grace period; garbage collection runs.
	c.now = func() time.Time { return time.Now().Add(c.cfg.GCGrace + time.Hour) }
	st, err := c.CollectGarbage(e.ctx)
	require.NoError(t, err)
	close(release)
	require.Eventually(t, func() bool {
		cp, err := e.catalog.ReadCheckpoint(e.ctx, ch)
		return err == nil && cp.Position >= marker
	}, 10*time.Second, 10*time.Millisecond, "the held commit never landed")
	require.Equal(t, 2, requireFilesExist(t, e, coll.ID), "an insert and a stats file")
	require.Zero(t, st.Deleted, "nothing of a sync under the channel's current lease may go")
}

// TestGCDeletesOrphansOfEarlierLeases: a file written under a lease the channel no longer has
// can never be committed (every commit is fenced by the current lease): past the grace period
// it goes, while a file of the current lease stays however old it is.
func TestGCDeletesOrphansOfEarlierLeases(t *testing.T) {
	e := newEnv(t)
	coll, c := assigned(t, e)
	ch := coll.VChannels[0]
	old, err := e.catalog.ReadLease(e.ctx, ch)
	require.NoError(t, err)
	cur, err := e.catalog.AssignChannel(e.ctx, ch, coll.ID, 1)
	require.NoError(t, err)
	requireCollectsOnly(t, e, c, segmentKey(coll.ID, old.Revision), segmentKey(coll.ID, cur.Revision))
}

// requireCollectsOnly puts files gone and kept, runs garbage collection past the grace period
// and checks that it deletes gone and keeps kept.
func requireCollectsOnly(t *testing.T, e *env, c *Coordinator, gone, kept string) {
	t.Helper()
	for _, k := range []string{gone, kept} {
		require.NoError(t, e.bucket.Put(e.ctx, k, []byte("x")))
	}
	c.now = func() time.Time { return time.Now().Add(c.cfg.GCGrace + time.Hour) }
	st, err := c.CollectGarbage(e.ctx)
	require.NoError(t, err)
	require.Equal(t, 1, st.Deleted)
	_, err = e.bucket.Stat(e.ctx, gone)
	require.Error(t, err, "%s is deleted", gone)
	_, err = e.bucket.Stat(e.ctx, kept)
	require.NoError(t, err, "%s stays", kept)
}

// segmentKey is the key of an insert file written under lease.
func segmentKey(coll, lease int64) string {
	return segment.InsertKey("weir", coll, 1, 5, lease, uint64(lease))
}

// TestGCFreesTheChannelsOfDroppedCollections: garbage collection deletes a dropped collection's
// streams, its channel keys (a lease an older proxy's drop left behind included), files and
// segment meta, marks it collected, and leaves it alone afterwards (issue 11, item 5).
func TestGCFreesTheChannelsOfDroppedCollections(t *testing.T) {
	e := newEnv(t)
	drop := e.collection(t, "drop", 2)
	keep := e.collection(t, "keep", 1)
	e.nodes.live = []int64{1}
	c := e.coordinator(t)
	l := startLog(t)
	c.SetLog(l)
	_, err := c.Assign(e.ctx)
	require.NoError(t, err)
	for _, ch := range append(slices.Clone(drop.VChannels), keep.VChannels...) {
		require.NoError(t, l.CreateChannel(e.ctx, ch))
	}
	lease, err := e.catalog.ReadLease(e.ctx, drop.VChannels[0])
	require.NoError(t, err)
	f := e.catalog.Fence(lease)
	file := segment.InsertKey("weir", drop.ID, 1, 6, lease.Revision, 1)
	require.NoError(t, e.bucket.Put(e.ctx, file, []byte("x")))
	writeSegment(t, e, f, &meta.Segment{ID: 6, CollectionID: drop.ID, Channel: drop.VChannels[0], Level: meta.L1, State: meta.Growing, Rows: 10, Files: 1}, file, 0)
	op, err := f.CheckpointOp(meta.Checkpoint{Position: 3})
	require.NoError(t, err)
	_, err = f.Commit(e.ctx, nil, []metastore.Op{op})
	require.NoError(t, err)

	_, err = e.catalog.DropCollection(e.ctx, meta.DefaultDatabase, "drop")
	require.NoError(t, err)
	// A lease left behind, as a drop by a proxy of an earlier release leaves it.
	_, err = e.kv.Put(e.ctx, "weir/meta/channels/"+drop.VChannels[1]+"/lease", []byte(`{"collection_id":`+fmt.Sprint(drop.ID)+`,"node_id":1}`))
	require.NoError(t, err)

	st, err := c.CollectGarbage(e.ctx)
	require.NoError(t, err)
	require.Equal(t, GCStats{Scanned: 1, Deleted: 1, DroppedSegments: 1, DroppedChannels: 2, DroppedCollections: 1}, st)
	for _, ch := range drop.VChannels {
		_, err := l.LastPosition(e.ctx, ch)
		require.ErrorIs(t, err, wal.ErrChannelNotFound, "the stream of %s is deleted", ch)
		_, err = e.catalog.ReadLease(e.ctx, ch)
		require.ErrorIs(t, err, metastore.ErrNotFound)
		cp, err := e.catalog.ReadCheckpoint(e.ctx, ch)
		require.NoError(t, err)
		require.Zero(t, cp.ModRevision, "the checkpoint of %s is deleted", ch)
	}
	_, err = l.LastPosition(e.ctx, keep.VChannels[0])
	require.NoError(t, err, "a live collection's stream stays")
	_, err = e.catalog.ReadLease(e.ctx, keep.VChannels[0])
	require.NoError(t, err)
	rec, err := e.catalog.GetCollection(e.ctx, drop.ID)
	require.NoError(t, err)
	require.False(t, rec.CollectedAt.IsZero())

	st, err = c.CollectGarbage(e.ctx)
	require.NoError(t, err)
	require.Equal(t, GCStats{}, st, "a collected collection is left alone")
}

// TestGCDeletesFilesOfARestartedPipeline: a pipeline restarted under an unchanged lease claims
// the channel again, which fences its predecessor: the predecessor's unreferenced files go after
// the grace period, though the lease has not moved (a standalone never moves it), while the
// current claim's files stay (found by review).
func TestGCDeletesFilesOfARestartedPipeline(t *testing.T) {
	e := newEnv(t)
	coll, c := assigned(t, e)
	ch := coll.VChannels[0]
	l, err := e.catalog.ReadLease(e.ctx, ch)
	require.NoError(t, err)
	first := e.catalog.Fence(l)
	require.NoError(t, first.Claim(e.ctx, 1))
	second := e.catalog.Fence(l)
	require.NoError(t, second.Claim(e.ctx, 1)) // the restart
	// The fenced predecessor's file goes, the current claim's stays.
	requireCollectsOnly(t, e, c, segmentKey(coll.ID, first.Epoch()), segmentKey(coll.ID, second.Epoch()))
}

// TestGCKeepsFilesOfLegacyClaimsAndNewerTokens: a legacy pipeline's files are named by the epoch
// its ClaimChannel got: kept while that claim is current, collected once a later incarnation
// claims; a file named by a token newer than the view GC read (a claim made after) is kept.
func TestGCKeepsFilesOfLegacyClaimsAndNewerTokens(t *testing.T) {
	e := newEnv(t)
	coll := e.collection(t, "legacy", 1)
	ch := coll.VChannels[0]
	c := e.coordinator(t)
	w, err := e.catalog.AssignChannelLegacy(e.ctx, ch, coll.ID, 7)
	require.NoError(t, err)
	first, err := c.ClaimChannel(e.ctx, ch, 7, w.Revision)
	require.NoError(t, err)
	second, err := c.ClaimChannel(e.ctx, ch, 7, w.Revision)
	require.NoError(t, err)
	newer := segmentKey(coll.ID, 1<<40)
	require.NoError(t, e.bucket.Put(e.ctx, newer, []byte("x")))
	requireCollectsOnly(t, e, c, segmentKey(coll.ID, first), segmentKey(coll.ID, second))
	_, err = e.bucket.Stat(e.ctx, newer)
	require.NoError(t, err, "a token newer than the view is kept")
}

// TestGCCollectsOrphanIndexFiles: past the grace period, garbage collection deletes an index
// file no record references when its writer's claim is gone or its index definition is, and
// keeps a referenced file and an unreferenced one of the current claim (its build may still
// commit it).
func TestGCCollectsOrphanIndexFiles(t *testing.T) {
	e := newEnv(t)
	coll, c := assigned(t, e)
	ch := coll.VChannels[0]
	old, err := e.catalog.ReadLease(e.ctx, ch)
	require.NoError(t, err)
	cur, err := e.catalog.AssignChannel(e.ctx, ch, coll.ID, 1)
	require.NoError(t, err)
	f := e.catalog.Fence(cur)
	require.NoError(t, f.Claim(e.ctx, 1))
	field := coll.Schema.GetFields()[1].GetFieldID()
	idx, _, err := e.catalog.CreateIndex(e.ctx, &meta.Index{CollectionID: coll.ID, FieldID: field, Name: "v", Params: []meta.Param{{Key: "index_type", Value: "HNSW"}}})
	require.NoError(t, err)
	_, revs, err := e.catalog.IndexRevisions(e.ctx, coll.ID)
	require.NoError(t, err)
	seg := &meta.Segment{ID: 5, CollectionID: coll.ID, Channel: ch, Level: meta.L1, State: meta.Flushed, Rows: 2000}
	seg.ModRevision = writeSegment(t, e, f, seg, segment.InsertKey("weir", coll.ID, 1, 5, f.Epoch(), 1), 0)

	key := func(index, token int64, seq uint64) string {
		return vindex.FileKey{Root: "weir", Collection: coll.ID, Partition: 1, Segment: 5, Index: index, Token: token, Seq: seq}.Key()
	}
	used := key(idx.ID, f.Epoch(), 1)
	si := &meta.SegmentIndex{CollectionID: coll.ID, SegmentID: 5, IndexID: idx.ID, FieldID: field, Key: used, Channel: ch}
	cmps, ops, err := f.SegmentIndexTxn(si, meta.IndexBuilt{Segment: seg, IndexRev: revs[field]})
	require.NoError(t, err)
	_, err = f.Commit(e.ctx, cmps, ops)
	require.NoError(t, err)

	building := key(idx.ID, f.Epoch(), 2)   // the current claim's: may still be committed
	earlier := key(idx.ID, old.Revision, 3) // an earlier lease's: never committed now
	dropped := key(idx.ID+1000, f.Epoch(), 4)
	for _, k := range []string{used, building, earlier, dropped} {
		require.NoError(t, e.bucket.Put(e.ctx, k, []byte("x")))
	}
	st, err := c.CollectGarbage(e.ctx)
	require.NoError(t, err)
	require.Zero(t, st.Deleted, "nothing before the grace period")

	c.now = func() time.Time { return time.Now().Add(c.cfg.GCGrace + time.Hour) }
	st, err = c.CollectGarbage(e.ctx)
	require.NoError(t, err)
	require.Equal(t, 2, st.Deleted)
	for k, stays := range map[string]bool{used: true, building: true, earlier: false, dropped: false} {
		_, err := e.bucket.Stat(e.ctx, k)
		require.Equal(t, stays, err == nil, "%s stays: %v", k, stays)
	}
}
