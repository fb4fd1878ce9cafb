//go:build linux

package hugepage

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// needTHP skips where the kernel has no transparent huge pages to give: the advice is then a
// no-op by design, and there is nothing to observe.
func needTHP(t *testing.T) {
	if ok, why := Available(); !ok {
		t.Skip(why)
	}
}

// TestAdviseAndRelease: Advise marks the whole huge pages inside a slice for huge pages (the
// mapping's "hg" flag) and collapses them at once (AnonHugePages over the range), keeping the
// contents; Release marks the range no-huge ("nh"), so that freed heap memory is not collapsed
// again under later objects.
func TestAdviseAndRelease(t *testing.T) {
	needTHP(t)
	v := make([]float32, 16*Size/4) // 16 MiB: at least 15 whole huge pages inside
	for i := range v {
		v[i] = float32(i)
	}
	r, err := Floats(v)
	require.GreaterOrEqual(t, r.Len(), 15*Size)
	m, err2 := readMapping(r.addr)
	require.NoError(t, err2)
	require.Contains(t, m.flags, "hg", "the range is marked for huge pages")
	advised, err2 := r.Advised()
	require.NoError(t, err2)
	require.True(t, advised)
	// The advice splits the heap's mapping: the range is a mapping of its own (or merged with
	// a neighbour marked alike), so its huge pages are counted there.
	if err == nil {
		require.GreaterOrEqual(t, m.anonHuge, int64(r.Len()), "huge pages under the advised range")
	} else {
		t.Logf("collapse refused (%v): the range stays marked for khugepaged", err)
	}
	for i := range v {
		if v[i] != float32(i) {
			t.Fatalf("value %d changed to %v", i, v[i])
		}
	}

	r.Release()
	m, err = readMapping(r.addr)
	require.NoError(t, err)
	require.Contains(t, m.flags, "nh", "released: marked no-huge")
	require.NotContains(t, m.flags, "hg")
	advised, err = r.Advised()
	require.NoError(t, err)
	require.False(t, advised)
	for i := range v {
		if v[i] != float32(i) {
			t.Fatalf("value %d changed to %v after release", i, v[i])
		}
	}
}

// TestAdviseSmallOrEmpty: nothing below MinBytes is advised, and empty slices are fine.
func TestAdviseSmallOrEmpty(t *testing.T) {
	for _, b := range [][]byte{nil, make([]byte, MinBytes-1)} {
		r, err := Advise(b)
		require.NoError(t, err)
		require.Zero(t, r.Len())
		r.Release()
	}
	r, err := Floats(nil)
	require.NoError(t, err)
	require.Zero(t, r.Len())
	r, err = Uint32s(nil)
	require.NoError(t, err)
	require.Zero(t, r.Len())
}

// TestReleaseCountsAdvices: a range advised twice (two indexes over the same rows) stays advised
// until both advices are given back.
func TestReleaseCountsAdvices(t *testing.T) {
	needTHP(t)
	v := make([]float32, 16*Size/4)
	r1, _ := Floats(v)
	r2, _ := Floats(v)
	require.Equal(t, r1, r2)
	r1.Release()
	advised, err := r2.Advised()
	require.NoError(t, err)
	require.True(t, advised, "one release of two leaves the range advised")
	r2.Release()
	advised, err = r2.Advised()
	require.NoError(t, err)
	require.False(t, advised)
}
