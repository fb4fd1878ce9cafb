package meta

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/weir-db/weir/internal/metastore"
)

// SegmentIndex records that an index file of one flushed segment, built for one index
// definition, exists and is complete: the file is referenced only through this record, which its
// channel's owner commits, fenced by its lease, once the file is written and read back. There is
// at most one record per segment and index (the commit requires the key absent).
type SegmentIndex struct {
	CollectionID int64  `json:"collection_id"`
	SegmentID    int64  `json:"segment_id"`
	PartitionID  int64  `json:"partition_id"`
	Channel      string `json:"channel"`
	IndexID      int64  `json:"index_id"`
	FieldID      int64  `json:"field_id"`
	Key          string `json:"key"`
	Bytes        int64  `json:"bytes"`
	Rows         int64  `json:"rows"`
	// IndexBytes is the memory the index holds beyond the segment's rows when loaded.
	IndexBytes int64     `json:"index_bytes"`
	Type       string    `json:"type"`
	Seed       uint64    `json:"seed"`
	BuildTime  float64   `json:"build_seconds"`
	Node       int64     `json:"node"`
	Lease      int64     `json:"lease"`
	CreatedAt  time.Time `json:"created_at"`
	// ModRevision is the record's metastore mod revision when read (not stored).
	ModRevision int64 `json:"-"`
}

// Segment indexes are kept by collection, then index, so that dropping an index (or its
// collection) deletes its records with one prefix in the drop's own transaction.
func (k keys) segmentIndexes(coll int64) string {
	return k.root + "/meta/segment-indexes/" + strconv.FormatInt(coll, 10) + "/"
}

func (k keys) segmentIndexesOf(coll, index int64) string {
	return k.segmentIndexes(coll) + strconv.FormatInt(index, 10) + "/"
}

func (k keys) segmentIndex(coll, index, seg int64) string {
	return k.segmentIndexesOf(coll, index) + strconv.FormatInt(seg, 10)
}

// ListSegmentIndexes returns the segment index records of a collection, by index then segment.
func (c *Catalog) ListSegmentIndexes(ctx context.Context, coll int64) ([]*SegmentIndex, error) {
	kvs, _, err := c.kv.Range(ctx, c.keys.segmentIndexes(coll))
	if err != nil {
		return nil, fmt.Errorf("list segment indexes of collection %d: %w", coll, err)
	}
	out := make([]*SegmentIndex, 0, len(kvs))
	for _, kv := range kvs {
		si := &SegmentIndex{}
		if err := json.Unmarshal(kv.Value, si); err != nil {
			return nil, fmt.Errorf("meta: decode segment index %s: %w", kv.Key, err)
		}
		si.ModRevision = kv.ModRevision
		out = append(out, si)
	}
	slices.SortFunc(out, func(a, b *SegmentIndex) int {
		if a.IndexID != b.IndexID {
			return cmpInt(a.IndexID, b.IndexID)
		}
		return cmpInt(a.SegmentID, b.SegmentID)
	})
	return out, nil
}

// GetSegmentIndex returns the record of one segment's index (metastore.ErrNotFound when none).
func (c *Catalog) GetSegmentIndex(ctx context.Context, coll, index, seg int64) (*SegmentIndex, error) {
	kv, err := c.kv.Get(ctx, c.keys.segmentIndex(coll, index, seg))
	if err != nil {
		return nil, err
	}
	si := &SegmentIndex{}
	if err := json.Unmarshal(kv.Value, si); err != nil {
		return nil, fmt.Errorf("meta: decode segment index %s: %w", kv.Key, err)
	}
	si.ModRevision = kv.ModRevision
	return si, nil
}

// IndexBuilt is what a segment index commit compares: the segment and the index definition as
// the builder read them, and the record it replaces (0: none may exist).
type IndexBuilt struct {
	Segment  *Segment
	IndexRev int64 // the index definition's mod revision
	Replaces int64 // the mod revision of a record reported corrupt that this one replaces
}

// SegmentIndexTxn returns the compares and ops that commit si through the channel's fence: the
// segment still flushed as read (a segment compacted or dropped since changed its record), the
// index definition still the one built for (a dropped or re-created index changed or deleted
// it), and no record yet (or still the corrupt one it replaces, whose report goes with it).
func (f *Fence) SegmentIndexTxn(si *SegmentIndex, b IndexBuilt) ([]metastore.Cmp, []metastore.Op, error) {
	si.Lease = f.lease.Revision
	v, err := json.Marshal(si)
	if err != nil {
		return nil, nil, err
	}
	key := f.keys.segmentIndex(si.CollectionID, si.IndexID, si.SegmentID)
	cmps := []metastore.Cmp{
		metastore.ModRevisionEquals(f.keys.segment(si.CollectionID, si.SegmentID), b.Segment.ModRevision),
		metastore.ModRevisionEquals(f.keys.index(si.CollectionID, si.FieldID), b.IndexRev),
	}
	ops := []metastore.Op{metastore.Put(key, v)}
	if b.Replaces == 0 {
		cmps = append(cmps, metastore.KeyAbsent(key))
	} else {
		cmps = append(cmps, metastore.ModRevisionEquals(key, b.Replaces))
		ops = append(ops, metastore.Delete(f.keys.corruptIndex(si.CollectionID, si.IndexID, si.SegmentID)))
	}
	return cmps, ops, nil
}

// Corrupt index reports: a query node that finds a committed index file failing its checksum
// reports it here (it searches the segment exactly meanwhile); the channel's owner then builds
// the index again and replaces the record, deleting the report in the same transaction.
func (k keys) corruptIndexes(coll int64) string {
	return k.root + "/meta/index-corrupt/" + strconv.FormatInt(coll, 10) + "/"
}

func (k keys) corruptIndex(coll, index, seg int64) string {
	return k.corruptIndexes(coll) + strconv.FormatInt(index, 10) + "/" + strconv.FormatInt(seg, 10)
}

// ReportCorruptIndex records that si's file failed to load (reason says how). Idempotent.
func (c *Catalog) ReportCorruptIndex(ctx context.Context, si *SegmentIndex, reason string) error {
	v, err := json.Marshal(map[string]any{"key": si.Key, "record_revision": si.ModRevision, "reason": reason, "at": c.now().UTC()})
	if err != nil {
		return err
	}
	_, err = c.kv.Txn(ctx, nil, []metastore.Op{metastore.Put(c.keys.corruptIndex(si.CollectionID, si.IndexID, si.SegmentID), v)})
	return err
}

// CorruptIndexes returns the records reported corrupt in a collection: the record's mod
// revision by index and segment.
func (c *Catalog) CorruptIndexes(ctx context.Context, coll int64) (map[[2]int64]int64, error) {
	kvs, _, err := c.kv.Range(ctx, c.keys.corruptIndexes(coll))
	if err != nil {
		return nil, err
	}
	out := map[[2]int64]int64{}
	for _, kv := range kvs {
		var r struct {
			Rev int64 `json:"record_revision"`
		}
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			return nil, fmt.Errorf("meta: decode %s: %w", kv.Key, err)
		}
		var index, seg int64
		if _, err := fmt.Sscanf(kv.Key[len(c.keys.corruptIndexes(coll)):], "%d/%d", &index, &seg); err != nil {
			return nil, fmt.Errorf("meta: corrupt index report %s: %w", kv.Key, err)
		}
		out[[2]int64{index, seg}] = r.Rev
	}
	return out, nil
}

// IndexRevisions returns each index definition of a collection with its mod revision, by field.
func (c *Catalog) IndexRevisions(ctx context.Context, coll int64) (map[int64]*Index, map[int64]int64, error) {
	kvs, _, err := c.kv.Range(ctx, c.keys.indexes(coll))
	if err != nil {
		return nil, nil, err
	}
	defs, revs := map[int64]*Index{}, map[int64]int64{}
	for _, kv := range kvs {
		idx, err := decodeIndex(kv.Value)
		if err != nil {
			return nil, nil, err
		}
		defs[idx.FieldID], revs[idx.FieldID] = idx, kv.ModRevision
	}
	return defs, revs, nil
}

// IndexFiles returns what garbage collection needs of every collection's indexes: the keys of
// the index files segment index records reference, and the IDs of the index definitions that
// exist.
func (c *Catalog) IndexFiles(ctx context.Context) (referenced map[string]bool, live map[int64]bool, err error) {
	recs, _, err := c.kv.Range(ctx, c.keys.root+"/meta/segment-indexes/")
	if err != nil {
		return nil, nil, fmt.Errorf("list segment indexes: %w", err)
	}
	referenced = map[string]bool{}
	for _, kv := range recs {
		var si SegmentIndex
		if err := json.Unmarshal(kv.Value, &si); err != nil {
			return nil, nil, fmt.Errorf("meta: decode segment index %s: %w", kv.Key, err)
		}
		referenced[si.Key] = true
	}
	defs, _, err := c.kv.Range(ctx, c.keys.root+"/meta/indexes/")
	if err != nil {
		return nil, nil, fmt.Errorf("list indexes: %w", err)
	}
	live = map[int64]bool{}
	for _, kv := range defs {
		idx, err := decodeIndex(kv.Value)
		if err != nil {
			return nil, nil, err
		}
		live[idx.ID] = true
	}
	return referenced, live, nil
}
