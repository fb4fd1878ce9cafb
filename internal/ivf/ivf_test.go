package ivf

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/hugepage/hugepagetest"
	"github.com/weir-db/weir/internal/vsearch"
)

// TestHugePagesLastWhileTheIndexLives: an IVF index asks for huge pages under the rows it
// borrows (its lists read them scattered) and gives the advice back once it is unreachable.
func TestHugePagesLastWhileTheIndexLives(t *testing.T) {
	const dim = 64
	rows := hugepagetest.Rows(t, dim)
	ix, err := Build(vsearch.L2, rows, dim, Params{Nlist: 8, Seed: 1, Iterations: 1})
	require.NoError(t, err)
	r := ix.huge
	hugepagetest.RequireAdvised(t, r)

	runtime.KeepAlive(ix)
	ix = nil
	hugepagetest.RequireReleased(t, r, "index")
	runtime.KeepAlive(rows)
}
