// Package mvcc decides which rows a read at a timestamp sees (the read path's invariant R4): a
// row stamped ts is visible at read timestamp t when ts ≤ t and no delete of its primary key
// stamped ts_d with ts < ts_d ≤ t hides it. An upsert deletes and inserts at one timestamp, so
// its own delete never hides its new row; a delete stamped after t is not seen yet.
package mvcc

import "slices"

// Marks is the rule in the form a reader that keeps rows in memory applies while rows
// and deletes keep arriving (a query node): instead of looking deletes up on every read, each
// row keeps two timestamps, maintained as rows and deletes arrive in any order —
//
//   - Hidden, the first delete of its key after the row's timestamp (0: none): a read at t
//     sees the row when ts ≤ t and not Hidden ≤ t, exactly VisibleInt's rule;
//   - Superseded, the first later row of its key (0: none; of two rows with one timestamp,
//     the later one supersedes the earlier): search and query skip a row superseded at or
//     before t, KeepLatest's rule (count(*) does not).
//
// Both only ever decrease towards the earliest candidate, so the order in which rows and
// deletes arrive does not matter.
type Marks struct {
	Hidden, Superseded uint64
}

// Sees reports whether a read at t sees a row stamped ts with marks m (count(*)'s rule).
func (m Marks) Sees(ts, t uint64) bool {
	return ts <= t && (m.Hidden == 0 || m.Hidden > t)
}

// Latest reports whether a read at t sees the row and no later row of its key (search's and
// query's rule).
func (m Marks) Latest(ts, t uint64) bool {
	return m.Sees(ts, t) && (m.Superseded == 0 || m.Superseded > t)
}

// Earliest returns the earlier of two mark timestamps, 0 meaning never.
func Earliest(a, b uint64) uint64 {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	}
	return min(a, b)
}

// Set is a set of deletes by key: per key, its delete timestamps in increasing order.
type Set[K comparable] map[K][]uint64

// Add records a delete of k at ts; it reports false when the set held it already (deletes are
// idempotent: a delete read from a file and from the channel is one delete).
func (s Set[K]) Add(k K, ts uint64) bool {
	list := s[k]
	i, found := slices.BinarySearch(list, ts)
	if found {
		return false
	}
	s[k] = slices.Insert(list, i, ts)
	return true
}

// HiddenAt returns the first delete of k after ts, 0 when none: the Hidden mark of a row of k
// stamped ts.
func (s Set[K]) HiddenAt(k K, ts uint64) uint64 {
	list := s[k]
	i, _ := slices.BinarySearch(list, ts+1)
	if i < len(list) {
		return list[i]
	}
	return 0
}
