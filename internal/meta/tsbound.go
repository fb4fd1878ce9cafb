package meta

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/weir-db/weir/internal/metastore"
)

// TSBound is a proxy's timestamp bound in the metastore (a tso.BoundStore): the proxy with
// node ID Node never hands out a timestamp above it, and a proxy started again with that node
// ID starts above it.
type TSBound struct {
	c    *Catalog
	Node int64
}

// TSBound returns the timestamp bound of proxy node.
func (c *Catalog) TSBound(node int64) *TSBound { return &TSBound{c: c, Node: node} }

// LoadBound implements tso.BoundStore.
func (b *TSBound) LoadBound(ctx context.Context) (uint64, error) {
	kv, err := b.c.kv.Get(ctx, b.c.keys.tsBound(b.Node))
	if errors.Is(err, metastore.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read timestamp bound of proxy %d: %w", b.Node, err)
	}
	v, err := strconv.ParseUint(string(kv.Value), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("meta: corrupt timestamp bound %s: %w", kv.Key, err)
	}
	return v, nil
}

// SaveBound implements tso.BoundStore. The bound only rises: a save below the stored bound (a
// late save of a paused process of the same node ID) leaves it as it is.
func (b *TSBound) SaveBound(ctx context.Context, ts uint64) error {
	key := b.c.keys.tsBound(b.Node)
	for {
		cmp := metastore.KeyAbsent(key)
		kv, err := b.c.kv.Get(ctx, key)
		switch {
		case errors.Is(err, metastore.ErrNotFound):
		case err != nil:
			return fmt.Errorf("save timestamp bound of proxy %d: %w", b.Node, err)
		default:
			cur, perr := strconv.ParseUint(string(kv.Value), 10, 64)
			if perr == nil && cur >= ts {
				return nil
			}
			cmp = metastore.ModRevisionEquals(key, kv.ModRevision)
		}
		_, err = b.c.kv.Txn(ctx, []metastore.Cmp{cmp}, []metastore.Op{metastore.Put(key, []byte(strconv.FormatUint(ts, 10)))})
		if errors.Is(err, metastore.ErrPredicateFailed) {
			continue // saved concurrently: compare again
		}
		if err != nil {
			return fmt.Errorf("save timestamp bound of proxy %d: %w", b.Node, err)
		}
		return nil
	}
}
