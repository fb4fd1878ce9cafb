package meta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/weir-db/weir/internal/metastore"
)

// SegmentState is a segment's lifecycle state.
type SegmentState string

// Growing segments take rows; Sealed ones take no more and wait for their last sync; Flushed
// ones are complete; Dropped ones wait for garbage collection.
const (
	Growing        SegmentState = "growing"
	Sealed         SegmentState = "sealed"
	Flushed        SegmentState = "flushed"
	SegmentDropped SegmentState = "dropped"
)

// Level tells insert segments (L1) from a channel's delete-only segment (L0).
type Level string

// Segment levels.
const (
	L0 Level = "L0"
	L1 Level = "L1"
)

// Segment is a segment's meta record. Its size is bounded: files are separate keys.
type Segment struct {
	ID           int64        `json:"id"`
	CollectionID int64        `json:"collection_id"`
	PartitionID  int64        `json:"partition_id"`
	Channel      string       `json:"channel"`
	Level        Level        `json:"level"`
	State        SegmentState `json:"state"`
	Rows         int64        `json:"rows"`
	Bytes        int64        `json:"bytes"`
	Files        int          `json:"files"`
	// StartPos and MaxPos are the first and the highest channel positions whose rows the
	// segment holds in committed files. Replay drops every message at or below MaxPos of
	// the segment it would go to (invariant 3).
	StartPos uint64 `json:"start_pos"`
	MaxPos   uint64 `json:"max_pos"`
	// MaxLogTime is when the channel's server stored the record at MaxPos (Unix nanoseconds;
	// 0 in records written before Weir kept it). A pipeline starts only if that record is still
	// the one committed: the replay filter drops every message up to MaxPos, so a log that lost
	// and reused those positions would have its new records dropped.
	MaxLogTime int64     `json:"max_log_time,omitempty"`
	MaxTs      uint64    `json:"max_ts"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	// Lease is the lease revision the last write was made under, for operators.
	Lease int64 `json:"lease"`
	// ModRevision is the record's metastore mod revision when read (not stored).
	ModRevision int64 `json:"-"`
}

// FileKind is what a segment file holds.
type FileKind string

// File kinds.
const (
	InsertFile FileKind = "insert"
	StatsFile  FileKind = "stats"
	DeleteFile FileKind = "delete"
)

// File is one object of a segment, referenced only through a committed meta write.
type File struct {
	ID        int64    `json:"id"`
	SegmentID int64    `json:"segment_id"`
	Kind      FileKind `json:"kind"`
	Key       string   `json:"key"`
	Rows      int64    `json:"rows"`
	Bytes     int64    `json:"bytes"`
	MinPos    uint64   `json:"min_pos"`
	MaxPos    uint64   `json:"max_pos"`
	MinTs     uint64   `json:"min_ts"`
	MaxTs     uint64   `json:"max_ts"`
}

// Checkpoint is where replay of a channel starts: every message at or below Position is in
// committed segment meta (invariant 2).
type Checkpoint struct {
	Position  uint64 `json:"position"`
	Timestamp uint64 `json:"timestamp"`
	// LogTime is when the channel's server stored the record at Position (Unix nanoseconds;
	// 0 at position 0 and in checkpoints written before Weir recorded it). A pipeline resumes
	// only if the record at Position still has it: otherwise the channel lost records and
	// reused their positions (wal.Log.Follow).
	LogTime   int64     `json:"log_time,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
	// ModRevision is the record's metastore mod revision when read (not stored).
	ModRevision int64 `json:"-"`
}

// HighestAbove returns, of the segments that hold positions above a channel's checkpoint cp,
// the one holding the highest and, when that one has no MaxLogTime (written before Weir kept
// it), the highest one that has: the records a reader checks before it trusts that the log
// still holds what those segments committed.
func HighestAbove(cp uint64, segs []*Segment) []*Segment {
	var hi, timed *Segment
	for _, s := range segs {
		if s.MaxPos <= cp {
			continue
		}
		if hi == nil || s.MaxPos > hi.MaxPos {
			hi = s
		}
		if s.MaxLogTime != 0 && (timed == nil || s.MaxPos > timed.MaxPos) {
			timed = s
		}
	}
	switch {
	case hi == nil:
		return nil
	case timed == nil || timed == hi:
		return []*Segment{hi}
	}
	return []*Segment{hi, timed}
}

// SameWrite reports whether got, a stored record, is want as it was written: a commit whose
// outcome was unknown, or a resent call, applied. The counts alone decide because every write
// of one incarnation changes them and incarnations are fenced from each other.
func SameWrite(got, want *Segment) bool {
	return got.Lease == want.Lease && got.Rows == want.Rows && got.Files == want.Files &&
		got.MaxPos == want.MaxPos && got.State == want.State && got.Bytes == want.Bytes
}

// SegmentOps returns the ops that store seg and its new files.
func (f *Fence) SegmentOps(seg *Segment, files []File) ([]metastore.Op, error) {
	seg.Lease = f.lease.Revision
	b, err := json.Marshal(seg)
	if err != nil {
		return nil, err
	}
	ops := []metastore.Op{metastore.Put(f.keys.segment(seg.CollectionID, seg.ID), b)}
	for _, fl := range files {
		fb, err := json.Marshal(fl)
		if err != nil {
			return nil, err
		}
		ops = append(ops, metastore.Put(f.keys.file(seg.CollectionID, seg.ID, fl.ID), fb))
	}
	return ops, nil
}

// SegmentCmp is the predicate that seg's record is as the writer last saw it (absent when
// prev is 0). It makes a delayed duplicate of an earlier commit fail instead of rolling the
// record back.
func (f *Fence) SegmentCmp(seg *Segment, prev int64) metastore.Cmp {
	key := f.keys.segment(seg.CollectionID, seg.ID)
	if prev == 0 {
		return metastore.KeyAbsent(key)
	}
	return metastore.ModRevisionEquals(key, prev)
}

// CheckpointOp returns the op that stores cp for the fence's channel.
func (f *Fence) CheckpointOp(cp Checkpoint) (metastore.Op, error) {
	b, err := json.Marshal(cp)
	if err != nil {
		return metastore.Op{}, err
	}
	return metastore.Put(f.keys.checkpoint(f.lease.Channel), b), nil
}

// CheckpointCmp is the predicate that the checkpoint is as the writer last saw it, so a
// delayed duplicate of an old checkpoint write can never move it backward.
func (f *Fence) CheckpointCmp(prev int64) metastore.Cmp {
	key := f.keys.checkpoint(f.lease.Channel)
	if prev == 0 {
		return metastore.KeyAbsent(key)
	}
	return metastore.ModRevisionEquals(key, prev)
}

// ReadCheckpoint returns a channel's checkpoint; a channel never checkpointed has the zero
// Checkpoint.
func (c *Catalog) ReadCheckpoint(ctx context.Context, ch string) (Checkpoint, error) {
	kv, err := c.kv.Get(ctx, c.keys.checkpoint(ch))
	if errors.Is(err, metastore.ErrNotFound) {
		return Checkpoint{}, nil
	}
	if err != nil {
		return Checkpoint{}, fmt.Errorf("read checkpoint of %s: %w", ch, err)
	}
	var cp Checkpoint
	if err := json.Unmarshal(kv.Value, &cp); err != nil {
		return Checkpoint{}, fmt.Errorf("meta: decode checkpoint of %s: %w", ch, err)
	}
	cp.ModRevision = kv.ModRevision
	return cp, nil
}

// ListSegments returns every segment record of a collection, in ID order.
func (c *Catalog) ListSegments(ctx context.Context, coll int64) ([]*Segment, error) {
	kvs, _, err := c.kv.Range(ctx, c.keys.collectionSegments(coll))
	if err != nil {
		return nil, fmt.Errorf("list segments of collection %d: %w", coll, err)
	}
	out := make([]*Segment, 0, len(kvs))
	for _, kv := range kvs {
		s, err := decodeSegment(kv)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	sortSegments(out)
	return out, nil
}

// ListChannelSegments returns the segment records of one channel.
func (c *Catalog) ListChannelSegments(ctx context.Context, coll int64, ch string) ([]*Segment, error) {
	all, err := c.ListSegments(ctx, coll)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, s := range all {
		if s.Channel == ch {
			out = append(out, s)
		}
	}
	return out, nil
}

// GetSegment returns one segment record.
func (c *Catalog) GetSegment(ctx context.Context, coll, id int64) (*Segment, error) {
	kv, err := c.kv.Get(ctx, c.keys.segment(coll, id))
	if err != nil {
		return nil, fmt.Errorf("read segment %d: %w", id, err)
	}
	return decodeSegment(kv)
}

func decodeSegment(kv metastore.KV) (*Segment, error) {
	s := &Segment{}
	if err := json.Unmarshal(kv.Value, s); err != nil {
		return nil, fmt.Errorf("meta: decode segment %s: %w", kv.Key, err)
	}
	s.ModRevision = kv.ModRevision
	return s, nil
}

// sortSegments orders by ID: ranges come back in key order, where "10" sorts before "9".
func sortSegments(s []*Segment) {
	slices.SortFunc(s, func(a, b *Segment) int { return cmpInt(a.ID, b.ID) })
}

// ListFiles returns the files of a segment in ID order.
func (c *Catalog) ListFiles(ctx context.Context, coll, seg int64) ([]File, error) {
	kvs, _, err := c.kv.Range(ctx, c.keys.segmentFiles(coll, seg))
	if err != nil {
		return nil, fmt.Errorf("list files of segment %d: %w", seg, err)
	}
	out := make([]File, 0, len(kvs))
	for _, kv := range kvs {
		var f File
		if err := json.Unmarshal(kv.Value, &f); err != nil {
			return nil, fmt.Errorf("meta: decode file %s: %w", kv.Key, err)
		}
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b File) int { return cmpInt(a.ID, b.ID) })
	return out, nil
}

// FlushMarkers records where a Flush put its markers: channel → marker position. The proxy
// writes it after appending the markers; GetFlushState compares it with the checkpoints.
type FlushMarkers struct {
	Timestamp uint64            `json:"timestamp"`
	Positions map[string]uint64 `json:"positions"`
	// Token is an ID the proxy hands out among the flushed segment IDs, for clients that ask
	// GetFlushState by segment IDs only (the Node SDK): it names this record.
	Token     int64     `json:"token,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// ErrFlushExists means a flush record with that timestamp exists already (two proxies flushed
// the same collection in the same millisecond); the caller picks another timestamp.
var ErrFlushExists = errors.New("meta: flush record exists")

// SaveFlush stores the marker positions of one Flush call, and its token when set. It never
// overwrites another flush's record.
func (c *Catalog) SaveFlush(ctx context.Context, coll int64, fm FlushMarkers) error {
	fm.CreatedAt = c.now().UTC()
	b, err := json.Marshal(fm)
	if err != nil {
		return err
	}
	key := c.keys.flush(coll, fm.Timestamp)
	ops := []metastore.Op{metastore.Put(key, b)}
	if fm.Token != 0 {
		ref, err := json.Marshal(flushToken{Collection: coll, Timestamp: fm.Timestamp})
		if err != nil {
			return err
		}
		ops = append(ops, metastore.Put(c.keys.flushToken(fm.Token), ref))
	}
	_, err = c.kv.Txn(ctx, []metastore.Cmp{metastore.KeyAbsent(key)}, ops)
	if errors.Is(err, metastore.ErrPredicateFailed) {
		return fmt.Errorf("%w: collection %d, timestamp %d", ErrFlushExists, coll, fm.Timestamp)
	}
	if err != nil {
		return fmt.Errorf("save flush %d of collection %d: %w", fm.Timestamp, coll, err)
	}
	return nil
}

type flushToken struct {
	Collection int64  `json:"collection_id"`
	Timestamp  uint64 `json:"timestamp"`
}

// ReadFlushToken returns the flush record a token names, and its collection; an ID that is not
// a flush token gives metastore.ErrNotFound.
func (c *Catalog) ReadFlushToken(ctx context.Context, token int64) (int64, FlushMarkers, error) {
	kv, err := c.kv.Get(ctx, c.keys.flushToken(token))
	if err != nil {
		return 0, FlushMarkers{}, fmt.Errorf("read flush token %d: %w", token, err)
	}
	var ref flushToken
	if err := json.Unmarshal(kv.Value, &ref); err != nil {
		return 0, FlushMarkers{}, fmt.Errorf("meta: decode flush token %d: %w", token, err)
	}
	fm, err := c.ReadFlush(ctx, ref.Collection, ref.Timestamp)
	return ref.Collection, fm, err
}

// ReadFlush returns the marker positions of the Flush with timestamp ts.
func (c *Catalog) ReadFlush(ctx context.Context, coll int64, ts uint64) (FlushMarkers, error) {
	kv, err := c.kv.Get(ctx, c.keys.flush(coll, ts))
	if err != nil {
		return FlushMarkers{}, fmt.Errorf("read flush %d of collection %d: %w", ts, coll, err)
	}
	var fm FlushMarkers
	if err := json.Unmarshal(kv.Value, &fm); err != nil {
		return FlushMarkers{}, fmt.Errorf("meta: decode flush %s: %w", kv.Key, err)
	}
	return fm, nil
}

// LiveInsertSegments returns, in place, the segments of segs that hold rows a reader counts: the
// insert (L1) segments that are not dropped.
func LiveInsertSegments(segs []*Segment) []*Segment {
	return slices.DeleteFunc(segs, func(seg *Segment) bool { return seg.Level != L1 || seg.State == SegmentDropped })
}
