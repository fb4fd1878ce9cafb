package datanode

import (
	"bytes"
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/weir-db/weir/internal/batch"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/metastore"
	"github.com/weir-db/weir/internal/objstore"
	"github.com/weir-db/weir/internal/session"
)

// Settings of TestLargeSyncKeepsSessionAlive.
const (
	// largeSyncBytes is the vector data of the sync: half of the 1 GB that lost sessions,
	// which keeps the test lean. On 2 cores the old code stalled the process 0.28-1.7 s at
	// this size (over 2 s under -race, losing the session outright); streamed, the longest
	// gap is about the probe's interval.
	largeSyncBytes = 512 << 20
	// keepAliveTTL is the session TTL the fault tests and docs use for fast failover.
	keepAliveTTL = 2 * time.Second
	// probeInterval is how often the probe renews its lease: far finer than the session's
	// TTL/3, so that it measures a stall rather than samples it.
	probeInterval = 50 * time.Millisecond
	// maxProbeGap bounds the time between two answered renewals. A session renews every
	// TTL/3 and is lost after TTL, so a stall of 2/3 TTL loses it; a stall grows with the
	// size of whatever cannot be preempted, so the bound is far below that, to catch one at
	// a fraction of the sizes that reach it.
	maxProbeGap = keepAliveTTL / 10
	// maxProbeGapRace is the bound under the race detector, where streamed syncs show gaps
	// of up to 150 ms and the old code over 2 s.
	maxProbeGapRace = keepAliveTTL / 4
)

// countingIDs is an IDAllocator without a metastore.
type countingIDs struct{ next atomic.Int64 }

func (c *countingIDs) Alloc(_ context.Context, n int64) (int64, error) {
	return c.next.Add(n) - n + 1, nil
}

// vectorRecords returns 1,000-row records of an int64 key and a 128-dim float vector, about
// total bytes of vectors, built from buffers directly (a builder would take longer than the
// sync under test).
func vectorRecords(t testing.TB, total int) (*arrow.Schema, []arrow.RecordBatch) {
	t.Helper()
	sch, err := batch.ArrowSchema(&schemapb.CollectionSchema{Name: "big", Fields: []*schemapb.FieldSchema{
		{FieldID: 100, Name: "pk", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
		{FieldID: 101, Name: "vec", DataType: schemapb.DataType_FloatVector, TypeParams: []*commonpb.KeyValuePair{{Key: "dim", Value: "128"}}},
	}})
	require.NoError(t, err)
	const rows, width = 1000, 128 * 4
	pattern := make([]byte, rows*width)
	for j := range pattern {
		pattern[j] = byte(j)
	}
	recs := make([]arrow.RecordBatch, total/(rows*width))
	for i := range recs {
		pks, ts := make([]int64, rows), make([]uint64, rows)
		for j := range pks {
			pks[j], ts[j] = int64(i*rows+j), uint64(i*rows+j)
		}
		// Every record has its own buffer, as records decoded from the log do; one copy
		// fills it (a loop over the bytes takes seconds under the race detector).
		vecs := bytes.Clone(pattern)
		vecs[0] = byte(i)
		cols := []arrow.Array{
			array.NewInt64Data(array.NewData(arrow.PrimitiveTypes.Int64, rows, []*memory.Buffer{nil, memory.NewBufferBytes(arrow.Int64Traits.CastToBytes(pks))}, nil, 0, 0)),
			array.NewFixedSizeBinaryData(array.NewData(sch.Field(1).Type, rows, []*memory.Buffer{nil, memory.NewBufferBytes(vecs)}, nil, 0, 0)),
			array.NewUint64Data(array.NewData(arrow.PrimitiveTypes.Uint64, rows, []*memory.Buffer{nil, memory.NewBufferBytes(arrow.Uint64Traits.CastToBytes(ts))}, nil, 0, 0)),
		}
		recs[i] = array.NewRecordBatch(sch, cols, rows)
		for _, c := range cols {
			c.Release()
		}
	}
	return sch, recs
}

// keepAliveProbe renews a lease every probeInterval and records the longest time between two
// answers: what a session's keep-alive loop would have waited.
type keepAliveProbe struct {
	mu      sync.Mutex
	last    time.Time // the latest answer
	maxGap  time.Duration
	gapEnds time.Time
}

func (pr *keepAliveProbe) lastAnswer() time.Time {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.last
}

func (pr *keepAliveProbe) run(ctx context.Context, c *clientv3.Client, lease clientv3.LeaseID) {
	last := time.Now()
	t := time.NewTicker(probeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := c.KeepAliveOnce(ctx, lease); err != nil {
			continue // the gap grows until an answer comes
		}
		now := time.Now()
		pr.mu.Lock()
		if gap := now.Sub(last); gap > pr.maxGap {
			pr.maxGap, pr.gapEnds = gap, now
		}
		pr.last = now
		pr.mu.Unlock()
		last = now
	}
}

// TestLargeSyncKeepsSessionAlive syncs half a gigabyte through the data node's real file path
// (writeFiles: encode, put to a Local bucket with fsync) next to a session with the 2 s TTL of
// the fault tests, and checks that the process kept answering keep-alives: a data node must
// never lose its session to its own work.
//
// Before syncs were streamed, encoding built the whole file in one bytes.Buffer, whose growth
// clears a fresh slice of the file's size in one call that cannot be preempted (page-faulting
// every page). The allocation roughly doubled the heap and so started a GC, which spun on the
// other P waiting to scan that goroutine's stack: no goroutine ran until the clear ended, 1.1 to
// 1.8 s for 1 GB. Here garbage collections run back to back, so that any such section in the
// sync path stalls the probe whatever the heap's size.
func TestLargeSyncKeepsSessionAlive(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a few hundred MB")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	etcd, err := metastore.StartEmbedded(ctx, metastore.EmbeddedConfig{Dir: t.TempDir(), Logger: quiet()})
	require.NoError(t, err)
	defer etcd.Close()
	c, err := clientv3.New(clientv3.Config{Endpoints: etcd.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer c.Close()
	s, err := session.Register(ctx, c, session.Config{Root: "keepalive", TTL: keepAliveTTL, Logger: quiet()},
		session.Info{Role: "datanode", NodeID: 1})
	require.NoError(t, err)
	defer func() { _ = s.Close(context.Background()) }()
	probeLease, err := c.Grant(ctx, 60)
	require.NoError(t, err)

	sch, recs := vectorRecords(t, largeSyncBytes)
	bucket, err := objstore.NewLocal(t.TempDir())
	require.NoError(t, err)
	n, err := New(testConfig(1), nil, &countingIDs{}, nil, bucket, prometheus.NewRegistry(), quiet())
	require.NoError(t, err)
	p := &pipeline{n: n, ch: "ch", lease: meta.Lease{Channel: "ch", Revision: 1}, schema: sch, pkName: "pk",
		logger: quiet(), ctx: ctx, committed: map[int64]*meta.Segment{}}
	snap := segSnap{seg: meta.Segment{ID: 1, CollectionID: 1, PartitionID: 1, Channel: "ch", Level: meta.L1},
		state: meta.Flushed, recs: recs, minPos: 1, maxPos: uint64(len(recs)), minTs: 1, maxTs: uint64(len(recs))}
	for _, r := range recs {
		snap.rows += r.NumRows()
	}

	probeCtx, stopProbe := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var probe keepAliveProbe
	wg.Go(func() { probe.run(probeCtx, c, probeLease.ID) })
	wg.Go(func() {
		for probeCtx.Err() == nil {
			runtime.GC()
		}
	})
	start := time.Now()
	pd, err := p.writeFiles(snap)
	end := time.Now()
	// A stall that lasted until the end of the sync counts once the probe is answered again.
	require.Eventually(t, func() bool { return probe.lastAnswer().After(end) }, 10*time.Second, time.Millisecond)
	stopProbe()
	wg.Wait()
	releaseTask(&syncTask{segs: []segSnap{snap}})
	require.NoError(t, err)
	require.Len(t, pd.files, 2)
	require.Equal(t, snap.rows, pd.files[0].Rows)
	info, err := bucket.Stat(ctx, pd.files[0].Key)
	require.NoError(t, err)
	require.Equal(t, pd.files[0].Bytes, info.Size, "the insert file's recorded size")

	t.Logf("sync of %d MiB took %v; longest keep-alive gap %v, %v after the sync started",
		largeSyncBytes>>20, end.Sub(start), probe.maxGap, probe.gapEnds.Sub(start))
	require.NoError(t, s.Err(), "the session must survive the sync")
	bound := maxProbeGap
	if raceDetector {
		bound = maxProbeGapRace
	}
	require.Less(t, probe.maxGap, bound, "keep-alives stalled during the sync")
}
