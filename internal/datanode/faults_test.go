package datanode

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/dml"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/metastore"
	"github.com/weir-db/weir/internal/wal"
)

// TestUnknownCommitOutcomesAreReRead injects commit timeouts, both ones where the transaction
// applied and ones where it did not. The pipeline re-reads before doing anything else, so
// nothing is lost or counted twice and the checkpoint still moves forward (invariant 4).
func TestUnknownCommitOutcomesAreReRead(t *testing.T) {
	for _, fault := range []metastore.WriteFault{metastore.FailBeforeApply, metastore.FailAfterApply} {
		t.Run(map[metastore.WriteFault]string{metastore.FailBeforeApply: "not-applied", metastore.FailAfterApply: "applied"}[fault], func(t *testing.T) {
			e := newEnv(t, envOpts{memory: true})
			ch := e.coll.VChannels[0]
			e.assign(ch, 1)
			var n atomic.Int32
			e.kv.(*metastore.Memory).InjectWriteFault(func(keys []string) metastore.WriteFault {
				for _, k := range keys {
					if strings.Contains(k, "/segments/") || strings.HasSuffix(k, "/checkpoint") {
						if n.Add(1)%2 == 1 { // every other data node commit times out
							return fault
						}
					}
				}
				return metastore.NoFault
			})
			node := e.node(testConfig(1))
			require.NoError(t, node.Watch(e.ctx, ch))
			for i := 0; i < 20; i++ {
				e.insert(ch, meta.DefaultPartition, 9)
			}
			last := e.flush(ch)
			cp := e.waitCheckpoint(ch, last)
			require.Equal(t, last, cp.Position)
			e.requireExactlyOnce()
			require.Positive(t, testutil.ToFloat64(node.m.unknown))
			require.NoError(t, node.Err(ch))
		})
	}
}

// flakyBucket fails every write while down is set, after some bytes were written (a
// connection that breaks mid-upload).
type flakyBucket struct {
	Bucket
	down  atomic.Bool
	fails atomic.Int32
}

func (b *flakyBucket) PutStream(ctx context.Context, key string, write func(io.Writer) error) error {
	return b.Bucket.PutStream(ctx, key, func(w io.Writer) error {
		return write(&flakyWriter{w: w, b: b})
	})
}

type flakyWriter struct {
	w io.Writer
	b *flakyBucket
	n int
}

func (f *flakyWriter) Write(p []byte) (int, error) {
	if f.b.down.Load() && f.n > 0 {
		f.b.fails.Add(1)
		return 0, errors.New("test: object storage unavailable")
	}
	f.n += len(p)
	return f.w.Write(p)
}

// TestObjectStorageOutageDelaysButLosesNothing: while object storage fails writes, syncs retry
// with backoff, the checkpoint stands still, and memory stays bounded by the limit (the
// pipeline stops consuming). When storage comes back everything is stored once.
func TestObjectStorageOutageDelaysButLosesNothing(t *testing.T) {
	e := newEnv(t, envOpts{})
	ch := e.coll.VChannels[0]
	e.assign(ch, 1)
	fb := &flakyBucket{Bucket: e.bucket}
	fb.down.Store(true)
	cfg := testConfig(1)
	cfg.MemoryLimit = 16 << 10
	node, err := New(cfg, e.catalog, e.ids, e.log, fb, nil, quiet())
	require.NoError(t, err)
	defer node.Close()
	var peak atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
				if b := node.buffered.Load(); b > peak.Load() {
					peak.Store(b)
				}
			}
		}
	}()
	require.NoError(t, node.Watch(e.ctx, ch))
	var lastMsg uint64
	for i := 0; i < 60; i++ {
		lastMsg = e.insert(ch, meta.DefaultPartition, 20)
	}
	require.Eventually(t, func() bool { return fb.fails.Load() > 5 }, 10*time.Second, 5*time.Millisecond)
	cp, err := e.catalog.ReadCheckpoint(e.ctx, ch)
	require.NoError(t, err)
	require.Zero(t, cp.Position, "nothing is checkpointed while files cannot be written")

	fb.down.Store(false)
	last := e.flush(ch)
	e.waitCheckpoint(ch, last)
	close(stop)
	wg.Wait()
	require.Greater(t, last, lastMsg)
	e.requireExactlyOnce()
	// One message can push the total over the limit before the pipeline stops consuming.
	require.LessOrEqual(t, peak.Load(), cfg.MemoryLimit+4<<10, "buffered bytes stay bounded by the memory limit")
	require.Positive(t, testutil.ToFloat64(node.m.retries.WithLabelValues("put")))
}

// TestSealingByRowsAndTime: segments are sealed at message boundaries once they reach the row
// limit, and by age and idleness.
func TestSealingByRowsAndTime(t *testing.T) {
	e := newEnv(t, envOpts{})
	ch := e.coll.VChannels[0]
	e.assign(ch, 1)
	cfg := testConfig(1)
	cfg.SealRows = 25
	cfg.SyncStaleAge = 30 * time.Millisecond
	node := e.node(cfg)
	require.NoError(t, node.Watch(e.ctx, ch))
	for i := 0; i < 10; i++ {
		e.insert(ch, meta.DefaultPartition, 10) // 10 rows a message: seal after the third
	}
	last := e.insert(ch, meta.DefaultPartition, 1)
	e.waitCheckpoint(ch, last) // the stale-buffer sync moves the checkpoint without a flush
	segs, err := e.catalog.ListChannelSegments(e.ctx, e.coll.ID, ch)
	require.NoError(t, err)
	var flushed int
	for _, s := range segs {
		if s.State == meta.Flushed {
			flushed++
			require.Equal(t, int64(30), s.Rows, "a segment is sealed at the message boundary past the limit")
		}
	}
	require.Equal(t, 3, flushed)
	e.requireExactlyOnce()

	// Age: a growing segment older than SealAge is sealed by the timer.
	node.Close()
	cfg.SealAge = 50 * time.Millisecond
	cfg.SealRows = 1000
	node2 := e.node(cfg)
	require.NoError(t, node2.Watch(e.ctx, ch))
	require.Eventually(t, func() bool {
		segs, err := e.catalog.ListChannelSegments(e.ctx, e.coll.ID, ch)
		require.NoError(t, err)
		for _, s := range segs {
			if s.State == meta.Growing {
				return false
			}
		}
		return true
	}, 10*time.Second, 10*time.Millisecond, "the old growing segment is sealed by age")

	// Idle: a segment idle for SealIdle that holds at least SealIdleMinBytes is sealed.
	node2.Close()
	cfg.SealAge, cfg.SealIdle, cfg.SealIdleMinBytes = time.Hour, 30*time.Millisecond, 1
	node3 := e.node(cfg)
	require.NoError(t, node3.Watch(e.ctx, ch))
	e.insert(ch, meta.DefaultPartition, 3)
	require.Eventually(t, func() bool {
		segs, err := e.catalog.ListChannelSegments(e.ctx, e.coll.ID, ch)
		require.NoError(t, err)
		return len(segs) == 5 && segs[4].State == meta.Flushed
	}, 10*time.Second, 10*time.Millisecond, "the idle segment is sealed")
	e.requireExactlyOnce()
}

// TestManySegmentsInOneSyncStayWithinTxnLimits: a flush that seals more segments than fit in
// one etcd transaction commits them in several, each within 128 operations (invariant 9), all
// before the checkpoint.
func TestManySegmentsInOneSyncStayWithinTxnLimits(t *testing.T) {
	e := newEnv(t, envOpts{memory: true})
	ch := e.coll.VChannels[0]
	e.assign(ch, 1)
	var maxOps atomic.Int32
	e.kv.(*metastore.Memory).InjectWriteFault(func(keys []string) metastore.WriteFault {
		if n := int32(len(keys)); n > maxOps.Load() {
			maxOps.Store(n)
		}
		return metastore.NoFault
	})
	cfg := testConfig(1)
	cfg.SyncBufferBytes = 1 << 30
	node := e.node(cfg)
	require.NoError(t, node.Watch(e.ctx, ch))
	for i := 0; i < 60; i++ {
		e.insert(ch, "p"+string(rune('a'+i%26))+string(rune('a'+i/26)), 2)
	}
	last := e.flush(ch)
	e.waitCheckpoint(ch, last)
	segs, err := e.catalog.ListChannelSegments(e.ctx, e.coll.ID, ch)
	require.NoError(t, err)
	require.Len(t, segs, 60)
	require.LessOrEqual(t, maxOps.Load(), int32(metastore.MaxTxnOps))
	require.Greater(t, maxOps.Load(), int32(100), "the sync packed many segments per transaction")
	e.requireExactlyOnce()
}

// TestBadMessagesStopThePipelineWithoutPanic: a message the node cannot decode stops that
// channel with an error; the process and other channels carry on.
func TestBadMessagesStopThePipelineWithoutPanic(t *testing.T) {
	for name, data := range map[string][]byte{
		"garbage":          []byte("not a weir message"),
		"other collection": dml.Encode(dml.Message{Header: dml.Header{Kind: dml.Flush, CollectionID: 999}}),
		"bad rows":         dml.Encode(dml.Message{Header: dml.Header{Kind: dml.Insert, CollectionID: 1, Rows: 1}, Body: []byte("xx")}),
		"bad keys":         dml.Encode(dml.Message{Header: dml.Header{Kind: dml.Delete, CollectionID: 1, Rows: 1}, Body: []byte{9}}),
		"string keys":      dml.Encode(dml.Message{Header: dml.Header{Kind: dml.Delete, CollectionID: 1, Rows: 1}, Body: dml.EncodePKs(dml.PKs{Strs: []string{"a"}})}),
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, envOpts{})
			ch := e.coll.VChannels[0]
			e.assign(ch, 1)
			node := e.node(testConfig(1))
			require.NoError(t, node.Watch(e.ctx, ch))
			_, err := e.log.Append(e.ctx, ch, []wal.Record{{Data: data}})
			require.NoError(t, err)
			require.Eventually(t, func() bool { return node.Err(ch) != nil }, 5*time.Second, 5*time.Millisecond)
			require.Empty(t, node.Channels())
		})
	}
}

func TestConfigValidate(t *testing.T) {
	require.NoError(t, Defaults().Validate())
	c := Defaults()
	c.NodeID, c.MemoryLimit, c.ObjectRoot = 0, -1, ""
	err := c.Validate()
	require.ErrorContains(t, err, "node-id")
	require.ErrorContains(t, err, "memory-limit")
	require.ErrorContains(t, err, "object-root")
	_, err = New(c, nil, nil, nil, nil, nil, quiet())
	require.Error(t, err)
}

type failingIDs struct {
	IDAllocator
	fail atomic.Bool
}

func (f *failingIDs) Alloc(ctx context.Context, n int64) (int64, error) {
	if f.fail.Load() {
		return 0, errors.New("test: id allocator unavailable")
	}
	return f.IDAllocator.Alloc(ctx, n)
}

// TestIDAllocationOutageIsRetried: when the ID allocator's store cannot be reached just as the
// cached IDs run out, the pipeline waits and retries instead of stopping (an etcd blip must not
// stop a channel, least of all while the coordinator is down to restart it).
func TestIDAllocationOutageIsRetried(t *testing.T) {
	for _, when := range []string{"segment", "file"} {
		t.Run(when, func(t *testing.T) {
			e := newEnv(t, envOpts{})
			ch := e.coll.VChannels[0]
			e.assign(ch, 1)
			ids := &failingIDs{IDAllocator: meta.NewIDAllocator(e.kv, "weir", 1)}
			node, err := New(testConfig(1), e.catalog, ids, e.log, e.bucket, nil, quiet())
			require.NoError(t, err)
			defer node.Close()
			require.NoError(t, node.Watch(e.ctx, ch))
			if when == "segment" {
				ids.fail.Store(true)
				e.insert(ch, meta.DefaultPartition, 2)
			} else {
				e.insert(ch, meta.DefaultPartition, 2)
				e.delete(ch, 1)
				// Wait until the rows are buffered (their segment IDs allocated), then fail
				// the file IDs the flush needs.
				require.Eventually(t, func() bool { return testutil.ToFloat64(node.m.rows) == 3 }, 10*time.Second, time.Millisecond)
				ids.fail.Store(true)
			}
			last := e.flush(ch)
			require.Eventually(t, func() bool { return testutil.ToFloat64(node.m.retries.WithLabelValues("alloc")) >= 2 }, 10*time.Second, 5*time.Millisecond)
			require.NoError(t, node.Err(ch), "the pipeline waits, it does not stop")
			ids.fail.Store(false)
			e.waitCheckpoint(ch, last)
			e.requireExactlyOnce()
		})
	}
}

func TestWatchFailsCleanlyWhenTheCollectionOrChannelIsMissing(t *testing.T) {
	e := newEnv(t, envOpts{})
	n := e.node(testConfig(1))
	_, err := e.catalog.AssignChannel(e.ctx, "dml_999_v0", 999, 1)
	require.NoError(t, err)
	require.ErrorContains(t, n.Watch(e.ctx, "dml_999_v0"), "collection not found[collection=999]")
	ch := e.coll.VChannels[0]
	e.assign(ch, 1)
	require.NoError(t, e.log.DeleteChannel(e.ctx, ch))
	require.ErrorIs(t, n.Watch(e.ctx, ch), wal.ErrChannelNotFound)
	require.Empty(t, n.Channels())
}

// TestRemovedSegmentRecordStopsThePipeline: a segment record the pipeline committed is gone
// (garbage collection removed it) while its lease is intact. Its next commit must fail for
// good and stop the pipeline, not retry forever holding its rows (issue 11, item 5).
func TestRemovedSegmentRecordStopsThePipeline(t *testing.T) {
	e := newEnv(t, envOpts{memory: true})
	ch := e.coll.VChannels[0]
	e.assign(ch, 1)
	n := e.node(testConfig(1))
	require.NoError(t, n.Watch(e.ctx, ch))
	e.insert(ch, meta.DefaultPartition, 30)
	segs := waitSegments(t, e, 1)
	require.Equal(t, meta.Growing, segs[0].State)
	require.NoError(t, e.catalog.DeleteSegmentMeta(e.ctx, []meta.Segment{*segs[0]}))
	e.insert(ch, meta.DefaultPartition, 30) // the growing segment's next sync
	require.Eventually(t, func() bool { return n.Err(ch) != nil }, 10*time.Second, 5*time.Millisecond,
		"the pipeline retries a commit against a removed record forever")
	require.ErrorContains(t, n.Err(ch), "removed")
}

// waitSegments waits until the collection has n committed segment records and returns them.
func waitSegments(t *testing.T, e *env, n int) []*meta.Segment {
	t.Helper()
	var segs []*meta.Segment
	require.Eventually(t, func() bool {
		var err error
		segs, err = e.catalog.ListSegments(e.ctx, e.coll.ID)
		return err == nil && len(segs) >= n
	}, 10*time.Second, 5*time.Millisecond)
	return segs
}
