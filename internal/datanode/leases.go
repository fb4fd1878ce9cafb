package datanode

import (
	"context"
	"time"

	"github.com/weir-db/weir/internal/meta"
)

// LeaseLister lists channel leases.
type LeaseLister interface {
	ListLeases(ctx context.Context) (map[string]meta.Lease, error)
}

// SyncLeases brings the node's pipelines in line with the leases in the metastore: it watches
// every channel leased to this node and releases those leased elsewhere or no longer leased at
// all (their collection was dropped). It is how a data node resumes its channels after a
// restart while the coordinator is down, and how it catches an assignment whose notification
// was lost; the coordinator's Watch call is only the fast path.
func (n *Node) SyncLeases(ctx context.Context, leases LeaseLister) error {
	// The running pipelines are read before the leases: a pipeline started in between (its
	// lease written after the list) is then not mistaken for one whose lease is gone.
	running := n.Channels()
	all, err := leases.ListLeases(ctx)
	if err != nil {
		return err
	}
	for ch, rev := range running {
		if _, ok := all[ch]; !ok {
			// Nothing it could commit would be accepted: every write is fenced by the lease.
			n.release(ch, rev)
			n.logger.Info("channel released: it has no lease (its collection was dropped)", "channel", ch)
		}
	}
	for ch, l := range all {
		if l.NodeID != n.cfg.NodeID {
			if rev, ok := running[ch]; ok {
				n.release(ch, rev)
				n.logger.Info("channel released: leased to another node", "channel", ch, "node", l.NodeID)
			}
			continue
		}
		if rev, ok := running[ch]; ok && rev == l.Revision {
			continue
		}
		if err := n.Watch(ctx, ch); err != nil && ctx.Err() == nil {
			n.logger.Warn("watch leased channel", "channel", ch, "err", err)
		}
	}
	return nil
}

// RunLeaseSync calls SyncLeases every interval until ctx is done.
func (n *Node) RunLeaseSync(ctx context.Context, leases LeaseLister, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := n.SyncLeases(ctx, leases); err != nil && ctx.Err() == nil {
			n.logger.Warn("sync leases", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
