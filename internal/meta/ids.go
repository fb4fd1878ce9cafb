package meta

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/weir-db/weir/internal/metastore"
)

// IDAllocator hands out int64 IDs that are unique across the cluster and across restarts. It
// reserves them from the metastore in batches with a compare-and-swap on one counter key, so
// any process (proxy, data node) can allocate without asking the coordinator. IDs reserved but
// not used before a crash are skipped, never reused.
type IDAllocator struct {
	kv    Store
	key   string
	batch int64

	// mu is held across the metastore round trip of a refill: refills are rare (one per batch)
	// and every caller that finds the batch empty would have to wait for the refill anyway.
	mu   sync.Mutex
	next int64
	end  int64 // exclusive
}

// NewIDAllocator returns an allocator that reserves batch IDs per metastore round trip.
func NewIDAllocator(kv Store, root string, batch int64) *IDAllocator {
	if batch <= 0 {
		batch = 1000
	}
	return &IDAllocator{kv: kv, key: keys{root}.id(), batch: batch}
}

// Alloc returns the first of n consecutive unused IDs.
func (a *IDAllocator) Alloc(ctx context.Context, n int64) (int64, error) {
	if n <= 0 {
		return 0, fmt.Errorf("meta: alloc %d ids: count must be positive", n)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.end-a.next < n {
		first, err := a.reserve(ctx, max(n, a.batch))
		if err != nil {
			return 0, err
		}
		a.next, a.end = first, first+max(n, a.batch)
	}
	id := a.next
	a.next += n
	return id, nil
}

// reserve moves the counter forward by n and returns the old value. IDs start at 1: 0 means
// "unset" in Milvus messages.
func (a *IDAllocator) reserve(ctx context.Context, n int64) (int64, error) {
	for {
		cur, err := a.kv.Get(ctx, a.key)
		var cmp metastore.Cmp
		first := int64(1)
		switch {
		case errors.Is(err, metastore.ErrNotFound):
			cmp = metastore.KeyAbsent(a.key)
		case err != nil:
			return 0, fmt.Errorf("read id counter: %w", err)
		default:
			if first, err = strconv.ParseInt(string(cur.Value), 10, 64); err != nil {
				return 0, fmt.Errorf("meta: corrupt id counter %q: %w", cur.Value, err)
			}
			cmp = metastore.ModRevisionEquals(a.key, cur.ModRevision)
		}
		next := strconv.FormatInt(first+n, 10)
		_, err = a.kv.Txn(ctx, []metastore.Cmp{cmp}, []metastore.Op{metastore.Put(a.key, []byte(next))})
		switch {
		case err == nil:
			return first, nil
		case errors.Is(err, metastore.ErrPredicateFailed):
			continue // another process reserved a batch first; read the counter again
		default:
			// An unknown outcome may have reserved the batch; it is simply skipped.
			return 0, fmt.Errorf("reserve %d ids: %w", n, err)
		}
	}
}
