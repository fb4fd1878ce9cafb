// Package hugepagetest holds what the tests of indexes that advise huge pages share: rows big
// enough to advise, and the checks that the advice is given while the index lives and given back
// once it is unreachable.
package hugepagetest

import (
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/hugepage"
)

// Rows returns 20 MB of random rows of dim values, skipping the test where the kernel gives no
// transparent huge pages.
func Rows(t *testing.T, dim int) []float32 {
	t.Helper()
	if ok, why := hugepage.Available(); !ok {
		t.Skip(why)
	}
	rows := make([]float32, (20<<20)/4/dim*dim)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range rows {
		rows[i] = rng.Float32()
	}
	return rows
}

// RequireAdvised checks that r is advised now.
func RequireAdvised(t *testing.T, r hugepage.Region) {
	t.Helper()
	require.Positive(t, r.Len(), "nothing advised")
	advised, err := r.Advised()
	require.NoError(t, err)
	require.True(t, advised)
}

// RequireReleased checks that r's advice is given back soon, collecting garbage meanwhile: call
// it once what advised r is unreachable.
func RequireReleased(t *testing.T, r hugepage.Region, what string) {
	t.Helper()
	require.Eventually(t, func() bool {
		runtime.GC()
		advised, err := r.Advised()
		require.NoError(t, err)
		return !advised
	}, 10*time.Second, 10*time.Millisecond, "the advice outlived the %s", what)
}
