package coord

import (
	"context"
	"errors"
	"fmt"

	"github.com/weir-db/weir/internal/failpoint"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/metastore"
)

// The legacy protocol (BRIEF invariant 7): a data node watching a channel without a lease
// sends its meta to the coordinator, which is then the single writer. The coordinator checks
// that the caller owns the channel — the watch info names the caller's node and its revision
// is the watch operation ID the caller presents — in the same transaction as the write, so a
// caller that lost the channel writes nothing even if the check and the write race.
//
// Within one watch operation a data node can run several pipelines one after the other (a
// restart after an error, or of the process). Each first claims the channel through
// ClaimChannel, as a pipeline of the current protocol claims it itself, and presents the epoch
// it got with every write: the write then compares the channel's epoch key, so a late call of
// an earlier incarnation stores nothing. Each segment write also carries the record revision
// the caller last saw (its compare-and-swap). A resent call whose first attempt applied is
// recognised by the stored record being exactly the one sent, and answered as a success;
// nothing moves backward. A data node of an earlier release claims nothing and sends no
// revisions: its writes are checked against the watch info alone, as that release did.

var (
	// ErrNotWatcher means the caller does not watch the channel under that operation (or a
	// later incarnation claimed it).
	ErrNotWatcher = errors.New("coord: caller does not watch the channel")
	// ErrConflict means a segment record is not the one the caller last saw: the caller's
	// view of the channel is wrong, and it must start again from what is stored.
	ErrConflict = errors.New("coord: segment record changed since the caller read it")
)

// SegmentUpdate is one segment's new record and its new files.
type SegmentUpdate struct {
	Segment meta.Segment
	Files   []meta.File
	// Prev is the record's mod revision as the caller last saw it (0: no record); nil from a
	// data node of an earlier release.
	Prev *int64
}

// LegacyCaller is a legacy data node's pipeline: its node and channel, the watch operation it
// runs under, and the epoch ClaimChannel gave it (0 for a data node of an earlier release).
type LegacyCaller struct {
	Channel    string
	Node, OpID int64
	Epoch      int64
}

// watchedBy returns the channel's watch info after checking that the caller watches it under its
// operation.
func (c *Coordinator) watchedBy(ctx context.Context, caller LegacyCaller) (meta.Lease, error) {
	ch := caller.Channel
	l, err := c.catalog.ReadLease(ctx, ch)
	if errors.Is(err, metastore.ErrNotFound) {
		return meta.Lease{}, fmt.Errorf("%w: channel %s is not assigned", ErrNotWatcher, ch)
	}
	if err != nil {
		return meta.Lease{}, err
	}
	if l.NodeID != caller.Node || l.Revision != caller.OpID {
		return meta.Lease{}, fmt.Errorf("%w: channel %s is watched by node %d under operation %d, not node %d under %d", ErrNotWatcher, ch, l.NodeID, l.Revision, caller.Node, caller.OpID)
	}
	return l, nil
}

// legacyFence returns a fence held on the caller's behalf, after checking that it watches its
// channel under its operation.
func (c *Coordinator) legacyFence(ctx context.Context, caller LegacyCaller) (*meta.Fence, error) {
	l, err := c.watchedBy(ctx, caller)
	if err != nil {
		return nil, err
	}
	if caller.Epoch != 0 {
		return c.catalog.FenceAt(l, caller.Epoch), nil
	}
	// A data node of an earlier release claims nothing; once a pipeline of this release has
	// claimed the channel under the same watch info, its late calls must fail.
	return c.catalog.FenceUnclaimed(l), nil
}

func notWatcher(err error) error {
	if errors.Is(err, meta.ErrLeaseLost) {
		return fmt.Errorf("%w: %w", ErrNotWatcher, err)
	}
	return err
}

// ClaimChannel starts a new incarnation of a legacy pipeline: it claims the channel on the
// caller's behalf and returns the epoch the incarnation's writes present. Every earlier
// incarnation's writes fail from then on.
func (c *Coordinator) ClaimChannel(ctx context.Context, ch string, node, opID int64) (int64, error) {
	l, err := c.watchedBy(ctx, LegacyCaller{Channel: ch, Node: node, OpID: opID})
	if err != nil {
		return 0, err
	}
	f := c.catalog.Fence(l) // a claim compares the lease alone, as a pipeline's own does
	if err := f.Claim(ctx, node); err != nil {
		return 0, notWatcher(err)
	}
	c.m.legacyCalls.WithLabelValues("ClaimChannel").Inc()
	return f.Epoch(), nil
}

// SaveBinlogPaths writes segment records and their new files for a legacy data node, each in
// its own transaction, then the checkpoint when cp is set. It returns each record's mod
// revision once written.
func (c *Coordinator) SaveBinlogPaths(ctx context.Context, caller LegacyCaller, segs []SegmentUpdate, cp *meta.Checkpoint) ([]int64, error) {
	f, err := c.legacyFence(ctx, caller)
	if err != nil {
		return nil, err
	}
	revs := make([]int64, 0, len(segs))
	for _, u := range segs {
		if u.Segment.Channel != caller.Channel {
			return nil, fmt.Errorf("coord: segment %d belongs to channel %s, not %s", u.Segment.ID, u.Segment.Channel, caller.Channel)
		}
		rev, err := c.saveSegment(ctx, f, u)
		if err != nil {
			return nil, notWatcher(err)
		}
		revs = append(revs, rev)
		if len(revs) < len(segs) {
			if err := failpoint.Hit(FailLegacyBetweenSegments); err != nil {
				return nil, err
			}
		}
	}
	c.m.legacyCalls.WithLabelValues("SaveBinlogPaths").Inc()
	if cp != nil {
		return revs, notWatcher(c.saveCheckpoint(ctx, f, *cp))
	}
	return revs, nil
}

// FailLegacyBetweenSegments fails a SaveBinlogPaths call between the transactions of two of its
// segments, as a coordinator crash between the split transactions of one legacy sync would.
const FailLegacyBetweenSegments = "coord/legacy-between-segments"

// saveSegment writes one segment update unless the stored record already is it, and returns
// the record's mod revision.
func (c *Coordinator) saveSegment(ctx context.Context, f *meta.Fence, u SegmentUpdate) (int64, error) {
	want := u.Segment
	want.Lease = f.Lease().Revision // as SegmentOps stores it
	for attempt := 0; ; attempt++ {
		cur, err := c.catalog.GetSegment(ctx, u.Segment.CollectionID, u.Segment.ID)
		var prev int64
		switch {
		case errors.Is(err, metastore.ErrNotFound):
			if u.Prev != nil && *u.Prev != 0 {
				return 0, fmt.Errorf("%w: segment %d was removed", ErrConflict, want.ID)
			}
		case err != nil:
			return 0, err
		case meta.SameWrite(cur, &want):
			return cur.ModRevision, nil // a resend of a call that applied
		case u.Prev == nil:
			// A data node of an earlier release: its rules. It sends no revision, and a late
			// duplicate of an older call must not roll the record back.
			if covers(cur, &u.Segment) {
				return cur.ModRevision, nil
			}
			prev = cur.ModRevision
		case cur.ModRevision != *u.Prev:
			return 0, fmt.Errorf("%w: segment %d is at revision %d, the caller saw %d", ErrConflict, want.ID, cur.ModRevision, *u.Prev)
		default:
			prev = *u.Prev
		}
		s := u.Segment
		ops, err := f.SegmentOps(&s, u.Files)
		if err != nil {
			return 0, err
		}
		rev, err := f.Commit(ctx, []metastore.Cmp{f.SegmentCmp(&s, prev)}, ops)
		if errors.Is(err, metastore.ErrPredicateFailed) && !errors.Is(err, meta.ErrLeaseLost) && attempt < 3 {
			continue // a concurrent call changed the record: decide again from what is stored
		}
		if errors.Is(err, metastore.ErrOutcomeUnknown) && attempt < 3 {
			continue // re-read: applied, it is the record sent
		}
		return rev, err
	}
}

// covers reports whether the stored record already holds everything the update brings (the
// rule for callers of an earlier release).
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
func (c *Coordinator) UpdateChannelCheckpoint(ctx context.Context, caller LegacyCaller, cp meta.Checkpoint) error {
	f, err := c.legacyFence(ctx, caller)
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
