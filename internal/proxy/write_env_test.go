package proxy_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/weir-db/weir/internal/batch"
	"github.com/weir-db/weir/internal/dml"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/metastore"
	"github.com/weir-db/weir/internal/proxy"
	"github.com/weir-db/weir/internal/wal"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const root = "weir"

// wenv is a proxy over real embedded etcd and NATS with no data node: the tests read the
// channels and the metastore directly to see exactly what the proxy wrote, and play the data
// node's part (segment meta, checkpoints) through the real fenced catalog where they need it.
type wenv struct {
	c       milvuspb.MilvusServiceClient
	srv     *proxy.Server
	log     *wal.Log
	store   *metastore.Etcd
	catalog *meta.Catalog
	faults  *faultyChannels
	metaF   *faultyCatalog
}

type proxyOpts struct {
	cfg  proxy.Config
	sync wal.Durability // the embedded NATS server's; "" is SyncInterval
}

// startProxy starts embedded etcd and NATS, a proxy over them (its appends go through a
// faultyChannels, which passes everything through until a test plans a fault) and a gRPC
// client of it.
func startProxy(t testing.TB, mod ...func(*proxyOpts)) *wenv {
	t.Helper()
	o := proxyOpts{cfg: proxy.Config{Version: "test", NodeID: 7}}
	for _, f := range mod {
		f(&o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	logger := slog.New(slog.DiscardHandler)

	etcd, err := metastore.StartEmbedded(ctx, metastore.EmbeddedConfig{Dir: filepath.Join(t.TempDir(), "etcd")})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, etcd.Close()) })
	nats, err := wal.StartEmbedded(wal.EmbeddedConfig{Dir: t.TempDir(), Sync: o.sync})
	require.NoError(t, err)
	t.Cleanup(nats.Shutdown)
	store, err := metastore.Dial(ctx, metastore.Config{Endpoints: etcd.Endpoints()})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, store.Close()) })
	log, err := wal.Open(ctx, nats.ClientURL(), wal.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, log.Close()) })

	ids := meta.NewIDAllocator(store, root, 1000)
	catalog := meta.NewCatalog(store, root, ids, logger)
	faults := &faultyChannels{Log: log}
	metaF := &faultyCatalog{Catalog: catalog, ids: ids}
	srv := proxy.New(o.cfg, proxy.Deps{Catalog: metaF, Channels: faults, IDs: metaF}, logger)
	srv.SetReady(true)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gs := proxy.NewGRPCServer(srv, logger)
	done := make(chan error, 1)
	go func() { done <- gs.Serve(ln) }()
	t.Cleanup(func() {
		gs.Stop()
		require.NoError(t, <-done)
	})
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(proxy.MaxMessageSize)))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return &wenv{c: milvuspb.NewMilvusServiceClient(conn), srv: srv, log: log, store: store, catalog: catalog, faults: faults, metaF: metaF}
}

// fault is what faultyChannels does to one Append.
type fault int

const (
	pass fault = iota
	// ackLost stores the records and then reports an error, as a lost acknowledgement does.
	ackLost
	// unreachable stores nothing and reports an error of unknown outcome.
	unreachable
	// tooLarge stores nothing and reports wal.ErrRecordTooLarge.
	tooLarge
	// headRefused stores every record but the first and reports an error, as a server that
	// refused one record of an asynchronous batch (a leader change, a timeout) and took the
	// rest does.
	headRefused
)

var errInjected = errors.New("injected: connection lost before the ack")

// faultyChannels wraps the real WAL: it records every Append's record IDs and applies the
// planned faults in order, one per Append (pass once the plan is used up).
type faultyChannels struct {
	*wal.Log

	mu       sync.Mutex
	plan     []fault
	calls    []appendCall
	onAppend func() // called before each Append, outside the lock
	onCreate func() // called before each CreateChannel, outside the lock
}

func (f *faultyChannels) CreateChannel(ctx context.Context, ch string) error {
	f.mu.Lock()
	hook := f.onCreate
	f.mu.Unlock()
	if hook != nil {
		hook()
	}
	return f.Log.CreateChannel(ctx, ch)
}

type appendCall struct {
	channel string
	ids     []string
	fault   fault
}

func (f *faultyChannels) Append(ctx context.Context, ch string, recs []wal.Record, opts ...wal.AppendOption) ([]wal.Position, error) {
	f.mu.Lock()
	ft := pass
	if len(f.plan) > 0 {
		ft, f.plan = f.plan[0], f.plan[1:]
	}
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.ID
	}
	f.calls = append(f.calls, appendCall{channel: ch, ids: ids, fault: ft})
	hook := f.onAppend
	f.mu.Unlock()
	if hook != nil {
		hook()
	}
	switch ft {
	case ackLost:
		if _, err := f.Log.Append(ctx, ch, recs, opts...); err != nil {
			return nil, err
		}
		return nil, errInjected
	case unreachable:
		return nil, errInjected
	case tooLarge:
		return nil, wal.ErrRecordTooLarge
	case headRefused:
		if len(recs) > 1 {
			if _, err := f.Log.Append(ctx, ch, recs[1:], opts...); err != nil {
				return nil, err
			}
		}
		return nil, errInjected
	}
	return f.Log.Append(ctx, ch, recs, opts...)
}

func (f *faultyChannels) setHook(h func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onAppend = h
}

func (f *faultyChannels) setPlan(p ...fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.plan, f.calls = p, nil
}

func (f *faultyChannels) recorded() []appendCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

var errMetaDown = errors.New("injected: metastore unreachable")

// faultyCatalog wraps the real catalog and ID allocator; the methods named in failing return
// errMetaDown instead of reaching etcd.
type faultyCatalog struct {
	*meta.Catalog
	ids *meta.IDAllocator

	mu      sync.Mutex
	failing map[string]bool
	// reads counts collection and partition lookups, to see what the target cache saves.
	reads atomic.Int64
}

func (f *faultyCatalog) fail(methods ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failing = map[string]bool{}
	for _, m := range methods {
		f.failing[m] = true
	}
}

func (f *faultyCatalog) down(method string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failing[method]
}

// Alloc is the proxy's ID allocator ("Alloc" fails it).
func (f *faultyCatalog) Alloc(ctx context.Context, n int64) (int64, error) {
	if f.down("Alloc") {
		return 0, errMetaDown
	}
	return f.ids.Alloc(ctx, n)
}

func (f *faultyCatalog) ListPartitions(ctx context.Context, coll int64) ([]*meta.Partition, error) {
	f.reads.Add(1)
	if f.down("ListPartitions") {
		return nil, errMetaDown
	}
	return f.Catalog.ListPartitions(ctx, coll)
}

func (f *faultyCatalog) ListCollections(ctx context.Context, db string) ([]*meta.Collection, error) {
	if f.down("ListCollections") {
		return nil, errMetaDown
	}
	return f.Catalog.ListCollections(ctx, db)
}

func (f *faultyCatalog) ListSegments(ctx context.Context, coll int64) ([]*meta.Segment, error) {
	if f.down("ListSegments") {
		return nil, errMetaDown
	}
	return f.Catalog.ListSegments(ctx, coll)
}

func (f *faultyCatalog) ReadCheckpoint(ctx context.Context, ch string) (meta.Checkpoint, error) {
	if f.down("ReadCheckpoint") {
		return meta.Checkpoint{}, errMetaDown
	}
	return f.Catalog.ReadCheckpoint(ctx, ch)
}

func (f *faultyCatalog) SaveFlush(ctx context.Context, coll int64, fm meta.FlushMarkers) error {
	if f.down("SaveFlush") {
		return errMetaDown
	}
	return f.Catalog.SaveFlush(ctx, coll, fm)
}

func (f *faultyCatalog) ReadFlush(ctx context.Context, coll int64, ts uint64) (meta.FlushMarkers, error) {
	if f.down("ReadFlush") {
		return meta.FlushMarkers{}, errMetaDown
	}
	return f.Catalog.ReadFlush(ctx, coll, ts)
}

// walMsg is one decoded channel message.
type walMsg struct {
	pos  uint64
	hdr  dml.Header
	rec  arrow.RecordBatch // insert, upsert
	keys dml.PKs           // delete
}

// readChannel decodes every message of a channel, in position order.
func readChannel(t testing.TB, l *wal.Log, ch string) []walMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	last, err := l.LastPosition(ctx, ch)
	require.NoError(t, err)
	if last == 0 {
		return nil
	}
	r, err := l.Read(ctx, ch, 1)
	require.NoError(t, err)
	defer func() { require.NoError(t, r.Close()) }()
	var out []walMsg
	for {
		m, err := r.Next(ctx)
		require.NoError(t, err)
		msg, err := dml.Decode(m.Data)
		require.NoError(t, err)
		w := walMsg{pos: m.Pos, hdr: msg.Header}
		switch msg.Kind {
		case dml.Insert, dml.Upsert, dml.UpsertAllPartitions:
			w.rec, err = batch.DecodeIPC(msg.Body)
			require.NoError(t, err)
			t.Cleanup(w.rec.Release)
			require.Equal(t, int64(msg.Rows), w.rec.NumRows(), "header rows match the body")
		case dml.Delete:
			w.keys, err = dml.DecodePKs(msg.Body)
			require.NoError(t, err)
			require.Equal(t, int(msg.Rows), w.keys.Len(), "header rows match the body")
		case dml.Flush:
			require.Empty(t, msg.Body)
		}
		out = append(out, w)
		if m.Pos == last {
			return out
		}
	}
}

// lastPositions returns the last position of every channel.
func lastPositions(t testing.TB, l *wal.Log, chans []string) []uint64 {
	t.Helper()
	out := make([]uint64, len(chans))
	for i, ch := range chans {
		p, err := l.LastPosition(context.Background(), ch)
		require.NoError(t, err)
		out[i] = p
	}
	return out
}

// coll is a created collection as the tests need it.
type coll struct {
	name     string
	id       int64
	chans    []string
	defaultP int64 // ID of _default
}

var (
	score   = &schemapb.FieldSchema{Name: "score", DataType: schemapb.DataType_Float}
	strPK   = &schemapb.FieldSchema{Name: "key", DataType: schemapb.DataType_VarChar, IsPrimaryKey: true, TypeParams: []*commonpb.KeyValuePair{kv("max_length", "64")}}
	autoPK  = &schemapb.FieldSchema{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true, AutoID: true}
	shortTi = &schemapb.FieldSchema{Name: "title", DataType: schemapb.DataType_VarChar, TypeParams: []*commonpb.KeyValuePair{kv("max_length", "8")}}
)

func vecField(dim string) *schemapb.FieldSchema {
	return &schemapb.FieldSchema{Name: "vec", DataType: schemapb.DataType_FloatVector, TypeParams: []*commonpb.KeyValuePair{kv("dim", dim)}}
}

func createColl(t testing.TB, c milvuspb.MilvusServiceClient, name string, shards int32, fields ...*schemapb.FieldSchema) coll {
	t.Helper()
	ctx := context.Background()
	b := schemaBytesTB(t, name, fields...)
	st, err := c.CreateCollection(ctx, &milvuspb.CreateCollectionRequest{CollectionName: name, Schema: b, ShardsNum: shards})
	require.NoError(t, err)
	require.Zero(t, st.GetCode(), st.GetReason())
	d, err := c.DescribeCollection(ctx, &milvuspb.DescribeCollectionRequest{CollectionName: name})
	require.NoError(t, err)
	parts, err := c.ShowPartitions(ctx, &milvuspb.ShowPartitionsRequest{CollectionName: name})
	require.NoError(t, err)
	return coll{name: name, id: d.GetCollectionID(), chans: d.GetVirtualChannelNames(), defaultP: parts.GetPartitionIDs()[0]}
}

func schemaBytesTB(t testing.TB, name string, fields ...*schemapb.FieldSchema) []byte {
	t.Helper()
	b, err := proto.Marshal(&schemapb.CollectionSchema{Name: name, Fields: fields})
	require.NoError(t, err)
	return b
}

func createPartition(t testing.TB, c milvuspb.MilvusServiceClient, collName, part string) int64 {
	t.Helper()
	ctx := context.Background()
	st, err := c.CreatePartition(ctx, &milvuspb.CreatePartitionRequest{CollectionName: collName, PartitionName: part})
	require.NoError(t, err)
	require.Zero(t, st.GetCode(), st.GetReason())
	parts, err := c.ShowPartitions(ctx, &milvuspb.ShowPartitionsRequest{CollectionName: collName, PartitionNames: []string{part}})
	require.NoError(t, err)
	return parts.GetPartitionIDs()[0]
}

// Column builders, as the SDKs send them: FieldName and Type, FieldId 0.

func int64Col(name string, v []int64) *schemapb.FieldData {
	return &schemapb.FieldData{FieldName: name, Type: schemapb.DataType_Int64, Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{
		Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: v}}}}}
}

func strCol(name string, v []string) *schemapb.FieldData {
	return &schemapb.FieldData{FieldName: name, Type: schemapb.DataType_VarChar, Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{
		Data: &schemapb.ScalarField_StringData{StringData: &schemapb.StringArray{Data: v}}}}}
}

func floatCol(name string, v []float32) *schemapb.FieldData {
	return &schemapb.FieldData{FieldName: name, Type: schemapb.DataType_Float, Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{
		Data: &schemapb.ScalarField_FloatData{FloatData: &schemapb.FloatArray{Data: v}}}}}
}

func vecCol(name string, dim int, flat []float32) *schemapb.FieldData {
	return &schemapb.FieldData{FieldName: name, Type: schemapb.DataType_FloatVector, Field: &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{
		Dim: int64(dim), Data: &schemapb.VectorField_FloatVector{FloatVector: &schemapb.FloatArray{Data: flat}}}}}
}

// rowsOf builds n rows with keys from keys: vec[i] = key+j/100, title "t<key>".
func vectors(keys []int64, dim int) []float32 {
	out := make([]float32, 0, len(keys)*dim)
	for _, k := range keys {
		for j := range dim {
			out = append(out, float32(k)+float32(j)/100)
		}
	}
	return out
}

func seq(from, n int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = from + int64(i)
	}
	return out
}

// int64s returns an Int64 column of a record by name.
func int64s(t testing.TB, rec arrow.RecordBatch, name string) []int64 {
	t.Helper()
	idx := rec.Schema().FieldIndices(name)
	require.Len(t, idx, 1, "column %q", name)
	return slices.Clone(rec.Column(idx[0]).(*array.Int64).Int64Values())
}

func strings_(t testing.TB, rec arrow.RecordBatch, name string) []string {
	t.Helper()
	idx := rec.Schema().FieldIndices(name)
	require.Len(t, idx, 1, "column %q", name)
	a := rec.Column(idx[0]).(*array.String)
	out := make([]string, a.Len())
	for i := range out {
		out[i] = a.Value(i)
	}
	return out
}

func uint64s(t testing.TB, rec arrow.RecordBatch, name string) []uint64 {
	t.Helper()
	idx := rec.Schema().FieldIndices(name)
	require.Len(t, idx, 1, "column %q", name)
	return slices.Clone(rec.Column(idx[0]).(*array.Uint64).Uint64Values())
}
