package indexbuild

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/vecdata"
	"github.com/weir-db/weir/internal/vindex"
	"github.com/weir-db/weir/internal/vsearch"
)

// TestPacerSleepsOnlyWhileBusy: while the node ingests, a build sleeps PaceFactor times what it
// worked since its last step; otherwise, and without a busy signal, it does not sleep at all.
func TestPacerSleepsOnlyWhileBusy(t *testing.T) {
	busy := true
	var slept time.Duration
	p := newPacer(func() bool { return busy })
	p.sleep = func(d time.Duration) { slept += d }

	time.Sleep(20 * time.Millisecond) // a step of work
	p.pace()
	require.GreaterOrEqual(t, slept, PaceFactor*20*time.Millisecond)
	require.Less(t, slept, PaceFactor*200*time.Millisecond)

	busy, slept = false, 0
	time.Sleep(20 * time.Millisecond)
	p.pace()
	require.Zero(t, slept, "an idle node builds at full speed")

	var none *pacer
	none.pace() // no pacer: nothing
	newPacer(nil).pace()
}

// TestPacedBuildIsTheSameIndex: pacing changes when a build works, never what it builds.
func TestPacedBuildIsTheSameIndex(t *testing.T) {
	rows := vecdata.Clustered(1, 1, 4000, 16, 20, 3)
	for _, spec := range []vindex.Spec{
		{Type: vindex.HNSW, Metric: vsearch.L2, M: 8, EfConstruction: 32},
		{Type: vindex.IVFFlat, Metric: vsearch.L2, Nlist: 16},
	} {
		plain, err := vindex.Build(spec, rows, 16, 7)
		require.NoError(t, err)
		calls := 0
		paced, err := vindex.BuildPaced(context.Background(), spec, rows, 16, 7, func() { calls++; time.Sleep(time.Microsecond) })
		require.NoError(t, err)
		require.Positive(t, calls, "%s: paced", spec.Type)
		a, err := vindex.Encode(vindex.Header{}, plain)
		require.NoError(t, err)
		b, err := vindex.Encode(vindex.Header{}, paced)
		require.NoError(t, err)
		require.True(t, bytes.Equal(a, b), "%s: the same index", spec.Type)
	}
}
