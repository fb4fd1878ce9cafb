package datanode

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/weir-db/weir/internal/batch"
	"github.com/weir-db/weir/internal/dml"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/replay"
	"github.com/weir-db/weir/internal/schema"
	"github.com/weir-db/weir/internal/tso"
	"github.com/weir-db/weir/internal/wal"
)

// pipeline is one channel's consumer and syncer. The consumer goroutine (run) owns every
// buffer; the syncer goroutine (syncLoop) owns the committed view (segment records,
// checkpoint) and commits cut syncs one at a time, in order.
type pipeline struct {
	n     *Node
	ch    string
	lease meta.Lease
	fence *meta.Fence
	// token names this pipeline's files (segment keys): the revision of its claim of the
	// channel, or the lease's when it could not claim (a legacy pipeline with a coordinator of
	// the earlier release). Garbage collection keeps the files of current tokens only.
	token  int64
	writer metaWriter
	coll   *meta.Collection
	schema *arrow.Schema
	pkName string
	strPK  bool
	logger *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when both goroutines have returned
	tasks  chan *syncTask

	errMu sync.Mutex
	err   error

	// restartAfter is the earliest a failed pipeline may be restarted under the same lease;
	// backoff is the delay that set it.
	restartAfter time.Time
	backoff      time.Duration

	// Consumer state.
	growing      map[int64]*segBuf // partition ID → growing L1 segment
	l0           map[int64]*segBuf // partition ID (or dml.AllPartitions) → L0 delete segment
	replay       *replay.Filter    // what committed segments held at start (invariant 3)
	consumed     uint64            // last position consumed
	consumedTs   uint64
	consumedAt   int64  // when the log stored the last position consumed (wal.Anchor.Time)
	lastQueuedCp uint64 // checkpoint of the last task queued

	// held counts the bytes this pipeline holds in buffers and unfinished syncs; the consumer
	// adds, the syncer subtracts.
	held atomic.Int64

	// Syncer state.
	committed map[int64]*meta.Segment // by segment ID, as last committed
	cp        meta.Checkpoint
	// marks are committed checkpoints not yet known to be too new to truncate below, oldest
	// first; truncatedAt is when truncation last ran (see truncate.go).
	marks       []cpMark
	truncatedAt time.Time
}

// segBuf is a segment and the rows buffered for it since its last sync.
type segBuf struct {
	seg    meta.Segment // identity and committed totals as the consumer knows them
	recs   []arrow.RecordBatch
	dels   dml.PKs
	delTS  []uint64
	delPos []uint64
	rows   int64
	bytes  int64
	minPos uint64
	maxPos uint64
	minTs  uint64
	maxTs  uint64
	maxAt  int64 // when the log stored position maxPos (wal.Anchor.Time)
	// beforeAt is when the log stored position minPos-1, the checkpoint a sync cut before
	// this buffer's rows takes (wal.Anchor.Time).
	beforeAt  int64
	firstAt   time.Time // when the oldest buffered row arrived
	lastAt    time.Time // when the latest row arrived
	totalRows int64     // committed + buffered
	totalSize int64
	sealed    bool
}

func (b *segBuf) empty() bool { return b.rows == 0 }

// segSnap is a segment's share of one sync: the rows cut from its buffer and the state the
// segment is in once they are committed.
type segSnap struct {
	seg    meta.Segment // identity (ID, collection, partition, channel, level, start, created)
	state  meta.SegmentState
	recs   []arrow.RecordBatch
	dels   dml.PKs
	delTS  []uint64
	delPos []uint64
	rows   int64
	minPos uint64
	maxPos uint64
	minTs  uint64
	maxTs  uint64
	maxAt  int64
}

// syncTask is one sync: segments to write and commit, then the checkpoint.
type syncTask struct {
	segs    []segSnap
	cp      uint64
	cpTs    uint64
	cpAt    int64 // when the log stored position cp
	release int64
	cutAt   time.Time
	// flushed is closed when the task is committed; used by tests and flush waiters.
	flushed chan struct{}
}

func (n *Node) startPipeline(ctx context.Context, lease meta.Lease) (*pipeline, error) {
	// Claim the channel before reading its state: whatever an earlier pipeline under this
	// lease still had in flight either is in what we read next or can no longer commit.
	fence := n.catalog.Fence(lease)
	legacy := n.cfg.Protocol == ProtocolLegacy || lease.Legacy
	if legacy && n.coord == nil {
		return nil, fmt.Errorf("watch %s: lease-less watch info needs the coordinator's legacy service, which this node has no client for", lease.Channel)
	}
	var legacyEpoch int64
	if legacy {
		var err error
		if legacyEpoch, err = claimLegacy(ctx, n.coord, lease.Channel, n.cfg.NodeID, lease); err != nil {
			return nil, err
		}
		if legacyEpoch == 0 {
			n.logger.Warn("the coordinator has no ClaimChannel (an earlier release): this pipeline does not fence an earlier one under the same watch info", "channel", lease.Channel)
		}
	} else if err := fence.Claim(ctx, n.cfg.NodeID); err != nil {
		return nil, err
	}
	coll, err := n.catalog.GetCollection(ctx, lease.CollectionID)
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", lease.Channel, err)
	}
	sch, err := batch.ArrowSchema(coll.Schema)
	if err != nil {
		return nil, err
	}
	pk := schema.PrimaryKey(coll.Schema)
	cp, err := n.catalog.ReadCheckpoint(ctx, lease.Channel)
	if err != nil {
		return nil, err
	}
	segs, err := n.catalog.ListChannelSegments(ctx, coll.ID, lease.Channel)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithCancel(context.Background())
	p := &pipeline{
		n: n, ch: lease.Channel, lease: lease, fence: fence,
		coll: coll, schema: sch, pkName: pk.GetName(), strPK: pk.GetDataType() == schemapb.DataType_VarChar,
		logger: n.logger.With("channel", lease.Channel, "lease", lease.Revision),
		ctx:    pctx, cancel: cancel, done: make(chan struct{}),
		tasks:        make(chan *syncTask, 64),
		growing:      map[int64]*segBuf{},
		l0:           map[int64]*segBuf{},
		replay:       replay.NewFilter(),
		committed:    map[int64]*meta.Segment{},
		cp:           cp,
		consumed:     cp.Position,
		consumedTs:   cp.Timestamp,
		consumedAt:   cp.LogTime,
		lastQueuedCp: cp.Position,
	}
	p.noteCheckpoint(cp)
	p.token = cmp.Or(fence.Epoch(), legacyEpoch, lease.Revision)
	p.writer = directWriter{p}
	if legacy {
		p.writer = legacyWriter{p: p, coord: n.coord, epoch: legacyEpoch}
	}
	for _, s := range segs {
		s := s
		p.committed[s.ID] = s
		p.replay.Commit(*s)
		switch s.Level {
		case meta.L0:
			p.l0[s.PartitionID] = &segBuf{seg: *s, totalRows: s.Rows, totalSize: s.Bytes}
		default:
			if s.State == meta.Growing {
				p.growing[s.PartitionID] = &segBuf{seg: *s, totalRows: s.Rows, totalSize: s.Bytes}
			}
		}
	}
	// The replay filter drops every message at or below the highest position a committed
	// segment holds, which can lie above the checkpoint (a buffer of another partition or
	// level holds the checkpoint back): that record must still be the one committed, or new
	// records at positions the log lost and reused would be dropped as replays.
	if err := replay.CheckHighest(ctx, n.log, lease.Channel, cp, segs); err != nil {
		cancel()
		n.noteRewound(lease.Channel, err)
		return nil, fmt.Errorf("watch %s: %w", lease.Channel, err)
	}
	// Follow resumes exactly after the checkpoint, and only if the channel still holds the
	// record the checkpoint names: a channel that moved backward (its server lost
	// acknowledged records and reuses their positions) stops here, loudly, instead of
	// skipping the new records at the reused positions.
	reader, err := n.log.Follow(pctx, lease.Channel, wal.Anchor{Pos: cp.Position, Time: cp.LogTime})
	if err != nil {
		cancel()
		n.noteRewound(lease.Channel, err)
		return nil, fmt.Errorf("watch %s: read after %d: %w", lease.Channel, cp.Position, err)
	}
	n.m.pipelines.Inc()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.run(reader) }()
	go func() { defer wg.Done(); p.syncLoop() }()
	go func() {
		wg.Wait()
		reader.Close()
		p.n.free(p.held.Swap(0))
		n.m.pipelines.Dec()
		close(p.done)
		n.wg.Done()
	}()
	p.logger.Info("channel pipeline started", "collection", coll.ID, "checkpoint", cp.Position,
		"segments", len(segs), "node", n.cfg.NodeID, "legacy", legacy)
	return p, nil
}

// fail stops the pipeline with err (the first error wins) and cancels everything it runs.
func (p *pipeline) fail(err error) {
	p.errMu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.errMu.Unlock()
	p.cancel()
}

func (p *pipeline) stopErr() error {
	p.errMu.Lock()
	defer p.errMu.Unlock()
	return p.err
}

func (p *pipeline) stopped() bool {
	select {
	case <-p.ctx.Done():
		return true
	default:
		return false
	}
}

// stop cancels the pipeline and waits until it has released everything.
func (p *pipeline) stop() {
	p.fail(errStopped)
	<-p.done
}

var errStopped = errors.New("datanode: pipeline stopped")

// run consumes the channel and cuts syncs.
func (p *pipeline) run(reader *wal.Reader) {
	defer close(p.tasks)
	msgs := make(chan wal.Message, 1)
	readErr := make(chan error, 1)
	readerDone := make(chan struct{})
	// Every way out of run has the pipeline's context cancelled (or the reader already
	// stopped), so waiting for the reader here is bounded; it keeps Reader.Close, called after
	// run returns, from racing a Next still in flight.
	defer func() { <-readerDone }()
	go func() {
		defer close(readerDone)
		for {
			m, err := reader.Next(p.ctx)
			if err != nil {
				readErr <- err
				return
			}
			select {
			case msgs <- m:
			case <-p.ctx.Done():
				readErr <- p.ctx.Err()
				return
			}
		}
	}()
	tick := time.NewTicker(p.n.cfg.CheckInterval)
	defer tick.Stop()
	for {
		if err := p.waitForMemory(); err != nil {
			return
		}
		select {
		case <-p.ctx.Done():
			return
		case err := <-readErr:
			if p.ctx.Err() == nil {
				if !p.n.noteRewound(p.ch, err) {
					p.logger.Error("channel read failed", "err", err)
				}
				p.fail(fmt.Errorf("read %s: %w", p.ch, err))
			}
			return
		case m := <-msgs:
			if err := p.handle(m); err != nil {
				p.logger.Error("channel message rejected", "position", m.Pos, "err", err)
				p.fail(err)
				return
			}
		case now := <-tick.C:
			p.checkTimers(now)
		}
	}
}

// waitForMemory blocks while the node is over its memory limit, after cutting a sync of
// everything this pipeline holds so that memory can come back.
func (p *pipeline) waitForMemory() error {
	over, freed := p.n.overLimit()
	if !over {
		return nil
	}
	p.cut(nil, func(*segBuf) bool { return true })
	for over {
		select {
		case <-freed:
		case <-p.ctx.Done():
			return p.ctx.Err()
		}
		over, freed = p.n.overLimit()
	}
	return nil
}

func (p *pipeline) handle(m wal.Message) error {
	h, err := dml.DecodeHeader(m.Data)
	if err != nil {
		return fmt.Errorf("position %d: %w", m.Pos, err)
	}
	if h.CollectionID != p.coll.ID {
		return fmt.Errorf("position %d: message of collection %d on a channel of collection %d", m.Pos, h.CollectionID, p.coll.ID)
	}
	p.n.m.messages.WithLabelValues(h.Kind.String()).Inc()
	// Timestamps grow with positions within a channel even when several proxies (whose
	// clocks differ) append to it: a message is stored with max(its timestamp, previous+1).
	// A delete then applies exactly to the rows positioned before it.
	if ts := replay.Stamp(h.Timestamp, p.consumedTs); ts != h.Timestamp {
		p.n.m.restamped.Inc()
		p.n.m.restampedBy.Observe(float64((ts-h.Timestamp)>>tso.LogicalBits) / 1000)
		h.Timestamp = ts
	}
	defer func() {
		p.consumed = m.Pos
		p.consumedTs = h.Timestamp
		p.consumedAt = m.Time.UnixNano()
		p.n.m.consumed.WithLabelValues(p.ch).Set(float64(m.Pos))
		p.n.lastConsumed.Store(int64(time.Since(epoch)))
	}()
	del, ins := p.replay.Keep(m.Pos, h)
	switch h.Kind {
	case dml.Insert, dml.Delete, dml.Upsert, dml.UpsertAllPartitions:
		if !del && h.Kind != dml.Insert {
			p.n.m.replayDropped.WithLabelValues("delete").Inc()
		}
		if !ins && h.Kind != dml.Delete {
			p.n.m.replayDropped.WithLabelValues("insert").Inc()
		}
	}
	switch h.Kind {
	case dml.Insert:
		if !ins {
			return nil
		}
		return p.insert(m, h)
	case dml.Delete:
		if !del {
			return nil
		}
		return p.delete(m, h)
	case dml.Upsert, dml.UpsertAllPartitions:
		if !del && !ins {
			return nil
		}
		return p.upsert(m, h, del, ins)
	case dml.Flush:
		// Seal every growing segment and sync everything; the checkpoint passes the marker
		// once all of it is committed.
		for _, b := range p.growing {
			b.sealed = true
		}
		p.cut(&cpAt{pos: m.Pos, ts: h.Timestamp, at: m.Time.UnixNano()}, func(*segBuf) bool { return true })
	}
	return nil
}

func (p *pipeline) insert(m wal.Message, h dml.Header) error {
	rec, err := p.decodeRows(m, h)
	if err != nil {
		return err
	}
	return p.insertRows(m, h, rec)
}

// upsert applies an upsert message: the delete of its rows' keys in its delete scope (when del)
// and the rows (when ins), both at the message's timestamp.
func (p *pipeline) upsert(m wal.Message, h dml.Header, del, ins bool) error {
	rec, err := p.decodeRows(m, h)
	if err != nil {
		return err
	}
	if del {
		pks, err := replay.Keys(rec, p.pkName)
		if err != nil {
			rec.Release()
			return fmt.Errorf("position %d: %w", m.Pos, err)
		}
		dh := h
		dh.PartitionID = h.DeleteScope()
		if err := p.addDeletes(m, dh, pks, int64(8*pks.Len())); err != nil {
			rec.Release()
			return err
		}
	}
	if !ins {
		rec.Release()
		return nil
	}
	return p.insertRows(m, h, rec)
}

// decodeRows decodes the rows of an insert or upsert message, stamped with h's timestamp.
func (p *pipeline) decodeRows(m wal.Message, h dml.Header) (arrow.RecordBatch, error) {
	msg, err := dml.Decode(m.Data)
	if err != nil {
		return nil, err
	}
	rec, err := replay.Rows(msg.Body, p.schema, h.Timestamp)
	if err != nil {
		return nil, fmt.Errorf("position %d of a channel of collection %d: %w", m.Pos, p.coll.ID, err)
	}
	return rec, nil
}

// insertRows buffers rec, an insert's rows, in its partition's growing segment.
func (p *pipeline) insertRows(m wal.Message, h dml.Header, rec arrow.RecordBatch) error {
	b, err := p.growingSegment(h.PartitionID, m.Pos)
	if err != nil {
		rec.Release()
		return err
	}
	size := int64(batch.RecordBytes(rec))
	now := p.n.now()
	if b.empty() {
		b.minPos, b.minTs, b.beforeAt, b.firstAt = m.Pos, h.Timestamp, p.consumedAt, now
	}
	b.recs = append(b.recs, rec)
	b.rows += rec.NumRows()
	b.bytes += size
	b.maxPos, b.maxTs, b.maxAt, b.lastAt = m.Pos, max(b.maxTs, h.Timestamp), m.Time.UnixNano(), now
	b.totalRows += rec.NumRows()
	b.totalSize += size
	p.held.Add(size)
	p.n.reserve(size)
	p.n.m.rows.Add(float64(rec.NumRows()))

	// Seal at a message boundary once a limit is reached: a message is never split.
	if b.totalRows >= p.n.cfg.SealRows || b.totalSize >= p.n.cfg.SealBytes {
		b.sealed = true
	}
	if b.sealed || b.bytes >= p.n.cfg.SyncBufferBytes {
		p.cut(nil, func(x *segBuf) bool { return x == b })
	}
	return nil
}

func (p *pipeline) delete(m wal.Message, h dml.Header) error {
	msg, err := dml.Decode(m.Data)
	if err != nil {
		return err
	}
	pks, err := dml.DecodePKs(msg.Body)
	if err != nil {
		return fmt.Errorf("position %d: %w", m.Pos, err)
	}
	if (pks.Strs != nil) != p.strPK {
		return fmt.Errorf("position %d: delete keys of the wrong type for collection %d", m.Pos, p.coll.ID)
	}
	return p.addDeletes(m, h, pks, int64(len(msg.Body)))
}

// addDeletes buffers the deletes of pks at m's position and h's timestamp in the L0 segment of
// h's partition; body is the size of their encoded form.
func (p *pipeline) addDeletes(m wal.Message, h dml.Header, pks dml.PKs, body int64) error {
	// A delete applies to the partition it names (or to all of them), so each scope has its
	// own L0 segment: a query node applies an L0 segment to the partition it records.
	b := p.l0[h.PartitionID]
	if b == nil {
		id, err := p.alloc(1)
		if err != nil {
			return fmt.Errorf("allocate L0 segment id: %w", err)
		}
		b = &segBuf{seg: meta.Segment{ID: id, CollectionID: p.coll.ID, PartitionID: h.PartitionID,
			Channel: p.ch, Level: meta.L0, State: meta.Growing, StartPos: m.Pos, CreatedAt: p.n.now().UTC()}}
		p.l0[h.PartitionID] = b
	}
	n := pks.Len()
	now := p.n.now()
	if b.empty() {
		b.minPos, b.minTs, b.beforeAt, b.firstAt = m.Pos, h.Timestamp, p.consumedAt, now
	}
	b.dels.Ints = append(b.dels.Ints, pks.Ints...)
	b.dels.Strs = append(b.dels.Strs, pks.Strs...)
	for i := 0; i < n; i++ {
		b.delTS = append(b.delTS, h.Timestamp)
		b.delPos = append(b.delPos, m.Pos)
	}
	size := body + int64(16*n)
	b.rows += int64(n)
	b.bytes += size
	b.maxPos, b.maxTs, b.maxAt, b.lastAt = m.Pos, max(b.maxTs, h.Timestamp), m.Time.UnixNano(), now
	b.totalRows += int64(n)
	p.held.Add(size)
	p.n.reserve(size)
	p.n.m.rows.Add(float64(n))
	if b.bytes >= p.n.cfg.SyncBufferBytes {
		p.cut(nil, func(x *segBuf) bool { return x == b })
	}
	return nil
}

// alloc reserves n IDs, retrying with backoff while the allocator's store is unreachable:
// running out of cached IDs during an etcd blip must not stop the channel. A reservation
// whose outcome was unknown is simply skipped.
func (p *pipeline) alloc(n int64) (int64, error) {
	var id int64
	_, err := p.retry("alloc", func() (struct{}, error) {
		var err error
		id, err = p.n.ids.Alloc(p.ctx, n)
		return struct{}{}, err
	})
	return id, err
}

// growingSegment returns the growing segment of a partition, opening a new one (with an ID
// from the allocator) when there is none or the last one was sealed.
func (p *pipeline) growingSegment(part int64, pos uint64) (*segBuf, error) {
	if b := p.growing[part]; b != nil && !b.sealed {
		return b, nil
	}
	id, err := p.alloc(1)
	if err != nil {
		return nil, fmt.Errorf("allocate segment id: %w", err)
	}
	b := &segBuf{seg: meta.Segment{ID: id, CollectionID: p.coll.ID, PartitionID: part, Channel: p.ch,
		Level: meta.L1, State: meta.Growing, StartPos: pos, CreatedAt: p.n.now().UTC()}}
	p.growing[part] = b
	return b, nil
}

// checkTimers seals old and idle segments and syncs stale buffers.
func (p *pipeline) checkTimers(now time.Time) {
	cfg := p.n.cfg
	for _, b := range p.growing {
		if b.totalRows == 0 {
			continue
		}
		if now.Sub(b.seg.CreatedAt) >= cfg.SealAge ||
			(!b.lastAt.IsZero() && now.Sub(b.lastAt) >= cfg.SealIdle && b.totalSize >= cfg.SealIdleMinBytes) {
			b.sealed = true
		}
	}
	p.cut(nil, func(b *segBuf) bool {
		return b.sealed || (!b.empty() && now.Sub(b.firstAt) >= cfg.SyncStaleAge)
	})
}

// cpAt is a position a checkpoint can be taken at: a flush marker's, with its stored
// timestamp and the time the log stored it.
type cpAt struct {
	pos, ts uint64
	at      int64
}

// cut moves the buffers pick selects (and every sealed segment) into a sync task and queues it.
// The task's checkpoint is one below the first position still buffered afterwards, or the
// last consumed position when nothing is (for a flush marker: the marker's position).
func (p *pipeline) cut(marker *cpAt, pick func(*segBuf) bool) {
	t := &syncTask{cutAt: p.n.now(), flushed: make(chan struct{})}
	take := func(b *segBuf) {
		state := meta.Growing
		if b.sealed {
			state = meta.Flushed
		}
		t.segs = append(t.segs, segSnap{seg: b.seg, state: state, recs: b.recs, dels: b.dels, delTS: b.delTS,
			delPos: b.delPos, rows: b.rows, minPos: b.minPos, maxPos: b.maxPos, minTs: b.minTs, maxTs: b.maxTs, maxAt: b.maxAt})
		t.release += b.bytes
		b.recs, b.dels, b.delTS, b.delPos = nil, dml.PKs{}, nil, nil
		b.rows, b.bytes, b.minPos, b.maxPos, b.minTs, b.maxTs, b.beforeAt = 0, 0, 0, 0, 0, 0, 0
		b.firstAt = time.Time{}
	}
	for part, b := range p.growing {
		if b.sealed || pick(b) {
			if !b.empty() || b.sealed {
				take(b)
			}
			if b.sealed {
				delete(p.growing, part)
			}
		}
	}
	for _, b := range p.l0 {
		if !b.empty() && pick(b) {
			take(b)
		}
	}
	// Sync segments in position order, so that a partition's older segment commits first.
	sortSnaps(t.segs)

	// Timestamps grow with positions, so the first buffered message also has the smallest
	// timestamp still buffered: everything stamped below it is in committed meta.
	var first, firstTs uint64
	var beforeAt int64
	consider := func(b *segBuf) {
		if b != nil && !b.empty() && (first == 0 || b.minPos < first) {
			first, firstTs, beforeAt = b.minPos, b.minTs, b.beforeAt
		}
	}
	for _, b := range p.growing {
		consider(b)
	}
	for _, b := range p.l0 {
		consider(b)
	}
	switch {
	case first != 0:
		t.cp, t.cpTs, t.cpAt = first-1, firstTs-1, beforeAt
	case marker != nil:
		t.cp, t.cpTs, t.cpAt = marker.pos, marker.ts, marker.at
	default:
		t.cp, t.cpTs, t.cpAt = p.consumed, p.consumedTs, p.consumedAt
	}
	if len(t.segs) == 0 && t.cp <= p.cpQueued() {
		return
	}
	p.lastQueuedCp = t.cp
	select {
	case p.tasks <- t:
	case <-p.ctx.Done():
	}
}

func (p *pipeline) cpQueued() uint64 { return p.lastQueuedCp }

func sortSnaps(s []segSnap) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].minPos < s[j-1].minPos; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
