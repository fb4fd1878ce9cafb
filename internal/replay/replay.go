// Package replay is what reading a DML channel from a checkpoint means, shared by every reader
// that rebuilds state from committed segments plus the channel after them: the data node that
// owns the channel (invariant 3) and the query nodes that serve it (R1). Both must agree
// exactly on which messages committed files already hold and on the timestamp each message is
// stored with, or a row would be held twice, missed, or hidden by the wrong delete.
package replay

import (
	"context"
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/weir-db/weir/internal/batch"
	"github.com/weir-db/weir/internal/dml"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/wal"
)

// Filter drops the messages, or the halves of an upsert, that committed segments already hold.
// A channel's inserts of one partition are committed in position order (syncs of a channel
// commit one at a time, in the order they were cut, and a message is never split), and so are
// its deletes of one scope: everything of partition p at or below the highest position a
// committed L1 segment of p holds is committed, and nothing above it is. The same holds for the
// L0 segment of each delete scope.
type Filter struct {
	inserts map[int64]uint64 // partition ID → highest committed insert position
	deletes map[int64]uint64 // delete scope → highest committed delete position
}

// NewFilter returns a filter that drops nothing.
func NewFilter() *Filter {
	return &Filter{inserts: map[int64]uint64{}, deletes: map[int64]uint64{}}
}

// Commit raises the filter to cover a committed segment. Dropped segments (compacted away) are
// covered by the segments that replaced them, which carry their position range.
func (f *Filter) Commit(s meta.Segment) {
	if s.State == meta.SegmentDropped {
		return
	}
	if s.Level == meta.L0 {
		f.deletes[s.PartitionID] = max(f.deletes[s.PartitionID], s.MaxPos)
	} else {
		f.inserts[s.PartitionID] = max(f.inserts[s.PartitionID], s.MaxPos)
	}
}

// Inserts is the highest committed insert position of partition part.
func (f *Filter) Inserts(part int64) uint64 { return f.inserts[part] }

// Deletes is the highest committed delete position of delete scope scope.
func (f *Filter) Deletes(scope int64) uint64 { return f.deletes[scope] }

// Keep reports which parts of the message at pos with header h are not committed yet: its
// deletes (a delete, or an upsert's delete half) and its rows (an insert, or an upsert's rows).
// The two halves of an upsert land in different segments (L0 of the delete's scope, L1 of the
// rows' partition), which commit independently, so each is filtered on its own. Messages of
// other kinds hold neither.
func (f *Filter) Keep(pos uint64, h dml.Header) (deletes, rows bool) {
	switch h.Kind {
	case dml.Insert:
		return false, pos > f.inserts[h.PartitionID]
	case dml.Delete:
		return pos > f.deletes[h.PartitionID], false
	case dml.Upsert, dml.UpsertAllPartitions:
		return pos > f.deletes[h.DeleteScope()], pos > f.inserts[h.PartitionID]
	}
	return false, false
}

// Log is what CheckHighest asks of a channel's log.
type Log interface {
	Check(ctx context.Context, channel string, a wal.Anchor) error
}

// CheckHighest checks that the channel still holds, unchanged, the record at the highest
// position a committed segment of it holds, when that lies above the checkpoint cp (Follow
// checks the checkpoint's own record). The filter drops every message at or below that
// position as committed: were the log to have lost and reused those positions (a server that
// crashed before its fsync), the new records there would be dropped as replays, silently. A log
// loses a suffix: when that record is intact, nothing below it was lost. A segment written
// before Weir kept MaxLogTime can only be checked for being there, so the highest segment that
// has one is checked too. Every reader that replays the channel with the filter (the data node
// and the query nodes) checks first, and stops loudly on wal.ErrRewound.
func CheckHighest(ctx context.Context, log Log, ch string, cp meta.Checkpoint, segs []*meta.Segment) error {
	for _, s := range meta.HighestAbove(cp.Position, segs) {
		if err := log.Check(ctx, ch, wal.Anchor{Pos: s.MaxPos, Time: s.MaxLogTime}); err != nil {
			return fmt.Errorf("check position %d, the highest segment %d holds: %w", s.MaxPos, s.ID, err)
		}
	}
	return nil
}

// Stamp is the timestamp a message is stored with, given the stored timestamp of the message
// before it on the channel: its own, or prev+1 when its own is not above prev. Timestamps then
// grow with positions within a channel even when several proxies (whose clocks differ) append
// to it, so that a delete applies exactly to the rows positioned before it.
func Stamp(ts, prev uint64) uint64 {
	if ts <= prev {
		return prev + 1
	}
	return ts
}

// Rows decodes the rows of an insert or upsert message body, every row stamped with ts (the
// message's stored timestamp: a proxy stamps a message's header as it appends it, after
// encoding its rows, so the rows' own column is not to be trusted). The rows must have schema
// sch.
func Rows(body []byte, sch *arrow.Schema, ts uint64) (arrow.RecordBatch, error) {
	rec, err := batch.DecodeIPC(body)
	if err != nil {
		return nil, fmt.Errorf("decode rows: %w", err)
	}
	if !rec.Schema().Equal(sch) {
		rec.Release()
		return nil, fmt.Errorf("rows do not match the collection's schema")
	}
	if !stampedWith(rec, ts) {
		rec = restamp(rec, ts)
	}
	return rec, nil
}

// stampedWith reports whether every row of rec has timestamp ts.
func stampedWith(rec arrow.RecordBatch, ts uint64) bool {
	col, ok := rec.Column(int(rec.NumCols()) - 1).(*array.Uint64)
	if !ok {
		return false
	}
	for _, v := range col.Uint64Values() {
		if v != ts {
			return false
		}
	}
	return true
}

// restamp returns rec with every row's timestamp set to ts, releasing rec.
func restamp(rec arrow.RecordBatch, ts uint64) arrow.RecordBatch {
	defer rec.Release()
	b := array.NewUint64Builder(memory.DefaultAllocator)
	defer b.Release()
	n := int(rec.NumRows())
	b.Reserve(n)
	for i := 0; i < n; i++ {
		b.UnsafeAppend(ts)
	}
	col := b.NewArray()
	defer col.Release()
	cols := slices.Clone(rec.Columns())
	cols[len(cols)-1] = col
	return array.NewRecordBatch(rec.Schema(), cols, rec.NumRows())
}

// Keys returns the primary keys of rec's rows; pk is the primary key's column name.
func Keys(rec arrow.RecordBatch, pk string) (dml.PKs, error) {
	idx := rec.Schema().FieldIndices(pk)
	if len(idx) != 1 {
		return dml.PKs{}, fmt.Errorf("no primary key column %q", pk)
	}
	switch c := rec.Column(idx[0]).(type) {
	case *array.Int64:
		return dml.PKs{Ints: slices.Clone(c.Int64Values())}, nil
	case *array.String:
		out := make([]string, c.Len())
		for i := range out {
			out[i] = c.Value(i)
		}
		return dml.PKs{Strs: out}, nil
	default:
		return dml.PKs{}, fmt.Errorf("primary key column of type %s", c.DataType())
	}
}
