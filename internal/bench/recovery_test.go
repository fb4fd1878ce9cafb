package bench

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/weir-db/weir/internal/testcluster"
)

// TestRecoveryQuick runs the recovery benchmark at its quick size against separate processes.
// Recovery refuses to report when the killed node had synced, when the new owner did not catch
// up, or when the rows replayed or flushed differ from the rows inserted, so a pass shows
// each of those held.
func TestRecoveryQuick(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	bin := testcluster.BuildWeir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := Recovery(ctx, Options{Quick: true, Dir: t.TempDir(), Executable: bin})
	require.NoError(t, err)
	require.Len(t, r.Tables, 1)
	require.Len(t, r.Tables[0].Rows, 1)
	f := func(name string) float64 { return r.Figures["recovery.8mb."+name] }
	require.Equal(t, 16000.0, f("rows"), "8 MB of 128-dim vectors in 1000-row requests")
	require.Equal(t, f("rows"), f("replay_rows"))
	// The killed node's last keep-alive went out at most a third of the TTL before the kill,
	// so its channel cannot move sooner than two thirds of the TTL after it: an earlier figure
	// would mean the clock started late or the wrong node was killed.
	require.GreaterOrEqual(t, f("lease_moved_s"), (2 * recoveryTTL / 3).Seconds())
	require.GreaterOrEqual(t, f("detection_s"), f("lease_moved_s"))
	require.Positive(t, f("replay_s"))
	require.InDelta(t, f("total_s"), f("detection_s")+f("replay_s"), 1e-9)
	require.Positive(t, f("ingest_rows_per_s"))
	require.Positive(t, f("replay_rows_per_s"))
	require.Len(t, r.Targets, 1)
	require.Equal(t, "replay rate / ingest rate (8 MB)", r.Targets[0].Name)
	requireRoundTrip(t, r)
}
