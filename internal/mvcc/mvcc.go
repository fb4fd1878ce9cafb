// Package mvcc decides which rows a read at a timestamp sees (the read path's invariant R4): a
// row stamped ts is visible at read timestamp t when ts ≤ t and no delete of its primary key
// stamped ts_d with ts < ts_d ≤ t hides it. An upsert deletes and inserts at one timestamp, so
// its own delete never hides its new row; a delete stamped after t is not seen yet.
package mvcc

import (
	"slices"

	"github.com/bits-and-blooms/bitset"
)

// Deletes holds, per primary key, the timestamps of its deletes in increasing order. Keys are
// Int64 or VarChar, as a collection's primary key is one or the other. Not safe for concurrent
// writes; a reader that shares it builds a new one for each snapshot or guards it.
type Deletes struct {
	ints map[int64][]uint64
	strs map[string][]uint64
}

// NewDeletes returns an empty set of deletes.
func NewDeletes() *Deletes {
	return &Deletes{ints: map[int64][]uint64{}, strs: map[string][]uint64{}}
}

// add inserts ts into the sorted list, once.
func add(list []uint64, ts uint64) []uint64 {
	i, found := slices.BinarySearch(list, ts)
	if found {
		return list
	}
	return slices.Insert(list, i, ts)
}

// hidden reports whether a delete in sorted list falls in (ts, t].
func hidden(list []uint64, ts, t uint64) bool {
	if ts >= t {
		return false // nothing in (ts, t]
	}
	i, _ := slices.BinarySearch(list, ts+1) // the first delete after ts
	return i < len(list) && list[i] <= t
}

// AddInt records a delete of Int64 key pk at timestamp ts.
func (d *Deletes) AddInt(pk int64, ts uint64) { d.ints[pk] = add(d.ints[pk], ts) }

// AddString records a delete of VarChar key pk at timestamp ts.
func (d *Deletes) AddString(pk string, ts uint64) { d.strs[pk] = add(d.strs[pk], ts) }

// Len returns the number of deletes held.
func (d *Deletes) Len() int {
	n := 0
	for _, l := range d.ints {
		n += len(l)
	}
	for _, l := range d.strs {
		n += len(l)
	}
	return n
}

// VisibleInt returns the rows, of keys pks stamped tss, that a read at t sees.
func (d *Deletes) VisibleInt(pks []int64, tss []uint64, t uint64) *bitset.BitSet {
	return visible(pks, d.ints, tss, t)
}

// VisibleString is VisibleInt for VarChar keys.
func (d *Deletes) VisibleString(pks []string, tss []uint64, t uint64) *bitset.BitSet {
	return visible(pks, d.strs, tss, t)
}

func visible[K comparable](pks []K, deletes map[K][]uint64, tss []uint64, t uint64) *bitset.BitSet {
	out := bitset.New(uint(len(pks)))
	for i, pk := range pks {
		if tss[i] <= t && !hidden(deletes[pk], tss[i], t) {
			out.Set(uint(i))
		}
	}
	return out
}

// KeepLatestInt clears from visible every row whose key has a visible row with a later
// timestamp (of equal timestamps, the later row wins): search and query return one row per
// primary key, the newest, as Milvus does, while count(*) counts every visible row (milvus#36199;
// a key inserted twice without a delete counts twice). visible is changed in place.
func KeepLatestInt(pks []int64, tss []uint64, visible *bitset.BitSet) {
	keepLatest(len(pks), func(i int) int64 { return pks[i] }, tss, visible)
}

// KeepLatestString is KeepLatestInt for VarChar keys.
func KeepLatestString(pks []string, tss []uint64, visible *bitset.BitSet) {
	keepLatest(len(pks), func(i int) string { return pks[i] }, tss, visible)
}

func keepLatest[K comparable](n int, key func(int) K, tss []uint64, visible *bitset.BitSet) {
	best := map[K]int{}
	for i, ok := visible.NextSet(0); ok && int(i) < n; i, ok = visible.NextSet(i + 1) {
		r := int(i)
		k := key(r)
		if j, seen := best[k]; seen {
			if tss[j] > tss[r] {
				visible.Clear(i)
				continue
			}
			visible.Clear(uint(j))
		}
		best[k] = r
	}
}

// Marks is the incremental form of the rule, for a reader that keeps rows in memory while rows
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
