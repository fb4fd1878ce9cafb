package ivf

import (
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/hugepage"
	"github.com/weir-db/weir/internal/vsearch"
)

// TestHugePagesLastWhileTheIndexLives: an IVF index asks for huge pages under the rows it
// borrows (its lists read them scattered) and gives the advice back once it is unreachable.
func TestHugePagesLastWhileTheIndexLives(t *testing.T) {
	if ok, why := hugepage.Available(); !ok {
		t.Skip(why)
	}
	const dim = 64
	rows := make([]float32, 80_000*dim) // 20 MB
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range rows {
		rows[i] = rng.Float32()
	}
	ix, err := Build(vsearch.L2, rows, dim, Params{Nlist: 8, Seed: 1, Iterations: 1})
	require.NoError(t, err)
	r := ix.huge
	require.Positive(t, r.Len())
	advised, err := r.Advised()
	require.NoError(t, err)
	require.True(t, advised)

	runtime.KeepAlive(ix)
	ix = nil
	require.Eventually(t, func() bool {
		runtime.GC()
		advised, err := r.Advised()
		require.NoError(t, err)
		return !advised
	}, 10*time.Second, 10*time.Millisecond, "the advice outlived the index")
	runtime.KeepAlive(rows)
}
