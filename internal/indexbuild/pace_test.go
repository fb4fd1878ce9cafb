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
// worked since its last step, in turns of at most maxPace; otherwise, and without a busy signal,
// it does not sleep at all; the sleep itself is not counted as work.
func TestPacerSleepsOnlyWhileBusy(t *testing.T) {
	busy := true
	var sleeps []time.Duration
	p := newPacer(context.Background(), func() bool { return busy })
	p.sleep = func(_ context.Context, d time.Duration) {
		sleeps = append(sleeps, d)
		time.Sleep(d / 100) // a little of it, so that a sleep counted as work would show
	}
	total := func() (s time.Duration) {
		for _, d := range sleeps {
			s += d
		}
		return s
	}

	time.Sleep(20 * time.Millisecond) // a step of work
	p.pace()
	require.GreaterOrEqual(t, total(), PaceFactor*20*time.Millisecond)
	require.Less(t, total(), PaceFactor*200*time.Millisecond)

	sleeps = nil
	p.pace() // no work since: the sleep just taken is not owed again
	require.Less(t, total(), PaceFactor*20*time.Millisecond)

	sleeps = nil
	time.Sleep(300 * time.Millisecond) // a long step: its 1.2 s are slept in turns
	p.pace()
	require.GreaterOrEqual(t, len(sleeps), 2)
	for _, d := range sleeps {
		require.LessOrEqual(t, d, maxPace)
	}

	busy, sleeps = false, nil
	time.Sleep(20 * time.Millisecond)
	p.pace()
	require.Empty(t, sleeps, "an idle node builds at full speed")

	var none *pacer
	none.pace() // no pacer: nothing
	newPacer(context.Background(), nil).pace()
}

// TestPacedBuildStopsWhenCancelled: a build cancelled while it sleeps wakes at once.
func TestPacedBuildStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p := newPacer(ctx, func() bool { return true })
	time.Sleep(200 * time.Millisecond) // owes 800 ms
	time.AfterFunc(20*time.Millisecond, cancel)
	start := time.Now()
	p.pace()
	require.Less(t, time.Since(start), 400*time.Millisecond)
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
