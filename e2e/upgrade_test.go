package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/weirtest"
)

// TestRollingUpgradeFromLegacy: a coordinator and two data nodes start in the legacy protocol
// (watch info without leases, meta through SaveBinlogPaths). Under continuous inserts the
// coordinator restarts as current, then each data node, one at a time. Afterwards every
// acknowledged key is stored exactly once, no process panicked, and every channel has a lease
// and is written directly.
func TestRollingUpgradeFromLegacy(t *testing.T) {
	c := weirtest.NewCluster(t)
	proxyAddr := weirtest.FreeAddr(t)
	c.Start("proxy", "proxy", 1, "--listen", proxyAddr)
	cl := weirtest.Dial(t, proxyAddr)
	weirtest.CreateVecCollection(t, cl, "upgrade", 4)
	ctx := context.Background()
	coll, err := c.Catalog.GetCollectionByName(ctx, meta.DefaultDatabase, "upgrade")
	require.NoError(t, err)
	fast := []string{"--assign-interval", "200ms", "--reload-interval", "200ms"}
	c.Start("coord-legacy", "coord", 1, append(fast, "--protocol", "legacy")...)
	c.Start("dn1-legacy", "datanode", 1, "--protocol", "legacy", "--sync-stale-age", "1s")
	c.Start("dn2-legacy", "datanode", 2, "--protocol", "legacy", "--sync-stale-age", "1s")
	c.WaitAssigned(coll.VChannels, 1, 2)
	leases, err := c.Catalog.ListLeases(ctx)
	require.NoError(t, err)
	for _, ch := range coll.VChannels {
		require.True(t, leases[ch].Legacy, "the legacy coordinator writes watch info without leases")
	}

	w := weirtest.NewWriter(cl, "upgrade")
	stop := make(chan struct{})
	wg := weirtest.Load(t, w, stop)
	progress := func(n int) { t.Helper(); w.WaitAcked(t, n) }
	restart := func(old, name, role string, node int64, args ...string) {
		t.Helper()
		code, err := c.Procs[old].Stop(15 * time.Second)
		require.NoError(t, err)
		require.Zero(t, code, "%s stops cleanly", old)
		c.Start(name, role, node, args...)
		progress(500)
	}
	progress(1000)
	restart("coord-legacy", "coord", "coord", 1, fast...)
	restart("dn1-legacy", "dn1", "datanode", 1, "--sync-stale-age", "1s")
	restart("dn2-legacy", "dn2", "datanode", 2, "--sync-stale-age", "1s")

	// Every channel ends up under a lease, on a current node.
	require.Eventually(t, func() bool {
		leases, err := c.Catalog.ListLeases(ctx)
		if err != nil {
			return false
		}
		for _, ch := range coll.VChannels {
			if leases[ch].Legacy {
				return false
			}
		}
		return true
	}, 30*time.Second, 50*time.Millisecond, "lease-less watch info was never upgraded")
	progress(500)
	close(stop)
	wg.Wait()
	w.Flush(t)
	c.RequireExactlyOnce(coll.ID, w)
	c.NoPanics()

	// Written directly: the last flush's segments carry the current leases, which the
	// coordinator's legacy service cannot write under (it serves lease-less watch info only
	// when asked, and no node asks any more).
	leases, err = c.Catalog.ListLeases(ctx)
	require.NoError(t, err)
	segs, err := c.Catalog.ListSegments(ctx, coll.ID)
	require.NoError(t, err)
	current := map[int64]bool{}
	for _, ch := range coll.VChannels {
		current[leases[ch].Revision] = true
	}
	direct := 0
	for _, s := range segs {
		if current[s.Lease] {
			direct++
		}
	}
	require.Positive(t, direct, "segments written under the upgraded leases")
	for _, dn := range []string{"dn1", "dn2"} {
		require.Contains(t, c.Procs[dn].Log(), "legacy=false", "%s runs pipelines on the direct path", dn)
	}
	require.Contains(t, c.Procs["dn1-legacy"].Log(), "legacy=true", "before the upgrade, meta went through the coordinator")
}
