package datanode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weir-db/weir/internal/indexbuild"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/wal"
)

// Catalog is what a data node reads from and writes to the metastore.
type Catalog interface {
	ReadLease(ctx context.Context, ch string) (meta.Lease, error)
	GetCollection(ctx context.Context, id int64) (*meta.Collection, error)
	ReadCheckpoint(ctx context.Context, ch string) (meta.Checkpoint, error)
	ListChannelSegments(ctx context.Context, coll int64, ch string) ([]*meta.Segment, error)
	GetSegment(ctx context.Context, coll, id int64) (*meta.Segment, error)
	Fence(l meta.Lease) *meta.Fence
	Holds(ctx context.Context, ch string, now time.Time) ([]meta.Hold, error)
}

// IDAllocator hands out unique IDs (segments, files).
type IDAllocator interface {
	Alloc(ctx context.Context, n int64) (int64, error)
}

// Log is the DML channel log.
type Log interface {
	Follow(ctx context.Context, ch string, after wal.Anchor) (*wal.Reader, error)
	Info(ctx context.Context, ch string) (wal.ChannelInfo, error)
	Check(ctx context.Context, ch string, a wal.Anchor) error
	Truncate(ctx context.Context, ch string, before wal.Position) error
}

// Bucket is where segment files go. Files are streamed into it as they are encoded, never
// built whole in memory (see pipeline.put).
type Bucket interface {
	PutStream(ctx context.Context, key string, write func(w io.Writer) error) error
}

var (
	// ErrNotOwner means the channel's lease names another node.
	ErrNotOwner = errors.New("datanode: channel leased to another node")
	// ErrClosed means the node is shut down.
	ErrClosed = errors.New("datanode: closed")
)

// Node is a data node: the set of channel pipelines it runs.
type Node struct {
	cfg     Config
	catalog Catalog
	// lastConsumed is when a pipeline last consumed a message, as time since the package's
	// epoch (monotonic: a wall clock stepped back must not keep the node busy): the index
	// builder paces its builds while the node ingests (busy).
	lastConsumed atomic.Int64
	ids          IDAllocator
	log          Log
	bucket       Bucket
	logger       *slog.Logger
	m            *metrics
	now          func() time.Time
	// coord is the coordinator's legacy meta service; nil when the node has none (then only
	// channels with a lease can be watched).
	coord Coordinator

	// buffered counts the bytes of rows held by all pipelines; memFreed is closed and
	// replaced whenever it drops, to wake pipelines waiting for memory.
	buffered atomic.Int64
	memMu    sync.Mutex
	memFreed chan struct{}

	mu struct {
		sync.Mutex
		closed    bool
		pipelines map[string]*pipeline
		locks     map[string]chan struct{} // one-slot semaphores serialising Watch/Release per channel
		// refused holds the channels whose pipeline failed to start, so that the next start
		// under the same lease waits out a backoff (a start claims the channel and checks the
		// log: repeated every second by lease syncs it would churn etcd and the logs).
		refused map[string]refusal
	}
	wg sync.WaitGroup

	// indexes builds the vector indexes of the node's channels' flushed segments (nil when
	// IndexWorkers is 0 or the bucket cannot read); stopIndexes ends its run.
	indexes     *indexbuild.Builder
	stopIndexes context.CancelFunc
	indexesDone chan struct{}
}

// New returns a data node. It runs no pipeline until Watch is called.
func New(cfg Config, catalog Catalog, ids IDAllocator, log Log, bucket Bucket, reg prometheus.Registerer, logger *slog.Logger) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, catalog: catalog, ids: ids, log: log, bucket: bucket, logger: logger,
		m: newMetrics(reg), memFreed: make(chan struct{}), now: time.Now}
	n.mu.pipelines = map[string]*pipeline{}
	n.mu.locks = map[string]chan struct{}{}
	n.mu.refused = map[string]refusal{}
	if ib, ok := bucket.(indexbuild.Bucket); ok && cfg.IndexWorkers > 0 {
		icfg := indexbuild.Defaults()
		icfg.NodeID, icfg.Root, icfg.Workers, icfg.Interval = cfg.NodeID, cfg.ObjectRoot, cfg.IndexWorkers, cfg.CheckInterval
		icfg.MemoryLimit = cfg.IndexMemoryLimit
		icfg.Busy = n.busy
		ic, ok := catalog.(indexbuild.Catalog)
		if !ok {
			logger.Warn("datanode: the catalog cannot read index records: no index builds")
			return n, nil
		}
		n.indexes = indexbuild.New(icfg, ic, ib, ids, n.owned, reg, logger.With("part", "indexbuild"))
		ctx, cancel := context.WithCancel(context.Background())
		n.stopIndexes, n.indexesDone = cancel, make(chan struct{})
		go func() {
			defer close(n.indexesDone)
			n.indexes.Run(ctx)
		}()
	}
	return n, nil
}

// busyWindow is how recently a message must have been consumed for the node to count as
// ingesting: a client's batches arrive well within it while it writes.
const busyWindow = 500 * time.Millisecond

// busy reports whether the node is ingesting: a pipeline consumed a message within busyWindow.
func (n *Node) busy() bool {
	last := n.lastConsumed.Load()
	return last != 0 && time.Since(epoch)-time.Duration(last) < busyWindow
}

// epoch is the process's reference for lastConsumed.
var epoch = time.Now()

// owned is what the index builder builds for: the channels whose pipelines write under their
// own fence (a legacy pipeline's meta goes through the coordinator: its segments are indexed
// once the channel is written directly).
func (n *Node) owned() []indexbuild.Owned {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []indexbuild.Owned
	for ch, p := range n.mu.pipelines {
		if _, direct := p.writer.(directWriter); !direct || p.fence.Epoch() == 0 {
			continue
		}
		out = append(out, indexbuild.Owned{Channel: ch, Collection: p.lease.CollectionID, Fence: p.fence, Token: p.token})
	}
	return out
}

// segmentFlushed tells the index builder a segment was just flushed.
func (n *Node) segmentFlushed() {
	if n.indexes != nil {
		n.indexes.Nudge()
	}
}

// SetCoordinator gives the node the coordinator's legacy meta service, for channels whose
// watch info has no lease (and for every channel under ProtocolLegacy). Call before Watch.
func (n *Node) SetCoordinator(c Coordinator) { n.coord = c }

// Watch starts the pipeline of channel ch under its current lease, which must name this node.
// Watching a channel that already runs under the same lease does nothing; under an older lease,
// the old pipeline is stopped first. Calls for one channel are serialised, so two overlapping
// Watch calls never start two pipelines, and a Release waits for a Watch in progress. A
// pipeline that stopped on an error is restarted no sooner than a backoff after its last start,
// so a message it cannot process does not make it spin.
func (n *Node) Watch(ctx context.Context, ch string) error {
	unlock, err := n.lockChannel(ctx, ch)
	if err != nil {
		return err
	}
	defer unlock()
	lease, err := n.catalog.ReadLease(ctx, ch)
	if err != nil {
		return err
	}
	if lease.NodeID != n.cfg.NodeID {
		return fmt.Errorf("%w: %s is leased to node %d (revision %d), this is node %d", ErrNotOwner, ch, lease.NodeID, lease.Revision, n.cfg.NodeID)
	}
	n.mu.Lock()
	old := n.mu.pipelines[ch]
	n.mu.Unlock()
	if old != nil {
		if old.lease.Revision == lease.Revision && !old.stopped() {
			return nil
		}
		old.stop()
		if old.lease.Revision == lease.Revision {
			if wait := old.restartAfter.Sub(n.now()); wait > 0 {
				return fmt.Errorf("datanode: %s stopped (%v); restarting in %s", ch, old.stopErr(), wait.Round(time.Millisecond))
			}
		}
	}
	// Account for the pipeline before it exists, so Close either sees it or refuses it.
	n.mu.Lock()
	if n.mu.closed {
		n.mu.Unlock()
		return ErrClosed
	}
	if r, ok := n.mu.refused[ch]; ok && r.lease == lease.Revision && n.now().Before(r.retryAt) {
		n.mu.Unlock()
		return fmt.Errorf("datanode: %s failed to start (%v); trying again in %s", ch, r.err, r.retryAt.Sub(n.now()).Round(time.Millisecond))
	}
	n.wg.Add(1)
	n.mu.Unlock()
	p, err := n.startPipeline(ctx, lease)
	if err != nil {
		n.wg.Done()
		n.refuse(ch, lease.Revision, err)
		return err
	}
	p.backoff = restartBackoff(old, lease)
	p.restartAfter = n.now().Add(p.backoff)
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.mu.refused, ch)
	if n.mu.closed {
		go p.stop()
		return ErrClosed
	}
	n.mu.pipelines[ch] = p
	return nil
}

// refusal is a pipeline start that failed under a lease, and when the next may be tried.
type refusal struct {
	lease   int64
	err     error
	backoff time.Duration
	retryAt time.Time
}

// refuse records that the start of ch under lease failed with err: the next start under that
// lease waits a backoff, doubling while starts keep failing, up to 10 s (a start that failed for
// a passing reason, etcd restarting say, is tried again soon after).
func (n *Node) refuse(ch string, lease int64, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var prev time.Duration
	if r, ok := n.mu.refused[ch]; ok && r.lease == lease {
		prev = r.backoff
	}
	backoff := doubled(prev, 10*time.Second)
	n.mu.refused[ch] = refusal{lease: lease, err: err, backoff: backoff, retryAt: n.now().Add(backoff)}
}

// restartBackoff is how long after its start a pipeline that fails may be started again
// under the same lease: doubling while restarts keep failing, up to a minute.
func restartBackoff(prev *pipeline, lease meta.Lease) time.Duration {
	if prev == nil || prev.lease.Revision != lease.Revision {
		return doubled(0, time.Minute)
	}
	return doubled(prev.backoff, time.Minute)
}

// doubled is the backoff after prev (100 ms after none), doubling up to limit.
func doubled(prev, limit time.Duration) time.Duration {
	if prev == 0 {
		return 100 * time.Millisecond
	}
	return min(2*prev, limit)
}

// lockChannel serialises Watch and Release of one channel.
func (n *Node) lockChannel(ctx context.Context, ch string) (func(), error) {
	n.mu.Lock()
	l := n.mu.locks[ch]
	if l == nil {
		l = make(chan struct{}, 1)
		n.mu.locks[ch] = l
	}
	n.mu.Unlock()
	select {
	case l <- struct{}{}:
		return func() { <-l }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Release stops the pipeline of ch, dropping what it buffered (the next owner replays it from
// the checkpoint).
func (n *Node) Release(ch string) { n.release(ch, 0) }

// release stops the pipeline of ch if it runs under lease revision lease (any, when 0): a
// release decided from an earlier look must not stop a pipeline a Watch started since.
func (n *Node) release(ch string, lease int64) {
	unlock, err := n.lockChannel(context.Background(), ch)
	if err != nil {
		return
	}
	defer unlock()
	n.mu.Lock()
	p := n.mu.pipelines[ch]
	if p != nil && lease != 0 && p.lease.Revision != lease {
		n.mu.Unlock()
		return
	}
	delete(n.mu.pipelines, ch)
	n.mu.Unlock()
	if p != nil {
		p.stop()
	}
}

// Channels returns the channels whose pipelines are running, with their lease revisions.
func (n *Node) Channels() map[string]int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := map[string]int64{}
	for ch, p := range n.mu.pipelines {
		if !p.stopped() {
			out[ch] = p.lease.Revision
		}
	}
	return out
}

// Err returns why the pipeline of ch stopped, or nil while it runs (or was never started).
func (n *Node) Err(ch string) error {
	n.mu.Lock()
	p := n.mu.pipelines[ch]
	n.mu.Unlock()
	if p == nil {
		return nil
	}
	return p.stopErr()
}

// Close stops every pipeline and waits for them.
func (n *Node) Close() {
	n.mu.Lock()
	n.mu.closed = true
	ps := n.mu.pipelines
	n.mu.pipelines = map[string]*pipeline{}
	n.mu.Unlock()
	for _, p := range ps {
		p.stop()
	}
	n.wg.Wait()
	if n.indexes != nil {
		n.stopIndexes()
		<-n.indexesDone
	}
}

// noteRewound reports whether err is a channel that moved backward under its pipeline and, if
// so, says so as loudly as the node can: the channel stays stopped (every restart under its
// lease checks again and fails the same way) until an operator restores the log or accepts the
// loss (docs/operations.md).
func (n *Node) noteRewound(ch string, err error) bool {
	if !errors.Is(err, wal.ErrRewound) {
		return false
	}
	n.m.logRewound.WithLabelValues(ch).Inc()
	n.logger.Error("channel log moved backward: its server lost acknowledged records and reuses their positions; the channel is stopped",
		"channel", ch, "err", err)
	return true
}

// reserve accounts for b bytes of buffered rows.
func (n *Node) reserve(b int64) {
	n.m.buffered.Set(float64(n.buffered.Add(b)))
}

// free returns b bytes and wakes pipelines waiting for memory.
func (n *Node) free(b int64) {
	if b == 0 {
		return
	}
	n.m.buffered.Set(float64(n.buffered.Add(-b)))
	n.memMu.Lock()
	close(n.memFreed)
	n.memFreed = make(chan struct{})
	n.memMu.Unlock()
}

// overLimit reports whether buffered rows exceed the memory limit, and a channel that is
// closed when memory is next freed.
func (n *Node) overLimit() (bool, <-chan struct{}) {
	n.memMu.Lock()
	defer n.memMu.Unlock()
	return n.buffered.Load() > n.cfg.MemoryLimit, n.memFreed
}
