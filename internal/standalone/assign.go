package standalone

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/weir-db/weir/internal/datanode"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/metastore"
)

// assigner is standalone's stand-in for the coordinator's channel assignment: it gives every
// channel of every live collection to the one data node, with a lease written in the
// metastore, and keeps the node watching exactly those channels. The coordinator replaces it
// in a cluster; the data node cannot tell the difference, because it reads its lease from the
// metastore either way.
type assigner struct {
	catalog  *meta.Catalog
	node     *datanode.Node
	nodeID   int64
	interval time.Duration
	logger   *slog.Logger
}

// run assigns and watches until ctx is done.
func (a *assigner) run(ctx context.Context) {
	t := time.NewTicker(a.interval)
	defer t.Stop()
	for {
		a.once(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// once brings the node's pipelines in line with the live collections.
func (a *assigner) once(ctx context.Context) {
	colls, err := a.catalog.ListCollections(ctx, meta.DefaultDatabase)
	if err != nil {
		if ctx.Err() == nil {
			a.logger.Warn("list collections for channel assignment", "err", err)
		}
		return
	}
	want := map[string]bool{}
	running := a.node.Channels()
	for _, c := range colls {
		for _, ch := range c.VChannels {
			want[ch] = true
			lease, err := a.catalog.ReadLease(ctx, ch)
			switch {
			case errors.Is(err, metastore.ErrNotFound):
				if lease, err = a.catalog.AssignChannel(ctx, ch, c.ID, a.nodeID); err != nil {
					a.logger.Warn("assign channel", "channel", ch, "err", err)
					continue
				}
				a.logger.Info("channel assigned", "channel", ch, "node", a.nodeID, "lease", lease.Revision)
			case err != nil:
				a.logger.Warn("read lease", "channel", ch, "err", err)
				continue
			case lease.NodeID != a.nodeID:
				continue // a lease written for another node: not this stand-in's to change
			}
			if rev, ok := running[ch]; ok && rev == lease.Revision {
				continue
			}
			if err := a.node.Watch(ctx, ch); err != nil && ctx.Err() == nil {
				a.logger.Warn("watch channel", "channel", ch, "err", err)
			}
		}
	}
	for ch := range running {
		if !want[ch] {
			a.node.Release(ch)
			a.logger.Info("channel released", "channel", ch)
		}
	}
}
