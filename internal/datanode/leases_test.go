package datanode

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/meta"
)

// TestRestartedNodeResumesItsChannelsWithoutCoordinator: a data node restarted while no
// coordinator runs finds its leases in the metastore and resumes its channels from their
// checkpoints (invariant 5), and lets go of channels leased elsewhere.
func TestRestartedNodeResumesItsChannelsWithoutCoordinator(t *testing.T) {
	e := newEnv(t, envOpts{shards: 2})
	mine, theirs := e.coll.VChannels[0], e.coll.VChannels[1]
	e.assign(mine, 1)
	e.assign(theirs, 1)
	n1 := e.node(testConfig(1))
	require.NoError(t, n1.SyncLeases(e.ctx, e.catalog))
	require.Len(t, n1.Channels(), 2)
	e.insert(mine, meta.DefaultPartition, 4)
	e.waitCheckpoint(mine, e.flush(mine))
	n1.Close()

	e.insert(mine, meta.DefaultPartition, 6) // acknowledged while the node is down
	n2 := e.node(testConfig(1))
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); n2.RunLeaseSync(ctx, e.catalog, 20*time.Millisecond) }()
	require.Eventually(t, func() bool { return len(n2.Channels()) == 2 }, 10*time.Second, 5*time.Millisecond)
	e.waitCheckpoint(mine, e.flush(mine))
	e.requireExactlyOnce()

	e.assign(theirs, 2) // the channel moves away
	require.Eventually(t, func() bool { _, ok := n2.Channels()[theirs]; return !ok }, 10*time.Second, 5*time.Millisecond)
	cancel()
	<-done
}
