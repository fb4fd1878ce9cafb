// Package coord is Weir's coordinator: it assigns DML channels to live data nodes with a new
// lease per assignment, re-reads what data nodes committed on an interval (no etcd Watch), answers
// recovery targets from that view, and collects garbage. It is never on the write path: proxies
// and data nodes work without it, and a restarted coordinator rebuilds everything from etcd.
package coord

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/objstore"
)

// Config holds the coordinator's settings.
type Config struct {
	RootPath       string        `yaml:"root-path"`
	ReloadInterval time.Duration `yaml:"reload-interval"`
	AssignInterval time.Duration `yaml:"assign-interval"`
	GCInterval     time.Duration `yaml:"gc-interval"`
	// GCGrace is how old an unreferenced file must be before it is deleted. It must exceed by
	// far the time a data node can take between writing a file and committing the meta that
	// references it, retries included: a file is only ever deleted when no commit that could
	// still reference it can be in flight.
	GCGrace time.Duration `yaml:"gc-grace"`
	// Protocol is "current" (watch info with leases; lease-less watch info of current data
	// nodes is upgraded) or "legacy" (the previous release: watch info without leases, data
	// nodes send their meta through SaveBinlogPaths).
	Protocol string `yaml:"protocol"`
}

// Protocols: meta's, which data nodes announce in their sessions.
const (
	ProtocolCurrent = meta.ProtocolCurrent
	ProtocolLegacy  = meta.ProtocolLegacy
)

// Defaults returns the default configuration.
func Defaults() Config {
	return Config{RootPath: "weir", ReloadInterval: time.Second, AssignInterval: time.Second,
		GCInterval: 10 * time.Minute, GCGrace: time.Hour, Protocol: ProtocolCurrent}
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	switch {
	case c.RootPath == "":
		return errors.New("coord: root-path must be set")
	case c.ReloadInterval <= 0, c.AssignInterval <= 0, c.GCInterval <= 0:
		return errors.New("coord: reload-interval, assign-interval and gc-interval must be positive")
	case c.GCGrace < time.Minute:
		return fmt.Errorf("coord: gc-grace must be at least 1m, got %s", c.GCGrace)
	case c.Protocol != ProtocolCurrent && c.Protocol != ProtocolLegacy:
		return fmt.Errorf("coord: protocol must be %q or %q, got %q", ProtocolCurrent, ProtocolLegacy, c.Protocol)
	}
	return nil
}

// Catalog is what the coordinator reads and writes in the catalog.
type Catalog interface {
	ListCollectionRecords(ctx context.Context) ([]*meta.Collection, error)
	AssignChannel(ctx context.Context, ch string, collectionID, node int64) (meta.Lease, error)
	AssignChannelLegacy(ctx context.Context, ch string, collectionID, node int64) (meta.Lease, error)
	DeleteSegmentMeta(ctx context.Context, segs []meta.Segment) error
	DeleteChannels(ctx context.Context, chs []string) error
	MarkCollected(ctx context.Context, id int64) error
	IndexFiles(ctx context.Context) (referenced map[string]bool, live map[int64]bool, err error)

	// The legacy protocol's writes, made on a data node's behalf.
	ReadLease(ctx context.Context, ch string) (meta.Lease, error)
	Fence(l meta.Lease) *meta.Fence
	FenceAt(l meta.Lease, epoch int64) *meta.Fence
	FenceUnclaimed(l meta.Lease) *meta.Fence
	GetSegment(ctx context.Context, coll, id int64) (*meta.Segment, error)
	ReadCheckpoint(ctx context.Context, ch string) (meta.Checkpoint, error)
}

// Nodes reaches the data nodes.
type Nodes interface {
	// Live returns the IDs of the data nodes with a live session.
	Live(ctx context.Context) ([]int64, error)
	// Watch tells node to start the channel under the lease it now holds; Release to stop it.
	// Both are notifications: a data node also finds its leases in the metastore itself.
	Watch(ctx context.Context, node int64, ch string, lease int64) error
	Release(ctx context.Context, node int64, ch string) error
	// Protocol is the protocol a live node's session announced at the last Live call
	// ("" counts as current).
	Protocol(node int64) string
}

// Log is the DML channel log, as garbage collection frees the channels of dropped
// collections.
type Log interface {
	DeleteChannel(ctx context.Context, name string) error
}

// Coordinator is a running coordinator.
type Coordinator struct {
	cfg     Config
	catalog Catalog
	view    *meta.View
	nodes   Nodes
	bucket  objstore.Bucket
	logMu   sync.Mutex
	log     Log // nil: dropped collections' streams are left in place
	logger  *slog.Logger
	now     func() time.Time
	m       *metrics

	mu       sync.Mutex
	reloaded bool

	queryCat   QueryCatalog // nil: no query shards to assign
	queryNodes QueryNodes
}

// SetQuery makes the coordinator assign the shards of loaded collections to the query nodes
// nodes reports, every assignment round.
func (c *Coordinator) SetQuery(cat QueryCatalog, nodes QueryNodes) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queryCat, c.queryNodes = cat, nodes
}

type metrics struct {
	reloads      *prometheus.CounterVec
	reloadSecs   prometheus.Histogram
	reloadKeys   prometheus.Counter
	moves        *prometheus.CounterVec
	gcDeleted    prometheus.Counter
	gcSegments   prometheus.Counter
	liveNodes    prometheus.Gauge
	viewRevision prometheus.Gauge
	legacyCalls  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		reloads: f.NewCounterVec(prometheus.CounterOpts{Name: "weir_coord_reloads_total",
			Help: "Meta reloads, by outcome (read, skipped: nothing changed, error)."}, []string{"outcome"}),
		reloadSecs: f.NewHistogram(prometheus.HistogramOpts{Name: "weir_coord_reload_duration_seconds",
			Help: "Time of one reload.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		reloadKeys: f.NewCounter(prometheus.CounterOpts{Name: "weir_coord_reload_keys_total",
			Help: "Segment and file keys read by reloads."}),
		moves: f.NewCounterVec(prometheus.CounterOpts{Name: "weir_coord_channel_moves_total",
			Help: "Channel assignments written, by reason."}, []string{"reason"}),
		gcDeleted: f.NewCounter(prometheus.CounterOpts{Name: "weir_coord_gc_deleted_files_total",
			Help: "Unreferenced files deleted by garbage collection."}),
		gcSegments: f.NewCounter(prometheus.CounterOpts{Name: "weir_coord_gc_dropped_segments_total",
			Help: "Segments of dropped collections whose files and meta were removed."}),
		liveNodes: f.NewGauge(prometheus.GaugeOpts{Name: "weir_coord_live_datanodes",
			Help: "Data nodes with a live session at the last assignment round."}),
		viewRevision: f.NewGauge(prometheus.GaugeOpts{Name: "weir_coord_view_revision",
			Help: "Metastore revision the coordinator's view reflects."}),
		legacyCalls: f.NewCounterVec(prometheus.CounterOpts{Name: "weir_coord_legacy_calls_total",
			Help: "Legacy-protocol meta writes served for lease-less data nodes, by call."}, []string{"call"}),
	}
}

// New returns a coordinator. It does nothing until Run.
func New(cfg Config, catalog Catalog, view *meta.View, nodes Nodes, bucket objstore.Bucket, reg prometheus.Registerer, logger *slog.Logger) (*Coordinator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Coordinator{cfg: cfg, catalog: catalog, view: view, nodes: nodes, bucket: bucket, logger: logger,
		now: time.Now, m: newMetrics(reg)}, nil
}

// SetLog gives garbage collection the DML channel log, so that it deletes the channels of
// dropped collections. It may be called while the coordinator runs (a log connected later).
func (c *Coordinator) SetLog(l Log) {
	c.logMu.Lock()
	defer c.logMu.Unlock()
	c.log = l
}

func (c *Coordinator) channelLog() Log {
	c.logMu.Lock()
	defer c.logMu.Unlock()
	return c.log
}

// Run reloads, assigns and collects garbage on their intervals until ctx is done.
func (c *Coordinator) Run(ctx context.Context) {
	reload := time.NewTicker(c.cfg.ReloadInterval)
	assign := time.NewTicker(c.cfg.AssignInterval)
	gc := time.NewTicker(c.cfg.GCInterval)
	defer reload.Stop()
	defer assign.Stop()
	defer gc.Stop()
	c.reload(ctx)
	c.assignLogged(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-reload.C:
			c.reload(ctx)
		case <-assign.C:
			c.assignLogged(ctx)
		case <-gc.C:
			if _, err := c.CollectGarbage(ctx); err != nil && ctx.Err() == nil {
				c.logger.Warn("garbage collection", "err", err)
			}
		}
	}
}

// reload refreshes the view and records how it went.
func (c *Coordinator) reload(ctx context.Context) {
	st, err := c.view.Reload(ctx)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			c.m.reloads.WithLabelValues("error").Inc()
			c.logger.Warn("meta reload", "err", err)
		}
		return
	case st.Skipped:
		c.m.reloads.WithLabelValues("skipped").Inc()
	default:
		c.m.reloads.WithLabelValues("read").Inc()
	}
	c.m.reloadSecs.Observe(st.Duration.Seconds())
	c.m.reloadKeys.Add(float64(st.Keys))
	c.m.viewRevision.Set(float64(st.Revision))
	c.mu.Lock()
	c.reloaded = true
	c.mu.Unlock()
}

func (c *Coordinator) assignLogged(ctx context.Context) {
	if _, err := c.Assign(ctx); err != nil && ctx.Err() == nil {
		c.logger.Warn("channel assignment", "err", err)
	}
	c.mu.Lock()
	cat, nodes := c.queryCat, c.queryNodes
	c.mu.Unlock()
	if cat == nil {
		return
	}
	done, err := AssignQueryShards(ctx, cat, nodes)
	if err != nil && ctx.Err() == nil {
		c.logger.Warn("query shard assignment", "err", err)
	}
	for _, a := range done {
		c.logger.Info("query shard assigned", "collection", a.CollectionID, "channel", a.Channel, "replica", a.Replica, "node", a.NodeID)
	}
}

// Assign runs one assignment round: every channel of every live collection on a live data
// node, balanced, each move a release of the old owner, then a new lease (which fences the old
// owner even if it never hears of the release), then a watch by the new owner. It returns the
// moves it made.
func (c *Coordinator) Assign(ctx context.Context) ([]Move, error) {
	live, err := c.nodes.Live(ctx)
	if err != nil {
		return nil, fmt.Errorf("list live data nodes: %w", err)
	}
	c.m.liveNodes.Set(float64(len(live)))
	colls, err := c.catalog.ListCollectionRecords(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := c.view.Reload(ctx); err != nil {
		return nil, err // decide from fresh leases only
	}
	channels := map[string]int64{}
	for _, coll := range colls {
		if coll.State != meta.Created {
			continue
		}
		for _, ch := range coll.VChannels {
			channels[ch] = coll.ID
		}
	}
	leases := c.view.Leases()
	moves := plan(channels, leases, live)
	moves = append(moves, c.upgrades(channels, leases, live, moves)...)
	var errs []error
	for _, mv := range moves {
		if mv.From != 0 && slices.Contains(live, mv.From) {
			if err := c.release(ctx, mv.From, mv.Channel); err != nil {
				c.logger.Warn("release channel", "channel", mv.Channel, "node", mv.From, "err", err)
			}
		}
		assign := c.catalog.AssignChannel
		if c.cfg.Protocol == ProtocolLegacy {
			assign = c.catalog.AssignChannelLegacy
		}
		l, err := assign(ctx, mv.Channel, mv.Collection, mv.To)
		if errors.Is(err, meta.ErrCollectionDropped) {
			continue // dropped since the collection list was read
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c.m.moves.WithLabelValues(mv.Reason).Inc()
		c.logger.Info("channel assigned", "channel", mv.Channel, "from", mv.From, "to", mv.To, "lease", l.Revision, "reason", mv.Reason)
		if err := c.watch(ctx, mv.To, mv.Channel, l.Revision); err != nil {
			c.logger.Warn("watch channel", "channel", mv.Channel, "node", mv.To, "err", err)
		}
	}
	// Owners that should run a channel but may have missed a notification are told again;
	// a node already running it under that lease does nothing.
	// Concurrently, each call bounded: one unresponsive node delays this round by at most
	// notifyTimeout.
	var wg sync.WaitGroup
	for ch := range channels {
		if l, ok := leases[ch]; ok && slices.Contains(live, l.NodeID) && !movedAway(moves, ch) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := c.watch(ctx, l.NodeID, ch, l.Revision); err != nil {
					c.logger.Debug("watch channel", "channel", ch, "node", l.NodeID, "err", err)
				}
			}()
		}
	}
	wg.Wait()
	return moves, errors.Join(errs...)
}

// notifyTimeout bounds each Watch or Release call to a data node: a node that is paused or cut
// off must not hold up the assignment of every other channel (its session expiring is what
// moves its channels).
const notifyTimeout = 2 * time.Second

func (c *Coordinator) watch(ctx context.Context, node int64, ch string, lease int64) error {
	ctx, cancel := context.WithTimeout(ctx, notifyTimeout)
	defer cancel()
	return c.nodes.Watch(ctx, node, ch, lease)
}

func (c *Coordinator) release(ctx context.Context, node int64, ch string) error {
	ctx, cancel := context.WithTimeout(ctx, notifyTimeout)
	defer cancel()
	return c.nodes.Release(ctx, node, ch)
}

// upgrades are the moves that put lease-less (legacy) watch info under a lease, on the same
// node, once that node runs the current protocol: release, then watch with a lease. A node that
// still runs the legacy protocol keeps its watch info and its gRPC path until it restarts as
// current.
func (c *Coordinator) upgrades(channels map[string]int64, leases map[string]meta.Lease, live []int64, moves []Move) []Move {
	if c.cfg.Protocol != ProtocolCurrent {
		return nil
	}
	var out []Move
	for ch, coll := range channels {
		l, ok := leases[ch]
		if !ok || !l.Legacy || movedAway(moves, ch) || !slices.Contains(live, l.NodeID) {
			continue
		}
		if p := c.nodes.Protocol(l.NodeID); p == "" || p == ProtocolCurrent {
			out = append(out, Move{Channel: ch, Collection: coll, From: l.NodeID, To: l.NodeID, Reason: "upgrade"})
		}
	}
	slices.SortFunc(out, func(a, b Move) int { return strings.Compare(a.Channel, b.Channel) })
	return out
}

func movedAway(moves []Move, ch string) bool {
	return slices.ContainsFunc(moves, func(m Move) bool { return m.Channel == ch })
}
