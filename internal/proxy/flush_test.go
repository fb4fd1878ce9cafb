package proxy_test

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/metadata"

	"github.com/weir-db/weir/internal/dml"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/metastore"
)

// fakeNode makes the metastore writes a data node makes, through the real fenced catalog,
// so that flush state and statistics can be checked without running a data node.
type fakeNode struct {
	t      testing.TB
	cat    *meta.Catalog
	fences map[string]*meta.Fence
	collID int64
}

func newFakeNode(t testing.TB, cat *meta.Catalog, c coll) *fakeNode {
	n := &fakeNode{t: t, cat: cat, fences: map[string]*meta.Fence{}, collID: c.id}
	for _, ch := range c.chans {
		l, err := cat.AssignChannel(context.Background(), ch, c.id, 1)
		require.NoError(t, err)
		n.fences[ch] = cat.Fence(l)
	}
	return n
}

func (n *fakeNode) segment(ch string, id, part int64, level meta.Level, state meta.SegmentState, rows int64) {
	f := n.fences[ch]
	seg := &meta.Segment{ID: id, CollectionID: n.collID, PartitionID: part, Channel: ch, Level: level, State: state, Rows: rows}
	ops, err := f.SegmentOps(seg, nil)
	require.NoError(n.t, err)
	_, err = f.Commit(context.Background(), nil, ops)
	require.NoError(n.t, err)
}

func (n *fakeNode) checkpoint(ch string, pos, ts uint64) {
	f := n.fences[ch]
	op, err := f.CheckpointOp(meta.Checkpoint{Position: pos, Timestamp: ts})
	require.NoError(n.t, err)
	_, err = f.Commit(context.Background(), nil, []metastore.Op{op})
	require.NoError(n.t, err)
}

func posBytes(p uint64) []byte { return binary.LittleEndian.AppendUint64(nil, p) }

// TestFlushMarkersAndState checks Flush's markers and records, GetFlushState against the
// channel checkpoints (and its segment fallback), and the statistics and segment listing
// computed from segment meta.
func TestFlushMarkersAndState(t *testing.T) {
	e := startProxy(t)
	ctx := ctxT(t)
	c := createColl(t, e.c, "books", 2, pk, vec32, title, score)
	p1 := createPartition(t, e.c, "books", "p1")
	ins, err := e.c.Insert(ctx, insertReq(c, seq(1, 10), 32))
	require.NoError(t, err)
	requireOK(t, ins.GetStatus())

	node := newFakeNode(t, e.catalog, c)
	ch0, ch1 := c.chans[0], c.chans[1]
	node.segment(ch0, 9001, c.defaultP, meta.L1, meta.Growing, 7)
	node.segment(ch1, 9002, p1, meta.L1, meta.Flushed, 5)
	node.segment(ch0, 9003, dml.AllPartitions, meta.L0, meta.Growing, 100) // deletes: not rows
	node.segment(ch1, 9004, c.defaultP, meta.L1, meta.SegmentDropped, 50)  // compacted away
	node.segment(ch1, 9005, c.defaultP, meta.L1, meta.Sealed, 3)
	node.checkpoint(ch0, 1, 77)

	fl, err := e.c.Flush(ctx, &milvuspb.FlushRequest{CollectionNames: []string{"books", "books"}})
	require.NoError(t, err)
	requireOK(t, fl.GetStatus())
	require.Equal(t, "default", fl.GetDbName())
	ts := fl.GetCollFlushTs()["books"]
	require.Greater(t, ts, ins.GetTimestamp())
	segIDs := fl.GetCollSegIDs()["books"].GetData()
	require.Len(t, segIDs, 3)
	require.Equal(t, []int64{9001, 9005}, segIDs[:2], "the segments this flush seals, then the flush's token")
	token := segIDs[2]
	require.Equal(t, []int64{9002}, fl.GetFlushCollSegIDs()["books"].GetData())
	require.NotZero(t, fl.GetCollSealTimes()["books"])
	require.Len(t, fl.GetChannelCps(), 2)
	require.Equal(t, ch0, fl.GetChannelCps()[ch0].GetChannelName())
	require.Equal(t, posBytes(1), fl.GetChannelCps()[ch0].GetMsgID())
	require.Equal(t, uint64(77), fl.GetChannelCps()[ch0].GetTimestamp())
	require.Equal(t, posBytes(0), fl.GetChannelCps()[ch1].GetMsgID(), "a channel never checkpointed is at 0")

	// One marker per channel, last, stamped at or before the flush timestamp; its position recorded.
	markers := map[string]uint64{}
	for _, ch := range c.chans {
		msgs := readChannel(t, e.log, ch)
		var flushes []walMsg
		for _, m := range msgs {
			if m.hdr.Kind == dml.Flush {
				flushes = append(flushes, m)
			}
		}
		require.Len(t, flushes, 1, "a repeated name flushes once")
		m := flushes[0]
		require.Equal(t, msgs[len(msgs)-1].pos, m.pos)
		require.Equal(t, dml.Header{Kind: dml.Flush, CollectionID: c.id, PartitionID: dml.AllPartitions, Timestamp: m.hdr.Timestamp}, m.hdr)
		require.LessOrEqual(t, m.hdr.Timestamp, ts, "the flush timestamp covers every marker")
		markers[ch] = m.pos
	}
	fm, err := e.catalog.ReadFlush(ctx, c.id, ts)
	require.NoError(t, err)
	require.Equal(t, ts, fm.Timestamp)
	require.Equal(t, markers, fm.Positions)

	state := func(req *milvuspb.GetFlushStateRequest) bool {
		t.Helper()
		r, err := e.c.GetFlushState(ctx, req)
		require.NoError(t, err)
		requireOK(t, r.GetStatus())
		return r.GetFlushed()
	}
	sdkReq := &milvuspb.GetFlushStateRequest{CollectionName: "books", FlushTs: ts, SegmentIDs: fl.GetCollSegIDs()["books"].GetData()}
	require.False(t, state(sdkReq), "no checkpoint has reached its marker")
	node.checkpoint(ch0, markers[ch0], ts)
	require.False(t, state(sdkReq), "one channel is still behind its marker")
	node.checkpoint(ch1, markers[ch1]+3, ts+5)
	require.True(t, state(sdkReq), "every checkpoint is at or past its marker")

	// The Node SDK asks by segment IDs alone: the token among them makes the markers decide,
	// so rows still buffered in a data node (no segment record yet) are waited for too.
	tokenOnly := &milvuspb.GetFlushStateRequest{SegmentIDs: []int64{token}}
	require.True(t, state(tokenOnly))
	node.checkpoint(ch1, markers[ch1]-1, ts) // (test only: pretend a channel is behind)
	require.False(t, state(tokenOnly), "a token is flushed only when every marker is reached")
	node.checkpoint(ch1, markers[ch1]+3, ts+5)

	// Without a flush record for the timestamp, or without a collection: the segments decide.
	require.False(t, state(&milvuspb.GetFlushStateRequest{CollectionName: "books", FlushTs: ts + 1, SegmentIDs: []int64{9001}}))
	require.True(t, state(&milvuspb.GetFlushStateRequest{CollectionName: "books", FlushTs: ts + 1, SegmentIDs: []int64{9002, 9004, 424242}}),
		"flushed, dropped and absent segments are all done")
	require.False(t, state(&milvuspb.GetFlushStateRequest{SegmentIDs: []int64{9002, 9005}}))
	require.True(t, state(&milvuspb.GetFlushStateRequest{SegmentIDs: []int64{9002}}))
	require.True(t, state(&milvuspb.GetFlushStateRequest{}))

	// Statistics count the rows of live insert segments.
	cs, err := e.c.GetCollectionStatistics(ctx, &milvuspb.GetCollectionStatisticsRequest{CollectionName: "books"})
	require.NoError(t, err)
	require.Equal(t, []*commonpb.KeyValuePair{kv("row_count", "15")}, cs.GetStats())
	for part, want := range map[string]string{"_default": "10", "p1": "5"} {
		ps, err := e.c.GetPartitionStatistics(ctx, &milvuspb.GetPartitionStatisticsRequest{CollectionName: "books", PartitionName: part})
		require.NoError(t, err)
		require.Equal(t, []*commonpb.KeyValuePair{kv("row_count", want)}, ps.GetStats(), part)
	}

	info, err := e.c.GetPersistentSegmentInfo(ctx, &milvuspb.GetPersistentSegmentInfoRequest{CollectionName: "books"})
	require.NoError(t, err)
	requireOK(t, info.GetStatus())
	type row struct {
		id, part, rows int64
		state          commonpb.SegmentState
	}
	var got []row
	for _, in := range info.GetInfos() {
		require.Equal(t, c.id, in.GetCollectionID())
		require.Equal(t, commonpb.SegmentLevel_L1, in.GetLevel())
		got = append(got, row{in.GetSegmentID(), in.GetPartitionID(), in.GetNumRows(), in.GetState()})
	}
	require.Equal(t, []row{
		{9001, c.defaultP, 7, commonpb.SegmentState_Growing},
		{9002, p1, 5, commonpb.SegmentState_Flushed},
		{9005, c.defaultP, 3, commonpb.SegmentState_Sealed},
	}, got)

	t.Run("empty list", func(t *testing.T) {
		r, err := e.c.Flush(ctx, &milvuspb.FlushRequest{})
		require.NoError(t, err)
		requireOK(t, r.GetStatus())
		require.Empty(t, r.GetCollFlushTs())
	})
}

// TestFlushRejections checks that a flush naming an unknown collection writes no marker at
// all, and the error codes of the flush and segment calls.
func TestFlushRejections(t *testing.T) {
	e := startProxy(t)
	ctx := ctxT(t)
	c := createColl(t, e.c, "books", 2, pk, vec32)
	otherDB := metadata.AppendToOutgoingContext(ctx, "dbname", "analytics")
	cases := []struct {
		name   string
		call   func() (*commonpb.Status, error)
		code   int32
		reason string
	}{
		{"flush with an unknown collection", func() (*commonpb.Status, error) {
			r, err := e.c.Flush(ctx, &milvuspb.FlushRequest{CollectionNames: []string{"books", "nope"}})
			return r.GetStatus(), err
		}, 100, "collection=nope]"},
		{"flush in an unknown database", func() (*commonpb.Status, error) {
			r, err := e.c.Flush(otherDB, &milvuspb.FlushRequest{CollectionNames: []string{"books"}})
			return r.GetStatus(), err
		}, 800, "database=analytics]"},
		{"flush state of an unknown collection", func() (*commonpb.Status, error) {
			r, err := e.c.GetFlushState(ctx, &milvuspb.GetFlushStateRequest{CollectionName: "nope", FlushTs: 5})
			return r.GetStatus(), err
		}, 100, "collection=nope]"},
		{"flush state in an unknown database", func() (*commonpb.Status, error) {
			r, err := e.c.GetFlushState(ctx, &milvuspb.GetFlushStateRequest{DbName: "analytics", SegmentIDs: []int64{1}})
			return r.GetStatus(), err
		}, 800, "database=analytics]"},
		{"segments of an unknown collection", func() (*commonpb.Status, error) {
			r, err := e.c.GetPersistentSegmentInfo(ctx, &milvuspb.GetPersistentSegmentInfoRequest{CollectionName: "nope"})
			return r.GetStatus(), err
		}, 100, "collection=nope]"},
		{"partition statistics without a name", func() (*commonpb.Status, error) {
			r, err := e.c.GetPartitionStatistics(ctx, &milvuspb.GetPartitionStatisticsRequest{CollectionName: "books"})
			return r.GetStatus(), err
		}, 1101, "partition name should not be empty"},
		{"partition statistics of an unknown collection", func() (*commonpb.Status, error) {
			r, err := e.c.GetPartitionStatistics(ctx, &milvuspb.GetPartitionStatisticsRequest{CollectionName: "nope", PartitionName: "p"})
			return r.GetStatus(), err
		}, 100, "collection=nope]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := lastPositions(t, e.log, c.chans)
			rev, err := e.store.Revision(ctx)
			require.NoError(t, err)
			st, err := tc.call()
			require.NoError(t, err)
			require.Equal(t, tc.code, st.GetCode(), st.GetReason())
			require.Contains(t, st.GetReason(), tc.reason)
			require.Equal(t, before, lastPositions(t, e.log, c.chans), "no marker was appended")
			after, err := e.store.Revision(ctx)
			require.NoError(t, err)
			require.Equal(t, rev, after, "no flush record was written")
		})
	}

	t.Run("append failure", func(t *testing.T) {
		e.faults.setPlan(tooLarge)
		r, err := e.c.Flush(ctx, &milvuspb.FlushRequest{CollectionNames: []string{"books"}})
		require.NoError(t, err)
		require.Equal(t, int32(5), r.GetStatus().GetCode(), r.GetStatus().GetReason())
	})
}

// TestMetastoreFailuresAreRetriable checks that a metastore that does not answer turns into a
// retriable Unavailable naming what could not be read or written, never a panic or a success.
func TestMetastoreFailuresAreRetriable(t *testing.T) {
	e := startProxy(t)
	ctx := ctxT(t)
	c := createColl(t, e.c, "books", 2, pk, vec32, title, score)
	createColl(t, e.c, "auto", 1, autoPK, vec32)
	fl, err := e.c.Flush(ctx, &milvuspb.FlushRequest{CollectionNames: []string{"books"}})
	require.NoError(t, err)
	requireOK(t, fl.GetStatus())
	ts := fl.GetCollFlushTs()["books"]

	cases := []struct {
		method string
		call   func() (*commonpb.Status, error)
		reason string
	}{
		{"ListPartitions", func() (*commonpb.Status, error) {
			r, err := e.c.Insert(ctx, insertReq(c, seq(1, 2), 32))
			return r.GetStatus(), err
		}, `list partitions of collection "books"`},
		{"Alloc", func() (*commonpb.Status, error) {
			r, err := e.c.Insert(ctx, &milvuspb.InsertRequest{CollectionName: "auto", NumRows: 1, FieldsData: []*schemapb.FieldData{
				vecCol("vec", 32, make([]float32, 32)),
			}})
			return r.GetStatus(), err
		}, `allocate primary keys for collection "auto"`},
		{"ListSegments", func() (*commonpb.Status, error) {
			r, err := e.c.GetCollectionStatistics(ctx, &milvuspb.GetCollectionStatisticsRequest{CollectionName: "books"})
			return r.GetStatus(), err
		}, `list segments of collection "books"`},
		{"ListSegments", func() (*commonpb.Status, error) {
			r, err := e.c.GetPartitionStatistics(ctx, &milvuspb.GetPartitionStatisticsRequest{CollectionName: "books", PartitionName: "_default"})
			return r.GetStatus(), err
		}, `list segments of collection "books"`},
		{"ListSegments", func() (*commonpb.Status, error) {
			r, err := e.c.GetPersistentSegmentInfo(ctx, &milvuspb.GetPersistentSegmentInfoRequest{CollectionName: "books"})
			return r.GetStatus(), err
		}, `list segments of collection "books"`},
		{"ListSegments", func() (*commonpb.Status, error) {
			r, err := e.c.GetFlushState(ctx, &milvuspb.GetFlushStateRequest{CollectionName: "books", SegmentIDs: []int64{1}})
			return r.GetStatus(), err
		}, `list segments of collection "books"`},
		{"ListSegments", func() (*commonpb.Status, error) {
			r, err := e.c.Flush(ctx, &milvuspb.FlushRequest{CollectionNames: []string{"books"}})
			return r.GetStatus(), err
		}, `list segments of collection "books"`},
		{"ReadCheckpoint", func() (*commonpb.Status, error) {
			r, err := e.c.Flush(ctx, &milvuspb.FlushRequest{CollectionNames: []string{"books"}})
			return r.GetStatus(), err
		}, "read checkpoint of channel"},
		{"ReadCheckpoint", func() (*commonpb.Status, error) {
			r, err := e.c.GetFlushState(ctx, &milvuspb.GetFlushStateRequest{CollectionName: "books", FlushTs: ts})
			return r.GetStatus(), err
		}, "read checkpoint of channel"},
		{"SaveFlush", func() (*commonpb.Status, error) {
			r, err := e.c.Flush(ctx, &milvuspb.FlushRequest{CollectionNames: []string{"books"}})
			return r.GetStatus(), err
		}, `save flush markers of collection "books"`},
		{"ReadFlush", func() (*commonpb.Status, error) {
			r, err := e.c.GetFlushState(ctx, &milvuspb.GetFlushStateRequest{CollectionName: "books", FlushTs: ts})
			return r.GetStatus(), err
		}, "read flush"},
		{"ListCollections", func() (*commonpb.Status, error) {
			r, err := e.c.GetFlushState(ctx, &milvuspb.GetFlushStateRequest{SegmentIDs: []int64{1}})
			return r.GetStatus(), err
		}, "list collections"},
	}
	for _, tc := range cases {
		t.Run(tc.method+": "+tc.reason, func(t *testing.T) {
			e.metaF.fail(tc.method)
			defer e.metaF.fail()
			st, err := tc.call()
			require.NoError(t, err)
			require.Equal(t, int32(2), st.GetCode(), st.GetReason())
			require.True(t, st.GetRetriable())
			require.Contains(t, st.GetReason(), tc.reason)
			require.Contains(t, st.GetReason(), "injected: metastore unreachable")
		})
	}
}
