package datanode

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/weir-db/weir/internal/batch"
	"github.com/weir-db/weir/internal/dml"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/metastore"
	"github.com/weir-db/weir/internal/objstore"
	"github.com/weir-db/weir/internal/schema"
	"github.com/weir-db/weir/internal/segment"
	"github.com/weir-db/weir/internal/wal"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is a data node's world: real embedded etcd and NATS, a bucket, one collection.
type env struct {
	t       *testing.T
	ctx     context.Context
	kv      metastore.Store
	catalog *meta.Catalog
	ids     *meta.IDAllocator
	log     *wal.Log
	nats    *wal.Embedded
	natsCfg wal.EmbeddedConfig
	bucket  objstore.Bucket
	coll    *meta.Collection
	parts   map[string]int64
	mu      sync.Mutex
	acked   map[int64]int // pk → times acknowledged as inserted (minus deletes)
	nextPK  int64
}

type envOpts struct {
	shards int
	// memory uses an in-memory metastore (for fault injection) instead of embedded etcd.
	memory bool
	// store, when set, is the metastore to use.
	store metastore.Store
}

func newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	if o.shards == 0 {
		o.shards = 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	e := &env{t: t, ctx: ctx, parts: map[string]int64{}, acked: map[int64]int{}}
	if o.store != nil {
		e.kv = o.store
	} else if o.memory {
		m := metastore.NewMemory()
		t.Cleanup(func() { m.Close() })
		e.kv = m
	} else {
		etcd, err := metastore.StartEmbedded(ctx, metastore.EmbeddedConfig{Dir: t.TempDir(), Logger: quiet()})
		require.NoError(t, err)
		t.Cleanup(func() { etcd.Close() })
		store, err := metastore.Dial(ctx, metastore.Config{Endpoints: etcd.Endpoints()})
		require.NoError(t, err)
		t.Cleanup(func() { store.Close() })
		e.kv = store
	}
	e.natsCfg = wal.EmbeddedConfig{Dir: t.TempDir(), Logger: quiet()}
	nats, err := wal.StartEmbedded(e.natsCfg)
	require.NoError(t, err)
	e.nats = nats
	t.Cleanup(func() { e.nats.Shutdown() })
	e.natsCfg.Port = nats.Port()
	e.log, err = wal.Open(ctx, nats.ClientURL(), wal.Config{Logger: quiet()})
	require.NoError(t, err)
	t.Cleanup(func() { e.log.Close() })
	e.bucket, err = objstore.NewLocal(t.TempDir())
	require.NoError(t, err)
	e.ids = meta.NewIDAllocator(e.kv, "weir", 100)
	e.catalog = meta.NewCatalog(e.kv, "weir", e.ids, quiet())

	s, err := schema.Normalize("books", &schemapb.CollectionSchema{Fields: []*schemapb.FieldSchema{
		{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
		{Name: "vec", DataType: schemapb.DataType_FloatVector, TypeParams: []*commonpb.KeyValuePair{{Key: "dim", Value: "4"}}},
		{Name: "title", DataType: schemapb.DataType_VarChar, TypeParams: []*commonpb.KeyValuePair{{Key: "max_length", Value: "64"}}},
	}})
	require.NoError(t, err)
	e.coll, _, err = e.catalog.CreateCollection(ctx, &meta.Collection{DB: meta.DefaultDatabase, Name: "books", Schema: s, Shards: o.shards})
	require.NoError(t, err)
	for _, ch := range e.coll.VChannels {
		require.NoError(t, e.log.CreateChannel(ctx, ch))
	}
	parts, err := e.catalog.ListPartitions(ctx, e.coll.ID)
	require.NoError(t, err)
	e.parts[meta.DefaultPartition] = parts[0].ID
	return e
}

func quiet() *slog.Logger {
	if os.Getenv("WEIR_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func (e *env) partition(name string) int64 {
	if id, ok := e.parts[name]; ok {
		return id
	}
	p, err := e.catalog.CreatePartition(e.ctx, e.coll.ID, name)
	require.NoError(e.t, err)
	e.parts[name] = p.ID
	return p.ID
}

// testConfig has small thresholds so that a few hundred rows exercise every path.
func testConfig(node int64) Config {
	c := Defaults()
	c.NodeID = node
	c.SyncBufferBytes = 1 << 10
	c.CheckInterval = 20 * time.Millisecond
	c.RetryMax = 50 * time.Millisecond
	return c
}

func (e *env) node(cfg Config) *Node {
	e.t.Helper()
	n, err := New(cfg, e.catalog, e.ids, e.log, e.bucket, prometheus.NewRegistry(), quiet())
	require.NoError(e.t, err)
	e.t.Cleanup(n.Close)
	return n
}

// watched assigns the collection's first channel to node and starts a node (testConfig) that
// watches it.
func (e *env) watched(node int64) (string, *Node) {
	e.t.Helper()
	ch := e.coll.VChannels[0]
	e.assign(ch, node)
	n := e.node(testConfig(node))
	require.NoError(e.t, n.Watch(e.ctx, ch))
	return ch, n
}

func (e *env) assign(ch string, node int64) meta.Lease {
	e.t.Helper()
	l, err := e.catalog.AssignChannel(e.ctx, ch, e.coll.ID, node)
	require.NoError(e.t, err)
	return l
}

// insert appends one insert message of n new rows to channel ch of partition part and records
// them as acknowledged. It returns the message's position.
func (e *env) insert(ch string, part string, n int) uint64 {
	e.t.Helper()
	return e.insertAt(ch, part, n, uint64(time.Now().UnixMilli())<<18)
}

// insertAt is insert with the message stamped ts.
func (e *env) insertAt(ch string, part string, n int, ts uint64) uint64 {
	e.t.Helper()
	e.mu.Lock()
	first := e.nextPK
	e.nextPK += int64(n)
	e.mu.Unlock()
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = first + int64(i)
	}
	return e.rowsMessage(ch, dml.Insert, part, ids, ts)
}

// upsert appends one upsert message of the rows with keys ids to channel ch of partition part.
// Each key is then expected once more among the stored rows: its old copy stays in its segment
// beside the delete that hides it.
func (e *env) upsert(ch string, part string, ids ...int64) uint64 {
	e.t.Helper()
	return e.rowsMessage(ch, dml.Upsert, part, ids, uint64(time.Now().UnixMilli())<<18)
}

// rowsMessage appends an insert or upsert message of rows with keys ids, stamped ts, and
// records each row as acknowledged.
func (e *env) rowsMessage(ch string, kind dml.Kind, part string, ids []int64, ts uint64) uint64 {
	e.t.Helper()
	n := len(ids)
	vecs := make([]float32, 4*n)
	titles := make([]string, n)
	for i := range ids {
		titles[i] = fmt.Sprintf("t%d", ids[i])
		for d := 0; d < 4; d++ {
			vecs[4*i+d] = float32(ids[i]) + float32(d)/10
		}
	}
	cols := []*schemapb.FieldData{
		{FieldName: "id", Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: ids}}}}},
		{FieldName: "vec", Field: &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{Dim: 4, Data: &schemapb.VectorField_FloatVector{FloatVector: &schemapb.FloatArray{Data: vecs}}}}},
		{FieldName: "title", Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_StringData{StringData: &schemapb.StringArray{Data: titles}}}}},
	}
	rows, err := batch.FromFieldData(e.coll.Schema, cols, uint32(n), batch.FromOptions{})
	require.NoError(e.t, err)
	defer rows.Release()
	rec := rows.Record(ts)
	defer rec.Release()
	body, err := batch.EncodeIPC(rec)
	require.NoError(e.t, err)
	pos := e.append(ch, dml.Message{Header: dml.Header{Kind: kind, CollectionID: e.coll.ID, PartitionID: e.partition(part), Timestamp: ts, Rows: uint32(n)}, Body: body})
	e.mu.Lock()
	for _, id := range ids {
		e.acked[id]++
	}
	e.mu.Unlock()
	return pos
}

func (e *env) delete(ch string, pks ...int64) uint64 {
	e.t.Helper()
	return e.deleteIn(ch, dml.AllPartitions, pks...)
}

// deleteIn appends a delete of pks scoped to partition part (dml.AllPartitions: every one).
func (e *env) deleteIn(ch string, part int64, pks ...int64) uint64 {
	e.t.Helper()
	ts := uint64(time.Now().UnixMilli()) << 18
	return e.append(ch, dml.Message{Header: dml.Header{Kind: dml.Delete, CollectionID: e.coll.ID, PartitionID: part, Timestamp: ts, Rows: uint32(len(pks))}, Body: dml.EncodePKs(dml.PKs{Ints: pks})})
}

func (e *env) flush(ch string) uint64 {
	e.t.Helper()
	return e.append(ch, dml.Message{Header: dml.Header{Kind: dml.Flush, CollectionID: e.coll.ID, Timestamp: uint64(time.Now().UnixMilli()) << 18}})
}

func (e *env) append(ch string, m dml.Message) uint64 {
	e.t.Helper()
	pos, err := e.log.Append(e.ctx, ch, []wal.Record{{Data: dml.Encode(m)}})
	require.NoError(e.t, err)
	return pos[0]
}

// restartNATS stops the NATS server, runs meanwhile (with the server's store directory) and
// starts it again on the same store and port.
func (e *env) restartNATS(meanwhile func(storeDir string)) {
	e.t.Helper()
	e.nats.Shutdown()
	meanwhile(e.natsCfg.Dir)
	nats, err := wal.StartEmbedded(e.natsCfg)
	require.NoError(e.t, err)
	e.nats = nats
}

// lastPosition is the channel's last position, asked with a short timeout: a request sent while
// the connection to a restarted server comes back can go unanswered.
func (e *env) lastPosition(ch string) (uint64, error) {
	ctx, cancel := context.WithTimeout(e.ctx, time.Second)
	defer cancel()
	return e.log.LastPosition(ctx, ch)
}

// waitCheckpoint waits until the channel's committed checkpoint reaches pos.
func (e *env) waitCheckpoint(ch string, pos uint64) meta.Checkpoint {
	e.t.Helper()
	var cp meta.Checkpoint
	require.Eventually(e.t, func() bool {
		var err error
		if cp, err = e.catalog.ReadCheckpoint(e.ctx, ch); err != nil {
			return false // the metastore may be restarting in the test
		}
		return cp.Position >= pos
	}, 30*time.Second, 5*time.Millisecond, "checkpoint of %s never reached %d", ch, pos)
	return cp
}

// stored reads every insert file referenced by committed segment meta and returns how many
// times each primary key is stored, plus the deleted keys recorded in L0 files.
func (e *env) stored() (inserted map[int64]int, deleted map[int64]int) {
	e.t.Helper()
	inserted, deleted = map[int64]int{}, map[int64]int{}
	segs, err := e.catalog.ListSegments(e.ctx, e.coll.ID)
	require.NoError(e.t, err)
	for _, s := range segs {
		files, err := e.catalog.ListFiles(e.ctx, e.coll.ID, s.ID)
		require.NoError(e.t, err)
		var rows int64
		for _, f := range files {
			data, err := e.bucket.Get(e.ctx, f.Key)
			require.NoError(e.t, err, "file %s referenced by segment %d", f.Key, s.ID)
			switch f.Kind {
			case meta.InsertFile:
				col, err := segment.ReadColumn(bytes.NewReader(data), int64(len(data)), "id")
				require.NoError(e.t, err)
				for _, v := range col.(*array.Int64).Int64Values() {
					inserted[v]++
				}
				rows += int64(col.Len())
				col.Release()
			case meta.DeleteFile:
				d, err := segment.ReadDeletes(bytes.NewReader(data), int64(len(data)))
				require.NoError(e.t, err)
				for _, v := range d.IntPKs {
					deleted[v]++
				}
				rows += int64(d.Len())
			}
		}
		require.Equal(e.t, s.Rows, rows, "segment %d: meta rows vs rows in its files", s.ID)
	}
	return inserted, deleted
}

// requireExactlyOnce checks that every acknowledged row is stored exactly once and nothing else:
// each key as many times as rows of it were acknowledged (more than once only for upserted
// keys).
func (e *env) requireExactlyOnce() {
	e.t.Helper()
	inserted, _ := e.stored()
	e.mu.Lock()
	defer e.mu.Unlock()
	var missing, dup, extra []int64
	for pk, want := range e.acked {
		switch n := inserted[pk]; {
		case n < want:
			missing = append(missing, pk)
		case n > want:
			dup = append(dup, pk)
		}
	}
	for pk := range inserted {
		if e.acked[pk] == 0 {
			extra = append(extra, pk)
		}
	}
	sort.Slice(missing, func(i, j int) bool { return missing[i] < missing[j] })
	require.Empty(e.t, missing, "acknowledged keys lost")
	require.Empty(e.t, dup, "keys stored more than once")
	require.Empty(e.t, extra, "keys stored that were never acknowledged")
	require.Len(e.t, inserted, len(e.acked))
}
