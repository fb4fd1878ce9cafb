package e2e

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/weirtest"
)

// TestKillDataNodeUnderLoad: kill -9 one data node while inserts flow; its channels move to the
// other node within the session TTL plus a reload interval, and after a flush every acknowledged
// key is stored exactly once.
func TestKillDataNodeUnderLoad(t *testing.T) {
	c, w, coll := weirtest.StartCluster(t, "killed")
	stop := make(chan struct{})
	wg := weirtest.Load(t, w, stop)
	w.WaitAcked(t, 2000)

	killed := time.Now()
	c.Procs["dn1"].Kill()
	c.WaitAssigned(coll.VChannels, 2)
	moved := time.Since(killed)
	t.Logf("channels of the killed node moved after %s (session TTL 2s, reload 200ms)", moved.Round(time.Millisecond))
	require.Less(t, moved, 2*time.Second+200*time.Millisecond+8*time.Second, "within the session TTL plus a reload interval; the slack is for race-built processes on 2 busy cores (measured 2.0-2.4 s when idle)")

	w.WaitAcked(t, 4000)
	close(stop)
	wg.Wait()
	w.Flush(t)
	c.RequireExactlyOnce(coll.ID, w)
	delete(c.Procs, "dn1") // killed on purpose; its log ends abruptly
	c.NoPanics()
}

// TestPausedDataNodeIsFenced: SIGSTOP a data node past its session TTL, let its channels move,
// then SIGCONT it. The paused node still holds buffers for its old channels; nothing it holds is
// committed after the move (no segment or checkpoint written under its old leases changes), it
// stops without panicking — a data node that finds its session lost stops its pipelines and
// exits for its supervisor to restart it — and nothing is lost or duplicated.
func TestPausedDataNodeIsFenced(t *testing.T) {
	c, w, coll := weirtest.StartCluster(t, "paused")
	for i := 0; i < 40; i++ {
		require.NoError(t, w.Insert(t, 50))
	}
	ctx := context.Background()
	before, err := c.Catalog.ListLeases(ctx)
	require.NoError(t, err)
	oldLeases := map[int64]bool{}
	for _, ch := range coll.VChannels {
		if before[ch].NodeID == 1 {
			oldLeases[before[ch].Revision] = true
		}
	}
	dn1 := c.Procs["dn1"]
	require.NoError(t, dn1.Pause())
	paused := time.Now()
	c.WaitAssigned(coll.VChannels, 2) // the paused node's session expired
	var more atomic.Int32
	for i := 0; i < 40; i++ {
		if w.Insert(t, 50) == nil {
			more.Add(1)
		}
	}
	moved := time.Since(paused)
	t.Logf("channels moved %s after the pause", moved.Round(time.Millisecond))
	require.Less(t, moved, 2*time.Second+200*time.Millisecond+8*time.Second, "within the session TTL plus a reload interval (plus slack for busy cores)")
	w.Flush(t) // served by node 2 alone
	t.Logf("flush by node 2 done %s after the pause", time.Since(paused).Round(time.Millisecond))
	require.NoError(t, dn1.Resume())
	code, err := dn1.Wait(20 * time.Second)
	require.NoError(t, err, "the resumed node stops by itself")
	require.NotZero(t, code)
	require.Contains(t, dn1.Log(), "session lost")

	for i := 0; i < 10; i++ {
		require.NoError(t, w.Insert(t, 50))
	}
	w.Flush(t)
	c.RequireExactlyOnce(coll.ID, w)
	segs, err := c.Catalog.ListSegments(ctx, coll.ID)
	require.NoError(t, err)
	for _, s := range segs {
		if oldLeases[s.Lease] {
			require.True(t, s.UpdatedAt.Before(paused), "segment %d written under a stale lease after the pause", s.ID)
		}
	}
	c.NoPanics()
	require.Equal(t, int32(40), more.Load())
}
