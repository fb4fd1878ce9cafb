package coord

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/metastore"
	"github.com/weir-db/weir/internal/objstore"
	"github.com/weir-db/weir/internal/schema"
	"github.com/weir-db/weir/internal/segment"
)

// fakeNodes records what the coordinator tells data nodes.
type fakeNodes struct {
	mu        sync.Mutex
	live      []int64
	protocols map[int64]string
	watches   []string
	releases  []string
}

func (f *fakeNodes) Live(context.Context) ([]int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.live), nil
}

func (f *fakeNodes) Watch(_ context.Context, node int64, ch string, lease int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.watches = append(f.watches, fmt.Sprintf("%d:%s", node, ch))
	return nil
}

func (f *fakeNodes) Protocol(node int64) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.protocols[node]
}

func (f *fakeNodes) Release(_ context.Context, node int64, ch string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.releases = append(f.releases, fmt.Sprintf("%d:%s", node, ch))
	return nil
}

type env struct {
	ctx     context.Context
	kv      *metastore.Memory
	catalog *meta.Catalog
	nodes   *fakeNodes
	bucket  *objstore.Memory
}

func newEnv(t *testing.T) *env {
	kv := metastore.NewMemory()
	t.Cleanup(func() { kv.Close() })
	return &env{ctx: context.Background(), kv: kv, catalog: meta.NewCatalog(kv, "weir", meta.NewIDAllocator(kv, "weir", 10), slog.New(slog.DiscardHandler)),
		nodes: &fakeNodes{}, bucket: objstore.NewMemory()}
}

func (e *env) coordinator(t *testing.T) *Coordinator {
	cfg := Defaults()
	c, err := New(cfg, e.catalog, meta.NewView(e.kv, "weir", meta.ReloadChanged), e.nodes, e.bucket, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	return c
}

func (e *env) collection(t *testing.T, name string, shards int) *meta.Collection {
	s, err := schema.Normalize(name, &schemapb.CollectionSchema{Fields: []*schemapb.FieldSchema{
		{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
		{Name: "v", DataType: schemapb.DataType_FloatVector, TypeParams: []*commonpb.KeyValuePair{{Key: "dim", Value: "2"}}},
	}})
	require.NoError(t, err)
	coll, _, err := e.catalog.CreateCollection(e.ctx, &meta.Collection{DB: meta.DefaultDatabase, Name: name, Schema: s, Shards: shards})
	require.NoError(t, err)
	return coll
}

func owners(t *testing.T, e *env) map[string]int64 {
	v := meta.NewView(e.kv, "weir", meta.ReloadFull)
	_, err := v.Reload(e.ctx)
	require.NoError(t, err)
	out := map[string]int64{}
	for ch, l := range v.Leases() {
		out[ch] = l.NodeID
	}
	return out
}

func TestAssignmentFollowsNodesAndKeepsHealthyAssignments(t *testing.T) {
	e := newEnv(t)
	a := e.collection(t, "a", 2)
	b := e.collection(t, "b", 2)
	c := e.coordinator(t)

	moves, err := c.Assign(e.ctx)
	require.NoError(t, err)
	require.Empty(t, moves, "no live data node: nothing is assigned")

	e.nodes.live = []int64{1}
	moves, err = c.Assign(e.ctx)
	require.NoError(t, err)
	require.Len(t, moves, 4)
	want := map[string]int64{a.VChannels[0]: 1, a.VChannels[1]: 1, b.VChannels[0]: 1, b.VChannels[1]: 1}
	require.Equal(t, want, owners(t, e))
	require.Len(t, e.nodes.watches, 4)

	// A second node joins: it takes half, each move releasing the old owner first.
	e.nodes.live = []int64{1, 2}
	before, err := e.catalog.ReadLease(e.ctx, b.VChannels[1])
	require.NoError(t, err)
	moves, err = c.Assign(e.ctx)
	require.NoError(t, err)
	require.Len(t, moves, 2)
	require.Len(t, e.nodes.releases, 2)
	got := owners(t, e)
	counts := map[int64]int{}
	for _, n := range got {
		counts[n]++
	}
	require.Equal(t, map[int64]int{1: 2, 2: 2}, counts)
	after, err := e.catalog.ReadLease(e.ctx, b.VChannels[1])
	require.NoError(t, err)
	require.Greater(t, after.Revision, before.Revision, "every assignment writes a new lease")

	// A restarted coordinator rebuilds from etcd and moves nothing.
	rev, err := e.kv.Revision(e.ctx)
	require.NoError(t, err)
	c2 := e.coordinator(t)
	moves, err = c2.Assign(e.ctx)
	require.NoError(t, err)
	require.Empty(t, moves)
	rev2, err := e.kv.Revision(e.ctx)
	require.NoError(t, err)
	require.Equal(t, rev, rev2, "no needless release or lease rewrite")

	// Node 1 dies: its channels move to node 2.
	e.nodes.live = []int64{2}
	moves, err = c2.Assign(e.ctx)
	require.NoError(t, err)
	require.Len(t, moves, 2)
	for _, n := range owners(t, e) {
		require.Equal(t, int64(2), n)
	}

	// A dropped collection's channels are not assigned again.
	_, err = e.catalog.DropCollection(e.ctx, meta.DefaultDatabase, "a")
	require.NoError(t, err)
	e.nodes.live = []int64{2, 3}
	moves, err = c2.Assign(e.ctx)
	require.NoError(t, err)
	for _, m := range moves {
		require.NotContains(t, a.VChannels, m.Channel)
	}
}

// writeSegment commits a segment and one file through a fence, as a data node does.
func writeSegment(t *testing.T, e *env, f *meta.Fence, s *meta.Segment, key string, prev int64) int64 {
	ops, err := f.SegmentOps(s, []meta.File{{ID: s.ID*100 + int64(s.Files), SegmentID: s.ID, Kind: meta.InsertFile, Key: key, Rows: 10}})
	require.NoError(t, err)
	rev, err := f.Commit(e.ctx, []metastore.Cmp{f.SegmentCmp(s, prev)}, ops)
	require.NoError(t, err)
	return rev
}

func TestRecoveryInfoEqualsAFullRead(t *testing.T) {
	e := newEnv(t)
	coll := e.collection(t, "a", 2)
	e.nodes.live = []int64{1}
	c := e.coordinator(t)
	_, err := c.RecoveryInfo(e.ctx, coll.ID, "")
	require.ErrorIs(t, err, ErrNotReady)
	c.reload(e.ctx)
	_, err = c.Assign(e.ctx)
	require.NoError(t, err)
	for i, ch := range coll.VChannels {
		l, err := e.catalog.ReadLease(e.ctx, ch)
		require.NoError(t, err)
		f := e.catalog.Fence(l)
		base := int64(10 * (i + 1))
		writeSegment(t, e, f, &meta.Segment{ID: base, CollectionID: coll.ID, Channel: ch, Level: meta.L1, State: meta.Flushed, Rows: 10, Files: 1, MaxPos: 5}, fmt.Sprint("k", base), 0)
		writeSegment(t, e, f, &meta.Segment{ID: base + 1, CollectionID: coll.ID, Channel: ch, Level: meta.L1, State: meta.Growing, Rows: 10, Files: 1, MaxPos: 9}, fmt.Sprint("k", base+1), 0)
		writeSegment(t, e, f, &meta.Segment{ID: base + 2, CollectionID: coll.ID, Channel: ch, Level: meta.L0, State: meta.Growing, Rows: 3, Files: 1, MaxPos: 8}, fmt.Sprint("k", base+2), 0)
		op, err := f.CheckpointOp(meta.Checkpoint{Position: 9})
		require.NoError(t, err)
		_, err = f.Commit(e.ctx, nil, []metastore.Op{op})
		require.NoError(t, err)
		c.reload(e.ctx) // reload in the middle of the writes, as the running coordinator would
	}
	c.reload(e.ctx)
	got, err := c.RecoveryInfo(e.ctx, coll.ID, "")
	require.NoError(t, err)
	full := meta.NewView(e.kv, "weir", meta.ReloadFull)
	_, err = full.Reload(e.ctx)
	require.NoError(t, err)
	require.Equal(t, recoveryFrom(full, coll.ID, ""), got, "the reloaded view answers as a full read of etcd")
	require.Len(t, got.Channels, 2)
	ch0 := got.Channels[0]
	require.Len(t, ch0.Flushed, 1)
	require.Len(t, ch0.Growing, 1)
	require.Len(t, ch0.L0, 1)
	require.Equal(t, uint64(9), ch0.Checkpoint.Position)
	require.Len(t, ch0.Flushed[0].Files, 1)

	one, err := c.RecoveryInfo(e.ctx, coll.ID, coll.VChannels[1])
	require.NoError(t, err)
	require.Len(t, one.Channels, 1)
	require.Equal(t, coll.VChannels[1], one.Channels[0].Channel)
}

func TestGarbageCollection(t *testing.T) {
	e := newEnv(t)
	keep := e.collection(t, "keep", 1)
	drop := e.collection(t, "drop", 1)
	e.nodes.live = []int64{1}
	c := e.coordinator(t)
	c.SetLog(startLog(t))
	_, err := c.Assign(e.ctx)
	require.NoError(t, err)
	now := time.Now()
	c.now = func() time.Time { return now.Add(2 * time.Hour) } // every file is past the grace period

	put := func(key string) {
		require.NoError(t, e.bucket.Put(e.ctx, key, []byte("x")))
	}
	referenced := segment.InsertKey("weir", keep.ID, 1, 5, 1, 1)
	orphan := segment.InsertKey("weir", keep.ID, 1, 5, 1, 2) // written by a sync whose meta never committed
	droppedFile := segment.InsertKey("weir", drop.ID, 1, 6, 1, 1)
	foreign := "weir/insert/not-a-segment-file"
	for _, k := range []string{referenced, orphan, droppedFile, foreign} {
		put(k)
	}
	for _, coll := range []*meta.Collection{keep, drop} {
		l, err := e.catalog.ReadLease(e.ctx, coll.VChannels[0])
		require.NoError(t, err)
		key, id := referenced, int64(5)
		if coll == drop {
			key, id = droppedFile, 6
		}
		writeSegment(t, e, e.catalog.Fence(l), &meta.Segment{ID: id, CollectionID: coll.ID, Channel: coll.VChannels[0], Level: meta.L1, State: meta.Flushed, Rows: 10, Files: 1}, key, 0)
	}
	_, err = e.catalog.DropCollection(e.ctx, meta.DefaultDatabase, "drop")
	require.NoError(t, err)

	// Within the grace period an unreferenced file stays: its sync may still be committing.
	c.now = func() time.Time { return now }
	st, err := c.CollectGarbage(e.ctx)
	require.NoError(t, err)
	require.Equal(t, 1, st.Deleted, "only the dropped collection's file goes at once")
	_, err = e.bucket.Stat(e.ctx, orphan)
	require.NoError(t, err)

	c.now = func() time.Time { return now.Add(2 * time.Hour) }
	st, err = c.CollectGarbage(e.ctx)
	require.NoError(t, err)
	require.Equal(t, 1, st.Deleted)
	_, err = e.bucket.Stat(e.ctx, orphan)
	require.True(t, objstore.IsNotFound(err), "an unreferenced file past the grace period is deleted")
	_, err = e.bucket.Stat(e.ctx, referenced)
	require.NoError(t, err, "a referenced file is never deleted")
	_, err = e.bucket.Stat(e.ctx, foreign)
	require.NoError(t, err, "files that are not segment files are not ours")
	segs, err := e.catalog.ListSegments(e.ctx, drop.ID)
	require.NoError(t, err)
	require.Empty(t, segs, "the dropped collection's segment meta goes after its files")
	segs, err = e.catalog.ListSegments(e.ctx, keep.ID)
	require.NoError(t, err)
	require.Len(t, segs, 1)
}

func TestConfigValidate(t *testing.T) {
	require.NoError(t, Defaults().Validate())
	for _, edit := range []func(*Config){
		func(c *Config) { c.RootPath = "" },
		func(c *Config) { c.ReloadInterval = 0 },
		func(c *Config) { c.GCGrace = time.Second },
	} {
		c := Defaults()
		edit(&c)
		require.Error(t, c.Validate())
	}
}

// TestRecoveryInfoIsOneState checks invariant 2 as readers see it: while a data node commits
// segments and then checkpoints and the coordinator reloads, every answer's checkpoint is
// covered by the segments in the same answer. An answer assembled from two reloads could pair
// a checkpoint with segments older than it, and a reader tailing from it would skip rows.
func TestRecoveryInfoIsOneState(t *testing.T) {
	e := newEnv(t)
	coll := e.collection(t, "a", 1)
	e.nodes.live = []int64{1}
	c := e.coordinator(t)
	c.reload(e.ctx)
	_, err := c.Assign(e.ctx)
	require.NoError(t, err)
	ch := coll.VChannels[0]
	l, err := e.catalog.ReadLease(e.ctx, ch)
	require.NoError(t, err)
	f := e.catalog.Fence(l)

	const commits = 300
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // the data node: a segment, then the checkpoint it covers
		defer wg.Done()
		defer close(done)
		for i := int64(1); i <= commits; i++ {
			writeSegment(t, e, f, &meta.Segment{ID: i, CollectionID: coll.ID, Channel: ch, Level: meta.L1, State: meta.Flushed, Rows: 1, Files: 1, MaxPos: uint64(i)}, fmt.Sprint("k", i), 0)
			op, err := f.CheckpointOp(meta.Checkpoint{Position: uint64(i)})
			require.NoError(t, err)
			_, err = f.Commit(e.ctx, nil, []metastore.Op{op})
			require.NoError(t, err)
		}
	}()
	go func() { // the coordinator's reload loop
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
				c.reload(e.ctx)
			}
		}
	}()
	answers := 0
	for {
		select {
		case <-done:
			wg.Wait()
			require.Positive(t, answers)
			return
		default:
		}
		info, err := c.RecoveryInfo(e.ctx, coll.ID, ch)
		require.NoError(t, err)
		for _, r := range info.Channels {
			var covered uint64
			for _, s := range r.Flushed {
				covered = max(covered, s.Segment.MaxPos)
			}
			require.LessOrEqual(t, r.Checkpoint.Position, covered, "checkpoint %d beside segments up to %d", r.Checkpoint.Position, covered)
		}
		answers++
	}
}
