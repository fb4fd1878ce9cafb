//go:build fault

package fault

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/session"
	"github.com/weir-db/weir/internal/testcluster"
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

// long reports whether this is the long form, whose fault timings are randomised.
func long() bool { return runs() > 1 }

// run is one run of a scenario: the cluster under load, and the run's random choices.
type run struct {
	*testing.T
	c    *weirtest.Cluster
	w    *weirtest.Writer
	coll *meta.Collection
	// rng makes every random choice of the run (timings, victims); its seed is logged, and
	// WEIR_FAULT_SEED sets it to repeat a run's choices.
	rng *rand.Rand
}

// seed is WEIR_FAULT_SEED, or a fresh one.
func seed() uint64 {
	if s, err := strconv.ParseUint(os.Getenv("WEIR_FAULT_SEED"), 10, 64); err == nil {
		return s
	}
	return rand.Uint64()
}

// jitter is a random delay for the long form, so that faults land at different points of the
// workload; the short form uses none.
func (r *run) jitter() time.Duration {
	if !long() {
		return 0
	}
	return time.Duration(r.rng.IntN(500)) * time.Millisecond
}

// between is a random duration in [lo, hi).
func (r *run) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(r.rng.Int64N(int64(hi-lo)))
}

// scenario runs fault once per run against a fresh cluster under load, then flushes and
// checks: every acknowledged key once, weir inspect verify clean, no process panicked and
// none ended unexpectedly. fault returns when the cluster should recover; the time from the
// fault's start to the completed flush is recorded.
func scenario(t *testing.T, name string, fault func(r *run)) {
	scenarioWith(t, name, weirtest.Setup{}, fault)
}

func scenarioWith(t *testing.T, name string, setup weirtest.Setup, fault func(r *run)) {
	for i := 0; i < runs(); i++ {
		t.Run(fmt.Sprintf("run%d", i+1), func(t *testing.T) {
			s := seed()
			t.Logf("seed %d (WEIR_FAULT_SEED=%d repeats this run's random choices)", s, s)
			c, w, coll := weirtest.StartClusterWith(t, "fault", setup)
			r := &run{T: t, c: c, w: w, coll: coll, rng: rand.New(rand.NewPCG(s, s))}
			stop := make(chan struct{})
			wg := weirtest.Load(t, w, stop)
			w.WaitAcked(t, 1000)
			time.Sleep(r.jitter()) // random fault timing in the long form, by design
			start := time.Now()
			fault(r)
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

// requireKilled checks that p was ended by the SIGKILL the test sent and that its pid is gone.
func requireKilled(t *testing.T, p *testcluster.Process) {
	t.Helper()
	e := p.Ending()
	require.Equal(t, syscall.SIGKILL, e.Signal, "%s: %s", p.Name(), e)
	require.True(t, e.Killed, "%s: %s", p.Name(), e)
	require.ErrorIs(t, syscall.Kill(p.PID(), 0), syscall.ESRCH, "pid %d of %s still exists", p.PID(), p.Name())
}

// server is a server of the cluster: an etcd or a nats-server, or a member of a cluster.
type server interface {
	Process() *testcluster.Process
	Kill()
	Restart(t testing.TB)
}

// killAndRestart sends SIGKILL to s, checks that it died of it, runs down (if not nil) while
// it is down, and starts it again on its data.
func killAndRestart(r *run, s server, down func()) {
	old := s.Process()
	r.Logf("SIGKILL to %s (pid %d)", old.Name(), old.PID())
	s.Kill()
	requireKilled(r.T, old)
	if down != nil {
		down()
	}
	time.Sleep(r.jitter())
	s.Restart(r)
	require.NotEqual(r, old.PID(), s.Process().PID())
}

// exitAtFailpoint restarts data node 1 with a failpoint that ends the process with status 137
// (as kill -9 would, but at a moment the process reaches itself) at one step of a sync, waits
// for it to end there, and starts it again without it.
func exitAtFailpoint(fp string) func(*run) {
	return func(r *run) {
		_, err := r.c.Procs["dn1"].Stop(15 * time.Second)
		require.NoError(r, err)
		p := r.c.StartEnv("dn1-failpoint", "datanode", 1, []string{"WEIR_FAILPOINTS=" + fp + "=exit"}, "--sync-stale-age", "1s")
		r.c.Expect("dn1-failpoint", weirtest.FailpointExit)
		code, err := p.Wait(60 * time.Second)
		require.NoError(r, err, "the failpoint never fired")
		require.Equal(r, 137, code)
		delete(r.c.Procs, "dn1-failpoint")
		r.c.Start("dn1", "datanode", 1, "--sync-stale-age", "1s")
	}
}

func TestFailpointExitAfterFiles(t *testing.T) {
	scenario(t, "exit at failpoint after files (as kill -9)", exitAtFailpoint("datanode/after-files"))
}

func TestFailpointExitAfterSegmentMeta(t *testing.T) {
	scenario(t, "exit at failpoint after segment meta (as kill -9)", exitAtFailpoint("datanode/after-segment-meta"))
}

func TestFailpointExitAfterCheckpoint(t *testing.T) {
	scenario(t, "exit at failpoint after checkpoint (as kill -9)", exitAtFailpoint("datanode/after-checkpoint"))
}

// TestDataNodesKilledAtRandom: the test sends SIGKILL to a random data node at a random moment,
// several times in a run, under inserts and deletes; each killed node is started again at once,
// as a supervisor would (it waits for its previous session to expire, then takes channels back).
func TestDataNodesKilledAtRandom(t *testing.T) {
	scenario(t, "data nodes SIGKILLed at random moments", func(r *run) {
		kills, most := 3, time.Second
		if long() {
			kills, most = 3+r.rng.IntN(4), 4*time.Second
		}
		for i := range kills {
			time.Sleep(r.between(100*time.Millisecond, most))
			node := int64(1 + r.rng.IntN(2))
			name := fmt.Sprintf("dn%d", node)
			leases, err := r.c.Catalog.ListLeases(context.Background())
			require.NoError(r, err)
			owned := 0
			for _, ch := range r.coll.VChannels {
				if leases[ch].NodeID == node {
					owned++
				}
			}
			p := r.c.Procs[name]
			p.Kill()
			requireKilled(r.T, p)
			r.Logf("kill %d of %d: %s (pid %d, %d channels leased to it), %d keys acknowledged", i+1, kills, name, p.PID(), owned, r.w.Acked())
			r.c.Restart(name)
		}
	})
}

// TestStaleOwnerPaused: SIGSTOP past the session TTL, reassignment, SIGCONT; the node finds
// its session lost and exits (status 1), as documented.
func TestStaleOwnerPaused(t *testing.T) {
	scenario(t, "SIGSTOP past session TTL", func(r *run) {
		dn1 := r.c.Procs["dn1"]
		r.c.Expect("dn1", weirtest.SessionLost)
		require.NoError(r, dn1.Pause())
		r.c.WaitAssigned(r.coll.VChannels, 2)
		r.w.WaitAcked(r, 500)
		require.NoError(r, dn1.Resume())
		r.c.WaitExit("dn1", weirtest.SessionLost, 30*time.Second)
		delete(r.c.Procs, "dn1")
	})
}

// TestABA: the channel goes from node 1 to node 2 and back to node 1 (a new process) while
// the first node-1 process is still paused; then the paused one resumes, finds its session
// lost and exits.
func TestABA(t *testing.T) {
	scenario(t, "A-B-A reassignment", func(r *run) {
		old := r.c.Procs["dn1"]
		r.c.Expect("dn1", weirtest.SessionLost)
		require.NoError(r, old.Pause())
		r.c.WaitAssigned(r.coll.VChannels, 2)
		delete(r.c.Procs, "dn1")
		r.c.Start("dn1-again", "datanode", 1, "--sync-stale-age", "1s")
		require.Eventually(r, func() bool { return anyLeasedTo(r.T, r.c, r.coll.VChannels, 1) },
			30*time.Second, 50*time.Millisecond, "no channel came back to node 1")
		r.w.WaitAcked(r, 500)
		require.NoError(r, old.Resume())
		code, err := old.Wait(30 * time.Second)
		require.NoError(r, err)
		require.Equal(r, weirtest.SessionLost.Code, code, "%s", old.Ending())
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
	scenario(t, "coordinator killed during rebalance", func(r *run) {
		r.c.Start("dn3", "datanode", 3, "--sync-stale-age", "1s")
		// Kill once the move has begun (a lease names the new node), not before the
		// coordinator's next round has seen it: the new coordinator must finish a move that a
		// dead one started, with the new owner possibly not yet told to watch.
		require.Eventually(r, func() bool { return anyLeasedTo(r.T, r.c, r.coll.VChannels, 3) },
			30*time.Second, time.Millisecond, "the coordinator never moved a channel to the new node")
		r.c.Procs["coord"].Kill()
		delete(r.c.Procs, "coord")
		r.w.WaitAcked(r, 500)
		r.c.Start("coord2", "coord", 1, "--assign-interval", "200ms", "--reload-interval", "200ms")
		r.c.WaitAssigned(r.coll.VChannels, 1, 2, 3)
	})
}

// TestCoordinatorDown: the coordinator is killed after assignment and stays down.
func TestCoordinatorDown(t *testing.T) {
	scenario(t, "coordinator down for the run", func(r *run) {
		r.c.Procs["coord"].Kill()
		delete(r.c.Procs, "coord")
	})
}

// TestEtcdRestarted: etcd is stopped (SIGTERM) and started again on the same data.
func TestEtcdRestarted(t *testing.T) {
	scenario(t, "etcd restarted (SIGTERM)", func(r *run) {
		r.c.Etcd.Restart(r)
	})
}

// restartAfterSessions lets every Weir process find out whether an outage of etcd that just
// ended cost it its session — it does within one session TTL of its last answered keep-alive —
// and starts the ones that exited again, as a supervisor would. Each must have ended as
// SessionLost (checked at the end); the names are logged.
func restartAfterSessions(r *run) {
	// What is waited for is a span of time, not an event: a session that was not lost by
	// then never will be on account of this outage.
	time.Sleep(2 * time.Second) // the cluster's session TTL
	for name, p := range r.c.Procs {
		if strings.Contains(p.Log(), weirtest.SessionLost.Log) {
			_, err := p.Wait(15 * time.Second)
			require.NoError(r, err, "%s found its session lost and did not exit", name)
		}
	}
	r.Logf("restarted after a lost session: %v", r.c.RestartExited())
}

// TestEtcdKilled: the test sends SIGKILL to etcd under load and starts it again on its data.
// Requests fail while it is down (not acknowledged); a Weir process whose session outlives
// none of it exits as documented and is restarted.
func TestEtcdKilled(t *testing.T) {
	scenario(t, "etcd SIGKILLed and restarted", func(r *run) {
		r.c.ExpectAll(weirtest.SessionLost)
		killAndRestart(r, r.c.Etcd, nil)
		restartAfterSessions(r)
	})
}

// TestEtcdUnreachablePastSessionTTL: etcd is paused for longer than the session TTL. Every
// session expires: each process finds its own lost and exits with status 1, "session lost" in
// its log; they are started again as a supervisor would, the data nodes one after the other,
// and the channels of the one that comes back last move (new leases) to the one that came
// back first. Nothing acknowledged is lost.
func TestEtcdUnreachablePastSessionTTL(t *testing.T) {
	scenario(t, "etcd unreachable past session TTL", func(r *run) {
		ctx := context.Background()
		before, err := r.c.Catalog.ListLeases(ctx)
		require.NoError(r, err)
		sessions, _, err := session.List(ctx, r.c.Store, "weir", "")
		require.NoError(r, err)
		require.Len(r, sessions, 4, "proxy, coordinator and two data nodes")
		r.c.ExpectAll(weirtest.SessionLost)
		r.c.Etcd.Pause()
		time.Sleep(3*time.Second + r.jitter()) // the outage itself: longer than the 2 s session TTL
		r.c.Etcd.Resume()
		for _, name := range []string{"proxy", "coord", "dn1", "dn2"} {
			r.c.WaitExit(name, weirtest.SessionLost, 15*time.Second)
		}
		first, last := int64(1), int64(2)
		if long() && r.rng.IntN(2) == 0 {
			first, last = 2, 1
		}
		for _, name := range []string{"proxy", "coord", fmt.Sprintf("dn%d", first)} {
			r.c.Restart(name)
		}
		r.c.WaitAssigned(r.coll.VChannels, first)
		r.c.Restart(fmt.Sprintf("dn%d", last))
		r.c.WaitAssigned(r.coll.VChannels, 1, 2)

		after, err := r.c.Catalog.ListLeases(ctx)
		require.NoError(r, err)
		moved := 0
		for _, ch := range r.coll.VChannels {
			if before[ch].NodeID == last {
				require.Greater(r, after[ch].Revision, before[ch].Revision, "channel %s of node %d kept its lease", ch, last)
				moved++
			}
		}
		require.NotZero(r, moved, "node %d held no channel before the outage", last)
		again, _, err := session.List(ctx, r.c.Store, "weir", "")
		require.NoError(r, err)
		require.Len(r, again, len(sessions))
		for i, s := range again {
			require.NotEqual(r, sessions[i].CreateRevision, s.CreateRevision, "the session of %s %d survived", s.Role, s.NodeID)
		}
		r.Logf("%d channels of node %d moved under new leases", moved, last)
	})
}

// TestNATSRestarted: nats-server is stopped (SIGTERM) and started again under load; appends
// fail while it is down (not acknowledged) and go on after.
func TestNATSRestarted(t *testing.T) {
	scenario(t, "nats-server restarted under load (SIGTERM)", func(r *run) {
		r.c.NATS.Restart(r)
	})
}

// TestNATSKilled: the test sends SIGKILL to nats-server under load and starts it again on its
// store. It fsyncs every message before acknowledging it (sync_interval always), so nothing
// acknowledged may be missing after the restart.
func TestNATSKilled(t *testing.T) {
	scenario(t, "nats-server SIGKILLed and restarted", func(r *run) {
		killAndRestart(r, r.c.NATS, nil)
	})
}

// TestObjectStorageRefusingWrites: a failpoint in the data nodes refuses their object writes
// for a while, before any request is sent; syncs retry with backoff and nothing is lost.
func TestObjectStorageRefusingWrites(t *testing.T) {
	scenario(t, "object writes refused (failpoint before the upload)", func(r *run) {
		flag := filepath.Join(r.TempDir(), "storage-down")
		for _, n := range []int64{1, 2} {
			name := fmt.Sprintf("dn%d", n)
			_, err := r.c.Procs[name].Stop(15 * time.Second)
			require.NoError(r, err)
			r.c.StartEnv(name+"-faulty", "datanode", n, []string{"WEIR_FAILPOINTS=datanode/put=error-while(" + flag + ")"}, "--sync-stale-age", "1s")
			delete(r.c.Procs, name)
		}
		require.NoError(r, os.WriteFile(flag, nil, 0o644))
		// Inserts are acknowledged into the WAL while nothing can sync; wait until both nodes
		// have had syncs refused.
		require.Eventually(r, func() bool {
			return strings.Contains(r.c.Procs["dn1-faulty"].Log(), "step=put") && strings.Contains(r.c.Procs["dn2-faulty"].Log(), "step=put")
		}, 30*time.Second, 50*time.Millisecond, "no sync was refused")
		r.w.WaitAcked(r, 500)
		require.NoError(r, os.Remove(flag))
	})
}

// TestRollingUpgrade: coordinator and data nodes start in the legacy protocol; under load the
// coordinator restarts as current, then each data node, one at a time; every channel ends up
// under a lease.
func TestRollingUpgrade(t *testing.T) {
	scenarioWith(t, "rolling upgrade from the legacy protocol", weirtest.Setup{Protocol: "legacy"}, func(r *run) {
		for _, p := range []struct {
			name, role string
			node       int64
			args       []string
		}{
			{"coord", "coord", 1, []string{"--assign-interval", "200ms", "--reload-interval", "200ms"}},
			{"dn1", "datanode", 1, []string{"--sync-stale-age", "1s"}},
			{"dn2", "datanode", 2, []string{"--sync-stale-age", "1s"}},
		} {
			_, err := r.c.Procs[p.name].Stop(15 * time.Second)
			require.NoError(r, err)
			r.c.Start(p.name, p.role, p.node, p.args...)
			r.w.WaitAcked(r, 300)
		}
		require.Eventually(r, func() bool {
			leases, err := r.c.Catalog.ListLeases(r.Context())
			if err != nil {
				return false
			}
			for _, ch := range r.coll.VChannels {
				if leases[ch].Legacy {
					return false
				}
			}
			return true
		}, 30*time.Second, 50*time.Millisecond, "lease-less watch info was never upgraded")
	})
}
