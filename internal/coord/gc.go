package coord

import (
	"context"
	"fmt"

	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/objstore"
	"github.com/weir-db/weir/internal/segment"
)

// GCStats describes one garbage collection.
type GCStats struct {
	Scanned, Deleted int
	DroppedSegments  int
}

// CollectGarbage deletes files no committed meta references once they are older than the grace
// period, and removes the segments of dropped collections: their files first, then their meta.
// It decides from a view reloaded right before it lists the objects, so every file a commit
// referenced before the listing is known.
func (c *Coordinator) CollectGarbage(ctx context.Context) (GCStats, error) {
	var st GCStats
	if _, err := c.view.Reload(ctx); err != nil {
		return st, err
	}
	colls, err := c.catalog.ListCollectionRecords(ctx)
	if err != nil {
		return st, err
	}
	dropped := map[int64]bool{}
	for _, coll := range colls {
		if coll.State == meta.Dropped {
			dropped[coll.ID] = true
		}
	}
	referenced := map[string]bool{}
	var gone []meta.Segment
	for _, s := range c.view.Segments(0) {
		if dropped[s.CollectionID] {
			gone = append(gone, s)
			continue // its files are no longer referenced
		}
		for _, f := range c.view.Files(s.ID) {
			referenced[f.Key] = true
		}
	}
	cutoff := c.now().Add(-c.cfg.GCGrace)
	for _, kind := range []segment.Kind{segment.KindInsert, segment.KindStats, segment.KindDelete} {
		var stale []string
		err := c.bucket.List(ctx, segment.KindPrefix(c.cfg.RootPath, kind), func(o objstore.ObjectInfo) error {
			st.Scanned++
			info, err := segment.ParseKey(o.Key)
			if err != nil {
				return nil // not a segment file: not ours to delete
			}
			if referenced[o.Key] {
				return nil
			}
			// Files of dropped collections go at once; any other unreferenced file only
			// after the grace period, so a sync still committing keeps its files.
			if dropped[info.Collection] || o.ModTime.Before(cutoff) {
				stale = append(stale, o.Key)
			}
			return nil
		})
		if err != nil {
			return st, fmt.Errorf("list %s files: %w", kind, err)
		}
		for _, key := range stale {
			if err := c.bucket.Delete(ctx, key); err != nil {
				return st, fmt.Errorf("delete %s: %w", key, err)
			}
			st.Deleted++
			c.m.gcDeleted.Inc()
		}
	}
	// The files of dropped collections are gone: now their meta can go.
	if len(gone) > 0 {
		if err := c.catalog.DeleteSegmentMeta(ctx, gone); err != nil {
			// Outcome possibly unknown: keep them in the view; the next round decides
			// again from what etcd holds.
			return st, err
		}
		for _, s := range gone {
			c.view.Forget(s.ID)
		}
		st.DroppedSegments = len(gone)
		c.m.gcSegments.Add(float64(len(gone)))
	}
	if st.Deleted > 0 || st.DroppedSegments > 0 {
		c.logger.Info("garbage collected", "files", st.Deleted, "dropped_segments", st.DroppedSegments, "scanned", st.Scanned)
	}
	return st, nil
}
