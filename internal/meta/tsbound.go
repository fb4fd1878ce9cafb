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

// SaveBound implements tso.BoundStore.
func (b *TSBound) SaveBound(ctx context.Context, ts uint64) error {
	_, err := b.c.kv.Txn(ctx, nil, []metastore.Op{metastore.Put(b.c.keys.tsBound(b.Node), []byte(strconv.FormatUint(ts, 10)))})
	if err != nil {
		return fmt.Errorf("save timestamp bound of proxy %d: %w", b.Node, err)
	}
	return nil
}
