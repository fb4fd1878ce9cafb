package bench

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/testcluster"
)

// TestClusterKillRestart starts a 1-data-node cluster of separate processes, checks that it
// serves (a channel is leased to the node and consumed), kills the data node and starts it
// again under its node ID: it resumes the channel, and CPU time counts both runs.
func TestClusterKillRestart(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	bin := testcluster.BuildWeir(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := startCluster(ctx, Options{Dir: t.TempDir(), Executable: bin}, clusterConfig{
		Name: "test", DataNodes: 1, SessionTTL: 2 * time.Second,
		CoordArgs: []string{"--assign-interval", "200ms", "--reload-interval", "200ms"},
	})
	require.NoError(t, err)
	dir := c.dir
	defer func() {
		require.NoError(t, c.Close())
		require.NoDirExists(t, dir)
	}()
	for _, p := range c.procs() {
		require.True(t, p.Healthy(ctx), p.name)
	}
	dn := c.DataNode(0)
	require.FileExists(t, filepath.Join(dir, "logs", "datanode-1.log"))

	cl, err := dial(c.ProxyAddr())
	require.NoError(t, err)
	defer cl.Close()
	require.NoError(t, cl.createCollection(ctx, "c", 8, 1))
	coll, err := c.catalog.GetCollectionByName(ctx, meta.DefaultDatabase, "c")
	require.NoError(t, err)
	ch := coll.VChannels[0]
	owner, err := c.owner(ctx, ch, 30*time.Second)
	require.NoError(t, err)
	require.Same(t, dn, owner)
	_, err = cl.insert(ctx, newWorkload("c", 8, 100), 0, 2, 1, nil)
	require.NoError(t, err)
	require.NoError(t, waitDrained(ctx, c.log, dn.HTTPAddr(), ch))
	require.ErrorIs(t, dn.Start(ctx), errRunning)

	cpu := c.CPUTime()
	require.Positive(t, cpu)
	addr := dn.HTTPAddr()
	wctx, stop := watch(ctx, dn)
	dn.Kill()
	<-wctx.Done()
	require.ErrorIs(t, context.Cause(wctx), errExited, "watch tells a role's exit")
	stop()
	require.False(t, dn.running())
	require.False(t, dn.Healthy(ctx))
	require.GreaterOrEqual(t, c.CPUTime(), cpu, "a killed run's CPU time still counts")

	// The new run waits for the old session to expire, then resumes the channel from its
	// lease and replays it.
	require.NoError(t, dn.Start(ctx))
	require.Equal(t, addr, dn.HTTPAddr(), "a restart keeps the ports")
	require.True(t, dn.Healthy(ctx))
	require.NoError(t, waitDrained(ctx, c.log, dn.HTTPAddr(), ch))
}

// TestClusterStartFails checks that a role that exits before it is ready fails its start at
// once, quoting its log.
func TestClusterStartFails(t *testing.T) {
	bin := testcluster.BuildWeir(t)
	dir := t.TempDir()
	p := &proc{name: "bad", role: "datanode", node: 1, exe: bin, args: []string{"--no-such-flag"}, logPath: filepath.Join(dir, "bad.log")}
	err := p.Start(t.Context())
	require.ErrorIs(t, err, errExited)
	require.ErrorContains(t, err, "no-such-flag")
	require.False(t, p.running())
}

// TestProcCPU reads this process's own CPU time from /proc.
func TestProcCPU(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	require.Positive(t, procCPU(os.Getpid()))
}
