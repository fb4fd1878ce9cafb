package querynode

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/objstore"
	"github.com/weir-db/weir/internal/vindex"
)

// segIndex is a sealed segment's vector index over one field, searching the piece that holds all
// of the segment's rows in the order the index names them (its insert files by ID, each in row
// order: how package indexbuild read them).
type segIndex struct {
	rec      *meta.SegmentIndex
	ix       *vindex.Index
	piece    *piece
	reserved int64 // its bytes counted against the node's limit (carried by the piece)
}

// segReady is a segment's indexes ready to swap in: the pieces of the segment they replace, the
// one piece with all its rows, and the indexes over it.
type segReady struct {
	seg     int64
	old     []*piece
	p       *piece
	indexes map[int64]*segIndex // by field
	bytes   int64               // reserved for the indexes
	gather  int64               // reserved for the gathered copy of the rows, until the swap
}

// indexRecords returns the records of the collection's indexes that the shard's segments have,
// by segment.
func (t *target) indexRecords(ch string) map[int64][]*meta.SegmentIndex {
	out := map[int64][]*meta.SegmentIndex{}
	for _, r := range t.indexes {
		if r.Channel == ch {
			out[r.SegmentID] = append(out[r.SegmentID], r)
		}
	}
	return out
}

// prepareIndexes reads the index files of the shard's segments that have records it does not
// serve yet, outside the shard's lock: each such segment's rows are gathered into one piece and
// its files decoded over that piece's vectors. A file that fails to decode (a checksum, a
// truncation, rows that do not match) is reported to the metastore, so that the channel's owner
// builds it again, and the segment is searched exactly meanwhile.
func (n *Node) prepareIndexes(ctx context.Context, sh *shard, recs map[int64][]*meta.SegmentIndex) ([]*segReady, error) {
	type want struct {
		seg  int64
		recs []*meta.SegmentIndex
		old  []*piece
	}
	var todo []want
	sh.mu.RLock()
	for seg, rs := range recs {
		var fresh []*meta.SegmentIndex
		for _, r := range rs {
			if _, ok := sh.dims[r.FieldID]; !ok || sh.badIndex[r.Key] {
				continue
			}
			if cur := sh.indexes[seg][r.FieldID]; cur != nil && cur.rec.ModRevision == r.ModRevision {
				continue
			}
			fresh = append(fresh, r)
		}
		if len(fresh) == 0 {
			continue
		}
		var old []*piece
		var rows int64
		for _, p := range sh.pieces {
			if p.seg == seg && p.file != 0 {
				old = append(old, p)
				rows += int64(p.rows())
			}
		}
		if rows != fresh[0].Rows {
			continue // not all of the segment's files held yet (or a dropped partition's)
		}
		slices.SortFunc(old, func(a, b *piece) int {
			if a.file != b.file {
				return int(a.file - b.file)
			}
			return a.seq - b.seq
		})
		for _, p := range old {
			p.rec.Retain() // read below outside the lock; a drop meanwhile releases only its own reference
		}
		todo = append(todo, want{seg, fresh, old})
	}
	sh.mu.RUnlock()

	var out []*segReady
	var errs []error
	for _, w := range todo {
		r, err := n.prepareSegment(ctx, sh, w.seg, w.recs, w.old)
		for _, p := range w.old {
			p.rec.Release()
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if r != nil {
			out = append(out, r)
		}
	}
	return out, errors.Join(errs...)
}

func (n *Node) prepareSegment(ctx context.Context, sh *shard, seg int64, recs []*meta.SegmentIndex, old []*piece) (_ *segReady, err error) {
	r := &segReady{seg: seg, old: old, indexes: map[int64]*segIndex{}}
	defer func() {
		if err != nil || len(r.indexes) == 0 {
			r.discard(sh)
		}
	}()
	if len(old) == 1 {
		r.p, r.old = old[0], nil // already one piece: the indexes go over it as it is
	} else {
		// Gathering copies the segment's rows: held twice until the swap drops the pieces, and
		// counted so.
		var held int64
		for _, p := range old {
			held += p.bytes
		}
		if r.gather, err = n.reserve(sh, held/2); err != nil { // reserve doubles what it is given
			return nil, err
		}
		if r.p, err = sh.concat(old); err != nil {
			return nil, err
		}
	}
	for _, rec := range recs {
		data, err := n.bucket.Get(ctx, rec.Key)
		if errors.Is(err, objstore.ErrNotFound) {
			// A record without its file: as damaged as a file that fails its checksum.
			n.corruptIndex(ctx, sh, rec, err)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read index file %s: %w", rec.Key, err)
		}
		ix, h, err := vindex.Decode(data, r.p.vecs[rec.FieldID], sh.dims[rec.FieldID])
		if err == nil && (h.Segment != seg || h.IndexID != rec.IndexID) {
			err = fmt.Errorf("the file is of segment %d, index %d", h.Segment, h.IndexID)
		}
		if err != nil {
			n.corruptIndex(ctx, sh, rec, err)
			continue
		}
		b, err := n.reserve(sh, ix.Bytes()/2)
		if err != nil {
			return nil, err
		}
		r.bytes += b
		r.indexes[rec.FieldID] = &segIndex{rec: rec, ix: ix, piece: r.p, reserved: b}
	}
	if len(r.indexes) == 0 {
		return nil, nil
	}
	return r, nil
}

// corruptIndex refuses an index file that does not check out: never searched, reported so that
// the channel's owner builds it again, and not read again until its record changes.
func (n *Node) corruptIndex(ctx context.Context, sh *shard, rec *meta.SegmentIndex, cause error) {
	n.logger.Error("index file refused: the segment is searched exactly until its index is built again",
		"collection", rec.CollectionID, "segment", rec.SegmentID, "key", rec.Key, "err", cause)
	n.m.indexRefused.Inc()
	sh.mu.Lock()
	sh.badIndex[rec.Key] = true
	sh.mu.Unlock()
	if err := n.catalog.ReportCorruptIndex(ctx, rec, cause.Error()); err != nil {
		n.logger.Warn("could not report a corrupt index file", "key", rec.Key, "err", err)
	}
}

// concat returns one piece holding the rows of pieces (one segment's, in order). Its records
// are read, not changed.
func (s *shard) concat(pieces []*piece) (*piece, error) {
	cols := make([]arrow.Array, s.sch.NumFields())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	var rows int64
	for _, p := range pieces {
		rows += p.rec.NumRows()
	}
	for i := range cols {
		parts := make([]arrow.Array, len(pieces))
		for j, p := range pieces {
			parts[j] = p.rec.Column(i)
		}
		c, err := array.Concatenate(parts, memory.DefaultAllocator)
		if err != nil {
			return nil, err
		}
		cols[i] = c
	}
	rec := array.NewRecordBatch(s.sch, cols, rows)
	first := pieces[0]
	p, err := s.newPiece(rec, first.part, first.file, pieces[len(pieces)-1].pos)
	if err != nil {
		rec.Release()
		return nil, err
	}
	p.seg = first.seg
	return p, nil
}

// attach swaps prepared indexes in, each segment in one change of the shard (R3): its pieces
// replaced by the one piece its indexes search, with the same rows, marks and keys. A segment
// whose pieces changed meanwhile (a dropped partition, a release) is left for the next round.
// Called with mu held for writing.
func (s *shard) attach(ready []*segReady) (attached int) {
	held := map[*piece]bool{}
	for _, p := range s.pieces {
		held[p] = true
	}
	for _, r := range ready {
		ok := !s.released
		for _, p := range r.old {
			ok = ok && held[p]
		}
		if r.old == nil {
			ok = ok && held[r.p]
		}
		if !ok {
			r.discard(s)
			continue
		}
		if r.old != nil {
			gone := map[*piece]bool{}
			for _, p := range r.old {
				gone[p] = true
				r.p.bytes += p.bytes
				p.bytes = 0 // carried by the new piece now
			}
			s.dropPieces(func(p *piece) bool { return gone[p] })
			s.addPiece(r.p)
		}
		if r.old == nil {
			s.dropInterims(map[*piece]bool{r.p: true}) // the piece is searched through its index now
		}
		s.bytes.Add(-r.gather) // the gathered pieces are gone: their rows are held once again
		r.p.bytes += r.bytes
		if s.indexes[r.seg] == nil {
			s.indexes[r.seg] = map[int64]*segIndex{}
		}
		for f, ix := range r.indexes {
			if prev := s.indexes[r.seg][f]; prev != nil {
				// A record replaced (a damaged file rebuilt): its index's memory goes back.
				r.p.bytes -= prev.reserved
				s.bytes.Add(-prev.reserved)
			}
			s.indexes[r.seg][f] = ix
		}
		attached++
	}
	return attached
}

// discard gives back what r holds: its reservations and its gathered piece.
func (r *segReady) discard(s *shard) {
	s.bytes.Add(-r.bytes - r.gather)
	r.bytes, r.gather = 0, 0
	if r.old != nil && r.p != nil {
		r.p.rec.Release()
		r.p = nil
	}
}

// indexBytes is the memory of the shard's indexes (beyond the rows they search).
func (s *shard) indexBytes() int64 {
	var b int64
	for _, byField := range s.indexes {
		for _, ix := range byField {
			b += ix.ix.Bytes()
		}
	}
	return b
}

// noteIndexes sets the index metrics from every shard the node serves: memory per collection
// and per segment (series of segments no longer served removed).
func (n *Node) noteIndexes() {
	n.mu.Lock()
	shards := make([]*shard, 0, len(n.shards))
	for _, sv := range n.shards {
		if sh := sv.sh.Load(); sh != nil {
			shards = append(shards, sh)
		}
	}
	n.mu.Unlock()
	byColl := map[string]float64{}
	n.m.segIndex.Reset()
	for _, sh := range shards {
		sh.mu.RLock()
		coll := strconv.FormatInt(sh.coll.ID, 10)
		byColl[coll] += float64(sh.indexBytes())
		for seg, byField := range sh.indexes {
			for f, ix := range byField {
				n.m.segIndex.WithLabelValues(coll, strconv.FormatInt(seg, 10), strconv.FormatInt(f, 10)).Set(float64(ix.ix.Bytes()))
			}
		}
		sh.mu.RUnlock()
	}
	n.m.indexBytes.Reset()
	for coll, b := range byColl {
		n.m.indexBytes.WithLabelValues(coll).Set(b)
	}
}
