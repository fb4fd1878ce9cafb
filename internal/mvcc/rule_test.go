package mvcc

import (
	"slices"

	"github.com/bits-and-blooms/bitset"
)

// The rule computed from scratch over a batch: the reference Marks are checked against (the
// query node applies Marks; nothing in production evaluates the rule this way).

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
