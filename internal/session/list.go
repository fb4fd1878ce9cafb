package session

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/weir-db/weir/internal/metastore"
)

// Reader is the part of the metastore List needs; *metastore.Etcd and *metastore.Memory
// have it.
type Reader interface {
	Range(ctx context.Context, prefix string, opts ...metastore.RangeOption) ([]metastore.KV, int64, error)
}

// List returns the live sessions of role ("" for every role) under root ("" for DefaultRoot),
// sorted by role then node ID, all read at one metastore revision, which it returns. A
// coordinator calls it periodically: a node in one list and missing from the next died (or
// closed), and a node whose CreateRevision changed restarted in between.
//
// A key under the prefix that does not hold the session its key names is an error wrapping
// ErrCorrupt, rather than a node silently missing, so that a coordinator never declares a node
// dead on a record it could not read.
func List(ctx context.Context, kv Reader, root, role string) ([]Info, int64, error) {
	if root == "" {
		root = DefaultRoot
	}
	p := prefix(root, role)
	kvs, rev, err := kv.Range(ctx, p)
	if err != nil {
		return nil, 0, fmt.Errorf("list sessions %s: %w", p, err)
	}
	out := make([]Info, 0, len(kvs))
	for _, e := range kvs {
		i, err := decode(root, e)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, i)
	}
	slices.SortFunc(out, func(a, b Info) int {
		return cmp.Or(strings.Compare(a.Role, b.Role), cmp.Compare(a.NodeID, b.NodeID))
	})
	return out, rev, nil
}

// decode reads the session in e and checks that it is the session its key names.
func decode(root string, e metastore.KV) (Info, error) {
	var i Info
	if err := json.Unmarshal(e.Value, &i); err != nil {
		return Info{}, fmt.Errorf("%w: %s: %w", ErrCorrupt, e.Key, err)
	}
	role, id, ok := strings.Cut(strings.TrimPrefix(e.Key, prefix(root, "")), "/")
	if n, err := strconv.ParseInt(id, 10, 64); !ok || err != nil || role != i.Role || n != i.NodeID {
		return Info{}, fmt.Errorf("%w: %s holds role %q node %d", ErrCorrupt, e.Key, i.Role, i.NodeID)
	}
	i.CreateRevision = e.CreateRevision
	return i, nil
}
