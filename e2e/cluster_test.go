package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/metastore"
	"github.com/weir-db/weir/internal/objstore"
	"github.com/weir-db/weir/internal/rpc"
	"github.com/weir-db/weir/internal/segment"
	"github.com/weir-db/weir/internal/session"
	"github.com/weir-db/weir/internal/testcluster"
)

// cluster is Weir as separate OS processes over a real etcd and a real nats-server.
type cluster struct {
	t       *testing.T
	etcd    *testcluster.Etcd
	nats    *testcluster.NATS
	storage string
	bin     string
	store   *metastore.Etcd
	catalog *meta.Catalog
	bucket  objstore.Bucket
	procs   map[string]*testcluster.Process
	https   map[string]string
}

func newCluster(t *testing.T) *cluster {
	c := &cluster{t: t, procs: map[string]*testcluster.Process{}, https: map[string]string{}}
	c.etcd = testcluster.StartEtcd(t)
	c.nats = testcluster.StartNATS(t, testcluster.NATSSyncAlways())
	dir := t.TempDir()
	c.storage = "file://" + dir
	c.bin = testcluster.BuildWeir(t)
	ctx := context.Background()
	var err error
	c.store, err = metastore.Dial(ctx, metastore.Config{Endpoints: c.etcd.Endpoints()})
	require.NoError(t, err)
	t.Cleanup(func() { c.store.Close() })
	c.catalog = meta.NewCatalog(c.store, "weir", meta.NewIDAllocator(c.store, "weir", 10), nil)
	c.bucket, err = objstore.Open(ctx, c.storage)
	require.NoError(t, err)
	return c
}

// start runs `weir run role` as process name and waits until it is healthy.
func (c *cluster) start(name, role string, node int64, extra ...string) *testcluster.Process {
	c.t.Helper()
	httpAddr := freeAddr(c.t)
	args := append([]string{"run", role, "--etcd", strings.Join(c.etcd.Endpoints(), ","), "--nats", c.nats.URL(),
		"--storage", c.storage, "--node-id", fmt.Sprint(node), "--http-listen", httpAddr, "--session-ttl", "2s"}, extra...)
	p := testcluster.Start(c.t, name, c.bin, args, nil)
	c.procs[name], c.https[name] = p, httpAddr
	require.Eventually(c.t, func() bool {
		resp, err := http.Get("http://" + httpAddr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 20*time.Millisecond, "%s not healthy", name)
	return p
}

func (c *cluster) coord() *testcluster.Process {
	return c.start("coord", "coord", 1, "--assign-interval", "200ms", "--reload-interval", "200ms")
}

// leasesOn waits until every channel is leased to one of the given live data nodes.
func (c *cluster) waitAssigned(chans []string, nodes ...int64) map[string]meta.Lease {
	c.t.Helper()
	var leases map[string]meta.Lease
	require.Eventually(c.t, func() bool {
		all, err := c.catalog.ListLeases(context.Background())
		if err != nil {
			return false
		}
		for _, ch := range chans {
			l, ok := all[ch]
			if !ok || !containsID(nodes, l.NodeID) {
				return false
			}
		}
		leases = all
		return true
	}, 30*time.Second, 50*time.Millisecond, "channels not assigned to %v", nodes)
	return leases
}

func containsID(ids []int64, id int64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// writer inserts and deletes through the proxy and remembers what was acknowledged.
type writer struct {
	c      milvuspb.MilvusServiceClient
	name   string
	mu     sync.Mutex
	next   int64
	acked  map[int64]bool
	failed int
}

func (w *writer) insert(t *testing.T, n int) error {
	w.mu.Lock()
	first := w.next
	w.next += int64(n)
	w.mu.Unlock()
	ids := make([]int64, n)
	vecs := make([]float32, 8*n)
	for i := range ids {
		ids[i] = first + int64(i)
		vecs[8*i] = float32(ids[i])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := w.c.Insert(ctx, &milvuspb.InsertRequest{CollectionName: w.name, NumRows: uint32(n), FieldsData: []*schemapb.FieldData{
		{FieldName: "id", Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: ids}}}}},
		{FieldName: "vec", Field: &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{Dim: 8, Data: &schemapb.VectorField_FloatVector{FloatVector: &schemapb.FloatArray{Data: vecs}}}}},
	}})
	if err == nil && resp.GetStatus().GetCode() != 0 {
		err = fmt.Errorf("insert: %s", resp.GetStatus().GetReason())
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.failed++ // not acknowledged: it may or may not be stored, it must not be lost if it was
		return err
	}
	for _, id := range ids {
		w.acked[id] = true
	}
	return nil
}

func (w *writer) flush(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	fl, err := w.c.Flush(ctx, &milvuspb.FlushRequest{CollectionNames: []string{w.name}})
	require.NoError(t, err)
	require.Zero(t, fl.GetStatus().GetCode(), fl.GetStatus().GetReason())
	ts := fl.GetCollFlushTs()[w.name]
	require.Eventually(t, func() bool {
		st, err := w.c.GetFlushState(ctx, &milvuspb.GetFlushStateRequest{CollectionName: w.name, FlushTs: ts})
		return err == nil && st.GetFlushed()
	}, 60*time.Second, 50*time.Millisecond, "flush never completed")
}

// requireExactlyOnce reads every insert file that committed segment meta names and checks that
// each acknowledged key is stored exactly once (keys of unacknowledged inserts may be stored
// once or not at all).
func (c *cluster) requireExactlyOnce(coll int64, w *writer) {
	c.t.Helper()
	ctx := context.Background()
	segs, err := c.catalog.ListSegments(ctx, coll)
	require.NoError(c.t, err)
	count := map[int64]int{}
	for _, s := range segs {
		files, err := c.catalog.ListFiles(ctx, coll, s.ID)
		require.NoError(c.t, err)
		for _, f := range files {
			if f.Kind != meta.InsertFile {
				continue
			}
			data, err := c.bucket.Get(ctx, f.Key)
			require.NoError(c.t, err, "file %s named by segment meta", f.Key)
			col, err := segment.ReadColumn(bytes.NewReader(data), int64(len(data)), "id")
			require.NoError(c.t, err)
			for _, v := range col.(*array.Int64).Int64Values() {
				count[v]++
			}
			col.Release()
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	lost, dup := 0, 0
	for id := range w.acked {
		if count[id] == 0 {
			lost++
		}
	}
	for _, n := range count {
		if n > 1 {
			dup++
		}
	}
	c.t.Logf("acknowledged %d keys (%d requests failed), stored %d distinct, lost %d, duplicated %d", len(w.acked), w.failed, len(count), lost, dup)
	require.Zero(c.t, lost, "acknowledged keys lost")
	require.Zero(c.t, dup, "keys stored more than once")
}

func (c *cluster) noPanics() {
	c.t.Helper()
	for name, p := range c.procs {
		require.NotContains(c.t, p.Log(), "panic:", "%s panicked", name)
	}
}

func createVecCollection(t *testing.T, c milvuspb.MilvusServiceClient, name string, shards int32) {
	s := &schemapb.CollectionSchema{Name: name, Fields: []*schemapb.FieldSchema{
		{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
		{Name: "vec", DataType: schemapb.DataType_FloatVector, TypeParams: []*commonpb.KeyValuePair{{Key: "dim", Value: "8"}}},
	}}
	b, err := protoMarshal(s)
	require.NoError(t, err)
	st, err := c.CreateCollection(ctxT(t), &milvuspb.CreateCollectionRequest{CollectionName: name, Schema: b, ShardsNum: shards})
	require.NoError(t, err)
	require.Zero(t, st.GetCode(), st.GetReason())
}

// TestMEPCoordinatorOffline is the MEP's integration test, as its test plan writes it, with
// every role a separate process: insert data with no data node online; start data nodes; make
// the coordinator go offline after channel assignment; assert no data node panics and all data
// is intact (flush completes, every acknowledged key stored once); bring the coordinator back
// and check GetRecoveryInfo returns the latest target.
func TestMEPCoordinatorOffline(t *testing.T) {
	c := newCluster(t)
	proxyAddr := freeAddr(t)
	c.start("proxy", "proxy", 1, "--listen", proxyAddr)
	cl := dial(t, proxyAddr)
	createVecCollection(t, cl, "mep", 2)
	coll, err := c.catalog.GetCollectionByName(context.Background(), meta.DefaultDatabase, "mep")
	require.NoError(t, err)
	w := &writer{c: cl, name: "mep", acked: map[int64]bool{}}

	// 1. Insert data with no data node online: acknowledged into the WAL.
	for i := 0; i < 20; i++ {
		require.NoError(t, w.insert(t, 100))
	}
	// 2. Start data nodes (and the coordinator, which assigns their channels).
	co := c.coord()
	c.start("dn1", "datanode", 1)
	c.start("dn2", "datanode", 2)
	c.waitAssigned(coll.VChannels, 1, 2)
	// 3. The coordinator goes offline after channel assignment.
	co.Kill()
	// 4. Writes, syncs and flushes go on; no data node panics; all data is intact. A data
	// node killed and restarted while the coordinator is down resumes its channels from the
	// leases in etcd.
	for i := 0; i < 10; i++ {
		require.NoError(t, w.insert(t, 100))
	}
	c.procs["dn1"].Kill()
	delete(c.procs, "dn1")
	for i := 0; i < 10; i++ {
		require.NoError(t, w.insert(t, 100))
	}
	c.start("dn1-restarted", "datanode", 1)
	w.flush(t)
	c.requireExactlyOnce(coll.ID, w)
	c.noPanics()
	stats, err := cl.GetCollectionStatistics(ctxT(t), &milvuspb.GetCollectionStatisticsRequest{CollectionName: "mep"})
	require.NoError(t, err)
	require.Equal(t, "4000", stats.GetStats()[0].GetValue(), "statistics come from the metastore, coordinator down")

	// 5. Bring the coordinator back: GetRecoveryInfo returns the latest target.
	c.start("coord2", "coord", 1, "--assign-interval", "200ms", "--reload-interval", "200ms")
	infos, _, err := session.List(context.Background(), c.store, "weir", "coord")
	require.NoError(t, err)
	require.Len(t, infos, 1)
	cc, err := rpc.Dial(context.Background(), infos[0].GRPCAddr)
	require.NoError(t, err)
	defer cc.Close()
	var resp *rpc.RecoveryInfoResponse
	require.Eventually(t, func() bool {
		resp, err = rpc.NewCoordClient(cc).GetRecoveryInfo(context.Background(), &rpc.RecoveryInfoRequest{CollectionID: coll.ID})
		return err == nil
	}, 10*time.Second, 50*time.Millisecond)
	require.Len(t, resp.Channels, 2)
	var rows int64
	for _, ch := range resp.Channels {
		cp, err := c.catalog.ReadCheckpoint(context.Background(), ch.Channel)
		require.NoError(t, err)
		require.Equal(t, cp.Position, ch.Checkpoint, "the target carries the latest checkpoint")
		require.Empty(t, ch.Growing, "after the flush every segment is flushed")
		for _, s := range ch.Flushed {
			rows += s.Rows
			require.NotEmpty(t, s.Files)
		}
	}
	require.Equal(t, int64(4000), rows)
	c.noPanics()
}
