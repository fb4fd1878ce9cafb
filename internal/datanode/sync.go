package datanode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/cenkalti/backoff/v5"

	"github.com/weir-db/weir/internal/failpoint"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/metastore"
	"github.com/weir-db/weir/internal/segment"
)

// Failpoints between the steps of a sync.
const (
	FailAfterFiles       = "datanode/after-files"
	FailAfterSegmentMeta = "datanode/after-segment-meta"
	FailAfterCheckpoint  = "datanode/after-checkpoint"
	// FailPut fails an object write, as object storage refusing writes would.
	FailPut = "datanode/put"
)

// syncLoop commits the pipeline's syncs one at a time, in the order they were cut.
func (p *pipeline) syncLoop() {
	for t := range p.tasks {
		if p.ctx.Err() != nil {
			releaseTask(t)
			continue // stopping: drain what the consumer queued
		}
		if err := p.sync(t); err != nil {
			releaseTask(t)
			if errors.Is(err, meta.ErrLeaseLost) {
				p.n.m.leaseLost.Inc()
				p.logger.Warn("channel lease lost, pipeline stopped", "err", err)
			} else if p.ctx.Err() == nil {
				p.logger.Error("sync failed, pipeline stopped", "err", err)
			}
			p.fail(err)
			continue
		}
		releaseTask(t)
		p.held.Add(-t.release)
		p.n.free(t.release)
		close(t.flushed)
		p.maybeTruncate()
	}
}

func releaseTask(t *syncTask) {
	for _, s := range t.segs {
		for _, r := range s.recs {
			r.Release()
		}
	}
	for i := range t.segs {
		t.segs[i].recs = nil
	}
}

// pending is one segment's share of a sync once its files are written.
type pending struct {
	rec   meta.Segment
	files []meta.File
	prev  int64 // mod revision the record is expected to have (0: absent)
}

func (p *pipeline) sync(t *syncTask) error {
	var pend []pending
	for _, s := range t.segs {
		pd, err := p.writeFiles(s)
		if err != nil {
			return err
		}
		pend = append(pend, pd)
	}
	if err := failpoint.Hit(FailAfterFiles); err != nil {
		return err
	}
	if len(pend) > 0 {
		if err := p.writer.commitSegments(pend); err != nil {
			return err
		}
	}
	if err := failpoint.Hit(FailAfterSegmentMeta); err != nil {
		return err
	}
	if t.cp > p.cp.Position {
		if err := p.writer.commitCheckpoint(meta.Checkpoint{Position: t.cp, Timestamp: max(t.cpTs, p.cp.Timestamp), LogTime: t.cpAt, UpdatedAt: p.n.now().UTC()}); err != nil {
			return err
		}
		p.n.m.checkpoint.WithLabelValues(p.ch).Set(float64(t.cp))
		p.noteCheckpoint(p.cp)
	}
	if err := failpoint.Hit(FailAfterCheckpoint); err != nil {
		return err
	}
	p.n.m.syncs.Inc()
	p.n.m.syncSeconds.Observe(time.Since(t.cutAt).Seconds())
	return nil
}

// writeFiles writes a segment's files (insert + stats for L1, deletes for L0) and returns the
// record it will have once they are committed.
func (p *pipeline) writeFiles(s segSnap) (pending, error) {
	prev := p.committed[s.seg.ID]
	rec := s.seg
	var prevRev int64
	if prev != nil {
		rec = *prev
		prevRev = prev.ModRevision
	}
	rec.State = s.state
	rec.UpdatedAt = p.n.now().UTC()
	if rec.StartPos == 0 {
		rec.StartPos = s.minPos
	}
	pd := pending{prev: prevRev}
	if s.rows > 0 {
		kinds := []meta.FileKind{meta.InsertFile, meta.StatsFile}
		if s.seg.Level == meta.L0 {
			kinds = []meta.FileKind{meta.DeleteFile}
		}
		first, err := p.alloc(int64(len(kinds)))
		if err != nil {
			return pending{}, fmt.Errorf("allocate file ids: %w", err)
		}
		for i, kind := range kinds {
			id := first + int64(i)
			key := p.fileKey(kind, s.seg, id)
			var info segment.FileInfo
			if err := p.put(key, func(w io.Writer) (err error) {
				info, err = p.encode(kind, s, w)
				return err
			}); err != nil {
				return pending{}, err
			}
			p.n.m.syncBytes.Add(float64(info.Bytes))
			pd.files = append(pd.files, meta.File{ID: id, SegmentID: s.seg.ID, Kind: kind, Key: key, Rows: info.Rows,
				Bytes: info.Bytes, MinPos: s.minPos, MaxPos: s.maxPos, MinTs: s.minTs, MaxTs: s.maxTs})
			rec.Bytes += info.Bytes
		}
		rec.Rows += s.rows
		rec.Files += len(kinds)
		if s.maxPos > rec.MaxPos {
			rec.MaxPos, rec.MaxLogTime = s.maxPos, s.maxAt
		}
		rec.MaxTs = max(rec.MaxTs, s.maxTs)
	}
	pd.rec = rec
	return pd, nil
}

func (p *pipeline) fileKey(kind meta.FileKind, s meta.Segment, id int64) string {
	root := p.n.cfg.ObjectRoot
	switch kind {
	case meta.InsertFile:
		return segment.InsertKey(root, s.CollectionID, s.PartitionID, s.ID, p.token, uint64(id))
	case meta.StatsFile:
		return segment.StatsKey(root, s.CollectionID, s.PartitionID, s.ID, p.token, uint64(id))
	}
	return segment.DeleteKey(root, s.CollectionID, s.PartitionID, s.ID, p.token, uint64(id))
}

// encode writes one file of s to w and returns its rows and size.
func (p *pipeline) encode(kind meta.FileKind, s segSnap, w io.Writer) (segment.FileInfo, error) {
	switch kind {
	case meta.InsertFile:
		info, err := segment.WriteInsert(w, p.schema, s.recs, segment.WriteOptions{})
		if err != nil {
			return info, fmt.Errorf("encode insert file of segment %d: %w", s.seg.ID, err)
		}
		return info, nil
	case meta.StatsFile:
		pks := make([]arrow.Array, 0, len(s.recs))
		for _, r := range s.recs {
			pks = append(pks, r.Column(p.schema.FieldIndices(p.pkName)[0]))
		}
		st, err := segment.BuildStats(pks, 0)
		if err != nil {
			return segment.FileInfo{}, fmt.Errorf("stats of segment %d: %w", s.seg.ID, err)
		}
		n, err := segment.WriteStats(w, st)
		if err != nil {
			return segment.FileInfo{}, fmt.Errorf("encode stats file of segment %d: %w", s.seg.ID, err)
		}
		return segment.FileInfo{Rows: st.Rows, Bytes: n}, nil
	}
	d := segment.Deletes{IntPKs: s.dels.Ints, StringPKs: s.dels.Strs, TS: s.delTS, Pos: s.delPos}
	info, err := segment.WriteDeletes(w, d)
	if err != nil {
		return info, fmt.Errorf("encode delete file of segment %d: %w", s.seg.ID, err)
	}
	return info, nil
}

// put streams an object that encode writes into the bucket, retrying with backoff until it
// succeeds or the pipeline stops: object storage being down delays syncs (and, through the
// memory limit, consumption), it loses nothing. Each attempt encodes the file again from the
// sync's records, which the sync holds until it commits. An encoding error is not retried: it
// would fail the same way.
//
// Files are streamed, never built whole in memory. A sync can hold a gigabyte of rows (a flush
// of a node with large thresholds), and its file in one bytes.Buffer cost as much again, but
// above all the buffer's allocation stopped the whole process: Go clears a slice grown by
// append(make) in one call that cannot be preempted, and page-faults every page of fresh
// memory doing so (1.1-1.8 s for 1 GB on 2 cores). A garbage collection starting meanwhile
// (the allocation itself starts one) spins on the other P until it can scan that goroutine's
// stack, so no goroutine ran at all, the session's keep-alive included: 2 s sessions were
// lost. Streamed, pqarrow hands the writer one page after another, row group by row group,
// and the sync holds about a page beyond its rows (TestLargeSyncKeepsSessionAlive).
func (p *pipeline) put(key string, encode func(io.Writer) error) error {
	_, err := p.retry("put", func() (struct{}, error) {
		if err := failpoint.Hit(FailPut); err != nil {
			return struct{}{}, err
		}
		var encErr error // an encoding failure, which a retry would repeat
		err := p.n.bucket.PutStream(p.ctx, key, func(bw io.Writer) error {
			w := &errWriter{w: bw}
			err := encode(w)
			if err != nil && w.err == nil {
				encErr = fmt.Errorf("%w: %w", errEncode, err)
			}
			return err
		})
		if encErr != nil {
			return struct{}{}, encErr
		}
		return struct{}{}, err
	})
	return err
}

// errWriter remembers the first error its writer returned, to tell a storage failure from an
// encoding failure.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(b []byte) (int, error) {
	n, err := e.w.Write(b)
	if err != nil && e.err == nil {
		e.err = err
	}
	return n, err
}

func (p *pipeline) retry(step string, op func() (struct{}, error)) (struct{}, error) {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 20 * time.Millisecond
	bo.MaxInterval = p.n.cfg.RetryMax
	return backoff.Retry(p.ctx, func() (struct{}, error) {
		v, err := op()
		if err != nil && p.ctx.Err() == nil && !isPermanent(err) {
			p.n.m.retries.WithLabelValues(step).Inc()
			p.logger.Warn("sync step failed, retrying", "step", step, "err", err)
		}
		if isPermanent(err) {
			return v, backoff.Permanent(err)
		}
		return v, err
	}, backoff.WithBackOff(bo), backoff.WithMaxElapsedTime(0))
}

// retryRead runs read with the pipeline's backoff until it succeeds or the pipeline stops.
func (p *pipeline) retryRead(step string, read func(context.Context) (*meta.Segment, error)) (*meta.Segment, error) {
	var got *meta.Segment
	_, err := p.retry(step, func() (struct{}, error) {
		var err error
		got, err = read(p.ctx)
		return struct{}{}, err
	})
	return got, err
}

func isPermanent(err error) bool {
	return errors.Is(err, meta.ErrLeaseLost) || errors.Is(err, errCorruptState) || errors.Is(err, metastore.ErrTxnTooLarge) ||
		errors.Is(err, errEncode) || errors.Is(err, errSegmentRemoved)
}

var (
	errCorruptState = errors.New("datanode: metastore state written by no known attempt")
	// errSegmentRemoved is a committed segment record that no longer exists.
	errSegmentRemoved = errors.New("datanode: segment record removed")
	// errEncode marks a file the sync's records cannot be encoded into.
	errEncode = errors.New("datanode: encode")
)

// fitTxn returns how many of pend fit in one transaction.
func (p *pipeline) fitTxn(pend []pending) (int, error) {
	var cmps []metastore.Cmp
	var ops []metastore.Op
	for i, pd := range pend {
		o, err := p.fence.SegmentOps(&pd.rec, pd.files)
		if err != nil {
			return 0, err
		}
		c := append(cmps, p.fence.SegmentCmp(&pd.rec, pd.prev))
		if err := p.fence.Check(c, append(ops, o...)); err != nil {
			if i == 0 {
				return 0, fmt.Errorf("segment %d alone: %w", pd.rec.ID, err)
			}
			return i, nil
		}
		cmps, ops = c, append(ops, o...)
	}
	return len(pend), nil
}

// commitSegments commits segment records and their files in one fenced transaction. An
// unknown outcome is resolved by reading the first record back: the transaction is atomic, so
// it applied if and only if that record is the one written.
func (p *pipeline) commitSegments(pend []pending) error {
	var cmps []metastore.Cmp
	var ops []metastore.Op
	for i := range pend {
		o, err := p.fence.SegmentOps(&pend[i].rec, pend[i].files)
		if err != nil {
			return err
		}
		cmps = append(cmps, p.fence.SegmentCmp(&pend[i].rec, pend[i].prev))
		ops = append(ops, o...)
	}
	first := pend[0].rec
	rev, err := p.commit("segment-meta", cmps, ops, func(ctx context.Context) (int64, bool, error) {
		got, err := p.n.catalog.GetSegment(ctx, first.CollectionID, first.ID)
		if errors.Is(err, metastore.ErrNotFound) {
			if pend[0].prev != 0 {
				// It was committed, and is gone: garbage collection removed it (its
				// collection was dropped). Retrying could only write a record naming files
				// that may be gone too, or hold the rows forever.
				return 0, false, fmt.Errorf("%w: segment %d", errSegmentRemoved, first.ID)
			}
			return 0, false, nil
		}
		if err != nil {
			return 0, false, err
		}
		if meta.SameWrite(got, &first) {
			return got.ModRevision, true, nil
		}
		if got.ModRevision == pend[0].prev {
			return 0, false, nil
		}
		return 0, false, fmt.Errorf("%w: segment %d", errCorruptState, first.ID)
	})
	if err != nil {
		return err
	}
	for _, pd := range pend {
		rec := pd.rec
		rec.ModRevision = rev
		p.committed[rec.ID] = &rec
		if rec.State == meta.Flushed && rec.Level != meta.L0 {
			p.n.segmentFlushed()
		}
	}
	return nil
}

func (p *pipeline) commitCheckpoint(cp meta.Checkpoint) error {
	op, err := p.fence.CheckpointOp(cp)
	if err != nil {
		return err
	}
	prev := p.cp.ModRevision
	rev, err := p.commit("checkpoint", []metastore.Cmp{p.fence.CheckpointCmp(prev)}, []metastore.Op{op},
		func(ctx context.Context) (int64, bool, error) {
			got, err := p.n.catalog.ReadCheckpoint(ctx, p.ch)
			if err != nil {
				return 0, false, err
			}
			if got.Position == cp.Position && got.ModRevision != prev {
				return got.ModRevision, true, nil
			}
			if got.ModRevision == prev {
				return 0, false, nil
			}
			return 0, false, fmt.Errorf("%w: checkpoint of %s at %d", errCorruptState, p.ch, got.Position)
		})
	if err != nil {
		return err
	}
	cp.ModRevision = rev
	p.cp = cp
	return nil
}

// commit runs a fenced transaction until it is known to have applied. When its outcome is
// unknown, or one of its own compare-and-swaps failed, applied re-reads the state: the write is
// retried only when it certainly did not happen and the lease is still ours.
func (p *pipeline) commit(step string, cmps []metastore.Cmp, ops []metastore.Op, applied func(context.Context) (int64, bool, error)) (int64, error) {
	var rev int64
	_, err := p.retry(step, func() (struct{}, error) {
		r, err := p.fence.Commit(p.ctx, cmps, ops)
		if err == nil {
			rev = r
			return struct{}{}, nil
		}
		if errors.Is(err, meta.ErrLeaseLost) {
			return struct{}{}, err
		}
		if !errors.Is(err, metastore.ErrOutcomeUnknown) && !errors.Is(err, metastore.ErrPredicateFailed) {
			return struct{}{}, err // certainly not applied: retry
		}
		p.n.m.unknown.Inc()
		r, ok, rerr := applied(p.ctx)
		if rerr != nil {
			return struct{}{}, fmt.Errorf("re-read after %v: %w", err, rerr)
		}
		if ok {
			rev = r
			return struct{}{}, nil
		}
		// Not applied: retry. The retry is fenced like the first attempt, so if the lease
		// moved (or a newer pipeline claimed the channel) it fails with ErrLeaseLost.
		return struct{}{}, err
	})
	return rev, err
}
