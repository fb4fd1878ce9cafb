package role

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weir-db/weir/internal/batch"
	"github.com/weir-db/weir/internal/coord"
	"github.com/weir-db/weir/internal/datanode"
	"github.com/weir-db/weir/internal/dml"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/metastore"
	"github.com/weir-db/weir/internal/objstore"
	"github.com/weir-db/weir/internal/rpc"
	"github.com/weir-db/weir/internal/schema"
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

// recordingCoord counts the legacy calls a stand-in coordinator receives.
type recordingCoord struct {
	coordServer
	mu    sync.Mutex
	calls map[string]int
}

func (r *recordingCoord) SaveBinlogPaths(ctx context.Context, req *rpc.SaveBinlogPathsRequest) (*rpc.SaveBinlogPathsResponse, error) {
	r.mu.Lock()
	r.calls["SaveBinlogPaths"]++
	r.mu.Unlock()
	return r.coordServer.SaveBinlogPaths(ctx, req)
}

func (r *recordingCoord) UpdateChannelCheckpoint(ctx context.Context, req *rpc.UpdateChannelCheckpointRequest) (*rpc.UpdateChannelCheckpointResponse, error) {
	r.mu.Lock()
	r.calls["UpdateChannelCheckpoint"]++
	r.mu.Unlock()
	return r.coordServer.UpdateChannelCheckpoint(ctx, req)
}

// TestLegacyWatchInfoGoesThroughTheCoordinator is the MEP's compatibility test: a stand-in
// coordinator (a real gRPC server serving the legacy service over the real metastore), watch
// info without a lease, and a data node watching that channel. Every meta update goes through
// gRPC: the stand-in receives them, the data node writes nothing to the metastore itself, and
// the data is all there.
func TestLegacyWatchInfoGoesThroughTheCoordinator(t *testing.T) {
	ctx := context.Background()
	etcd, err := metastore.StartEmbedded(ctx, metastore.EmbeddedConfig{Dir: t.TempDir()})
	require.NoError(t, err)
	defer etcd.Close()
	nats, err := wal.StartEmbedded(wal.EmbeddedConfig{Dir: t.TempDir()})
	require.NoError(t, err)
	defer nats.Shutdown()
	store, err := metastore.Dial(ctx, metastore.Config{Endpoints: etcd.Endpoints()})
	require.NoError(t, err)
	defer store.Close()
	log, err := wal.Open(ctx, nats.ClientURL(), wal.Config{})
	require.NoError(t, err)
	defer log.Close()
	bucket := objstore.NewMemory()
	logger := slog.New(slog.DiscardHandler)
	ids := meta.NewIDAllocator(store, "weir", 100)
	catalog := meta.NewCatalog(store, "weir", ids, logger)

	// The stand-in coordinator.
	co, err := coord.New(coord.Defaults(), catalog, meta.NewView(store, "weir", meta.ReloadChanged), nil, bucket, prometheus.NewRegistry(), logger)
	require.NoError(t, err)
	stand := &recordingCoord{coordServer: coordServer{co}, calls: map[string]int{}}
	srv := rpc.NewServer(logger)
	rpc.RegisterCoordServer(srv, stand)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()
	cc, err := rpc.Dial(ctx, ln.Addr().String())
	require.NoError(t, err)
	defer cc.Close()

	s, err := schema.Normalize("legacy", &schemapb.CollectionSchema{Fields: []*schemapb.FieldSchema{
		{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
		{Name: "v", DataType: schemapb.DataType_FloatVector, TypeParams: []*commonpb.KeyValuePair{{Key: "dim", Value: "2"}}},
	}})
	require.NoError(t, err)
	coll, _, err := catalog.CreateCollection(ctx, &meta.Collection{DB: meta.DefaultDatabase, Name: "legacy", Schema: s, Shards: 1})
	require.NoError(t, err)
	ch := coll.VChannels[0]
	require.NoError(t, log.CreateChannel(ctx, ch))
	_, err = catalog.AssignChannelLegacy(ctx, ch, coll.ID, 1) // watch info without a lease
	require.NoError(t, err)
	parts, err := catalog.ListPartitions(ctx, coll.ID)
	require.NoError(t, err)

	// The data node's own metastore access counts its writes.
	counting := &countingStore{Store: store}
	dids := meta.NewIDAllocator(counting, "weir", 100)
	dcat := meta.NewCatalog(counting, "weir", dids, logger)
	cfg := datanode.Defaults()
	cfg.SyncBufferBytes = 512
	node, err := datanode.New(cfg, dcat, dids, log, bucket, prometheus.NewRegistry(), logger)
	require.NoError(t, err)
	defer node.Close()
	node.SetCoordinator(grpcCoord{rpc.NewCoordClient(cc)})
	require.NoError(t, node.Watch(ctx, ch))

	var want []int64
	for i := int64(0); i < 10; i++ {
		keys := []int64{3 * i, 3*i + 1, 3*i + 2}
		want = append(want, keys...)
		rows, err := batch.FromFieldData(s, []*schemapb.FieldData{
			{FieldName: "id", Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: keys}}}}},
			{FieldName: "v", Field: &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{Dim: 2, Data: &schemapb.VectorField_FloatVector{FloatVector: &schemapb.FloatArray{Data: make([]float32, 6)}}}}},
		}, 3, batch.FromOptions{})
		require.NoError(t, err)
		rec := rows.Record(uint64(i + 1))
		body, err := batch.EncodeIPC(rec)
		require.NoError(t, err)
		rec.Release()
		rows.Release()
		_, err = log.Append(ctx, ch, []wal.Record{{Data: dml.Encode(dml.Message{Header: dml.Header{Kind: dml.Insert, CollectionID: coll.ID, PartitionID: parts[0].ID, Timestamp: uint64(i + 1), Rows: 3}, Body: body})}})
		require.NoError(t, err)
	}
	pos, err := log.Append(ctx, ch, []wal.Record{{Data: dml.Encode(dml.Message{Header: dml.Header{Kind: dml.Flush, CollectionID: coll.ID, Timestamp: 100}})}})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		cp, err := catalog.ReadCheckpoint(ctx, ch)
		return err == nil && cp.Position >= pos[0]
	}, 30*time.Second, 10*time.Millisecond)

	stand.mu.Lock()
	calls := map[string]int{"SaveBinlogPaths": stand.calls["SaveBinlogPaths"], "UpdateChannelCheckpoint": stand.calls["UpdateChannelCheckpoint"]}
	stand.mu.Unlock()
	require.Positive(t, calls["SaveBinlogPaths"], "segment meta went through the coordinator")
	require.Positive(t, calls["UpdateChannelCheckpoint"], "checkpoints went through the coordinator")
	require.Zero(t, counting.writes.Load(), "the data node wrote no channel or segment meta itself")

	segs, err := catalog.ListSegments(ctx, coll.ID)
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
	_, err = catalog.AssignChannelLegacy(ctx, ch, coll.ID, 2)
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

// grpcCoord adapts the typed client to the data node's Coordinator.
type grpcCoord struct{ c *rpc.CoordClient }

func (g grpcCoord) SaveBinlogPaths(ctx context.Context, req *rpc.SaveBinlogPathsRequest) error {
	_, err := g.c.SaveBinlogPaths(ctx, req)
	return err
}

func (g grpcCoord) UpdateChannelCheckpoint(ctx context.Context, req *rpc.UpdateChannelCheckpointRequest) error {
	_, err := g.c.UpdateChannelCheckpoint(ctx, req)
	return err
}
