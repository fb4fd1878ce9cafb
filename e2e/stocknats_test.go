package e2e

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/testcluster"
	"github.com/weir-db/weir/internal/weirtest"
)

// TestStockNATSServer runs Weir's roles against a nats-server started with its own defaults,
// whose max_payload is 1 MB, as a new user would run one: inserts of 1,000 rows of 768-dim
// vectors into 2 shards (about 1.5 MB per channel) are acknowledged, and stored once each
// (issue 11, item 7).
func TestStockNATSServer(t *testing.T) {
	c := weirtest.NewClusterNATS(t, testcluster.NATSStock())
	proxyAddr := weirtest.FreeAddr(t)
	c.Start("proxy", "proxy", 1, "--listen", proxyAddr)
	cl := weirtest.Dial(t, proxyAddr)
	weirtest.CreateVecCollectionDim(t, cl, "big", 2, 768)
	coll, err := c.Catalog.GetCollectionByName(context.Background(), meta.DefaultDatabase, "big")
	require.NoError(t, err)
	c.Coord()
	c.Start("dn1", "datanode", 1)
	c.WaitAssigned(coll.VChannels, 1)
	w := weirtest.NewWriter(cl, "big")
	w.Dim = 768
	for range 4 {
		require.NoError(t, w.Insert(t, 1000))
	}
	w.Flush(t)
	c.RequireExactlyOnce(coll.ID, w)
	c.NoPanics()
}
