// Package querynode serves the read path: the shards (channels, one replica each) of loaded
// collections assigned to this node. A shard is loaded from the channel's target at one etcd
// revision (its committed files and checkpoint, read through the same meta.View the
// coordinator reloads), then follows the channel from the checkpoint with the data node's
// replay filter (package replay), so each row is held once (R1). Every CheckInterval the node
// re-reads what changed in etcd and hands off: newly committed files replace the channel rows
// they cover in one change of the shard (R3). Deletes hide rows by timestamp (R4, package mvcc).
// Strong reads wait until the channel is consumed up to the position the log reported when the
// request arrived, with no time ticks (R5). Assignments, like everything else the node needs,
// come from etcd, NATS and object storage: no coordinator (R6).
package querynode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/weir-db/weir/internal/batch"
	"github.com/weir-db/weir/internal/dml"
	"github.com/weir-db/weir/internal/indexbuild"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/objstore"
	"github.com/weir-db/weir/internal/replay"
	"github.com/weir-db/weir/internal/segment"
	"github.com/weir-db/weir/internal/wal"
)

// Config configures a query node.
type Config struct {
	NodeID   int64  `yaml:"-"`
	RootPath string `yaml:"-"`
	// CheckInterval is how often the node reads its assignments and hands off newly
	// committed files (at most 1 s: R3's promise to searches after a flush).
	CheckInterval time.Duration `yaml:"check-interval"`
	// HoldTTL is how long a hold on a channel's log lasts unless renewed.
	HoldTTL time.Duration `yaml:"hold-ttl"`
	// MemoryLimit bounds the rows held in memory (0: no bound); a load that would pass it fails.
	MemoryLimit int64 `yaml:"memory-limit"`
	// Staleness is how far behind a Bounded read may be (Milvus's default, 5 s).
	Staleness time.Duration `yaml:"staleness"`
}

// Defaults returns the default configuration.
func Defaults() Config {
	return Config{RootPath: "weir", CheckInterval: time.Second, HoldTTL: time.Minute, Staleness: 5 * time.Second}
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	switch {
	case c.CheckInterval <= 0 || c.CheckInterval > time.Second:
		return fmt.Errorf("querynode: check-interval must be in (0, 1s], got %s", c.CheckInterval)
	case c.HoldTTL < 4*c.CheckInterval:
		return fmt.Errorf("querynode: hold-ttl must be at least 4 check intervals, got %s", c.HoldTTL)
	case c.MemoryLimit < 0:
		return fmt.Errorf("querynode: memory-limit must not be negative")
	case c.Staleness <= 0:
		return fmt.Errorf("querynode: staleness must be positive")
	}
	return nil
}

// Deps are the services a query node reads.
type Deps struct {
	Catalog *meta.Catalog
	Store   meta.Store
	Log     *wal.Log
	Bucket  objstore.BucketReader
}

// Node is a query node.
type Node struct {
	cfg     Config
	catalog *meta.Catalog
	view    *meta.View
	log     *wal.Log
	bucket  objstore.BucketReader
	logger  *slog.Logger
	m       *metrics

	mu      sync.Mutex
	shards  map[string]*served // by channel: a node serves at most one replica of a channel
	stopped bool               // set by Stop: no shard starts any more
	wg      sync.WaitGroup
}

// served is a shard this node was assigned: loading, serving, or failed (and retried).
type served struct {
	a meta.ShardAssignment
	// ctx and cancel are set when the shard is created, before anything can stop it.
	ctx      context.Context
	cancel   context.CancelFunc
	done     chan struct{}
	progress atomic.Int32
	sh       atomic.Pointer[shard] // set once the shard serves
	err      atomic.Pointer[error]
	failedAt atomic.Int64 // when err was set (Unix nanoseconds)
	// loadFailed is set when the load failed (rather than the channel's following).
	loadFailed atomic.Bool
	reportedAt time.Time
	heldAt     time.Time // when the hold was last renewed (loop goroutine only)
	reported   meta.ShardState
	// end is the last position the log reported for the channel and when (for Bounded reads).
	end atomic.Pointer[logEnd]
}

type logEnd struct {
	pos uint64
	at  time.Time
}

// New returns a query node; Run serves its assignments.
func New(cfg Config, d Deps, reg prometheus.Registerer, logger *slog.Logger) *Node {
	if logger == nil {
		logger = slog.Default()
	}
	n := &Node{
		cfg: cfg, catalog: d.Catalog, view: meta.NewView(d.Store, cfg.RootPath, meta.ReloadChanged),
		log: d.Log, bucket: d.Bucket, logger: logger, shards: map[string]*served{},
	}
	n.m = newMetrics(reg, func() float64 { return float64(n.used()) })
	return n
}

// Run serves until ctx ends: every CheckInterval it re-reads the metastore, starts and stops
// shards to match its assignments, hands off newly committed files and reports its shards.
func (n *Node) Run(ctx context.Context) {
	t := time.NewTicker(n.cfg.CheckInterval)
	defer t.Stop()
	for {
		if err := n.Check(ctx); err != nil && ctx.Err() == nil {
			n.logger.Warn("query node check failed", "err", err)
		}
		select {
		case <-ctx.Done():
			n.stopAll()
			return
		case <-t.C:
		}
	}
}

// Check runs one round of Run.
func (n *Node) Check(ctx context.Context) error {
	if _, err := n.view.Reload(ctx); err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	all, err := n.catalog.ListShardAssignments(ctx, 0)
	if err != nil {
		return err
	}
	mine := map[string]meta.ShardAssignment{}
	for _, a := range all {
		if a.NodeID == n.cfg.NodeID {
			mine[a.Channel] = a
		}
	}
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return errors.New("querynode: stopped")
	}
	var stop []*served
	for ch, sv := range n.shards {
		a, ok := mine[ch]
		// A shard that stopped following its channel is loaded again at once; one whose
		// load failed (over the memory limit, files unreadable) is tried again after
		// loadRetry, its failure reported meanwhile.
		err := sv.failed()
		retry := err != nil && (!sv.loadFailed.Load() || time.Since(time.Unix(0, sv.failedAt.Load())) > loadRetry)
		if !ok || a.ModRevision != sv.a.ModRevision || retry {
			if retry && ok {
				n.logger.Warn("shard failed, loading it again", "channel", ch, "err", err)
			}
			stop = append(stop, sv)
			delete(n.shards, ch)
		}
	}
	var start []*served
	for ch, a := range mine {
		if n.shards[ch] == nil {
			sv := &served{a: a, done: make(chan struct{})}
			sv.ctx, sv.cancel = context.WithCancel(context.Background())
			n.shards[ch] = sv
			start = append(start, sv)
		}
	}
	n.mu.Unlock()
	for _, sv := range stop {
		n.stopShard(ctx, sv)
	}
	for _, sv := range start {
		n.startShard(sv)
	}
	n.mu.Lock()
	current := make([]*served, 0, len(n.shards))
	for _, sv := range n.shards {
		current = append(current, sv)
	}
	n.mu.Unlock()
	var errs []error
	rows, segs := map[int64]int64{}, map[int64]int{}
	targets := newTargets(n)
	for _, sv := range current {
		if err := n.tend(ctx, sv, targets); err != nil {
			errs = append(errs, fmt.Errorf("shard %s: %w", sv.a.Channel, err))
		}
		rows[sv.a.CollectionID] += sv.reported.Rows
		if sh := sv.sh.Load(); sh != nil {
			sh.mu.RLock()
			segs[sv.a.CollectionID] += len(sh.segs)
			sh.mu.RUnlock()
		}
	}
	n.m.rows.Reset()
	n.m.segments.Reset()
	for coll, r := range rows {
		n.m.rows.WithLabelValues(strconv.FormatInt(coll, 10)).Set(float64(r))
		n.m.segments.WithLabelValues(strconv.FormatInt(coll, 10)).Set(float64(segs[coll]))
	}
	n.noteIndexes()
	return errors.Join(errs...)
}

func (sv *served) failed() error {
	if p := sv.err.Load(); p != nil {
		return *p
	}
	return nil
}

func (sv *served) fail(err error) {
	if sv.err.CompareAndSwap(nil, &err) {
		sv.failedAt.Store(time.Now().UnixNano())
	}
}

// loadRetry is how long a shard whose load failed waits before it is loaded again.
const loadRetry = 10 * time.Second

func (n *Node) startShard(sv *served) {
	ctx := sv.ctx
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer close(sv.done)
		sh, reader, err := n.load(ctx, sv)
		if err != nil {
			if ctx.Err() == nil {
				n.logger.Error("shard load failed", "channel", sv.a.Channel, "err", err)
				sv.loadFailed.Store(true)
				sv.fail(err)
			}
			return
		}
		sv.sh.Store(sh)
		n.m.shards.Inc()
		n.logger.Info("shard serving", "collection", sv.a.CollectionID, "channel", sv.a.Channel,
			"replica", sv.a.Replica, "rows", sh.rowsN, "from", sh.consumed)
		err = n.consume(ctx, sh, reader)
		reader.Close()
		if ctx.Err() == nil {
			n.logger.Error("shard stopped following its channel", "channel", sv.a.Channel, "err", err)
			sv.fail(err)
		}
	}()
}

func (n *Node) stopShard(ctx context.Context, sv *served) {
	sv.cancel()
	<-sv.done
	if sh := sv.sh.Swap(nil); sh != nil {
		n.m.shards.Dec()
		sh.release()
	}
	n.m.consumed.DeleteLabelValues(sv.a.Channel)
	n.m.lag.DeleteLabelValues(sv.a.Channel)
	if err := n.catalog.DeleteHold(ctx, sv.a.Channel, n.holder()); err != nil {
		n.logger.Warn("delete hold", "channel", sv.a.Channel, "err", err)
	}
}

// Stop stops every shard, waits for them and removes the node's holds on their channels (Run
// stops them when its context ends); the node starts no shard afterwards.
func (n *Node) Stop() { n.stopAll() }

func (n *Node) stopAll() {
	n.mu.Lock()
	n.stopped = true
	shards := n.shards
	n.shards = map[string]*served{}
	n.mu.Unlock()
	for _, sv := range shards {
		sv.cancel()
	}
	n.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, sv := range shards {
		if sh := sv.sh.Swap(nil); sh != nil {
			sh.release()
		}
		if err := n.catalog.DeleteHold(ctx, sv.a.Channel, n.holder()); err != nil && ctx.Err() == nil {
			n.logger.Warn("delete hold", "channel", sv.a.Channel, "err", err)
		}
	}
}

func (n *Node) holder() string { return fmt.Sprintf("querynode-%d", n.cfg.NodeID) }

// load reads the shard's target from the view (one revision), holds the channel's log from the
// target's checkpoint, reads the target's files and opens the channel after the checkpoint. A
// log truncated past the checkpoint meanwhile (the owner moved on before the hold landed) means
// a newer target: it reads that one.
func (n *Node) load(ctx context.Context, sv *served) (*shard, *wal.Reader, error) {
	coll, err := n.catalog.GetCollection(ctx, sv.a.CollectionID)
	if err != nil {
		return nil, nil, err
	}
	for attempt := 0; ; attempt++ {
		sh, err := newShard(coll, sv.a.Channel)
		if err != nil {
			return nil, nil, err
		}
		snap := n.view.Snapshot(coll.ID)
		cp := snap.Checkpoints[sv.a.Channel]
		if err := n.hold(ctx, sv, cp.Position); err != nil {
			return nil, nil, err
		}
		dropped, err := n.catalog.DroppedPartitions(ctx, coll.ID)
		if err != nil {
			return nil, nil, err
		}
		var jobs []fileJob
		var chanSegs []*meta.Segment
		for _, s := range snap.Segments {
			if s.Channel == sv.a.Channel {
				chanSegs = append(chanSegs, &s)
				sh.filter.Commit(s)
				if !dropped[s.PartitionID] {
					jobs = append(jobs, filesOf(s, snap.Files[s.ID])...)
				}
			}
		}
		loaded, err := n.readFiles(ctx, sh, jobs, func(done int) {
			sv.progress.Store(int32(100 * done / max(len(jobs), 1)))
		})
		if err != nil {
			return nil, nil, err
		}
		sh.mu.Lock()
		sh.dropped = dropped
		sh.apply(loaded)
		for _, j := range jobs {
			sh.files[j.file.ID] = true // delete files too, which add no piece
			sh.segs[j.seg.ID] = true
		}
		sh.consumed, sh.consumedTs, sh.consumedAt = cp.Position, cp.Timestamp, cp.LogTime
		sh.mu.Unlock()
		// The fields' metrics, for interim indexes over growing rows.
		defs, err := n.catalog.ListIndexes(ctx, coll.ID)
		if err != nil {
			sh.release()
			return nil, nil, err
		}
		for _, d := range defs {
			if spec, err := indexbuild.SpecOf(d.Params); err == nil {
				sh.metrics[d.FieldID] = spec.Metric
			}
		}
		// The segments' indexes, before the shard serves (the next handoff retries a failure).
		recs, err := n.catalog.ListSegmentIndexes(ctx, coll.ID)
		if err != nil {
			sh.release()
			return nil, nil, err
		}
		ready, err := n.prepareIndexes(ctx, sh, (&target{indexes: recs}).indexRecords(sv.a.Channel))
		if errors.Is(err, ErrMemoryLimit) {
			// The indexes count against the limit as rows do: a load they would pass fails.
			for _, r := range ready {
				r.discard(sh)
			}
			sh.release()
			return nil, nil, err
		}
		if err != nil {
			n.logger.Warn("loading indexes: their segments are searched exactly until the next round", "channel", sv.a.Channel, "err", err)
		}
		if len(ready) > 0 {
			sh.mu.Lock()
			sh.attach(ready)
			sh.mu.Unlock()
		}
		sh.seenRev.Store(snap.Revision)
		// The filter takes what committed segments hold as held: their highest records must
		// still be the ones committed, or new records at reused positions would be dropped.
		err = replay.CheckHighest(ctx, n.log, sv.a.Channel, cp, chanSegs)
		var reader *wal.Reader
		if err == nil {
			reader, err = n.log.Follow(ctx, sv.a.Channel, wal.Anchor{Pos: cp.Position, Time: cp.LogTime})
		}
		if errors.Is(err, wal.ErrTruncated) && attempt < 5 {
			sh.release()
			if _, err := n.view.Reload(ctx); err != nil {
				return nil, nil, err
			}
			continue
		}
		if err != nil {
			sh.release()
			return nil, nil, err
		}
		sv.progress.Store(100)
		return sh, reader, nil
	}
}

func (n *Node) hold(ctx context.Context, sv *served, pos uint64) error {
	err := n.catalog.PutHold(ctx, sv.a.Channel, meta.Hold{Reader: n.holder(), Position: pos, ExpiresAt: time.Now().Add(n.cfg.HoldTTL)})
	if err == nil {
		sv.heldAt = time.Now()
	}
	return err
}

// fileJob is a committed file a shard holds: the rows of an L1 segment's insert file, or the
// deletes of an L0 segment's delete file.
type fileJob struct {
	seg  meta.Segment
	file meta.File
}

func filesOf(s meta.Segment, files []meta.File) []fileJob {
	if s.State == meta.SegmentDropped {
		return nil
	}
	var out []fileJob
	for _, f := range files {
		if (s.Level == meta.L0 && f.Kind == meta.DeleteFile) || (s.Level != meta.L0 && f.Kind == meta.InsertFile) {
			out = append(out, fileJob{s, f})
		}
	}
	return out
}

// loaded is what files read: pieces of rows and deletes, to apply to a shard in one change.
type loaded struct {
	pieces  []*piece
	deletes []deleteRow
}

type deleteRow struct {
	scope int64
	k     key
	ts    uint64
}

// readFiles reads jobs from object storage, refusing to pass the node's memory limit. On
// failure nothing it read is kept, and its reservation is returned.
func (n *Node) readFiles(ctx context.Context, sh *shard, jobs []fileJob, progress func(int)) (_ loaded, err error) {
	var reserved int64
	defer func() {
		if err != nil {
			sh.bytes.Add(-reserved)
		}
	}()
	var out loaded
	for i, j := range jobs {
		b, err := n.reserve(sh, j.file.Bytes)
		if err != nil {
			return loaded{}, err
		}
		reserved += b
		data, err := n.bucket.Get(ctx, j.file.Key)
		if err != nil {
			return loaded{}, fmt.Errorf("read %s: %w", j.file.Key, err)
		}
		if j.file.Kind == meta.DeleteFile {
			d, err := segment.ReadDeletes(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				return loaded{}, fmt.Errorf("read %s: %w", j.file.Key, err)
			}
			for r, k := range keysOf(dml.PKs{Ints: d.IntPKs, Strs: d.StringPKs}) {
				out.deletes = append(out.deletes, deleteRow{scope: j.seg.PartitionID, k: k, ts: d.TS[r]})
			}
		} else {
			tbl, err := segment.ReadInsert(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				return loaded{}, fmt.Errorf("read %s: %w", j.file.Key, err)
			}
			first := len(out.pieces)
			tr := array.NewTableReader(tbl, 1<<16)
			for seq := 0; tr.Next(); seq++ {
				rec := tr.RecordBatch()
				rec.Retain()
				p, err := sh.newPiece(rec, j.seg.PartitionID, j.file.ID, j.file.MaxPos)
				if p != nil {
					p.seq, p.seg = seq, j.seg.ID
				}
				if err != nil {
					rec.Release()
					tr.Release()
					tbl.Release()
					return loaded{}, fmt.Errorf("read %s: %w", j.file.Key, err)
				}
				out.pieces = append(out.pieces, p)
			}
			tr.Release()
			tbl.Release()
			if first < len(out.pieces) {
				// The file's reservation goes with its first piece, and back when it is dropped.
				out.pieces[first].bytes = b
			}
		}
		progress(i + 1)
	}
	return out, nil
}

// reserve counts b more bytes held for sh, failing when the node would pass its memory limit.
func (n *Node) reserve(sh *shard, b int64) (int64, error) {
	b = max(b, 0) * 2 // decoded columns take more than their compressed file
	used := n.usedBy(sh) + sh.bytes.Load()
	if n.cfg.MemoryLimit > 0 && used+b > n.cfg.MemoryLimit {
		return 0, fmt.Errorf("query node %d: loading needs about %d more bytes, over its memory limit of %d bytes (%d in use): %w",
			n.cfg.NodeID, b, n.cfg.MemoryLimit, used, ErrMemoryLimit)
	}
	sh.bytes.Add(b)
	return b, nil
}

// used is the memory held by the shards serving (a shard loading counts its own).
func (n *Node) used() int64 { return n.usedBy(nil) }

// usedBy is used without the shard except.
func (n *Node) usedBy(except *shard) int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	var b int64
	for _, sv := range n.shards {
		if sh := sv.sh.Load(); sh != nil && sh != except {
			b += sh.bytes.Load()
		}
	}
	return b
}

// ErrMemoryLimit is a load refused because it would pass the node's memory limit.
var ErrMemoryLimit = errors.New("memory limit reached")

// apply makes loaded part of the shard: the channel's rows that the files now hold are dropped
// first (a file's row and its channel copy have one key and one timestamp), then the files'
// rows and deletes are added. Called with mu held for writing.
func (s *shard) apply(l loaded) {
	s.dropPieces(func(p *piece) bool { return p.file == 0 && p.pos <= s.filter.Inserts(p.part) })
	for _, p := range l.pieces {
		s.addPiece(p)
	}
	for _, d := range l.deletes {
		s.addDelete(d.scope, d.k, d.ts)
	}
}

// consume applies the channel to sh until ctx ends or the channel fails.
func (n *Node) consume(ctx context.Context, sh *shard, r *wal.Reader) error {
	for {
		m, err := r.Next(ctx)
		if err != nil {
			return err
		}
		if err := sh.applyMessage(m); err != nil {
			return fmt.Errorf("position %d: %w", m.Pos, err)
		}
		n.m.consumed.WithLabelValues(sh.ch).Set(float64(m.Pos))
	}
}

// applyMessage applies one channel message: what the replay filter keeps of its rows and
// deletes, at its stored timestamp.
func (s *shard) applyMessage(m wal.Message) error {
	h, err := dml.DecodeHeader(m.Data)
	if err != nil {
		return err
	}
	if h.CollectionID != s.coll.ID {
		return fmt.Errorf("message of collection %d on a channel of collection %d", h.CollectionID, s.coll.ID)
	}
	// Only this goroutine writes consumedTs, so reading it here needs no lock.
	ts := replay.Stamp(h.Timestamp, s.consumedTs)
	var p *piece
	var dels []deleteRow
	switch h.Kind {
	case dml.Insert, dml.Upsert, dml.UpsertAllPartitions:
		msg, err := dml.Decode(m.Data)
		if err != nil {
			return err
		}
		rec, err := replay.Rows(msg.Body, s.sch, ts)
		if err != nil {
			return err
		}
		if p, err = s.newPiece(rec, h.PartitionID, 0, m.Pos); err != nil {
			rec.Release()
			return err
		}
		if h.Kind != dml.Insert {
			for _, k := range p.keys {
				dels = append(dels, deleteRow{scope: h.DeleteScope(), k: k, ts: ts})
			}
		}
	case dml.Delete:
		msg, err := dml.Decode(m.Data)
		if err != nil {
			return err
		}
		pks, err := dml.DecodePKs(msg.Body)
		if err != nil {
			return err
		}
		for _, k := range keysOf(pks) {
			dels = append(dels, deleteRow{scope: h.PartitionID, k: k, ts: ts})
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	hd := h
	hd.Timestamp = ts
	keepDel, keepRows := s.filter.Keep(m.Pos, hd)
	if keepDel {
		for _, d := range dels {
			s.addDelete(d.scope, d.k, d.ts)
		}
	}
	if p != nil {
		if keepRows && !s.dropped[p.part] {
			p.bytes = int64(batch.RecordBytes(p.rec))
			s.addPiece(p)
			s.bytes.Add(p.bytes)
		} else {
			p.rec.Release()
		}
	}
	s.advance(m.Pos, ts, m.Time.UnixNano())
	return nil
}

// tend hands off newly committed files, renews the hold and reports the shard's state.
func (n *Node) tend(ctx context.Context, sv *served, targets *targets) error {
	sh := sv.sh.Load()
	var handoffErr error
	if sh != nil {
		// A failed handoff (a file unreadable for now, the memory limit) is retried at the next
		// check; the hold is renewed and the state reported all the same.
		handoffErr = n.handoff(ctx, sh, targets)
		n.startInterims(sv, sh)
		if end, err := n.log.LastPosition(ctx, sv.a.Channel); err == nil {
			sv.end.Store(&logEnd{pos: end, at: time.Now()})
			pos, _, _ := sh.position()
			n.m.lag.WithLabelValues(sv.a.Channel).Set(float64(end) - float64(pos))
		}
		if time.Since(sv.heldAt) > n.cfg.HoldTTL/4 {
			pos, _, _ := sh.position()
			// The hold follows the channel rows the shard still needs: everything after
			// the highest position that every partition's files hold is at most what it
			// consumed.
			if err := n.hold(ctx, sv, pos); err != nil {
				handoffErr = errors.Join(handoffErr, err)
			}
		}
	}
	st := meta.ShardState{CollectionID: sv.a.CollectionID, Channel: sv.a.Channel, Replica: sv.a.Replica,
		NodeID: n.cfg.NodeID, Assignment: sv.a.ModRevision, Serving: sh != nil, Progress: int(sv.progress.Load())}
	if err := sv.failed(); err != nil && sh == nil {
		st.Error = err.Error()
	}
	if sh != nil {
		sh.mu.RLock()
		st.Rows = sh.rowsN
		sh.mu.RUnlock()
	}
	// A change of state is reported at once; a change of the row count alone at most every
	// rowsReport, so that ingestion does not write a state a second per shard.
	same := st
	same.Rows = sv.reported.Rows
	if same == sv.reported && (st.Rows == sv.reported.Rows || time.Since(sv.reportedAt) < rowsReport) {
		return handoffErr
	}
	if err := n.catalog.ReportShard(ctx, st); err != nil {
		if errors.Is(err, meta.ErrLoadConflict) {
			return handoffErr // reassigned or released: the next round stops it
		}
		return errors.Join(handoffErr, err)
	}
	sv.reported, sv.reportedAt = st, time.Now()
	return handoffErr
}

// rowsReport is how often a shard's row count alone is reported.
const rowsReport = 10 * time.Second

// targets reads, once per check and collection, what the handoffs of its shards compare with:
// one snapshot of the view and the dropped partitions.
type targets struct {
	n     *Node
	byCol map[int64]*target
}

type target struct {
	snap    meta.Snapshot
	dropped map[int64]bool
	indexes []*meta.SegmentIndex
}

func newTargets(n *Node) *targets { return &targets{n: n, byCol: map[int64]*target{}} }

func (ts *targets) of(ctx context.Context, coll int64) (*target, error) {
	if t := ts.byCol[coll]; t != nil {
		return t, nil
	}
	dropped, err := ts.n.catalog.DroppedPartitions(ctx, coll)
	if err != nil {
		return nil, err
	}
	t := &target{snap: ts.n.view.Snapshot(coll), dropped: dropped}
	if t.indexes, err = ts.n.catalog.ListSegmentIndexes(ctx, coll); err != nil {
		return nil, err
	}
	ts.byCol[coll] = t
	return t, nil
}

// handoff loads the files committed for the shard's channel since it last looked and drops the
// channel rows they hold, in one change of the shard (R3).
func (n *Node) handoff(ctx context.Context, sh *shard, targets *targets) error {
	rev := n.view.Revision()
	if rev == sh.seenRev.Load() {
		return nil // nothing in the metastore changed since the shard last looked
	}
	t, err := targets.of(ctx, sh.coll.ID)
	if err != nil {
		return err
	}
	snap, dropped := t.snap, t.dropped
	sh.mu.RLock()
	var jobs []fileJob
	var segs []meta.Segment
	for _, s := range snap.Segments {
		if s.Channel != sh.ch {
			continue
		}
		segs = append(segs, s)
		if dropped[s.PartitionID] {
			continue
		}
		for _, j := range filesOf(s, snap.Files[s.ID]) {
			if !sh.files[j.file.ID] {
				jobs = append(jobs, j)
			}
		}
	}
	sh.mu.RUnlock()
	// With no new file the filter is still raised and the drop still runs: cheap, and a filter
	// that lagged the view (files read at load beside an older record) heals here.
	var l loaded
	if len(jobs) > 0 {
		if l, err = n.readFiles(ctx, sh, jobs, func(int) {}); err != nil {
			return err
		}
	}
	start := time.Now()
	sh.mu.Lock()
	for _, s := range segs {
		sh.filter.Commit(s)
	}
	sh.apply(l)
	for _, j := range jobs {
		sh.files[j.file.ID] = true
		sh.segs[j.seg.ID] = true
	}
	// The rows of a dropped partition go, from files and from the channel alike, and the
	// channel's later rows of it are not taken.
	sh.dropped = dropped
	sh.dropPieces(func(p *piece) bool { return dropped[p.part] })
	sh.mu.Unlock()
	if len(jobs) > 0 {
		n.m.handoffs.Inc()
		n.m.handoffPause.Observe(time.Since(start).Seconds())
	}
	// Then the indexes committed for the shard's segments: each swapped in by itself.
	ready, err := n.prepareIndexes(ctx, sh, t.indexRecords(sh.ch))
	if len(ready) > 0 {
		start := time.Now()
		sh.mu.Lock()
		sh.attach(ready)
		sh.mu.Unlock()
		n.m.handoffPause.Observe(time.Since(start).Seconds())
	}
	if err != nil {
		return err // the next round tries again, the view revision not recorded as seen
	}
	sh.seenRev.Store(snap.Revision)
	return nil
}
