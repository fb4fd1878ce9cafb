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

// TestDroppedCollectionStopsItsPipelines: dropping a collection deletes its channels' leases;
// the node's next lease check stops their pipelines and frees what they buffered, and a node
// started afterwards starts none (issue 11, item 5).
func TestDroppedCollectionStopsItsPipelines(t *testing.T) {
	e := newEnv(t, envOpts{shards: 2})
	for _, ch := range e.coll.VChannels {
		e.assign(ch, 1)
	}
	cfg := testConfig(1)
	cfg.SyncBufferBytes = 1 << 30 // keep the rows buffered
	n := e.node(cfg)
	require.NoError(t, n.SyncLeases(e.ctx, e.catalog))
	require.Len(t, n.Channels(), 2)
	e.insert(e.coll.VChannels[0], meta.DefaultPartition, 50)
	require.Eventually(t, func() bool { return n.buffered.Load() > 0 }, 10*time.Second, 5*time.Millisecond)

	_, err := e.catalog.DropCollection(e.ctx, meta.DefaultDatabase, e.coll.Name)
	require.NoError(t, err)
	require.NoError(t, n.SyncLeases(e.ctx, e.catalog))
	require.Empty(t, n.Channels(), "no pipeline runs for a dropped collection")
	require.Zero(t, n.buffered.Load(), "what they buffered is freed")

	n2 := e.node(cfg)
	require.NoError(t, n2.SyncLeases(e.ctx, e.catalog))
	require.Empty(t, n2.Channels())
}

// listThenWatch lists the leases, then, before returning them, lets the coordinator's Watch of
// a newly assigned channel run: the list does not have that lease.
type listThenWatch struct {
	*meta.Catalog
	during func()
}

func (l listThenWatch) ListLeases(ctx context.Context) (map[string]meta.Lease, error) {
	all, err := l.Catalog.ListLeases(ctx)
	l.during()
	return all, err
}

// TestLeaseSyncKeepsAChannelWatchedMeanwhile: a channel assigned and watched while a lease sync
// lists the leases is not in the list; it must not be released as if its lease were gone
// (found by review).
func TestLeaseSyncKeepsAChannelWatchedMeanwhile(t *testing.T) {
	e := newEnv(t, envOpts{shards: 2})
	first, second := e.coll.VChannels[0], e.coll.VChannels[1]
	e.assign(first, 1)
	n := e.node(testConfig(1))
	require.NoError(t, n.SyncLeases(e.ctx, e.catalog))
	lister := listThenWatch{Catalog: e.catalog, during: func() {
		e.assign(second, 1)
		require.NoError(t, n.Watch(e.ctx, second))
	}}
	require.NoError(t, n.SyncLeases(e.ctx, lister))
	require.Contains(t, n.Channels(), second, "the channel watched during the sync runs")
}

// listAround runs before ahead of listing the leases and after once they are listed.
type listAround struct {
	*meta.Catalog
	before, after func()
}

func (l listAround) ListLeases(ctx context.Context) (map[string]meta.Lease, error) {
	l.before()
	all, err := l.Catalog.ListLeases(ctx)
	l.after()
	return all, err
}

// TestLeaseSyncReleasesOnlyWhatItSaw: a lease sync sees the channel leased to another node, but
// by the time it acts the channel came back to this node and a Watch started it under the new
// lease (A-B-A): the sync must not stop that pipeline (found by review).
func TestLeaseSyncReleasesOnlyWhatItSaw(t *testing.T) {
	e := newEnv(t, envOpts{})
	ch := e.coll.VChannels[0]
	e.assign(ch, 1)
	n := e.node(testConfig(1))
	require.NoError(t, n.SyncLeases(e.ctx, e.catalog))
	var back meta.Lease
	lister := listAround{Catalog: e.catalog,
		before: func() { e.assign(ch, 2) },
		after: func() {
			back = e.assign(ch, 1)
			require.NoError(t, n.Watch(e.ctx, ch))
		}}
	require.NoError(t, n.SyncLeases(e.ctx, lister))
	require.Equal(t, back.Revision, n.Channels()[ch], "the pipeline under the lease it came back with runs")
}

// TestLeaseSyncOutlivesAGoneCoordinator: a lease sync that starts a legacy pipeline while the
// coordinator is gone (its session still naming its address) gives the start up after a while
// and lets go of the channel's lock, so neither the sync's other channels nor a Release of this
// one wait behind it. It hung: the start's ClaimChannel ran under the sync loop's context,
// which has no deadline, and dialing a coordinator that does not answer waits until it
// connects (found by review).
func TestLeaseSyncOutlivesAGoneCoordinator(t *testing.T) {
	e := newEnv(t, envOpts{})
	ch := e.coll.VChannels[0]
	e.assign(ch, 1)
	cfg := testConfig(1)
	cfg.Protocol = ProtocolLegacy
	n := e.node(cfg)
	n.SetCoordinator(newGoneCoord(t, false))

	ctx, cancel := context.WithCancel(context.Background()) // the sync loop's: no deadline (RunLeaseSync)
	var err error
	synced := make(chan struct{})
	go func() { defer close(synced); err = n.SyncLeases(ctx, e.catalog) }()
	defer func() { cancel(); <-synced }()
	select {
	case <-synced:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("SyncLeases hangs on the gone coordinator")
	}
	require.Empty(t, n.Channels())

	released := make(chan struct{})
	go func() { n.Release(ch); close(released) }()
	select {
	case <-released:
	case <-time.After(10 * time.Second):
		t.Fatal("Release hangs behind the lease sync's start")
	}
}
