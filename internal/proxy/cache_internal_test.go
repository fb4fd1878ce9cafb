package proxy

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/meta"
)

// TestTargetCacheTTLAndInvalidation drives the cache's clock: an entry is served until its TTL,
// counted from when its read started; a read that started before an invalidation is not
// stored (it may hold what the invalidating DDL changed); a disabled cache stores nothing.
func TestTargetCacheTTLAndInvalidation(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newTargetCache(time.Second)
	c.now = func() time.Time { return now }
	coll := &meta.Collection{ID: 7, Name: "c"}

	e := c.start()
	now = now.Add(300 * time.Millisecond) // the read takes a while
	e.coll = coll
	c.put("db", "c", e)
	got, ok := c.get("db", "c")
	require.True(t, ok)
	require.Same(t, coll, got.coll)
	now = now.Add(699 * time.Millisecond)
	_, ok = c.get("db", "c")
	require.True(t, ok, "fresh until a TTL after the read started")
	now = now.Add(time.Millisecond)
	_, ok = c.get("db", "c")
	require.False(t, ok, "expired a TTL after the read started")

	e = c.start()
	c.invalidate("db", "c") // a drop lands while the read is in flight
	e.coll = coll
	c.put("db", "c", e)
	_, ok = c.get("db", "c")
	require.False(t, ok, "a read that raced an invalidation is not cached")

	off := newTargetCache(-1)
	off.put("db", "c", off.start())
	_, ok = off.get("db", "c")
	require.False(t, ok)
}
