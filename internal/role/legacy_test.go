package role

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weir-db/weir/internal/batch"
	"github.com/weir-db/weir/internal/coord"
	"github.com/weir-db/weir/internal/datanode"
	"github.com/weir-db/weir/internal/dml"
	"github.com/weir-db/weir/internal/failpoint"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/metastore"
	"github.com/weir-db/weir/internal/objstore"
	"github.com/weir-db/weir/internal/rpc"
	"github.com/weir-db/weir/internal/schema"
	"github.com/weir-db/weir/internal/segment"
	"github.com/weir-db/weir/internal/wal"
)

// countingStore counts the writes of channel and segment meta made through it (ID
// reservations, which a data node makes in either protocol, are not meta of a channel).
type countingStore struct {
	meta.Store
	writes atomic.Int32
}

func (s *countingStore) Txn(ctx context.Context, cmps []metastore.Cmp, ops []metastore.Op) (int64, error) {
	for _, op := range ops {
		if k := op.Key(); strings.Contains(k, "/meta/channels/") || strings.Contains(k, "/meta/segment") {
			s.writes.Add(1)
		}
	}
	return s.Store.Txn(ctx, cmps, ops)
}

// recordingCoord counts the legacy calls a stand-in coordinator receives. With earlier set it
// answers as a coordinator of the earlier release: no ClaimChannel, no epochs or revisions.
type recordingCoord struct {
	coordServer
	mu      sync.Mutex
	calls   map[string]int
	earlier atomic.Bool
}

func (r *recordingCoord) ClaimChannel(ctx context.Context, req *rpc.ClaimChannelRequest) (*rpc.ClaimChannelResponse, error) {
	r.mu.Lock()
	r.calls["ClaimChannel"]++
	r.mu.Unlock()
	if r.earlier.Load() {
		return nil, status.Error(codes.Unimplemented, "method ClaimChannel not implemented")
	}
	return r.coordServer.ClaimChannel(ctx, req)
}

func (r *recordingCoord) SaveBinlogPaths(ctx context.Context, req *rpc.SaveBinlogPathsRequest) (*rpc.SaveBinlogPathsResponse, error) {
	r.mu.Lock()
	r.calls["SaveBinlogPaths"]++
	r.mu.Unlock()
	if r.earlier.Load() {
		old := *req
		old.Epoch, old.Segments = 0, slices.Clone(req.Segments)
		for i := range old.Segments {
			old.Segments[i].Prev = nil
		}
		_, err := r.coordServer.SaveBinlogPaths(ctx, &old)
		return &rpc.SaveBinlogPathsResponse{}, err
	}
	return r.coordServer.SaveBinlogPaths(ctx, req)
}

func (r *recordingCoord) UpdateChannelCheckpoint(ctx context.Context, req *rpc.UpdateChannelCheckpointRequest) (*rpc.UpdateChannelCheckpointResponse, error) {
	r.mu.Lock()
	r.calls["UpdateChannelCheckpoint"]++
	r.mu.Unlock()
	return r.coordServer.UpdateChannelCheckpoint(ctx, req)
}

// legacyRig is a stand-in coordinator (a real gRPC server serving the legacy service over the
// real metastore) and a one-channel collection whose watch info has no lease, for node 1.
type legacyRig struct {
	ctx     context.Context
	store   *metastore.Etcd
	log     *wal.Log
	bucket  *objstore.Memory
	catalog *meta.Catalog
	stand   *recordingCoord
	cc      *grpc.ClientConn
	schema  *schemapb.CollectionSchema
	coll    *meta.Collection
	ch      string
	part    int64
	logger  *slog.Logger
}

func newLegacyRig(t *testing.T) *legacyRig {
	ctx := context.Background()
	r := &legacyRig{ctx: ctx, bucket: objstore.NewMemory(), logger: slog.New(slog.DiscardHandler)}
	etcd, err := metastore.StartEmbedded(ctx, metastore.EmbeddedConfig{Dir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { etcd.Close() })
	nats, err := wal.StartEmbedded(wal.EmbeddedConfig{Dir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(nats.Shutdown)
	r.store, err = metastore.Dial(ctx, metastore.Config{Endpoints: etcd.Endpoints()})
	require.NoError(t, err)
	t.Cleanup(func() { r.store.Close() })
	r.log, err = wal.Open(ctx, nats.ClientURL(), wal.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { r.log.Close() })
	r.catalog = meta.NewCatalog(r.store, "weir", meta.NewIDAllocator(r.store, "weir", 100), r.logger)

	co, err := coord.New(coord.Defaults(), r.catalog, meta.NewView(r.store, "weir", meta.ReloadChanged), nil, r.bucket, prometheus.NewRegistry(), r.logger)
	require.NoError(t, err)
	r.stand = &recordingCoord{coordServer: coordServer{co}, calls: map[string]int{}}
	srv := rpc.NewServer(r.logger)
	rpc.RegisterCoordServer(srv, r.stand)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	r.cc, err = rpc.Dial(ctx, ln.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { r.cc.Close() })

	r.schema, err = schema.Normalize("legacy", &schemapb.CollectionSchema{Fields: []*schemapb.FieldSchema{
		{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
		{Name: "v", DataType: schemapb.DataType_FloatVector, TypeParams: []*commonpb.KeyValuePair{{Key: "dim", Value: "2"}}},
	}})
	require.NoError(t, err)
	r.coll, _, err = r.catalog.CreateCollection(ctx, &meta.Collection{DB: meta.DefaultDatabase, Name: "legacy", Schema: r.schema, Shards: 1})
	require.NoError(t, err)
	r.ch = r.coll.VChannels[0]
	require.NoError(t, r.log.CreateChannel(ctx, r.ch))
	_, err = r.catalog.AssignChannelLegacy(ctx, r.ch, r.coll.ID, 1) // watch info without a lease
	require.NoError(t, err)
	parts, err := r.catalog.ListPartitions(ctx, r.coll.ID)
	require.NoError(t, err)
	r.part = parts[0].ID
	return r
}

// node starts data node 1 over store (the rig's, or one that watches its writes), with the
// stand-in as its coordinator, watching the channel.
func (r *legacyRig) node(t *testing.T, store meta.Store, syncBytes int64) *datanode.Node {
	ids := meta.NewIDAllocator(store, "weir", 100)
	cfg := datanode.Defaults()
	cfg.SyncBufferBytes = syncBytes
	cfg.RetryMax = 50 * time.Millisecond
	node, err := datanode.New(cfg, meta.NewCatalog(store, "weir", ids, r.logger), ids, r.log, r.bucket, prometheus.NewRegistry(), r.logger)
	require.NoError(t, err)
	t.Cleanup(node.Close)
	node.SetCoordinator(grpcCoord{rpc.NewCoordClient(r.cc)})
	require.NoError(t, node.Watch(r.ctx, r.ch))
	return node
}

// append appends one DML message to the channel and returns its position.
func (r *legacyRig) append(t *testing.T, h dml.Header, body []byte) uint64 {
	h.CollectionID = r.coll.ID
	pos, err := r.log.Append(r.ctx, r.ch, []wal.Record{{Data: dml.Encode(dml.Message{Header: h, Body: body})}})
	require.NoError(t, err)
	return pos[0]
}

// insert appends rows with keys to partition part.
func (r *legacyRig) insert(t *testing.T, part int64, ts uint64, keys ...int64) {
	rows, err := batch.FromFieldData(r.schema, []*schemapb.FieldData{
		{FieldName: "id", Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: keys}}}}},
		{FieldName: "v", Field: &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{Dim: 2, Data: &schemapb.VectorField_FloatVector{FloatVector: &schemapb.FloatArray{Data: make([]float32, 2*len(keys))}}}}},
	}, uint32(len(keys)), batch.FromOptions{})
	require.NoError(t, err)
	defer rows.Release()
	rec := rows.Record(ts)
	defer rec.Release()
	body, err := batch.EncodeIPC(rec)
	require.NoError(t, err)
	r.append(t, dml.Header{Kind: dml.Insert, PartitionID: part, Timestamp: ts, Rows: uint32(len(keys))}, body)
}

// insertTen inserts ten batches of three rows and flushes; it returns the keys.
func (r *legacyRig) insertTen(t *testing.T) []int64 {
	var want []int64
	for i := int64(0); i < 10; i++ {
		keys := []int64{3 * i, 3*i + 1, 3*i + 2}
		want = append(want, keys...)
		r.insert(t, r.part, uint64(i+1), keys...)
	}
	r.flush(t, 100)
	return want
}

// flush appends a flush marker and waits until the checkpoint reaches it.
func (r *legacyRig) flush(t *testing.T, ts uint64) {
	pos := r.append(t, dml.Header{Kind: dml.Flush, Timestamp: ts}, nil)
	require.Eventually(t, func() bool {
		cp, err := r.catalog.ReadCheckpoint(r.ctx, r.ch)
		return err == nil && cp.Position >= pos
	}, 30*time.Second, 10*time.Millisecond)
}

// storedKeys counts every key the channel's committed insert files hold.
func (r *legacyRig) storedKeys(t *testing.T) map[int64]int {
	segs, err := r.catalog.ListSegments(r.ctx, r.coll.ID)
	require.NoError(t, err)
	out := map[int64]int{}
	for _, sg := range segs {
		files, err := r.catalog.ListFiles(r.ctx, r.coll.ID, sg.ID)
		require.NoError(t, err)
		for _, f := range files {
			if f.Kind != meta.InsertFile {
				continue
			}
			data, err := r.bucket.Get(r.ctx, f.Key)
			require.NoError(t, err)
			col, err := segment.ReadColumn(bytes.NewReader(data), int64(len(data)), "id")
			require.NoError(t, err)
			for _, v := range col.(*array.Int64).Int64Values() {
				out[v]++
			}
			col.Release()
		}
	}
	return out
}

// TestLegacyWatchInfoGoesThroughTheCoordinator is the MEP's compatibility test: a stand-in
// coordinator, watch info without a lease, and a data node watching that channel. Every meta
// update goes through gRPC: the stand-in receives them, the data node writes nothing to the
// metastore itself, and the data is all there.
func TestLegacyWatchInfoGoesThroughTheCoordinator(t *testing.T) {
	r := newLegacyRig(t)
	ctx, catalog, store, ch, cc, stand := r.ctx, r.catalog, r.store, r.ch, r.cc, r.stand
	// The data node's own metastore access counts its writes.
	counting := &countingStore{Store: store}
	r.node(t, counting, 512)

	want := r.insertTen(t)

	stand.mu.Lock()
	calls := map[string]int{"ClaimChannel": stand.calls["ClaimChannel"], "SaveBinlogPaths": stand.calls["SaveBinlogPaths"], "UpdateChannelCheckpoint": stand.calls["UpdateChannelCheckpoint"]}
	stand.mu.Unlock()
	require.Equal(t, 1, calls["ClaimChannel"], "the pipeline claimed the channel through the coordinator")
	require.Positive(t, calls["SaveBinlogPaths"], "segment meta went through the coordinator")
	require.Positive(t, calls["UpdateChannelCheckpoint"], "checkpoints went through the coordinator")
	require.Zero(t, counting.writes.Load(), "the data node wrote no channel or segment meta itself")

	segs, err := catalog.ListSegments(ctx, r.coll.ID)
	require.NoError(t, err)
	var rows int64
	for _, sg := range segs {
		rows += sg.Rows
		require.Equal(t, meta.Flushed, sg.State)
	}
	require.Equal(t, int64(len(want)), rows)
	t.Logf("stand-in coordinator received %v", calls)

	// An old data node's call for a channel it no longer owns is refused over the wire with
	// FailedPrecondition (the node stops that pipeline), and stores nothing.
	_, err = catalog.AssignChannelLegacy(ctx, ch, r.coll.ID, 2)
	require.NoError(t, err)
	before, err := store.Revision(ctx)
	require.NoError(t, err)
	stale := segs[0]
	stale.Rows, stale.MaxPos, stale.Files = stale.Rows+100, stale.MaxPos+100, stale.Files+2
	_, err = rpc.NewCoordClient(cc).SaveBinlogPaths(ctx, &rpc.SaveBinlogPathsRequest{Channel: ch, NodeID: 1, OpID: segs[0].Lease,
		Segments: []rpc.SegmentUpdate{{Segment: *stale}}, Checkpoint: &meta.Checkpoint{Position: 999}})
	require.Equal(t, codes.FailedPrecondition, status.Code(err))
	_, err = rpc.NewCoordClient(cc).UpdateChannelCheckpoint(ctx, &rpc.UpdateChannelCheckpointRequest{Channel: ch, NodeID: 1, OpID: segs[0].Lease, Checkpoint: meta.Checkpoint{Position: 999}})
	require.Equal(t, codes.FailedPrecondition, status.Code(err))
	after, err := store.Revision(ctx)
	require.NoError(t, err)
	require.Equal(t, before, after, "a refused legacy call stores nothing")
}

// TestLegacySyncSplitByACrash: the coordinator writes a legacy sync's segments in one
// transaction each, and fails (as a crash would) after the first of them. The data node sends
// the whole call again; the segment already written is recognised and the rest written: every
// row once (issue 11, item 13).
func TestLegacySyncSplitByACrash(t *testing.T) {
	r := newLegacyRig(t)
	p2, err := r.catalog.CreatePartition(r.ctx, r.coll.ID, "p2")
	require.NoError(t, err)
	var failed atomic.Int32
	off := failpoint.Enable(coord.FailLegacyBetweenSegments, func() error {
		if failed.Add(1) == 1 {
			return errors.New("test: coordinator crashed between the transactions of one sync")
		}
		return nil
	})
	defer off()
	node := r.node(t, r.store, 1<<30) // one sync, at the flush: a segment per partition
	var want []int64
	for i := int64(0); i < 6; i++ {
		part := r.part
		if i%2 == 1 {
			part = p2.ID
		}
		keys := []int64{2 * i, 2*i + 1}
		want = append(want, keys...)
		r.insert(t, part, uint64(i+1), keys...)
	}
	r.flush(t, 100)
	require.Positive(t, failed.Load(), "the failpoint fired")
	require.NoError(t, node.Err(r.ch))
	stored := r.storedKeys(t)
	require.Len(t, stored, len(want))
	for _, k := range want {
		require.Equal(t, 1, stored[k], "key %d", k)
	}
}

// grpcCoord adapts the typed client to the data node's Coordinator.
type grpcCoord struct{ c *rpc.CoordClient }

func (g grpcCoord) ClaimChannel(ctx context.Context, req *rpc.ClaimChannelRequest) (*rpc.ClaimChannelResponse, error) {
	return g.c.ClaimChannel(ctx, req)
}

func (g grpcCoord) SaveBinlogPaths(ctx context.Context, req *rpc.SaveBinlogPathsRequest) (*rpc.SaveBinlogPathsResponse, error) {
	return g.c.SaveBinlogPaths(ctx, req)
}

func (g grpcCoord) UpdateChannelCheckpoint(ctx context.Context, req *rpc.UpdateChannelCheckpointRequest) error {
	_, err := g.c.UpdateChannelCheckpoint(ctx, req)
	return err
}

// TestLegacyNodeWithACoordinatorOfTheEarlierRelease: during a rolling upgrade a legacy data node
// of this release may talk to a coordinator of the earlier release, which has no ClaimChannel
// and answers SaveBinlogPaths without revisions. The node falls back to that release's rules
// (and reads the revisions itself) instead of failing every pipeline start (found by review).
func TestLegacyNodeWithACoordinatorOfTheEarlierRelease(t *testing.T) {
	r := newLegacyRig(t)
	r.stand.earlier.Store(true)
	node := r.node(t, r.store, 512)
	want := r.insertTen(t)
	require.NoError(t, node.Err(r.ch))
	stored := r.storedKeys(t)
	require.Len(t, stored, len(want))
	for _, k := range want {
		require.Equal(t, 1, stored[k], "key %d", k)
	}
}
