package proxy

import (
	"sync"
	"time"

	"github.com/weir-db/weir/internal/meta"
)

// targetCache remembers, for a short TTL, the collection and partitions that inserts and
// upserts resolved by name. Without it every insert pays two metastore reads before its WAL
// append — a millisecond of a ~5 ms request on the benchmark machine — for records that
// change only with DDL.
//
// Staleness is bounded three ways. This proxy's own DDL invalidates the name at once, so a
// single proxy (standalone) never serves a stale entry. A miss on the cached entry (unknown
// partition, schema timestamp the client sees differently) re-reads before it rejects, so a
// collection or partition created through another proxy is usable at once. What remains is a
// drop through another proxy: for up to the TTL this proxy may still accept writes to the
// dropped collection or partition. Milvus has the same window between a drop and the
// invalidation of every proxy's cache; rows written in it belong to an object no reader sees.
type targetCache struct {
	ttl time.Duration // 0 or negative: no caching
	now func() time.Time

	mu      sync.Mutex
	entries map[cacheKey]cacheEntry
	// gen counts invalidations. A read that started before one must not be stored: it may
	// hold what the invalidating DDL just changed.
	gen uint64
}

type cacheKey struct{ db, name string }

type cacheEntry struct {
	coll  *meta.Collection
	parts []*meta.Partition
	at    time.Time // when the read that produced the entry started
	gen   uint64    // the cache's generation then
}

func newTargetCache(ttl time.Duration) *targetCache {
	return &targetCache{ttl: ttl, now: time.Now, entries: map[cacheKey]cacheEntry{}}
}

// get returns a fresh entry for the collection name.
func (c *targetCache) get(db, name string) (cacheEntry, bool) {
	if c.ttl <= 0 {
		return cacheEntry{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[cacheKey{db, name}]
	if !ok || c.now().Sub(e.at) >= c.ttl {
		return cacheEntry{}, false
	}
	return e, true
}

// start stamps an entry about to be read with the time and generation.
func (c *targetCache) start() cacheEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return cacheEntry{at: c.now(), gen: c.gen}
}

// put stores what was just read. It is stamped with the read's start, so that it does not
// outlive the TTL counted from when its data was current, and dropped when an invalidation
// came in between.
func (c *targetCache) put(db, name string, e cacheEntry) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.gen != c.gen {
		return
	}
	// Bound the map: entries of collections no longer written to would otherwise stay.
	if len(c.entries) >= maxCacheEntries {
		now := c.now()
		for k, old := range c.entries {
			if now.Sub(old.at) >= c.ttl {
				delete(c.entries, k)
			}
		}
	}
	c.entries[cacheKey{db, name}] = e
}

// invalidate forgets the collection name.
func (c *targetCache) invalidate(db, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.entries, cacheKey{db, name})
}

// maxCacheEntries is where put starts evicting expired entries.
const maxCacheEntries = 1024
