package datanode

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/metastore"
	"github.com/weir-db/weir/internal/wal"
)

// slowCatalog makes a pipeline's start slow, and says when one is under way.
type slowCatalog struct {
	*meta.Catalog
	delay   time.Duration
	entered chan struct{}
}

func (c slowCatalog) ListChannelSegments(ctx context.Context, coll int64, ch string) ([]*meta.Segment, error) {
	select {
	case c.entered <- struct{}{}:
	default:
	}
	time.Sleep(c.delay) // simulated slow metastore, not a wait for a condition
	return c.Catalog.ListChannelSegments(ctx, coll, ch)
}

// TestConcurrentWatchesStartOnePipeline: overlapping Watch calls for one channel (a retried
// RPC, two coordinators) start one pipeline, never two consuming under the same lease.
func TestConcurrentWatchesStartOnePipeline(t *testing.T) {
	e := newEnv(t, envOpts{})
	ch := e.coll.VChannels[0]
	e.assign(ch, 1)
	for i := 0; i < 20; i++ {
		e.insert(ch, meta.DefaultPartition, 5)
	}
	node, err := New(testConfig(1), slowCatalog{Catalog: e.catalog, delay: 100 * time.Millisecond, entered: make(chan struct{}, 1)}, e.ids, e.log, e.bucket, nil, quiet())
	require.NoError(t, err)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); <-start; require.NoError(t, node.Watch(e.ctx, ch)) }()
	}
	close(start)
	wg.Wait()
	require.Equal(t, float64(1), testutil.ToFloat64(node.m.pipelines))
	e.waitCheckpoint(ch, e.flush(ch))
	e.requireExactlyOnce()
	closed := make(chan struct{})
	go func() { node.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hangs")
	}
}

// TestReleaseDuringWatchWins: a Release that arrives while Watch is starting the pipeline
// waits for it and then stops it.
func TestReleaseDuringWatchWins(t *testing.T) {
	e := newEnv(t, envOpts{})
	ch := e.coll.VChannels[0]
	e.assign(ch, 1)
	sc := slowCatalog{Catalog: e.catalog, delay: 100 * time.Millisecond, entered: make(chan struct{}, 1)}
	node, err := New(testConfig(1), sc, e.ids, e.log, e.bucket, nil, quiet())
	require.NoError(t, err)
	defer node.Close()
	done := make(chan error)
	go func() { done <- node.Watch(e.ctx, ch) }()
	<-sc.entered
	node.Release(ch)
	require.NoError(t, <-done)
	require.Empty(t, node.Channels(), "the channel was released after the watch")
}

// lateStore behaves like etcd under a slow leader: the first segment transaction it sees after
// arming is held; the caller's cancellation gives it an unknown outcome, and the server applies
// the transaction later, when release is closed.
type lateStore struct {
	meta.Store
	mu      sync.Mutex
	armed   bool
	held    chan struct{}
	release chan struct{}
	applied chan error
}

func (s *lateStore) Txn(ctx context.Context, cmps []metastore.Cmp, ops []metastore.Op) (int64, error) {
	s.mu.Lock()
	hold := s.armed && len(ops) > 0 && strings.Contains(fmt.Sprint(ops[0]), "/segments/")
	if hold {
		s.armed = false
	}
	s.mu.Unlock()
	if !hold {
		return s.Store.Txn(ctx, cmps, ops)
	}
	close(s.held)
	go func() {
		<-s.release
		_, err := s.Store.Txn(context.Background(), cmps, ops)
		s.applied <- err
	}()
	<-ctx.Done()
	return 0, fmt.Errorf("%w: %w", metastore.ErrOutcomeUnknown, ctx.Err())
}

// TestRestartUnderSameLeaseFencesThePredecessor: a pipeline stops while its segment commit is
// still in flight in etcd, and a new pipeline starts under the same lease (a restart after an
// error, or a new process after a crash). The new pipeline's claim fences the old transaction:
// when etcd finally applies it, it fails, and every row is stored once.
func TestRestartUnderSameLeaseFencesThePredecessor(t *testing.T) {
	e := newEnv(t, envOpts{memory: true})
	ch := e.coll.VChannels[0]
	e.assign(ch, 1)
	ls := &lateStore{Store: e.kv, held: make(chan struct{}), release: make(chan struct{}), applied: make(chan error, 1)}
	cat := meta.NewCatalog(ls, "weir", e.ids, quiet())
	node, err := New(testConfig(1), cat, e.ids, e.log, e.bucket, nil, quiet())
	require.NoError(t, err)
	defer node.Close()
	require.NoError(t, node.Watch(e.ctx, ch))

	ls.mu.Lock()
	ls.armed = true
	ls.mu.Unlock()
	e.insert(ch, meta.DefaultPartition, 5)
	e.flush(ch)
	<-ls.held

	node.Release(ch) // the pipeline stops; its transaction is still in flight
	require.NoError(t, node.Watch(e.ctx, ch))
	close(ls.release)
	require.ErrorIs(t, <-ls.applied, metastore.ErrPredicateFailed, "the predecessor's late transaction is fenced off")
	e.waitCheckpoint(ch, e.flush(ch))
	e.requireExactlyOnce()
}

// TestRestartAfterFailureBacksOff: a pipeline that stopped on an error is not restarted under
// the same lease at once, so a message it cannot process does not make it spin.
func TestRestartAfterFailureBacksOff(t *testing.T) {
	e := newEnv(t, envOpts{})
	ch := e.coll.VChannels[0]
	e.assign(ch, 1)
	node := e.node(testConfig(1))
	now := time.Now()
	node.now = func() time.Time { return now }
	require.NoError(t, node.Watch(e.ctx, ch))
	_, err := e.log.Append(e.ctx, ch, []wal.Record{{Data: []byte("not a weir message")}})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return node.Err(ch) != nil }, 5*time.Second, 5*time.Millisecond)
	require.ErrorContains(t, node.Watch(e.ctx, ch), "restarting in")
	now = now.Add(time.Second)
	require.NoError(t, node.Watch(e.ctx, ch), "after the backoff it starts again")
}
