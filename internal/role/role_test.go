package role

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/weir-db/weir/internal/coord"
	"github.com/weir-db/weir/internal/datanode"
	"github.com/weir-db/weir/internal/metastore"
	"github.com/weir-db/weir/internal/rpc"
	"github.com/weir-db/weir/internal/session"
	"github.com/weir-db/weir/internal/wal"
)

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

func healthy(addr string) bool {
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// TestRolesServeTogether runs the three roles in one test process over embedded etcd and NATS,
// each through its Run function as `weir run` does: the proxy takes a collection and rows, the
// coordinator assigns the channels to the data node and answers recovery targets, a flush
// completes, and every role stops cleanly when its context ends.
func TestRolesServeTogether(t *testing.T) {
	ctx := context.Background()
	etcd, err := metastore.StartEmbedded(ctx, metastore.EmbeddedConfig{Dir: t.TempDir()})
	require.NoError(t, err)
	defer etcd.Close()
	nats, err := wal.StartEmbedded(wal.EmbeddedConfig{Dir: t.TempDir(), Sync: wal.SyncAlways})
	require.NoError(t, err)
	defer nats.Shutdown()

	base := Defaults()
	base.Etcd, base.NATS, base.Storage, base.SessionTTL = etcd.Endpoints(), nats.ClientURL(), "file://"+t.TempDir(), 2*time.Second
	logger := slog.New(slog.DiscardHandler)
	type running struct {
		cancel context.CancelFunc
		done   chan error
		http   string
	}
	run := func(name string, f func(context.Context, Config) error, edit func(*Config)) running {
		cfg := base
		cfg.HTTPListen = freeAddr(t)
		if edit != nil {
			edit(&cfg)
		}
		rctx, cancel := context.WithCancel(ctx)
		r := running{cancel: cancel, done: make(chan error, 1), http: cfg.HTTPListen}
		go func() { r.done <- f(rctx, cfg) }()
		require.Eventually(t, func() bool { return healthy(r.http) }, 20*time.Second, 10*time.Millisecond, "%s not healthy", name)
		return r
	}
	ccfg := coord.Defaults()
	ccfg.AssignInterval, ccfg.ReloadInterval = 50*time.Millisecond, 50*time.Millisecond
	co := run("coord", func(c context.Context, cfg Config) error { return RunCoord(c, cfg, ccfg, logger) }, nil)
	dn := run("datanode", func(c context.Context, cfg Config) error { return RunDataNode(c, cfg, datanode.Defaults(), logger) }, nil)
	listen := freeAddr(t)
	px := run("proxy", func(c context.Context, cfg Config) error { return RunProxy(c, cfg, logger) }, func(c *Config) { c.Listen = listen })

	conn, err := grpc.NewClient(listen, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	c := milvuspb.NewMilvusServiceClient(conn)
	b, err := proto.Marshal(&schemapb.CollectionSchema{Name: "r", Fields: []*schemapb.FieldSchema{
		{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
		{Name: "v", DataType: schemapb.DataType_FloatVector, TypeParams: []*commonpb.KeyValuePair{{Key: "dim", Value: "2"}}},
	}})
	require.NoError(t, err)
	st, err := c.CreateCollection(ctx, &milvuspb.CreateCollectionRequest{CollectionName: "r", Schema: b, ShardsNum: 2})
	require.NoError(t, err)
	require.Zero(t, st.GetCode(), st.GetReason())
	ins, err := c.Insert(ctx, &milvuspb.InsertRequest{CollectionName: "r", NumRows: 3, FieldsData: []*schemapb.FieldData{
		{FieldName: "id", Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: []int64{1, 2, 3}}}}}},
		{FieldName: "v", Field: &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{Dim: 2, Data: &schemapb.VectorField_FloatVector{FloatVector: &schemapb.FloatArray{Data: []float32{1, 2, 3, 4, 5, 6}}}}}},
	}})
	require.NoError(t, err)
	require.Zero(t, ins.GetStatus().GetCode(), ins.GetStatus().GetReason())
	fl, err := c.Flush(ctx, &milvuspb.FlushRequest{CollectionNames: []string{"r"}})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		s, err := c.GetFlushState(ctx, &milvuspb.GetFlushStateRequest{CollectionName: "r", FlushTs: fl.GetCollFlushTs()["r"]})
		return err == nil && s.GetFlushed()
	}, 30*time.Second, 20*time.Millisecond)

	store, err := metastore.Dial(ctx, metastore.Config{Endpoints: etcd.Endpoints()})
	require.NoError(t, err)
	defer store.Close()
	for _, role := range []string{"coord", "datanode", "proxy"} {
		infos, _, err := session.List(ctx, store, "weir", role)
		require.NoError(t, err)
		require.Len(t, infos, 1, role)
	}
	infos, _, err := session.List(ctx, store, "weir", "coord")
	require.NoError(t, err)
	cc, err := rpc.Dial(ctx, infos[0].GRPCAddr)
	require.NoError(t, err)
	defer cc.Close()
	// The coordinator's view catches up with the flush within a reload interval.
	require.Eventually(t, func() bool {
		resp, err := rpc.NewCoordClient(cc).GetRecoveryInfo(ctx, &rpc.RecoveryInfoRequest{CollectionID: 1})
		require.NoError(t, err)
		var rows int64
		for _, ch := range resp.Channels {
			for _, s := range ch.Flushed {
				rows += s.Rows
			}
		}
		return rows == 3
	}, 10*time.Second, 10*time.Millisecond)
	dinfos, _, err := session.List(ctx, store, "weir", "datanode")
	require.NoError(t, err)
	dc, err := rpc.Dial(ctx, dinfos[0].GRPCAddr)
	require.NoError(t, err)
	defer dc.Close()
	status, err := rpc.NewDataNodeClient(dc).Status(ctx, &rpc.StatusRequest{})
	require.NoError(t, err)
	require.Len(t, status.Channels, 2)
	_, err = rpc.NewDataNodeClient(dc).Watch(ctx, &rpc.WatchRequest{Channel: "not-mine"})
	require.Error(t, err)

	for _, r := range []running{px, dn, co} {
		r.cancel()
		select {
		case err := <-r.done:
			require.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Fatal("role did not stop")
		}
	}
	for _, role := range []string{"coord", "datanode", "proxy"} {
		infos, _, err := session.List(ctx, store, "weir", role)
		require.NoError(t, err)
		require.Empty(t, infos, "a clean stop removes the session at once (%s)", role)
	}
}

func TestConfigValidate(t *testing.T) {
	require.NoError(t, Defaults().Validate())
	for i, edit := range []func(*Config){
		func(c *Config) { c.Etcd = nil },
		func(c *Config) { c.NodeID = 0 },
		func(c *Config) { c.RootPath = "" },
		func(c *Config) { c.SessionTTL = time.Millisecond },
		func(c *Config) { c.WALReplicas = 0 },
		func(c *Config) { c.WALReplicas = 7 },
	} {
		c := Defaults()
		edit(&c)
		require.Error(t, c.Validate(), fmt.Sprint(i))
		require.Error(t, RunProxy(context.Background(), c, slog.New(slog.DiscardHandler)))
	}
}

func TestStartFailuresAreReported(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	cfg := Defaults()
	cfg.HTTPListen = ln.Addr().String()
	require.ErrorContains(t, RunDataNode(context.Background(), cfg, datanode.Defaults(), logger), "listen http")

	cfg.HTTPListen = "127.0.0.1:0"
	cfg.Etcd = []string{"http://" + freeAddr(t)} // nothing listens there
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.ErrorContains(t, RunCoord(ctx, cfg, coord.Defaults(), logger), "connect to etcd")
}
