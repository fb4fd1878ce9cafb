//go:build fault

package fault

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/weirtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := writeReport(); err != nil {
		fmt.Fprintln(os.Stderr, "fault: write report:", err)
	}
	os.Exit(code)
}

// runs is how often each scenario runs: 1 in the short form, WEIR_FAULT_RUNS in the long one.
func runs() int {
	n, err := strconv.Atoi(os.Getenv("WEIR_FAULT_RUNS"))
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// jitter is a random delay for the long form, so faults land at different points of the
// workload; the short form uses none.
func jitter() time.Duration {
	if runs() == 1 {
		return 0
	}
	return time.Duration(rand.IntN(500)) * time.Millisecond
}

// scenario runs fault once per run against a fresh cluster under load, then flushes and
// checks: every acknowledged key once, weir inspect verify clean, no process panicked and
// none ended unexpectedly. fault returns when the cluster should recover; the time from the
// fault's start to the completed flush is recorded.
func scenario(t *testing.T, name string, fault func(t *testing.T, c *weirtest.Cluster, w *weirtest.Writer, coll *meta.Collection)) {
	scenarioProtocol(t, name, "current", fault)
}

func scenarioProtocol(t *testing.T, name, protocol string, fault func(t *testing.T, c *weirtest.Cluster, w *weirtest.Writer, coll *meta.Collection)) {
	for i := 0; i < runs(); i++ {
		t.Run(fmt.Sprintf("run%d", i+1), func(t *testing.T) {
			c, w, coll := weirtest.StartClusterProtocol(t, "fault", protocol)
			stop := make(chan struct{})
			wg := weirtest.Load(t, w, stop)
			w.WaitAcked(t, 1000)
			time.Sleep(jitter()) // random fault timing in the long form, by design
			start := time.Now()
			fault(t, c, w, coll)
			w.WaitAcked(t, 500)
			close(stop)
			wg.Wait()
			w.Flush(t)
			recovered := time.Since(start)
			lost, dup := c.Count(coll.ID, w)
			panics, unexpected := c.Panics(), c.UnexpectedExits()
			code, out := c.Verify()
			require.Zero(t, code, "weir inspect verify found inconsistencies:\n%s", out)
			record(name, outcome{acked: w.Acked() + w.Deleted(), lost: lost, dup: dup, panics: panics, unexpected: unexpected, recovered: recovered})
			require.Zero(t, lost, "acknowledged keys lost")
			require.Zero(t, dup, "keys stored more than once")
			require.Zero(t, panics, "processes panicked (logged above)")
			require.Zero(t, unexpected, "processes ended unexpectedly (logged above)")
		})
	}
}

// killAtFailpoint restarts data node 1 with a failpoint that ends the process (as kill -9)
// at one step of a sync, waits for it to die there, and starts it again without it.
func killAtFailpoint(fp string) func(*testing.T, *weirtest.Cluster, *weirtest.Writer, *meta.Collection) {
	return func(t *testing.T, c *weirtest.Cluster, w *weirtest.Writer, coll *meta.Collection) {
		_, err := c.Procs["dn1"].Stop(15 * time.Second)
		require.NoError(t, err)
		p := c.StartEnv("dn1-failpoint", "datanode", 1, []string{"WEIR_FAILPOINTS=" + fp + "=exit"}, "--sync-stale-age", "1s")
		c.Expect("dn1-failpoint", weirtest.FailpointExit)
		code, err := p.Wait(60 * time.Second)
		require.NoError(t, err, "the failpoint never fired")
		require.Equal(t, 137, code)
		delete(c.Procs, "dn1-failpoint")
		c.Start("dn1", "datanode", 1, "--sync-stale-age", "1s")
	}
}

func TestKillAfterFiles(t *testing.T) {
	scenario(t, "kill -9 after files", killAtFailpoint("datanode/after-files"))
}

func TestKillAfterSegmentMeta(t *testing.T) {
	scenario(t, "kill -9 after segment meta", killAtFailpoint("datanode/after-segment-meta"))
}

func TestKillAfterCheckpoint(t *testing.T) {
	scenario(t, "kill -9 after checkpoint", killAtFailpoint("datanode/after-checkpoint"))
}

// TestStaleOwnerPaused: SIGSTOP past the session TTL, reassignment, SIGCONT; the node finds
// its session lost and exits (status 1), as documented.
func TestStaleOwnerPaused(t *testing.T) {
	scenario(t, "SIGSTOP past session TTL", func(t *testing.T, c *weirtest.Cluster, w *weirtest.Writer, coll *meta.Collection) {
		dn1 := c.Procs["dn1"]
		c.Expect("dn1", weirtest.SessionLost)
		require.NoError(t, dn1.Pause())
		c.WaitAssigned(coll.VChannels, 2)
		w.WaitAcked(t, 500)
		require.NoError(t, dn1.Resume())
		c.WaitExit("dn1", weirtest.SessionLost, 30*time.Second)
		delete(c.Procs, "dn1")
	})
}

// TestABA: the channel goes from node 1 to node 2 and back to node 1 (a new process) while
// the first node-1 process is still paused; then the paused one resumes, finds its session
// lost and exits.
func TestABA(t *testing.T) {
	scenario(t, "A-B-A reassignment", func(t *testing.T, c *weirtest.Cluster, w *weirtest.Writer, coll *meta.Collection) {
		old := c.Procs["dn1"]
		c.Expect("dn1", weirtest.SessionLost)
		require.NoError(t, old.Pause())
		c.WaitAssigned(coll.VChannels, 2)
		delete(c.Procs, "dn1")
		c.Start("dn1-again", "datanode", 1, "--sync-stale-age", "1s")
		require.Eventually(t, func() bool { return anyLeasedTo(t, c, coll.VChannels, 1) },
			30*time.Second, 50*time.Millisecond, "no channel came back to node 1")
		w.WaitAcked(t, 500)
		require.NoError(t, old.Resume())
		code, err := old.Wait(30 * time.Second)
		require.NoError(t, err)
		require.Equal(t, weirtest.SessionLost.Code, code, "%s", old.Ending())
	})
}

// anyLeasedTo reports whether one of chans is leased to node now.
func anyLeasedTo(t *testing.T, c *weirtest.Cluster, chans []string, node int64) bool {
	leases, err := c.Catalog.ListLeases(t.Context())
	if err != nil {
		return false
	}
	for _, ch := range chans {
		if leases[ch].NodeID == node {
			return true
		}
	}
	return false
}

// TestCoordinatorKilledDuringRebalance: a third data node joins and the coordinator is killed
// while it moves channels to it; a new coordinator finishes the job.
func TestCoordinatorKilledDuringRebalance(t *testing.T) {
	scenario(t, "coordinator killed during rebalance", func(t *testing.T, c *weirtest.Cluster, w *weirtest.Writer, coll *meta.Collection) {
		c.Start("dn3", "datanode", 3, "--sync-stale-age", "1s")
		// Kill once the move has begun (a lease names the new node), not before the
		// coordinator's next round has seen it: the new coordinator must finish a move that a
		// dead one started, with the new owner possibly not yet told to watch.
		require.Eventually(t, func() bool { return anyLeasedTo(t, c, coll.VChannels, 3) },
			30*time.Second, time.Millisecond, "the coordinator never moved a channel to the new node")
		c.Procs["coord"].Kill()
		delete(c.Procs, "coord")
		w.WaitAcked(t, 500)
		c.Start("coord2", "coord", 1, "--assign-interval", "200ms", "--reload-interval", "200ms")
		c.WaitAssigned(coll.VChannels, 1, 2, 3)
	})
}

// TestCoordinatorDown: the coordinator is killed after assignment and stays down.
func TestCoordinatorDown(t *testing.T) {
	scenario(t, "coordinator down for the run", func(t *testing.T, c *weirtest.Cluster, w *weirtest.Writer, coll *meta.Collection) {
		c.Procs["coord"].Kill()
		delete(c.Procs, "coord")
	})
}

// TestEtcdRestarted: etcd is stopped and started again on the same data.
func TestEtcdRestarted(t *testing.T) {
	scenario(t, "etcd restarted", func(t *testing.T, c *weirtest.Cluster, w *weirtest.Writer, coll *meta.Collection) {
		c.Etcd.Restart(t)
	})
}

// TestEtcdUnreachablePastSessionTTL: etcd is paused for longer than the session TTL. Every
// session expires; the processes find theirs lost and exit, and are started again as a
// supervisor would. Nothing acknowledged is lost.
func TestEtcdUnreachablePastSessionTTL(t *testing.T) {
	scenario(t, "etcd unreachable past session TTL", func(t *testing.T, c *weirtest.Cluster, w *weirtest.Writer, coll *meta.Collection) {
		c.ExpectAll(weirtest.SessionLost)
		c.Etcd.Pause()
		time.Sleep(3 * time.Second) // the outage itself: longer than the 2 s session TTL
		c.Etcd.Resume()
		for _, name := range []string{"proxy", "coord", "dn1", "dn2"} {
			p := c.Procs[name]
			select {
			case <-p.Done():
				c.Restart(name)
			case <-time.After(15 * time.Second):
				// Its keep-alive got through in time; it keeps running.
			}
		}
	})
}

// TestNATSRestarted: nats-server is restarted under load; appends fail while it is down (not
// acknowledged) and go on after.
func TestNATSRestarted(t *testing.T) {
	scenario(t, "nats-server restarted under load", func(t *testing.T, c *weirtest.Cluster, w *weirtest.Writer, coll *meta.Collection) {
		c.NATS.Restart(t)
	})
}

// TestObjectStorageRefusingWrites: the data nodes' object writes fail for a while; syncs retry
// with backoff and nothing is lost.
func TestObjectStorageRefusingWrites(t *testing.T) {
	scenario(t, "object storage refusing writes", func(t *testing.T, c *weirtest.Cluster, w *weirtest.Writer, coll *meta.Collection) {
		flag := filepath.Join(t.TempDir(), "storage-down")
		for _, n := range []int64{1, 2} {
			name := fmt.Sprintf("dn%d", n)
			_, err := c.Procs[name].Stop(15 * time.Second)
			require.NoError(t, err)
			c.StartEnv(name+"-faulty", "datanode", n, []string{"WEIR_FAILPOINTS=datanode/put=error-while(" + flag + ")"}, "--sync-stale-age", "1s")
			delete(c.Procs, name)
		}
		require.NoError(t, os.WriteFile(flag, nil, 0o644))
		// Inserts are acknowledged into the WAL while nothing can sync; wait until both nodes
		// have had syncs refused.
		require.Eventually(t, func() bool {
			return strings.Contains(c.Procs["dn1-faulty"].Log(), "step=put") && strings.Contains(c.Procs["dn2-faulty"].Log(), "step=put")
		}, 30*time.Second, 50*time.Millisecond, "no sync was refused")
		w.WaitAcked(t, 500)
		require.NoError(t, os.Remove(flag))
	})
}

// TestRollingUpgrade: coordinator and data nodes start in the legacy protocol; under load the
// coordinator restarts as current, then each data node, one at a time; every channel ends up
// under a lease.
func TestRollingUpgrade(t *testing.T) {
	scenarioProtocol(t, "rolling upgrade from the legacy protocol", "legacy", func(t *testing.T, c *weirtest.Cluster, w *weirtest.Writer, coll *meta.Collection) {
		for _, p := range []struct {
			name, role string
			node       int64
			args       []string
		}{
			{"coord", "coord", 1, []string{"--assign-interval", "200ms", "--reload-interval", "200ms"}},
			{"dn1", "datanode", 1, []string{"--sync-stale-age", "1s"}},
			{"dn2", "datanode", 2, []string{"--sync-stale-age", "1s"}},
		} {
			_, err := c.Procs[p.name].Stop(15 * time.Second)
			require.NoError(t, err)
			c.Start(p.name, p.role, p.node, p.args...)
			w.WaitAcked(t, 300)
		}
		require.Eventually(t, func() bool {
			leases, err := c.Catalog.ListLeases(t.Context())
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
	})
}
