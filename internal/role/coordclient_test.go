package role

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/metastore"
	"github.com/weir-db/weir/internal/session"
)

// TestCoordClientCallsDoNotQueueBehindAStuckDial: while one legacy pipeline's call dials a
// coordinator that is gone (its session still names its address), another pipeline's call
// returns when its own context ends, instead of waiting for the first dial to give up. Before,
// the client held a mutex across the dial, which no context could interrupt.
func TestCoordClientCallsDoNotQueueBehindAStuckDial(t *testing.T) {
	ctx := context.Background()
	etcd, err := metastore.StartEmbedded(ctx, metastore.EmbeddedConfig{Dir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { etcd.Close() })
	store, err := metastore.Dial(ctx, metastore.Config{Endpoints: etcd.Endpoints()})
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gone := ln.Addr().String()
	require.NoError(t, ln.Close())
	sess, err := session.Register(ctx, store.Client(), session.Config{Root: "weir"}.Defaults(),
		session.Info{Role: "coord", NodeID: 1, GRPCAddr: gone})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sess.Close(context.Background()) })

	c := newCoordClient(&base{store: store, cfg: Config{RootPath: "weir"}})
	t.Cleanup(c.close)
	long, cancelLong := context.WithTimeout(ctx, 20*time.Second)
	defer cancelLong()
	stuck := make(chan error, 1)
	go func() { _, err := c.client(long); stuck <- err }()
	time.Sleep(300 * time.Millisecond) // the first call is dialing now

	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.client(short)
	require.Error(t, err)
	require.Less(t, time.Since(start), 3*time.Second, "the second call waited for the first one's dial")
	cancelLong()
	require.Error(t, <-stuck)
}
