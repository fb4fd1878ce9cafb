package coord

import (
	"context"
	"fmt"
	"time"

	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/objstore"
	"github.com/weir-db/weir/internal/segment"
	"github.com/weir-db/weir/internal/vindex"
)

// GCStats describes one garbage collection.
type GCStats struct {
	Scanned, Deleted int
	DroppedSegments  int
	// DroppedChannels and DroppedCollections count the channels and collections of dropped
	// collections this round finished removing.
	DroppedChannels, DroppedCollections int
}

// CollectGarbage deletes files no committed meta references once they are older than the grace
// period and were written under a claim or lease that no channel has any more (their writer can
// no longer commit them), and removes the segments of dropped collections: their files first,
// then their meta. It decides from a view reloaded right before it lists the objects, so every
// file a commit referenced before the listing is known.
//
// Age alone cannot tell a file nobody will reference from one whose commit is still coming: a
// sync retries its commit for as long as etcd refuses it (over its space quota, say) or object
// storage refuses the sync's next file, and such a commit lands, pointing at what GC deleted.
// The fencing token in a file's key can tell: a data node names its files by its claim of the
// channel (the epoch revision; the lease revision for a writer that never claims), and every
// commit is fenced by the current claim, so a file of an earlier claim or lease can never be
// referenced, while a file of a current one (or one made after the view was read) is kept,
// however old: its sync either commits it or, once the channel is claimed again, can no
// longer. A pipeline that restarts claims again, so its predecessor's files go too.
func (c *Coordinator) CollectGarbage(ctx context.Context) (GCStats, error) {
	var st GCStats
	if _, err := c.view.Reload(ctx); err != nil {
		return st, err
	}
	viewRev := c.view.Revision()
	current := c.view.Writing()
	colls, err := c.catalog.ListCollectionRecords(ctx)
	if err != nil {
		return st, err
	}
	dropped := map[int64]bool{}
	var collecting []*meta.Collection
	for _, coll := range colls {
		if coll.State == meta.Dropped {
			dropped[coll.ID] = true
			if coll.CollectedAt.IsZero() {
				collecting = append(collecting, coll)
			}
		}
	}
	// A dropped collection's channels go first: their streams, then their keys. The drop
	// itself deleted their leases (a drop by an older proxy did not: deleting the keys does it
	// here), so no data node can commit for them any more, and their files can go at once.
	if c.channelLog() == nil {
		// Without the log (its connection not up yet) a dropped collection's streams cannot
		// go: leave the whole collection for a later round, so that it is removed in order.
		for _, coll := range collecting {
			delete(dropped, coll.ID)
		}
		collecting = nil
	}
	for _, coll := range collecting {
		if err := c.dropChannels(ctx, coll); err != nil {
			return st, err
		}
		st.DroppedChannels += len(coll.VChannels)
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
			if !dropped[info.Collection] && (current[info.Lease] || info.Lease > viewRev) {
				return nil // its sync may still commit it
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
	if err := c.collectIndexFiles(ctx, &st, dropped, current, viewRev, cutoff); err != nil {
		return st, err
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
	for _, coll := range collecting {
		if err := c.catalog.MarkCollected(ctx, coll.ID); err != nil {
			return st, err
		}
		st.DroppedCollections++
	}
	if st.Deleted > 0 || st.DroppedSegments > 0 || st.DroppedCollections > 0 {
		c.logger.Info("garbage collected", "files", st.Deleted, "dropped_segments", st.DroppedSegments,
			"dropped_collections", st.DroppedCollections, "scanned", st.Scanned)
	}
	return st, nil
}

// dropChannels deletes the DML channels of a dropped collection from the log and then their
// keys from the metastore. A coordinator without a log (its NATS connection not up yet) leaves
// the collection for a later round.
func (c *Coordinator) dropChannels(ctx context.Context, coll *meta.Collection) error {
	l := c.channelLog()
	for _, ch := range coll.VChannels {
		if err := l.DeleteChannel(ctx, ch); err != nil {
			return fmt.Errorf("collection %d: %w", coll.ID, err)
		}
	}
	if err := c.catalog.DeleteChannels(ctx, coll.VChannels); err != nil {
		return fmt.Errorf("collection %d: %w", coll.ID, err)
	}
	return nil
}

// collectIndexFiles deletes the index files no segment index record references, by the rule of
// segment files (a file of a current claim may still be committed; any other only after the
// grace period), with one more case: a file of an index definition that no longer exists can
// never be committed (the commit compares the definition), so it goes after the grace period
// whatever its claim. The records are read after the view, so a record committed after they are
// read is by a current claim, whose files are kept.
func (c *Coordinator) collectIndexFiles(ctx context.Context, st *GCStats, dropped map[int64]bool, current map[int64]bool, viewRev int64, cutoff time.Time) error {
	referenced, live, err := c.catalog.IndexFiles(ctx)
	if err != nil {
		return err
	}
	var stale []string
	err = c.bucket.List(ctx, vindex.Prefix(c.cfg.RootPath), func(o objstore.ObjectInfo) error {
		st.Scanned++
		k, err := vindex.ParseFileKey(o.Key)
		if err != nil || referenced[o.Key] {
			return nil // not an index file, or one in use
		}
		old := o.ModTime.Before(cutoff)
		switch {
		case dropped[k.Collection]:
			stale = append(stale, o.Key)
		case !live[k.Index] && old:
			stale = append(stale, o.Key)
		case current[k.Token] || k.Token > viewRev:
			// its build may still commit it
		case old:
			stale = append(stale, o.Key)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list index files: %w", err)
	}
	for _, key := range stale {
		if err := c.bucket.Delete(ctx, key); err != nil {
			return fmt.Errorf("delete %s: %w", key, err)
		}
		st.Deleted++
		c.m.gcDeleted.Inc()
	}
	return nil
}
