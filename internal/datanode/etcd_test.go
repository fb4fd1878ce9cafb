package datanode

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/metastore"
)

func freeURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return fmt.Sprintf("http://%s", ln.Addr())
}

// TestEtcdOutageMidRun stops the real etcd server while the pipeline is syncing and starts it
// again on the same directory: commits in flight have unknown outcomes and are re-read once
// etcd is back, nothing panics, and every acknowledged row is stored exactly once.
func TestEtcdOutageMidRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ecfg := metastore.EmbeddedConfig{Dir: t.TempDir(), ClientURL: freeURL(t), PeerURL: freeURL(t), Logger: quiet()}
	etcd, err := metastore.StartEmbedded(ctx, ecfg)
	require.NoError(t, err)
	defer func() { etcd.Close() }()
	store, err := metastore.Dial(ctx, metastore.Config{Endpoints: etcd.Endpoints(), RequestTimeout: time.Second})
	require.NoError(t, err)
	defer store.Close()

	e := newEnv(t, envOpts{store: store})
	ch := e.coll.VChannels[0]
	e.assign(ch, 1)
	n := e.node(testConfig(1))
	require.NoError(t, n.Watch(e.ctx, ch))
	for i := 0; i < 20; i++ {
		e.insert(ch, meta.DefaultPartition, 10)
	}
	require.NoError(t, etcd.Close())
	// Inserts go on into the WAL while etcd is down; the pipeline keeps buffering and retrying.
	for i := 0; i < 20; i++ {
		e.insert(ch, meta.DefaultPartition, 10)
	}
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(n.m.retries.WithLabelValues("segment-meta"))+testutil.ToFloat64(n.m.retries.WithLabelValues("checkpoint")) > 0
	}, 20*time.Second, 10*time.Millisecond, "commits fail and are retried while etcd is down")
	etcd, err = metastore.StartEmbedded(ctx, ecfg)
	require.NoError(t, err)
	require.NoError(t, n.Err(ch), "an etcd outage does not stop the pipeline")
	e.waitCheckpoint(ch, e.flush(ch))
	e.requireExactlyOnce()
}
