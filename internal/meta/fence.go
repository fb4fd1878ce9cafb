package meta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/weir-db/weir/internal/apierr"
	"github.com/weir-db/weir/internal/metastore"
)

var (
	// ErrLeaseLost means the channel's lease key changed since the writer read it: another
	// owner (or a release) took the channel. The write did not happen and must not be retried.
	ErrLeaseLost = errors.New("meta: channel lease lost")
	// ErrCollectionDropped means a channel's collection was dropped: it gets no lease.
	ErrCollectionDropped = errors.New("meta: collection dropped")
)

// Lease is a data node's right to write one channel's meta. Revision, the mod revision of the
// lease key when the node read it, is the fencing token: every assignment rewrites the key, so
// the token only grows and an old owner's token never matches again, even when the channel
// comes back to the same node (A-B-A).
type Lease struct {
	Channel      string    `json:"-"`
	CollectionID int64     `json:"collection_id"`
	NodeID       int64     `json:"node_id"`
	AssignedAt   time.Time `json:"assigned_at"`
	// Legacy marks watch info of the previous release's protocol: no lease. The data node
	// then sends its meta to the coordinator (SaveBinlogPaths, UpdateChannelCheckpoint),
	// which writes it after checking the caller owns the channel (invariant 7).
	Legacy   bool  `json:"legacy,omitempty"`
	Revision int64 `json:"-"`
}

// The write protocols a process speaks, announced in its session (BRIEF invariant 7). Data
// nodes and the coordinator compare what the other announced with these, so they are defined
// once, here, beside the lease and its Legacy flag.
const (
	// ProtocolCurrent: a data node writes its meta directly, fenced by the lease, when the
	// watch info has a lease, and through the coordinator when it has none.
	ProtocolCurrent = "current"
	// ProtocolLegacy behaves as the previous release: watch info without leases, every data
	// node meta write through the coordinator.
	ProtocolLegacy = "legacy"
)

// AssignChannel writes a new lease for a channel: node becomes its owner and every earlier
// lease stops matching. It is the coordinator's (and standalone bootstrap's) call, never a
// data node's.
func (c *Catalog) AssignChannel(ctx context.Context, ch string, collectionID, node int64) (Lease, error) {
	return c.assign(ctx, Lease{Channel: ch, CollectionID: collectionID, NodeID: node, AssignedAt: c.now().UTC()})
}

// AssignChannelLegacy writes watch info of the legacy protocol: the node owns the channel, and
// the revision of this write is the watch operation ID the node presents to the coordinator.
func (c *Catalog) AssignChannelLegacy(ctx context.Context, ch string, collectionID, node int64) (Lease, error) {
	return c.assign(ctx, Lease{Channel: ch, CollectionID: collectionID, NodeID: node, AssignedAt: c.now().UTC(), Legacy: true})
}

func (c *Catalog) assign(ctx context.Context, l Lease) (Lease, error) {
	ch := l.Channel
	b, err := json.Marshal(l)
	if err != nil {
		return Lease{}, err
	}
	// The collection must be live, and still be when the lease is written: an assignment
	// decided from a collection list read before a drop would otherwise give a dropped
	// collection's channel a lease again, after the drop released it. A channel with no
	// collection record at all (tools and tests that manage bare channels) is not guarded.
	collKey := c.keys.collection(l.CollectionID)
	guard := metastore.KeyAbsent(collKey)
	coll, rev, err := c.getCollection(ctx, l.CollectionID)
	switch {
	case err == nil && coll.State != Created:
		return Lease{}, fmt.Errorf("assign channel %s: %w: collection %d", ch, ErrCollectionDropped, l.CollectionID)
	case err == nil:
		guard = metastore.ModRevisionEquals(collKey, rev)
	case apierr.KindOf(err) != apierr.CollectionNotFound:
		return Lease{}, fmt.Errorf("assign channel %s: %w", ch, err)
	}
	// The epoch key goes with the lease it was claimed under: deleting it here lets a
	// claimed Fence compare the epoch key alone (see fenceCmps).
	rev, err = c.kv.Txn(ctx, []metastore.Cmp{guard}, []metastore.Op{metastore.Put(c.keys.lease(ch), b), metastore.Delete(c.keys.epoch(ch))})
	if errors.Is(err, metastore.ErrPredicateFailed) {
		return Lease{}, fmt.Errorf("assign channel %s: %w: collection %d changed meanwhile", ch, ErrCollectionDropped, l.CollectionID)
	}
	if err != nil {
		return Lease{}, fmt.Errorf("assign channel %s: %w", ch, err)
	}
	l.Revision = rev
	return l, nil
}

// releaseOps delete the lease and epoch keys of chs: after them no fenced write for the
// channels can succeed and no pipeline can start on them.
func (c *Catalog) releaseOps(chs []string) []metastore.Op {
	ops := make([]metastore.Op, 0, 2*len(chs))
	for _, ch := range chs {
		ops = append(ops, metastore.Delete(c.keys.lease(ch)), metastore.Delete(c.keys.epoch(ch)))
	}
	return ops
}

// DeleteChannels removes every key of channels chs (lease, epoch, checkpoint): what garbage
// collection does once a dropped collection's channels are gone from the log.
func (c *Catalog) DeleteChannels(ctx context.Context, chs []string) error {
	ops := make([]metastore.Op, 0, len(chs))
	for _, ch := range chs {
		ops = append(ops, metastore.DeletePrefix(c.keys.channel(ch)))
	}
	if _, err := c.kv.Txn(ctx, nil, ops); err != nil {
		return fmt.Errorf("delete channels %v: %w", chs, err)
	}
	return nil
}

// ReadLease returns the channel's current lease.
func (c *Catalog) ReadLease(ctx context.Context, ch string) (Lease, error) {
	kv, err := c.kv.Get(ctx, c.keys.lease(ch))
	if err != nil {
		return Lease{}, fmt.Errorf("read lease of %s: %w", ch, err)
	}
	var l Lease
	if err := json.Unmarshal(kv.Value, &l); err != nil {
		return Lease{}, fmt.Errorf("meta: decode lease of %s: %w", ch, err)
	}
	l.Channel, l.Revision = ch, kv.ModRevision
	return l, nil
}

// Fence writes one channel's meta under a lease. It is the only place the lease compare is
// built: every data node write for a channel — segment meta, delete meta, checkpoint — goes
// through Commit.
type Fence struct {
	kv    Store
	keys  keys
	lease Lease
	// epoch is the mod revision of the channel's epoch key written by Claim (0 before).
	epoch int64
	// unclaimed also requires the epoch key to be absent (FenceUnclaimed).
	unclaimed bool
}

// Fence returns the fenced writer for lease l.
func (c *Catalog) Fence(l Lease) *Fence { return &Fence{kv: c.kv, keys: c.keys, lease: l} }

// FenceUnclaimed returns a fenced writer under lease l for a writer that never claims the
// channel (a legacy data node of an earlier release, through the coordinator): besides the
// lease key it requires the epoch key to be absent, so that once a later pipeline claimed the
// channel under the same lease, the unclaimed writer's late calls fail.
func (c *Catalog) FenceUnclaimed(l Lease) *Fence {
	return &Fence{kv: c.kv, keys: c.keys, lease: l, unclaimed: true}
}

// FenceAt returns the fenced writer of an incarnation that claimed the channel under lease l
// at revision epoch (what Fence.Epoch returned): the coordinator writes for a legacy pipeline
// with it, so that an earlier incarnation's late calls are refused.
func (c *Catalog) FenceAt(l Lease, epoch int64) *Fence {
	return &Fence{kv: c.kv, keys: c.keys, lease: l, epoch: epoch}
}

// Lease is the lease this fence writes under.
func (f *Fence) Lease() Lease { return f.lease }

// Epoch is the revision of this fence's claim (0 before Claim).
func (f *Fence) Epoch() int64 { return f.epoch }

// Claim starts a new incarnation of the channel's writer under the same lease: it rewrites the
// channel's epoch key (fenced by the lease), and every later Commit also compares it. A
// pipeline restarted under an unchanged lease — in the same process after an error, or in a new
// process after a crash — thus fences off its predecessor: a transaction the predecessor sent
// before it stopped either applied before the Claim (and the new pipeline reads it) or fails.
// Call it before reading the channel's state.
func (f *Fence) Claim(ctx context.Context, node int64) error {
	b, err := json.Marshal(map[string]any{"node_id": node, "claimed_at": time.Now().UTC()})
	if err != nil {
		return err
	}
	rev, err := f.Commit(ctx, nil, []metastore.Op{metastore.Put(f.keys.epoch(f.lease.Channel), b)})
	if err != nil {
		return fmt.Errorf("claim channel %s: %w", f.lease.Channel, err)
	}
	f.epoch = rev
	return nil
}

// Commit applies ops in one transaction if the channel's lease is still f's and every cmp
// holds. It returns the revision the transaction committed at.
//
// Errors: ErrLeaseLost when the lease changed (nothing written; stop, do not retry); a
// *metastore.PredicateError wrapping metastore.ErrPredicateFailed when only a caller's cmp
// failed; metastore.ErrOutcomeUnknown when the transaction may or may not have applied — the
// caller re-reads before doing anything else.
func (f *Fence) Commit(ctx context.Context, cmps []metastore.Cmp, ops []metastore.Op) (int64, error) {
	all := f.fenceCmps(len(cmps))
	all = append(all, cmps...)
	rev, err := f.kv.Txn(ctx, all, ops)
	var pe *metastore.PredicateError
	if errors.As(err, &pe) && len(pe.Current) > 0 {
		switch {
		case f.unclaimed && f.epoch == 0 && len(pe.Current) > 1 && pe.Current[1].CreateRevision != 0:
			return 0, fmt.Errorf("%w: channel %s was claimed by a pipeline since the unclaimed writer read lease %d", ErrLeaseLost, f.lease.Channel, f.lease.Revision)
		case f.epoch == 0 && pe.Current[0].ModRevision != f.lease.Revision:
			return 0, fmt.Errorf("%w: channel %s lease revision %d, now %d", ErrLeaseLost, f.lease.Channel, f.lease.Revision, pe.Current[0].ModRevision)
		case f.epoch != 0 && pe.Current[0].ModRevision != f.epoch:
			return 0, fmt.Errorf("%w: channel %s reassigned or claimed by a newer pipeline since lease %d (epoch %d, now %d)", ErrLeaseLost, f.lease.Channel, f.lease.Revision, f.epoch, pe.Current[0].ModRevision)
		}
	}
	return rev, err
}

// fenceCmps is the compare every Commit starts with. Before Claim it is the lease key's mod
// revision. After Claim it is the epoch key's alone: the epoch key changes with every claim
// and is deleted by every assignment, so its mod revision moves whenever the lease's does and
// one compare fences off both other owners and earlier pipelines. One compare instead of two
// matters: each is a key read in etcd's serial apply loop, and on a busy etcd two of them cost
// about 12% of a segment-meta commit's throughput (`weir bench meta`).
func (f *Fence) fenceCmps(extra int) []metastore.Cmp {
	all := make([]metastore.Cmp, 0, 2+extra)
	if f.epoch != 0 {
		return append(all, metastore.ModRevisionEquals(f.keys.epoch(f.lease.Channel), f.epoch))
	}
	all = append(all, metastore.ModRevisionEquals(f.keys.lease(f.lease.Channel), f.lease.Revision))
	if f.unclaimed {
		all = append(all, metastore.KeyAbsent(f.keys.epoch(f.lease.Channel)))
	}
	return all
}

// Check reports whether a Commit of cmps and ops fits the metastore's transaction limits
// (metastore.ErrTxnTooLarge otherwise), counting the compares Commit adds.
func (f *Fence) Check(cmps []metastore.Cmp, ops []metastore.Op) error {
	return metastore.CheckTxn(append(f.fenceCmps(len(cmps)), cmps...), ops)
}

// ListLeases returns every channel lease.
func (c *Catalog) ListLeases(ctx context.Context) (map[string]Lease, error) {
	kvs, _, err := c.kv.Range(ctx, c.keys.channels())
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	leases, _, _, err := decodeChannels(kvs, c.keys.channels())
	return leases, err
}

// ReadEpoch returns the revision of the channel's current claim (what its pipeline names its
// files by; 0 when no pipeline claimed it under its current lease).
func (c *Catalog) ReadEpoch(ctx context.Context, ch string) (int64, error) {
	kv, err := c.kv.Get(ctx, c.keys.epoch(ch))
	if errors.Is(err, metastore.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return kv.ModRevision, nil
}
