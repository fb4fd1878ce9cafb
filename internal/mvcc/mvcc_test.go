package mvcc

import (
	"strconv"
	"testing"

	"github.com/bits-and-blooms/bitset"
	"pgregory.net/rapid"
)

// TestVisibilityMatchesTheRule: for random rows and deletes, a row is visible at t exactly when
// the rule says so, checked by brute force over every delete (Int64 and VarChar keys alike).
func TestVisibilityMatchesTheRule(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		type del struct {
			pk int64
			ts uint64
		}
		dels := rapid.SliceOf(rapid.Custom(func(t *rapid.T) del {
			return del{pk: rapid.Int64Range(0, 5).Draw(t, "pk"), ts: rapid.Uint64Range(1, 20).Draw(t, "ts")}
		})).Draw(t, "deletes")
		n := rapid.IntRange(0, 30).Draw(t, "rows")
		pks, tss := make([]int64, n), make([]uint64, n)
		strs := make([]string, n)
		for i := range n {
			pks[i] = rapid.Int64Range(0, 5).Draw(t, "rowpk")
			tss[i] = rapid.Uint64Range(1, 20).Draw(t, "rowts")
			strs[i] = strconv.FormatInt(pks[i], 10)
		}
		at := rapid.Uint64Range(0, 21).Draw(t, "t")
		d := NewDeletes()
		for _, x := range dels {
			d.AddInt(x.pk, x.ts)
			d.AddString(strconv.FormatInt(x.pk, 10), x.ts)
		}
		ints, ss := d.VisibleInt(pks, tss, at), d.VisibleString(strs, tss, at)
		for i := range n {
			want := tss[i] <= at
			for _, x := range dels {
				if x.pk == pks[i] && tss[i] < x.ts && x.ts <= at {
					want = false
				}
			}
			if ints.Test(uint(i)) != want || ss.Test(uint(i)) != want {
				t.Fatalf("row pk %d ts %d at %d: got %v/%v, want %v (deletes %v)", pks[i], tss[i], at, ints.Test(uint(i)), ss.Test(uint(i)), want, dels)
			}
		}
	})
}

// TestUpsertKeepsItsNewRow: an upsert's delete and insert share a timestamp; the old row is
// hidden, the new one seen, and a read before the upsert sees the old row only.
func TestUpsertKeepsItsNewRow(t *testing.T) {
	d := NewDeletes()
	d.AddInt(7, 10)                            // the upsert at 10 deletes key 7 ...
	pks, tss := []int64{7, 7}, []uint64{5, 10} // ... the old row (5) and the new one (10)
	if v := d.VisibleInt(pks, tss, 10); v.Test(0) || !v.Test(1) {
		t.Fatalf("at 10: old %v new %v, want false true", v.Test(0), v.Test(1))
	}
	if v := d.VisibleInt(pks, tss, 9); !v.Test(0) || v.Test(1) {
		t.Fatalf("at 9: old %v new %v, want true false", v.Test(0), v.Test(1))
	}
}

// TestKeepLatest: of the visible rows of a key, only the newest stays (the later row of equal
// timestamps); invisible rows stay out.
func TestKeepLatest(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(0, 30).Draw(t, "rows")
		pks, tss := make([]int64, n), make([]uint64, n)
		strs := make([]string, n)
		vis := bitset.New(uint(n))
		for i := range n {
			pks[i] = rapid.Int64Range(0, 4).Draw(t, "pk")
			strs[i] = strconv.FormatInt(pks[i], 10)
			tss[i] = rapid.Uint64Range(1, 6).Draw(t, "ts")
			if rapid.Bool().Draw(t, "visible") {
				vis.Set(uint(i))
			}
		}
		ints, ss := vis.Clone(), vis.Clone()
		KeepLatestInt(pks, tss, ints)
		KeepLatestString(strs, tss, ss)
		for i := range n {
			want := vis.Test(uint(i))
			for j := range n {
				if j != i && vis.Test(uint(j)) && pks[j] == pks[i] && (tss[j] > tss[i] || tss[j] == tss[i] && j > i) {
					want = false
				}
			}
			if ints.Test(uint(i)) != want || ss.Test(uint(i)) != want {
				t.Fatalf("row %d (pk %d ts %d): got %v/%v, want %v", i, pks[i], tss[i], ints.Test(uint(i)), ss.Test(uint(i)), want)
			}
		}
	})
}
