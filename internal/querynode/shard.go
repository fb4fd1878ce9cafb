package querynode

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/weir-db/weir/internal/batch"
	"github.com/weir-db/weir/internal/dml"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/mvcc"
	"github.com/weir-db/weir/internal/replay"
	"github.com/weir-db/weir/internal/schema"
	"github.com/weir-db/weir/internal/vsearch"
)

// key is a primary key of either type.
type key struct {
	i int64
	s string
}

// piece is rows of one partition held in memory: the rows of one committed file (sealed), or of
// one message consumed from the channel after the files (growing).
type piece struct {
	part int64
	seg  int64 // the segment of a file's piece
	file int64 // the file's ID; 0 for a growing piece
	seq  int   // the piece's place among the pieces of its file (a file is read in chunks)
	// bytes is the memory counted for the piece against the node's limit (a file's reservation
	// is carried by its first piece), given back when the piece is dropped.
	bytes int64
	pos   uint64 // a growing piece's message position
	rec   arrow.RecordBatch
	keys  []key
	ts    []uint64
	// vecs holds each float vector field's values, dim per row, by field ID.
	vecs  map[int64][]float32
	marks []mvcc.Marks
	// inFiles is, per row, the Superseded mark counting only later rows held in files: what a
	// read that ignores growing rows supersedes by (a row replaced only in the channel is still
	// the latest committed one).
	inFiles []uint64
}

func (p *piece) rows() int { return int(p.rec.NumRows()) }

// loc is one row of a piece.
type loc struct {
	p   *piece
	row int32
}

// shard is one replica of one channel of a loaded collection: the rows of the committed files
// read from the channel's target, plus the rows and deletes consumed from the channel after
// them, with the replay filter (R1). Every change happens under mu's write lock; a request
// holds the read lock from its start to its end, so it sees one state of the shard: a handoff
// (files replacing the channel's rows) is one change (R3).
type shard struct {
	coll   *meta.Collection
	ch     string
	sch    *arrow.Schema
	pkName string
	strPK  bool
	dims   map[int64]int // float vector fields' dims by field ID
	// vecCols are the float vector fields' column indexes in sch, by field ID (a batch's
	// columns are its schema's fields in order).
	vecCols map[int64]int

	mu     sync.RWMutex
	pieces []*piece
	files  map[int64]bool // IDs of the files loaded
	segs   map[int64]bool // IDs of the segments whose files are loaded
	filter *replay.Filter
	// deletes holds every delete known, by scope (a partition, or dml.AllPartitions).
	deletes map[int64]mvcc.Set[key]
	byKey   map[key][]loc
	rowsN   int64
	bytes   atomic.Int64 // memory counted against the node's limit
	// consumed is the last channel position applied, consumedTs its stored timestamp.
	consumed   uint64
	consumedTs uint64
	consumedAt int64
	caughtUp   chan struct{} // closed and replaced whenever consumed moves
	// released is set, and closed closed, when the shard stops serving: a request that took the
	// shard before then answers "not serving" (the proxy tries another replica) instead of
	// reading an emptied shard or waiting for a channel nobody follows any more.
	released bool
	closed   chan struct{}
	// dropped are the collection's dropped partitions, as last read: their rows are not held.
	dropped map[int64]bool
	// seenRev is the view revision the shard's files and filter last caught up with.
	seenRev atomic.Int64
	// indexes are the sealed segments' vector indexes served, by segment then field; badIndex
	// the index files refused (by key), never read again.
	indexes  map[int64]map[int64]*segIndex
	badIndex map[string]bool
	// interims are the interim indexes over growing rows, by field; metrics the fields' index
	// metrics (what an interim index measures by), fixed while loaded.
	interims        map[int64]*interim
	metrics         map[int64]vsearch.Metric
	interimBuilding atomic.Bool
}

func newShard(coll *meta.Collection, ch string) (*shard, error) {
	sch, err := batch.ArrowSchema(coll.Schema)
	if err != nil {
		return nil, err
	}
	pk := schema.PrimaryKey(coll.Schema)
	s := &shard{
		coll: coll, ch: ch, sch: sch, pkName: pk.GetName(), strPK: pk.GetDataType() == schemapb.DataType_VarChar,
		dims: map[int64]int{}, vecCols: map[int64]int{}, files: map[int64]bool{}, segs: map[int64]bool{}, filter: replay.NewFilter(),
		deletes: map[int64]mvcc.Set[key]{}, byKey: map[key][]loc{}, caughtUp: make(chan struct{}), closed: make(chan struct{}),
		indexes: map[int64]map[int64]*segIndex{}, badIndex: map[string]bool{},
		interims: map[int64]*interim{}, metrics: map[int64]vsearch.Metric{},
	}
	for i, f := range coll.Schema.GetFields() {
		if f.GetDataType() == schemapb.DataType_FloatVector {
			d, err := batch.Dim(f)
			if err != nil {
				return nil, err
			}
			s.dims[f.GetFieldID()], s.vecCols[f.GetFieldID()] = d, i
		}
	}
	return s, nil
}

// newPiece wraps rec, rows of partition part, taking its reference.
func (s *shard) newPiece(rec arrow.RecordBatch, part, file int64, pos uint64) (*piece, error) {
	if !rec.Schema().Equal(s.sch) {
		return nil, fmt.Errorf("rows do not match the schema of collection %d", s.coll.ID)
	}
	p := &piece{part: part, file: file, pos: pos, rec: rec, vecs: map[int64][]float32{}, marks: make([]mvcc.Marks, rec.NumRows()),
		inFiles: make([]uint64, rec.NumRows())}
	pks, err := replay.Keys(rec, s.pkName)
	if err != nil {
		return nil, err
	}
	p.keys = keysOf(pks)
	tsCol, ok := rec.Column(int(rec.NumCols()) - 1).(*array.Uint64)
	if !ok {
		return nil, fmt.Errorf("rows without a timestamp column")
	}
	p.ts = tsCol.Uint64Values()
	for id, i := range s.vecCols {
		col, ok := rec.Column(i).(*array.FixedSizeBinary)
		if !ok {
			return nil, fmt.Errorf("vector column %s of type %s", s.sch.Field(i).Name, rec.Column(i).DataType())
		}
		p.vecs[id] = floats(col, s.dims[id])
	}
	return p, nil
}

// keysOf returns primary keys as the shard's keys.
func keysOf(pks dml.PKs) []key {
	out := make([]key, pks.Len())
	for i := range out {
		if pks.Strs != nil {
			out[i].s = pks.Strs[i]
		} else {
			out[i].i = pks.Ints[i]
		}
	}
	return out
}

// floats returns a FixedSizeBinary column of float vectors as dim float32s a row: a view of
// its memory when aligned, a copy otherwise (a record decoded from a message may sit at any
// offset).
func floats(col *array.FixedSizeBinary, dim int) []float32 {
	n := col.Len() * dim
	if n == 0 {
		return nil
	}
	width := 4 * dim
	off := col.Data().Offset()
	b := col.Data().Buffers()[1].Bytes()[off*width : (off+col.Len())*width]
	if uintptr(unsafe.Pointer(&b[0]))%4 == 0 {
		return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), n)
	}
	out := make([]float32, n)
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&out[0])), 4*n), b)
	return out
}

// addPiece makes p's rows part of the shard, marking them (and the rows of their keys already
// held) with every delete and later row known. Called with mu held for writing.
func (s *shard) addPiece(p *piece) {
	for r, k := range p.keys {
		ts := p.ts[r]
		m := &p.marks[r]
		m.Hidden = mvcc.Earliest(s.deletes[p.part].HiddenAt(k, ts), s.deletes[dml.AllPartitions].HiddenAt(k, ts))
		for _, l := range s.byKey[k] {
			if l.p.part != p.part {
				// One row per key within a partition: the same key in two partitions is two
				// rows to a partition-scoped delete, and search dedups them by key.
				continue
			}
			// Two rows of one key with one timestamp come from one message (the later row
			// wins, also when a file's chunks split the message), or are a file's row and the
			// channel's copy it replaces, which a handoff never holds at once: neither
			// supersedes the other.
			switch lts := l.p.ts[l.row]; {
			case lts < ts || (lts == ts && rowBefore(l.p, int(l.row), p, r)):
				l.p.marks[l.row].Superseded = mvcc.Earliest(l.p.marks[l.row].Superseded, ts)
				if p.file != 0 {
					l.p.inFiles[l.row] = mvcc.Earliest(l.p.inFiles[l.row], ts)
				}
			case lts > ts || (lts == ts && rowBefore(p, r, l.p, int(l.row))):
				m.Superseded = mvcc.Earliest(m.Superseded, lts)
				if l.p.file != 0 {
					p.inFiles[r] = mvcc.Earliest(p.inFiles[r], lts)
				}
			}
		}
		s.byKey[k] = append(s.byKey[k], loc{p, int32(r)})
	}
	s.pieces = append(s.pieces, p)
	s.rowsN += int64(p.rows())
	if p.file != 0 {
		s.files[p.file] = true
	}
}

// rowBefore reports whether row ra of a comes before row rb of b in the same message: in one
// piece, or in two chunks of one file.
func rowBefore(a *piece, ra int, b *piece, rb int) bool {
	switch {
	case a == b:
		return ra < rb
	case a.file != 0 && a.file == b.file:
		return a.seq < b.seq
	}
	return false
}

// addDelete records a delete of k at ts in scope and marks the rows it hides. Called with mu
// held for writing.
func (s *shard) addDelete(scope int64, k key, ts uint64) {
	set := s.deletes[scope]
	if set == nil {
		set = mvcc.Set[key]{}
		s.deletes[scope] = set
	}
	if !set.Add(k, ts) {
		return
	}
	for _, l := range s.byKey[k] {
		if (scope == dml.AllPartitions || l.p.part == scope) && l.p.ts[l.row] < ts {
			l.p.marks[l.row].Hidden = mvcc.Earliest(l.p.marks[l.row].Hidden, ts)
		}
	}
}

// dropPieces removes the pieces drop selects and releases them. Called with mu held for
// writing.
func (s *shard) dropPieces(drop func(*piece) bool) {
	gone := map[*piece]bool{}
	s.pieces = slices.DeleteFunc(s.pieces, func(p *piece) bool {
		if drop(p) {
			gone[p] = true
			return true
		}
		return false
	})
	s.dropInterims(gone)
	for p := range gone {
		for f, ix := range s.indexes[p.seg] {
			if ix.piece == p { // the index searches the piece's vectors: it goes with them
				delete(s.indexes[p.seg], f)
			}
		}
		for _, k := range p.keys {
			locs := slices.DeleteFunc(s.byKey[k], func(l loc) bool { return gone[l.p] })
			if len(locs) == 0 {
				delete(s.byKey, k)
			} else {
				s.byKey[k] = locs
			}
		}
		s.rowsN -= int64(p.rows())
		s.bytes.Add(-p.bytes)
		p.rec.Release()
	}
}

// release drops every piece; requests that hold the shard already answer "not serving".
func (s *shard) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.released {
		s.released = true
		close(s.closed)
	}
	for _, p := range s.pieces {
		p.rec.Release()
	}
	s.pieces, s.byKey, s.indexes, s.interims = nil, map[key][]loc{}, map[int64]map[int64]*segIndex{}, map[int64]*interim{}
}

// advance records that the channel was applied up to pos (stored at ts, log time at) and wakes
// waiters. Called with mu held for writing.
func (s *shard) advance(pos, ts uint64, at int64) {
	s.consumed, s.consumedTs, s.consumedAt = pos, ts, at
	close(s.caughtUp)
	s.caughtUp = make(chan struct{})
}

// position returns the last position applied and a channel closed when it moves.
func (s *shard) position() (uint64, uint64, <-chan struct{}) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.consumed, s.consumedTs, s.caughtUp
}
