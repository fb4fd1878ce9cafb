package querynode_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/weir-db/weir/internal/datanode"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/metastore"
	"github.com/weir-db/weir/internal/objstore"
	"github.com/weir-db/weir/internal/proxy"
	"github.com/weir-db/weir/internal/querynode"
	"github.com/weir-db/weir/internal/wal"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// world is a query node's surroundings, all real and in-process: embedded etcd and NATS, a
// local bucket, a data node owning the collection's channels, and a proxy to write through.
// There is no coordinator: the test writes the load record and shard assignments itself (R6).
type world struct {
	t       *testing.T
	ctx     context.Context
	kv      metastore.Store
	catalog *meta.Catalog
	ids     *meta.IDAllocator
	nc      *wal.Embedded
	ncCfg   wal.EmbeddedConfig
	bucket  objstore.Bucket
	proxy   *proxy.Server
	dn      *datanode.Node
	coll    *meta.Collection

	mu   sync.Mutex
	live map[int64]int64 // key → age of its live row
}

func quiet() *slog.Logger {
	if os.Getenv("WEIR_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newWorld(t *testing.T, shards int, tune ...func(*datanode.Config)) *world {
	t.Helper()
	return newIndexedWorld(t, shards, []*commonpb.KeyValuePair{{Key: "index_type", Value: "FLAT"}, {Key: "metric_type", Value: "L2"}}, tune...)
}

// newIndexedWorld is newWorld with the vector field's index of params.
func newIndexedWorld(t *testing.T, shards int, index []*commonpb.KeyValuePair, tune ...func(*datanode.Config)) *world {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	w := &world{t: t, ctx: ctx, live: map[int64]int64{}}
	etcd, err := metastore.StartEmbedded(ctx, metastore.EmbeddedConfig{Dir: t.TempDir(), Logger: quiet()})
	require.NoError(t, err)
	t.Cleanup(func() { etcd.Close() })
	store, err := metastore.Dial(ctx, metastore.Config{Endpoints: etcd.Endpoints()})
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	w.kv = store
	w.ncCfg = wal.EmbeddedConfig{Dir: t.TempDir(), Logger: quiet()}
	w.nc, err = wal.StartEmbedded(w.ncCfg)
	require.NoError(t, err)
	w.ncCfg.Port = w.nc.Port()
	t.Cleanup(func() { w.nc.Shutdown() })
	w.bucket, err = objstore.NewLocal(t.TempDir())
	require.NoError(t, err)
	w.ids = meta.NewIDAllocator(w.kv, "weir", 100)
	w.catalog = meta.NewCatalog(w.kv, "weir", w.ids, quiet())

	plog := w.openLog()
	w.proxy = proxy.New(proxy.Config{}, proxy.Deps{Catalog: w.catalog, Channels: plog, IDs: w.ids}, quiet())
	sch := &schemapb.CollectionSchema{Name: "books", Fields: []*schemapb.FieldSchema{
		{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
		{Name: "vec", DataType: schemapb.DataType_FloatVector, TypeParams: []*commonpb.KeyValuePair{{Key: "dim", Value: "4"}}},
		{Name: "age", DataType: schemapb.DataType_Int64},
	}}
	b, err := proto.Marshal(sch)
	require.NoError(t, err)
	st, err := w.proxy.CreateCollection(ctx, &milvuspb.CreateCollectionRequest{CollectionName: "books", Schema: b, ShardsNum: int32(shards)})
	require.NoError(t, err)
	require.Zero(t, st.GetCode(), st.GetReason())
	w.coll, err = w.catalog.GetCollectionByName(ctx, meta.DefaultDatabase, "books")
	require.NoError(t, err)

	cfg := datanode.Defaults()
	cfg.NodeID, cfg.CheckInterval, cfg.RetryMax = 1, 20*time.Millisecond, 50*time.Millisecond
	for _, f := range tune {
		f(&cfg)
	}
	w.dn, err = datanode.New(cfg, w.catalog, w.ids, w.openLog(), w.bucket, prometheus.NewRegistry(), quiet())
	require.NoError(t, err)
	t.Cleanup(w.dn.Close)
	for _, ch := range w.coll.VChannels {
		_, err := w.catalog.AssignChannel(ctx, ch, w.coll.ID, 1)
		require.NoError(t, err)
		require.NoError(t, w.dn.Watch(ctx, ch))
	}

	st, err = w.proxy.CreateIndex(ctx, &milvuspb.CreateIndexRequest{CollectionName: "books", FieldName: "vec", ExtraParams: index})
	require.NoError(t, err)
	require.Zero(t, st.GetCode(), st.GetReason())
	ls, err := w.catalog.ReadLoad(ctx, w.coll.ID)
	require.NoError(t, err)
	require.NoError(t, w.catalog.SaveLoad(ctx, ls, &meta.Load{Replicas: 1}))
	return w
}

// restartNATS stops the NATS server, runs meanwhile with its store directory, and starts it
// again on the same store and port (clients reconnect).
func (w *world) restartNATS(meanwhile func(storeDir string)) {
	w.t.Helper()
	w.nc.Shutdown()
	meanwhile(w.ncCfg.Dir)
	nc, err := wal.StartEmbedded(w.ncCfg)
	require.NoError(w.t, err)
	w.nc = nc
}

func (w *world) openLog() *wal.Log {
	w.t.Helper()
	l, err := wal.Open(w.ctx, w.nc.ClientURL(), wal.Config{Logger: quiet()})
	require.NoError(w.t, err)
	w.t.Cleanup(func() { l.Close() })
	return l
}

// assign gives every channel's replica 0 to query node node.
func (w *world) assign(node int64) {
	w.t.Helper()
	l, err := w.catalog.GetLoad(w.ctx, w.coll.ID)
	require.NoError(w.t, err)
	current, err := w.catalog.ListShardAssignments(w.ctx, w.coll.ID)
	require.NoError(w.t, err)
	prev := map[string]int64{}
	for _, a := range current {
		prev[a.Channel] = a.ModRevision
	}
	for _, ch := range w.coll.VChannels {
		_, err := w.catalog.AssignShard(w.ctx, meta.ShardAssignment{CollectionID: w.coll.ID, Channel: ch, NodeID: node}, l.ModRevision, prev[ch])
		require.NoError(w.t, err)
	}
}

// newNode returns query node id with tune applied to its configuration, stopped when the test
// ends; it runs no loop: the test calls Check.
func (w *world) newNode(id int64, tune func(*querynode.Config)) *querynode.Node {
	w.t.Helper()
	cfg := querynode.Defaults()
	cfg.NodeID = id
	if tune != nil {
		tune(&cfg)
	}
	n := querynode.New(cfg, querynode.Deps{Catalog: w.catalog, Store: w.kv, Log: w.openLog(), Bucket: w.bucket}, prometheus.NewRegistry(), quiet())
	w.t.Cleanup(n.Stop)
	return n
}

// queryNode starts query node id (not running its loop: the test calls Check) and waits until
// it serves every channel assigned to it.
func (w *world) queryNode(id int64) *querynode.Node {
	w.t.Helper()
	n := w.newNode(id, nil)
	require.Eventually(w.t, func() bool {
		require.NoError(w.t, n.Check(w.ctx))
		return len(n.Shards()) == len(w.coll.VChannels)
	}, 20*time.Second, 10*time.Millisecond, "query node %d never served its shards", id)
	return n
}

func int64s(name string, v []int64) *schemapb.FieldData {
	return &schemapb.FieldData{FieldName: name, Type: schemapb.DataType_Int64,
		Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: v}}}}}
}

// vecOf is row k's vector: close to the vectors of nearby keys, so searches have an answer.
func vecOf(k int64) []float32 { return []float32{float32(k), float32(k) / 2, 1, 0} }

func (w *world) columns(ids, ages []int64) []*schemapb.FieldData {
	vecs := make([]float32, 0, 4*len(ids))
	for _, k := range ids {
		vecs = append(vecs, vecOf(k)...)
	}
	return []*schemapb.FieldData{int64s("id", ids), int64s("age", ages),
		{FieldName: "vec", Type: schemapb.DataType_FloatVector, Field: &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{Dim: 4,
			Data: &schemapb.VectorField_FloatVector{FloatVector: &schemapb.FloatArray{Data: vecs}}}}}}
}

// insert writes rows with keys ids (age = key) and records them live.
func (w *world) insert(ids ...int64) uint64 {
	w.t.Helper()
	return w.insertInto("", ids...)
}

// insertInto is insert into partition part ("": the default).
func (w *world) insertInto(part string, ids ...int64) uint64 {
	w.t.Helper()
	res, err := w.proxy.Insert(w.ctx, &milvuspb.InsertRequest{CollectionName: "books", PartitionName: part, NumRows: uint32(len(ids)), FieldsData: w.columns(ids, ids)})
	require.NoError(w.t, err)
	require.Zero(w.t, res.GetStatus().GetCode(), res.GetStatus().GetReason())
	w.mu.Lock()
	for _, k := range ids {
		w.live[k] = k
	}
	w.mu.Unlock()
	return res.GetTimestamp()
}

// upsert replaces row k with one of age age.
func (w *world) upsert(k, age int64) uint64 {
	w.t.Helper()
	res, err := w.proxy.Upsert(w.ctx, &milvuspb.UpsertRequest{CollectionName: "books", NumRows: 1, FieldsData: w.columns([]int64{k}, []int64{age})})
	require.NoError(w.t, err)
	require.Zero(w.t, res.GetStatus().GetCode(), res.GetStatus().GetReason())
	w.mu.Lock()
	w.live[k] = age
	w.mu.Unlock()
	return res.GetTimestamp()
}

func (w *world) delete(ids ...int64) uint64 {
	w.t.Helper()
	return w.deleteIn("", ids...)
}

// deleteIn deletes keys ids in partition part ("": every partition). The world's record of
// live rows is by key only, so tests that delete in one partition keep their own account.
func (w *world) deleteIn(part string, ids ...int64) uint64 {
	w.t.Helper()
	expr := "id in ["
	for i, k := range ids {
		if i > 0 {
			expr += ","
		}
		expr += fmt.Sprint(k)
	}
	res, err := w.proxy.Delete(w.ctx, &milvuspb.DeleteRequest{CollectionName: "books", PartitionName: part, Expr: expr + "]"})
	require.NoError(w.t, err)
	require.Zero(w.t, res.GetStatus().GetCode(), res.GetStatus().GetReason())
	w.mu.Lock()
	for _, k := range ids {
		delete(w.live, k)
	}
	w.mu.Unlock()
	return res.GetTimestamp()
}

// flush flushes the collection and waits until its data node committed everything.
func (w *world) flush() {
	w.t.Helper()
	res, err := w.proxy.Flush(w.ctx, &milvuspb.FlushRequest{CollectionNames: []string{"books"}})
	require.NoError(w.t, err)
	require.Zero(w.t, res.GetStatus().GetCode(), res.GetStatus().GetReason())
	ts := res.GetCollFlushTs()["books"]
	require.Eventually(w.t, func() bool {
		st, err := w.proxy.GetFlushState(w.ctx, &milvuspb.GetFlushStateRequest{CollectionName: "books", FlushTs: ts})
		require.NoError(w.t, err)
		return st.GetFlushed()
	}, 20*time.Second, 5*time.Millisecond)
}

func strong() querynode.Consistency {
	return querynode.Consistency{Level: commonpb.ConsistencyLevel_Strong}
}

// count sums count(*) over the collection's shards on node n.
func (w *world) count(n *querynode.Node, c querynode.Consistency, filter string) int64 {
	w.t.Helper()
	var total int64
	for _, ch := range w.coll.VChannels {
		r, err := n.Query(w.ctx, &querynode.QueryRequest{ShardRequest: querynode.ShardRequest{CollectionID: w.coll.ID, Channel: ch,
			Filter: filter, Consistency: c}, Limit: -1, Count: true})
		require.NoError(w.t, err)
		total += r.Count
	}
	return total
}

// rows returns every row node n returns to a query (key → age), failing on a key returned
// twice.
func (w *world) rows(n *querynode.Node, c querynode.Consistency) map[int64]int64 {
	w.t.Helper()
	out := map[int64]int64{}
	for _, ch := range w.coll.VChannels {
		r, err := n.Query(w.ctx, &querynode.QueryRequest{ShardRequest: querynode.ShardRequest{CollectionID: w.coll.ID, Channel: ch,
			Filter: "id >= 0", Output: []string{"age"}, Consistency: c}, Limit: -1})
		require.NoError(w.t, err)
		ages := r.Fields.Column(0).(interface{ Value(int) int64 })
		for i, k := range r.Keys {
			_, twice := out[k.IntKey]
			require.False(w.t, twice, "key %d returned twice", k.IntKey)
			out[k.IntKey] = ages.Value(i)
		}
		r.Fields.Release()
	}
	return out
}

func (w *world) want() map[int64]int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[int64]int64, len(w.live))
	for k, v := range w.live {
		out[k] = v
	}
	return out
}

// loadFailure runs node n's checks until the one shard of the collection reports a failed load,
// and returns the failure.
func (w *world) loadFailure(n *querynode.Node) string {
	w.t.Helper()
	var state string
	require.Eventually(w.t, func() bool {
		require.NoError(w.t, n.Check(w.ctx))
		states, err := w.catalog.ListShardStates(w.ctx, w.coll.ID)
		require.NoError(w.t, err)
		if len(states) == 1 {
			state = states[0].Error
		}
		return state != ""
	}, 20*time.Second, 10*time.Millisecond, "no load failure reported")
	return state
}
