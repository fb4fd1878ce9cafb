// Package weirtest runs Weir as separate OS processes — `weir run` roles over real etcd and
// nats-server binaries — and drives a workload that records every acknowledged write, for tests
// that check nothing acknowledged is lost or duplicated after a fault.
package weirtest

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"net"
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
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/metastore"
	"github.com/weir-db/weir/internal/objstore"
	"github.com/weir-db/weir/internal/s3fault"
	"github.com/weir-db/weir/internal/segment"
	"github.com/weir-db/weir/internal/testcluster"
)

// Cluster is Weir as separate OS processes over real etcd, nats-server and object storage.
type Cluster struct {
	T *testing.T
	// The servers: one etcd and one nats-server (Etcd, NATS), or, with Servers.Replicated, a
	// three-member etcd cluster and a three-node JetStream cluster (EtcdCluster, NATSCluster).
	Etcd        *testcluster.Etcd
	NATS        *testcluster.NATS
	EtcdCluster *testcluster.EtcdCluster
	NATSCluster *testcluster.NATSCluster
	// S3 and S3Fault are set with Servers.S3: versitygw, and the fault-injecting proxy in
	// front of it that Storage names.
	S3      *testcluster.S3
	S3Fault *s3fault.Proxy
	// Storage is the URL every Weir process, Count and Verify use.
	Storage string
	Bin     string
	Store   *metastore.Etcd
	Catalog *meta.Catalog
	Bucket  objstore.Bucket
	// Procs holds the Weir process running under each name now; a scenario may delete or
	// replace entries. Every process ever started stays checked (Panics, UnexpectedExits).
	Procs map[string]*testcluster.Process
	HTTP  map[string]string
	specs map[string]spec
	// started is every Weir process the cluster started, in order.
	started    []*started
	etcdURLs   []string
	natsURL    string
	sessionTTL time.Duration
}

// spec is how a process was started, so that it can be started again the same way.
type spec struct {
	role  string
	node  int64
	env   []string
	extra []string
}

// Servers says which servers a cluster runs on; the zero Servers is one etcd, one
// nats-server that fsyncs every message, and a local folder.
type Servers struct {
	// NATS are the nats-server options; nil means testcluster.NATSSyncAlways (what Weir's
	// durability promise assumes), testcluster.NATSStock one with nats-server's own defaults.
	NATS []testcluster.NATSOption
	// Replicated runs a three-member etcd cluster and a three-node JetStream cluster, and
	// gives every Weir process all their endpoints.
	Replicated bool
	// S3 stores objects in versitygw, reached through an s3fault proxy (S3Fault).
	S3 bool
	// SessionTTL is every role's --session-ttl; 0 means 2 s.
	SessionTTL time.Duration
}

// NewCluster starts etcd and a nats-server that fsyncs every message (what Weir's durability
// promise assumes) and opens the cluster's metastore and bucket; Weir processes are started
// with Start.
func NewCluster(t *testing.T) *Cluster {
	return NewClusterOn(t, Servers{})
}

// NewClusterNATS is NewCluster with the nats-server started with opts (testcluster.NATSStock
// for one with nats-server's own defaults).
func NewClusterNATS(t *testing.T, opts ...testcluster.NATSOption) *Cluster {
	return NewClusterOn(t, Servers{NATS: opts})
}

// NewClusterOn starts the servers s names and opens the cluster's metastore and bucket; Weir
// processes are started with Start.
func NewClusterOn(t *testing.T, s Servers) *Cluster {
	c := &Cluster{T: t, Procs: map[string]*testcluster.Process{}, HTTP: map[string]string{}, specs: map[string]spec{},
		sessionTTL: cmp.Or(s.SessionTTL, 2*time.Second)}
	natsOpts := s.NATS
	if natsOpts == nil {
		natsOpts = []testcluster.NATSOption{testcluster.NATSSyncAlways()}
	}
	if s.Replicated {
		c.EtcdCluster = testcluster.StartEtcdCluster(t, 3)
		c.NATSCluster = testcluster.StartNATSCluster(t, 3, natsOpts...)
		c.etcdURLs, c.natsURL = c.EtcdCluster.Endpoints(), c.NATSCluster.URL()
	} else {
		c.Etcd = testcluster.StartEtcd(t)
		c.NATS = testcluster.StartNATS(t, natsOpts...)
		c.etcdURLs, c.natsURL = c.Etcd.Endpoints(), c.NATS.URL()
	}
	if s.S3 {
		c.S3 = testcluster.StartS3(t)
		c.S3Fault = s3fault.Start(t, c.S3.Endpoint())
		c.Storage = c.S3.StorageURLVia(c.S3Fault.Endpoint(), "")
	} else {
		c.Storage = "file://" + t.TempDir()
	}
	c.Bin = testcluster.BuildWeir(t)
	ctx := context.Background()
	var err error
	c.Store, err = metastore.Dial(ctx, metastore.Config{Endpoints: c.etcdURLs})
	require.NoError(t, err)
	t.Cleanup(func() { c.Store.Close() })
	c.Catalog = meta.NewCatalog(c.Store, "weir", meta.NewIDAllocator(c.Store, "weir", 10), nil)
	c.Bucket, err = objstore.Open(ctx, c.Storage)
	require.NoError(t, err)
	return c
}

// EtcdEndpoints are the client URLs of the cluster's etcd servers.
func (c *Cluster) EtcdEndpoints() []string { return c.etcdURLs }

// NATSURL is the URL (comma-separated URLs, for a JetStream cluster) of its nats-servers.
func (c *Cluster) NATSURL() string { return c.natsURL }

// Start runs `weir run role` as process name and waits until it is healthy.
func (c *Cluster) Start(name, role string, node int64, extra ...string) *testcluster.Process {
	c.T.Helper()
	return c.StartEnv(name, role, node, nil, extra...)
}

// StartEnv is Start with extra environment variables for the process (WEIR_FAILPOINTS, say).
func (c *Cluster) StartEnv(name, role string, node int64, env []string, extra ...string) *testcluster.Process {
	c.T.Helper()
	httpAddr := FreeAddr(c.T)
	args := append([]string{"run", role, "--etcd", strings.Join(c.etcdURLs, ","), "--nats", c.natsURL,
		"--storage", c.Storage, "--node-id", fmt.Sprint(node), "--http-listen", httpAddr, "--session-ttl", c.sessionTTL.String()}, extra...)
	p := testcluster.Start(c.T, name, c.Bin, args, env)
	c.track(name, p)
	c.Procs[name], c.HTTP[name], c.specs[name] = p, httpAddr, spec{role, node, env, extra}
	require.Eventually(c.T, func() bool {
		resp, err := http.Get("http://" + httpAddr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 20*time.Millisecond, "%s not healthy", name)
	return p
}

// Restart starts process name again as it was started (a supervisor's job), once it has
// exited; the new process keeps the name.
func (c *Cluster) Restart(name string) *testcluster.Process {
	c.T.Helper()
	sp, ok := c.specs[name]
	require.True(c.T, ok, "no process %s", name)
	_, err := c.Procs[name].Wait(30 * time.Second)
	require.NoError(c.T, err, "%s is still running", name)
	return c.StartEnv(name, sp.role, sp.node, sp.env, sp.extra...)
}

func (c *Cluster) Coord() *testcluster.Process {
	return c.Start("coord", "coord", 1, "--assign-interval", "200ms", "--reload-interval", "200ms")
}

// WaitAssigned waits until every channel is leased to one of the given live data nodes.
func (c *Cluster) WaitAssigned(chans []string, nodes ...int64) map[string]meta.Lease {
	c.T.Helper()
	var leases map[string]meta.Lease
	require.Eventually(c.T, func() bool {
		all, err := c.Catalog.ListLeases(context.Background())
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

// Writer inserts and deletes through the proxy and remembers what was acknowledged.
type Writer struct {
	C    milvuspb.MilvusServiceClient
	Name string
	// Dim is the dimension of the collection's vectors (CreateVecCollectionDim); 0 means 8.
	Dim     int
	mu      sync.Mutex
	next    int64
	acked   map[int64]bool
	deleted map[int64]bool // keys whose delete was acknowledged
	// tried holds every key a delete was sent for, acknowledged or not. A key is never sent
	// twice: a failed delete may still have been stored, and sending it again would store a
	// second tombstone that Count would report as duplicated.
	tried  map[int64]bool
	failed int
}

// Delete deletes up to n acknowledged keys no delete was sent for yet, by primary key, and
// records the acknowledged deletes.
func (w *Writer) Delete(t *testing.T, n int) error {
	w.mu.Lock()
	var keys []string
	var ids []int64
	for id := range w.acked {
		if len(ids) == n {
			break
		}
		if !w.tried[id] {
			w.tried[id] = true
			ids = append(ids, id)
			keys = append(keys, fmt.Sprint(id))
		}
	}
	w.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := w.C.Delete(ctx, &milvuspb.DeleteRequest{CollectionName: w.Name, Expr: "id in [" + strings.Join(keys, ",") + "]"})
	if err == nil && resp.GetStatus().GetCode() != 0 {
		err = fmt.Errorf("delete: %s", resp.GetStatus().GetReason())
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.failed++
		return err
	}
	for _, id := range ids {
		w.deleted[id] = true
	}
	return nil
}

// Deleted is the number of keys whose delete was acknowledged.
func (w *Writer) Deleted() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.deleted)
}

func (w *Writer) Insert(t *testing.T, n int) error {
	w.mu.Lock()
	first := w.next
	w.next += int64(n)
	w.mu.Unlock()
	dim := cmp.Or(w.Dim, 8)
	ids := make([]int64, n)
	vecs := make([]float32, dim*n)
	for i := range ids {
		ids[i] = first + int64(i)
		vecs[dim*i] = float32(ids[i])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := w.C.Insert(ctx, &milvuspb.InsertRequest{CollectionName: w.Name, NumRows: uint32(n), FieldsData: []*schemapb.FieldData{
		{FieldName: "id", Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: ids}}}}},
		{FieldName: "vec", Field: &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{Dim: int64(dim), Data: &schemapb.VectorField_FloatVector{FloatVector: &schemapb.FloatArray{Data: vecs}}}}},
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

func (w *Writer) Flush(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	fl, err := w.C.Flush(ctx, &milvuspb.FlushRequest{CollectionNames: []string{w.Name}})
	require.NoError(t, err)
	require.Zero(t, fl.GetStatus().GetCode(), fl.GetStatus().GetReason())
	ts := fl.GetCollFlushTs()[w.Name]
	require.Eventually(t, func() bool {
		st, err := w.C.GetFlushState(ctx, &milvuspb.GetFlushStateRequest{CollectionName: w.Name, FlushTs: ts})
		return err == nil && st.GetFlushed()
	}, 60*time.Second, 50*time.Millisecond, "flush never completed")
}

// RequireExactlyOnce reads every insert file that committed segment meta names and checks that
// each acknowledged key is stored exactly once (keys of unacknowledged inserts may be stored
// once or not at all).
func (c *Cluster) RequireExactlyOnce(coll int64, w *Writer) {
	c.T.Helper()
	lost, dup := c.Count(coll, w)
	require.Zero(c.T, lost, "acknowledged keys lost")
	require.Zero(c.T, dup, "keys stored more than once")
}

// Count reads every insert file that committed segment meta names and returns how many
// acknowledged keys are missing and how many keys are stored more than once.
func (c *Cluster) Count(coll int64, w *Writer) (lost, dup int) {
	c.T.Helper()
	ctx := context.Background()
	segs, err := c.Catalog.ListSegments(ctx, coll)
	require.NoError(c.T, err)
	count, dels := map[int64]int{}, map[int64]int{}
	for _, s := range segs {
		files, err := c.Catalog.ListFiles(ctx, coll, s.ID)
		require.NoError(c.T, err)
		for _, f := range files {
			if f.Kind == meta.DeleteFile {
				data, err := c.Bucket.Get(ctx, f.Key)
				require.NoError(c.T, err, "file %s named by segment meta", f.Key)
				d, err := segment.ReadDeletes(bytes.NewReader(data), int64(len(data)))
				require.NoError(c.T, err)
				for _, v := range d.IntPKs {
					dels[v]++
				}
				continue
			}
			if f.Kind != meta.InsertFile {
				continue
			}
			data, err := c.Bucket.Get(ctx, f.Key)
			require.NoError(c.T, err, "file %s named by segment meta", f.Key)
			col, err := segment.ReadColumn(bytes.NewReader(data), int64(len(data)), "id")
			require.NoError(c.T, err)
			for _, v := range col.(*array.Int64).Int64Values() {
				count[v]++
			}
			col.Release()
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
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
	// Every acknowledged delete is stored once in an L0 delete file (a delete is a
	// tombstone: the inserted row stays in its segment until compaction).
	for id := range w.deleted {
		if dels[id] == 0 {
			lost++
		}
	}
	for _, n := range dels {
		if n > 1 {
			dup++
		}
	}
	c.T.Logf("acknowledged %d keys and %d deletes (%d requests failed), stored %d distinct keys and %d deletes, lost %d, duplicated %d",
		len(w.acked), len(w.deleted), w.failed, len(count), len(dels), lost, dup)
	return lost, dup
}

// CreateVecCollection creates a collection of an int64 key "id" and 8-dim vectors "vec".
func CreateVecCollection(t *testing.T, c milvuspb.MilvusServiceClient, name string, shards int32) {
	CreateVecCollectionDim(t, c, name, shards, 8)
}

// CreateVecCollectionDim is CreateVecCollection with dim-dimensional vectors.
func CreateVecCollectionDim(t *testing.T, c milvuspb.MilvusServiceClient, name string, shards int32, dim int) {
	s := &schemapb.CollectionSchema{Name: name, Fields: []*schemapb.FieldSchema{
		{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
		{Name: "vec", DataType: schemapb.DataType_FloatVector, TypeParams: []*commonpb.KeyValuePair{{Key: "dim", Value: fmt.Sprint(dim)}}},
	}}
	b, err := proto.Marshal(s)
	require.NoError(t, err)
	st, err := c.CreateCollection(context.Background(), &milvuspb.CreateCollectionRequest{CollectionName: name, Schema: b, ShardsNum: shards})
	require.NoError(t, err)
	require.Zero(t, st.GetCode(), st.GetReason())
}

// loadBound bounds a workload whose stop is never closed (a test that failed before).
const loadBound = 10 * time.Minute

// Load inserts batches of 50 rows, and deletes 5 acknowledged keys after every tenth, until
// stop is closed (or loadBound passes), recording what was acknowledged; errors (for example
// while a channel moves or a server restarts) are counted, never retried blindly.
func Load(t *testing.T, w *Writer, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		end := time.Now().Add(loadBound)
		for i := 0; time.Now().Before(end); i++ {
			select {
			case <-stop:
				return
			default:
			}
			_ = w.Insert(t, 50)
			if i%10 == 9 {
				_ = w.Delete(t, 5)
			}
			time.Sleep(2 * time.Millisecond) // pacing: a steady stream, not a benchmark
		}
	}()
	return &wg
}

// Setup is how StartClusterWith builds a cluster; the zero Setup is StartCluster's.
type Setup struct {
	Servers
	// Protocol is the coordinator's and data nodes' write protocol: "current" (when empty)
	// or "legacy" (the previous release's).
	Protocol string
	// Shards is the collection's channel count, 4 when 0; Dim its vectors' dimension, 8 when 0.
	Shards int32
	Dim    int
	// DataNode and Proxy are flags added to the data nodes' and the proxy's; they come after
	// the defaults (--sync-stale-age 1s), which they override.
	DataNode, Proxy []string
}

func StartCluster(t *testing.T, name string) (*Cluster, *Writer, *meta.Collection) {
	return StartClusterWith(t, name, Setup{})
}

// StartClusterProtocol is StartCluster with the coordinator and data nodes speaking protocol
// ("current", or "legacy" for the previous release).
func StartClusterProtocol(t *testing.T, name, protocol string) (*Cluster, *Writer, *meta.Collection) {
	return StartClusterWith(t, name, Setup{Protocol: protocol})
}

// StartClusterWith starts a proxy, a collection name, a coordinator and two data nodes on the
// servers s names, and returns once the channels are balanced over the two nodes, with a
// writer into the collection.
func StartClusterWith(t *testing.T, name string, s Setup) (*Cluster, *Writer, *meta.Collection) {
	protocol := cmp.Or(s.Protocol, "current")
	shards := cmp.Or(s.Shards, 4)
	dim := cmp.Or(s.Dim, 8)
	c := NewClusterOn(t, s.Servers)
	proxyAddr := FreeAddr(t)
	c.Start("proxy", "proxy", 1, append([]string{"--listen", proxyAddr}, s.Proxy...)...)
	cl := Dial(t, proxyAddr)
	CreateVecCollectionDim(t, cl, name, shards, dim)
	coll, err := c.Catalog.GetCollectionByName(context.Background(), meta.DefaultDatabase, name)
	require.NoError(t, err)
	c.Start("coord", "coord", 1, "--assign-interval", "200ms", "--reload-interval", "200ms", "--protocol", protocol)
	dn := append([]string{"--sync-stale-age", "1s", "--protocol", protocol}, s.DataNode...)
	c.Start("dn1", "datanode", 1, dn...)
	c.Start("dn2", "datanode", 2, dn...)
	// The coordinator may assign every channel before the second node registers; it then
	// rebalances: wait for every channel leased, half to each node.
	require.Eventually(t, func() bool {
		leases, err := c.Catalog.ListLeases(context.Background())
		if err != nil {
			return false
		}
		owners := map[int64]int{}
		for _, ch := range coll.VChannels {
			if l, ok := leases[ch]; ok {
				owners[l.NodeID]++
			}
		}
		return owners[1]+owners[2] == int(shards) && max(owners[1]-owners[2], owners[2]-owners[1]) <= 1
	}, 30*time.Second, 50*time.Millisecond, "%d channels, balanced over two nodes", shards)
	w := NewWriter(cl, name)
	w.Dim = dim
	return c, w, coll
}

// FreeAddr returns a free loopback address.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// Dial connects a raw Milvus API client to addr.
func Dial(t testing.TB, addr string) milvuspb.MilvusServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return milvuspb.NewMilvusServiceClient(conn)
}

// NewWriter returns a writer into collection name through c.
func NewWriter(c milvuspb.MilvusServiceClient, name string) *Writer {
	return &Writer{C: c, Name: name, acked: map[int64]bool{}, deleted: map[int64]bool{}, tried: map[int64]bool{}}
}

// Acked is the number of acknowledged keys.
func (w *Writer) Acked() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// Failed is the number of requests that were not acknowledged.
func (w *Writer) Failed() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failed
}

// WaitAcked waits until n more keys than now are acknowledged.
func (w *Writer) WaitAcked(t testing.TB, n int) {
	t.Helper()
	target := w.Acked() + n
	require.Eventually(t, func() bool { return w.Acked() >= target }, 60*time.Second, 10*time.Millisecond, "the workload stalled")
}

// Verify runs `weir inspect verify` against the cluster and returns its exit status and output.
func (c *Cluster) Verify() (int, string) {
	c.T.Helper()
	p := testcluster.Start(c.T, "inspect-verify", c.Bin, []string{"inspect", "verify", "--etcd", strings.Join(c.etcdURLs, ","),
		"--nats", c.natsURL, "--storage", c.Storage}, nil)
	code, err := p.Wait(2 * time.Minute)
	require.NoError(c.T, err)
	return code, p.Log()
}
