package coord

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/metastore"
)

// TestRunAssignsReloadsAndCollects runs the coordinator's loop: it assigns the channels of a
// collection created while it runs, keeps its view current, and runs garbage collection.
func TestRunAssignsReloadsAndCollects(t *testing.T) {
	e := newEnv(t)
	e.nodes.live = []int64{1}
	cfg := Defaults()
	cfg.ReloadInterval, cfg.AssignInterval, cfg.GCInterval = 10*time.Millisecond, 10*time.Millisecond, 20*time.Millisecond
	c, err := New(cfg, e.catalog, meta.NewView(e.kv, "weir", meta.ReloadChanged), e.nodes, e.bucket, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	coll := e.collection(t, "late", 2)
	require.Eventually(t, func() bool { return len(owners(t, e)) == 2 }, 10*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(c.m.reloads.WithLabelValues("skipped")) > 0 && testutil.ToFloat64(c.m.reloads.WithLabelValues("read")) > 0
	}, 10*time.Second, 5*time.Millisecond, "reloads that read and reloads that found nothing changed")
	info, err := c.RecoveryInfo(ctx, coll.ID, "")
	require.NoError(t, err)
	require.Len(t, info.Channels, 2)
	require.Eventually(t, func() bool { return testutil.ToFloat64(c.m.viewRevision) > 0 }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, float64(1), testutil.ToFloat64(c.m.liveNodes))
	cancel()
	<-done
}

// failingNodes cannot list live nodes.
type failingNodes struct{ fakeNodes }

func (f *failingNodes) Live(context.Context) ([]int64, error) {
	return nil, errors.New("test: etcd down")
}

func TestAssignAndReloadReportErrors(t *testing.T) {
	e := newEnv(t)
	c, err := New(Defaults(), e.catalog, meta.NewView(e.kv, "weir", meta.ReloadChanged), &failingNodes{}, e.bucket, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	_, err = c.Assign(e.ctx)
	require.ErrorContains(t, err, "etcd down")
	c.assignLogged(e.ctx) // logs, does not panic

	_, err = New(Config{}, e.catalog, nil, e.nodes, e.bucket, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	require.Error(t, err)

	e.collection(t, "c", 1)
	e.kv.InjectWriteFault(func([]string) metastore.WriteFault { return metastore.FailBeforeApply })
	e.nodes.live = []int64{1}
	c2 := e.coordinator(t)
	_, err = c2.Assign(e.ctx)
	require.ErrorIs(t, err, metastore.ErrOutcomeUnknown, "a lease write that may not have happened is reported")

	require.NoError(t, e.kv.Close())
	c2.reload(e.ctx)
	require.Equal(t, float64(1), testutil.ToFloat64(c2.m.reloads.WithLabelValues("error")))
	_, err = c2.CollectGarbage(e.ctx)
	require.Error(t, err)
}
