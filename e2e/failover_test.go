package e2e

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/meta"
)

// load inserts batches until stop is closed (or a bound is reached), recording acknowledged
// keys; errors (for example while a channel moves) are counted, never retried blindly.
func load(t *testing.T, w *writer, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 2000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_ = w.insert(t, 50)
			time.Sleep(2 * time.Millisecond) // pacing: a steady stream, not a benchmark
		}
	}()
	return &wg
}

func startCluster(t *testing.T, name string) (*cluster, *writer, *meta.Collection) {
	c := newCluster(t)
	proxyAddr := freeAddr(t)
	c.start("proxy", "proxy", 1, "--listen", proxyAddr)
	cl := dial(t, proxyAddr)
	createVecCollection(t, cl, name, 4)
	coll, err := c.catalog.GetCollectionByName(context.Background(), meta.DefaultDatabase, name)
	require.NoError(t, err)
	c.coord()
	c.start("dn1", "datanode", 1, "--sync-stale-age", "1s")
	c.start("dn2", "datanode", 2, "--sync-stale-age", "1s")
	// The coordinator may assign every channel before the second node registers; it then
	// rebalances: wait for two channels per node.
	require.Eventually(t, func() bool {
		leases := c.waitAssigned(coll.VChannels, 1, 2)
		owners := map[int64]int{}
		for _, ch := range coll.VChannels {
			owners[leases[ch].NodeID]++
		}
		return owners[1] == 2 && owners[2] == 2
	}, 30*time.Second, 50*time.Millisecond, "four channels, two per node")
	return c, &writer{c: cl, name: name, acked: map[int64]bool{}}, coll
}

// TestKillDataNodeUnderLoad: kill -9 one data node while inserts flow; its channels move to the
// other node within the session TTL plus a reload interval, and after a flush every acknowledged
// key is stored exactly once.
func TestKillDataNodeUnderLoad(t *testing.T) {
	c, w, coll := startCluster(t, "killed")
	stop := make(chan struct{})
	wg := load(t, w, stop)
	require.Eventually(t, func() bool { w.mu.Lock(); defer w.mu.Unlock(); return len(w.acked) > 2000 }, 30*time.Second, 10*time.Millisecond)

	killed := time.Now()
	c.procs["dn1"].Kill()
	c.waitAssigned(coll.VChannels, 2)
	moved := time.Since(killed)
	t.Logf("channels of the killed node moved after %s (session TTL 2s, reload 200ms)", moved.Round(time.Millisecond))
	require.Less(t, moved, 2*time.Second+200*time.Millisecond+8*time.Second, "within the session TTL plus a reload interval; the slack is for race-built processes on 2 busy cores (measured 2.0-2.4 s when idle)")

	require.Eventually(t, func() bool { w.mu.Lock(); defer w.mu.Unlock(); return len(w.acked) > 6000 }, 30*time.Second, 10*time.Millisecond)
	close(stop)
	wg.Wait()
	w.flush(t)
	c.requireExactlyOnce(coll.ID, w)
	delete(c.procs, "dn1") // killed on purpose; its log ends abruptly
	c.noPanics()
}

// TestPausedDataNodeIsFenced: SIGSTOP a data node past its session TTL, let its channels move,
// then SIGCONT it. The paused node still holds buffers for its old channels; nothing it holds is
// committed after the move (no segment or checkpoint written under its old leases changes), it
// stops without panicking — a data node that finds its session lost stops its pipelines and
// exits for its supervisor to restart it — and nothing is lost or duplicated.
func TestPausedDataNodeIsFenced(t *testing.T) {
	c, w, coll := startCluster(t, "paused")
	for i := 0; i < 40; i++ {
		require.NoError(t, w.insert(t, 50))
	}
	ctx := context.Background()
	before, err := c.catalog.ListLeases(ctx)
	require.NoError(t, err)
	oldLeases := map[int64]bool{}
	for _, ch := range coll.VChannels {
		if before[ch].NodeID == 1 {
			oldLeases[before[ch].Revision] = true
		}
	}
	dn1 := c.procs["dn1"]
	require.NoError(t, dn1.Pause())
	paused := time.Now()
	c.waitAssigned(coll.VChannels, 2) // the paused node's session expired
	var more atomic.Int32
	for i := 0; i < 40; i++ {
		if w.insert(t, 50) == nil {
			more.Add(1)
		}
	}
	moved := time.Since(paused)
	t.Logf("channels moved %s after the pause", moved.Round(time.Millisecond))
	require.Less(t, moved, 2*time.Second+200*time.Millisecond+8*time.Second, "within the session TTL plus a reload interval (plus slack for busy cores)")
	w.flush(t) // served by node 2 alone
	t.Logf("flush by node 2 done %s after the pause", time.Since(paused).Round(time.Millisecond))
	require.NoError(t, dn1.Resume())
	code, err := dn1.Wait(20 * time.Second)
	require.NoError(t, err, "the resumed node stops by itself")
	require.NotZero(t, code)
	require.Contains(t, dn1.Log(), "session lost")

	for i := 0; i < 10; i++ {
		require.NoError(t, w.insert(t, 50))
	}
	w.flush(t)
	c.requireExactlyOnce(coll.ID, w)
	segs, err := c.catalog.ListSegments(ctx, coll.ID)
	require.NoError(t, err)
	for _, s := range segs {
		if oldLeases[s.Lease] {
			require.True(t, s.UpdatedAt.Before(paused), "segment %d written under a stale lease after the pause", s.ID)
		}
	}
	c.noPanics()
	require.Equal(t, int32(40), more.Load())
}
