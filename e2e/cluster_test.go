package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/rpc"
	"github.com/weir-db/weir/internal/session"
	"github.com/weir-db/weir/internal/weirtest"
)

// TestMEPCoordinatorOffline is the MEP's integration test, as its test plan writes it, with
// every role a separate process: insert data with no data node online; start data nodes; make
// the coordinator go offline after channel assignment; assert no data node panics and all data
// is intact (flush completes, every acknowledged key stored once); bring the coordinator back
// and check GetRecoveryInfo returns the latest target.
func TestMEPCoordinatorOffline(t *testing.T) {
	c := weirtest.NewCluster(t)
	proxyAddr := weirtest.FreeAddr(t)
	c.Start("proxy", "proxy", 1, "--listen", proxyAddr)
	cl := weirtest.Dial(t, proxyAddr)
	weirtest.CreateVecCollection(t, cl, "mep", 2)
	coll, err := c.Catalog.GetCollectionByName(context.Background(), meta.DefaultDatabase, "mep")
	require.NoError(t, err)
	w := weirtest.NewWriter(cl, "mep")

	// 1. Insert data with no data node online: acknowledged into the WAL.
	for i := 0; i < 20; i++ {
		require.NoError(t, w.Insert(t, 100))
	}
	// 2. Start data nodes (and the coordinator, which assigns their channels).
	co := c.Coord()
	c.Start("dn1", "datanode", 1)
	c.Start("dn2", "datanode", 2)
	c.WaitAssigned(coll.VChannels, 1, 2)
	// 3. The coordinator goes offline after channel assignment.
	co.Kill()
	// 4. Writes, syncs and flushes go on; no data node panics; all data is intact. A data
	// node killed and restarted while the coordinator is down resumes its channels from the
	// leases in etcd.
	for i := 0; i < 10; i++ {
		require.NoError(t, w.Insert(t, 100))
	}
	c.Procs["dn1"].Kill()
	delete(c.Procs, "dn1")
	for i := 0; i < 10; i++ {
		require.NoError(t, w.Insert(t, 100))
	}
	c.Start("dn1-restarted", "datanode", 1)
	w.Flush(t)
	c.RequireExactlyOnce(coll.ID, w)
	c.NoPanics()
	stats, err := cl.GetCollectionStatistics(ctxT(t), &milvuspb.GetCollectionStatisticsRequest{CollectionName: "mep"})
	require.NoError(t, err)
	require.Equal(t, "4000", stats.GetStats()[0].GetValue(), "statistics come from the metastore, coordinator down")

	// 5. Bring the coordinator back: GetRecoveryInfo returns the latest target.
	c.Start("coord2", "coord", 1, "--assign-interval", "200ms", "--reload-interval", "200ms")
	infos, _, err := session.List(context.Background(), c.Store, "weir", "coord")
	require.NoError(t, err)
	require.Len(t, infos, 1)
	cc, err := rpc.Dial(context.Background(), infos[0].GRPCAddr)
	require.NoError(t, err)
	defer cc.Close()
	var resp *rpc.RecoveryInfoResponse
	require.Eventually(t, func() bool {
		resp, err = rpc.NewCoordClient(cc).GetRecoveryInfo(context.Background(), &rpc.RecoveryInfoRequest{CollectionID: coll.ID})
		return err == nil
	}, 10*time.Second, 50*time.Millisecond)
	require.Len(t, resp.Channels, 2)
	var rows int64
	for _, ch := range resp.Channels {
		cp, err := c.Catalog.ReadCheckpoint(context.Background(), ch.Channel)
		require.NoError(t, err)
		require.Equal(t, cp.Position, ch.Checkpoint, "the target carries the latest checkpoint")
		require.Empty(t, ch.Growing, "after the flush every segment is flushed")
		for _, s := range ch.Flushed {
			rows += s.Rows
			require.NotEmpty(t, s.Files)
		}
	}
	require.Equal(t, int64(4000), rows)
	c.NoPanics()
}
