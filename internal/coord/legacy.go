package coord

import (
	"context"
	"errors"
	"fmt"

	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/metastore"
)

// The legacy protocol (BRIEF invariant 7): a data node watching a channel without a lease
// sends its meta to the coordinator, which is then the single writer. The coordinator checks
// that the caller owns the channel — the watch info names the caller's node and its revision
// is the watch operation ID the caller presents — in the same transaction as the write, so a
// caller that lost the channel writes nothing even if the check and the write race. Repeated
// calls are idempotent (a resend after a lost reply stores nothing twice) and nothing moves
// backward (a late duplicate of an older call changes nothing).

// ErrNotWatcher means the caller does not watch the channel under that operation.
var ErrNotWatcher = errors.New("coord: caller does not watch the channel")

// SegmentUpdate is one segment's new record and its new files.
type SegmentUpdate struct {
	Segment meta.Segment
	Files   []meta.File
}

// legacyFence returns a fence held on the caller's behalf, after checking that node watches
// ch under operation opID.
func (c *Coordinator) legacyFence(ctx context.Context, ch string, node, opID int64) (*meta.Fence, error) {
	l, err := c.catalog.ReadLease(ctx, ch)
	if errors.Is(err, metastore.ErrNotFound) {
		return nil, fmt.Errorf("%w: channel %s is not assigned", ErrNotWatcher, ch)
	}
	if err != nil {
		return nil, err
	}
	if l.NodeID != node || l.Revision != opID {
		return nil, fmt.Errorf("%w: channel %s is watched by node %d under operation %d, not node %d under %d", ErrNotWatcher, ch, l.NodeID, l.Revision, node, opID)
	}
	return c.catalog.Fence(l), nil
}

func notWatcher(err error) error {
	if errors.Is(err, meta.ErrLeaseLost) {
		return fmt.Errorf("%w: %w", ErrNotWatcher, err)
	}
	return err
}

// SaveBinlogPaths writes segment records and their new files for a legacy data node, then the
// checkpoint when cp is set.
func (c *Coordinator) SaveBinlogPaths(ctx context.Context, ch string, node, opID int64, segs []SegmentUpdate, cp *meta.Checkpoint) error {
	f, err := c.legacyFence(ctx, ch, node, opID)
	if err != nil {
		return err
	}
	for _, u := range segs {
		if u.Segment.Channel != ch {
			return fmt.Errorf("coord: segment %d belongs to channel %s, not %s", u.Segment.ID, u.Segment.Channel, ch)
		}
		if err := c.saveSegment(ctx, f, u); err != nil {
			return notWatcher(err)
		}
	}
	c.m.legacyCalls.WithLabelValues("SaveBinlogPaths").Inc()
	if cp != nil {
		return notWatcher(c.saveCheckpoint(ctx, f, *cp))
	}
	return nil
}

// saveSegment writes one segment update unless the stored record already holds it.
func (c *Coordinator) saveSegment(ctx context.Context, f *meta.Fence, u SegmentUpdate) error {
	for attempt := 0; ; attempt++ {
		cur, err := c.catalog.GetSegment(ctx, u.Segment.CollectionID, u.Segment.ID)
		var prev int64
		switch {
		case errors.Is(err, metastore.ErrNotFound):
		case err != nil:
			return err
		default:
			if covers(cur, &u.Segment) {
				return nil // a resend, or a late duplicate of an older call
			}
			prev = cur.ModRevision
		}
		s := u.Segment
		ops, err := f.SegmentOps(&s, u.Files)
		if err != nil {
			return err
		}
		_, err = f.Commit(ctx, []metastore.Cmp{f.SegmentCmp(&s, prev)}, ops)
		if errors.Is(err, metastore.ErrPredicateFailed) && !errors.Is(err, meta.ErrLeaseLost) && attempt < 3 {
			continue // a concurrent call changed the record: decide again
		}
		return err
	}
}

// covers reports whether the stored record already holds everything the update brings.
func covers(cur, upd *meta.Segment) bool {
	return cur.MaxPos >= upd.MaxPos && cur.Files >= upd.Files && cur.Rows >= upd.Rows &&
		stateRank(cur.State) >= stateRank(upd.State)
}

func stateRank(s meta.SegmentState) int {
	switch s {
	case meta.Growing:
		return 0
	case meta.Sealed:
		return 1
	case meta.Flushed:
		return 2
	}
	return 3
}

// UpdateChannelCheckpoint writes a legacy data node's checkpoint; it never moves backward.
func (c *Coordinator) UpdateChannelCheckpoint(ctx context.Context, ch string, node, opID int64, cp meta.Checkpoint) error {
	f, err := c.legacyFence(ctx, ch, node, opID)
	if err != nil {
		return err
	}
	c.m.legacyCalls.WithLabelValues("UpdateChannelCheckpoint").Inc()
	return notWatcher(c.saveCheckpoint(ctx, f, cp))
}

func (c *Coordinator) saveCheckpoint(ctx context.Context, f *meta.Fence, cp meta.Checkpoint) error {
	for attempt := 0; ; attempt++ {
		cur, err := c.catalog.ReadCheckpoint(ctx, f.Lease().Channel)
		if err != nil {
			return err
		}
		if cp.Position <= cur.Position {
			return nil
		}
		op, err := f.CheckpointOp(cp)
		if err != nil {
			return err
		}
		_, err = f.Commit(ctx, []metastore.Cmp{f.CheckpointCmp(cur.ModRevision)}, []metastore.Op{op})
		if errors.Is(err, metastore.ErrPredicateFailed) && !errors.Is(err, meta.ErrLeaseLost) && attempt < 3 {
			continue
		}
		return err
	}
}
