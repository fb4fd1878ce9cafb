package mvcc

import (
	"testing"

	"pgregory.net/rapid"
)

// TestMarksMatchTheRule maintains Marks incrementally, rows and deletes arriving in a random
// order, and checks every read timestamp against the batch rule (VisibleInt, KeepLatestInt).
func TestMarksMatchTheRule(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 30).Draw(t, "rows")
		pks := make([]int64, n)
		tss := make([]uint64, n)
		for i := range n {
			pks[i] = rapid.Int64Range(0, 4).Draw(t, "pk")
			tss[i] = rapid.Uint64Range(1, 20).Draw(t, "ts")
		}
		type del struct {
			pk int64
			ts uint64
		}
		dels := rapid.SliceOfN(rapid.Custom(func(t *rapid.T) del {
			return del{rapid.Int64Range(0, 4).Draw(t, "dpk"), rapid.Uint64Range(1, 21).Draw(t, "dts")}
		}), 0, 10).Draw(t, "deletes")
		ref := NewDeletes()
		for _, d := range dels {
			ref.AddInt(d.pk, d.ts)
		}

		// Arrival: rows in a random order interleaved with the deletes.
		order := rapid.Permutation(seq(n+len(dels))).Draw(t, "arrival")
		set := Set[int64]{}
		marks := make([]Marks, n)
		arrived := make([]bool, n)
		for _, a := range order {
			if a >= n {
				d := dels[a-n]
				set.Add(d.pk, d.ts)
				for r := range n {
					if arrived[r] && pks[r] == d.pk && tss[r] < d.ts {
						marks[r].Hidden = Earliest(marks[r].Hidden, d.ts)
					}
				}
				continue
			}
			r := a
			arrived[r] = true
			marks[r].Hidden = set.HiddenAt(pks[r], tss[r])
			for o := range n {
				if o == r || !arrived[o] || pks[o] != pks[r] {
					continue
				}
				older, newer := o, r
				if tss[o] > tss[r] || (tss[o] == tss[r] && o > r) {
					older, newer = r, o
				}
				marks[older].Superseded = Earliest(marks[older].Superseded, tss[newer])
			}
		}
		for at := uint64(0); at <= 22; at++ {
			vis := ref.VisibleInt(pks, tss, at)
			latest := vis.Clone()
			KeepLatestInt(pks, tss, latest)
			for r := range n {
				if got, want := marks[r].Sees(tss[r], at), vis.Test(uint(r)); got != want {
					t.Fatalf("row %d (pk %d ts %d) at %d: Sees %v, rule %v", r, pks[r], tss[r], at, got, want)
				}
				if got, want := marks[r].Latest(tss[r], at), latest.Test(uint(r)); got != want {
					t.Fatalf("row %d (pk %d ts %d) at %d: Latest %v, rule %v", r, pks[r], tss[r], at, got, want)
				}
			}
		}
	})
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}
