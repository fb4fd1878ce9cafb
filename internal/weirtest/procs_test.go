package weirtest

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/testcluster"
)

// childEnv makes the test binary act as a Weir process that ends in a chosen way.
const childEnv = "WEIRTEST_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		os.Exit(m.Run())
	case "panic":
		panic("boom") // Go prints "panic: boom" and exits with status 2
	case "session-lost":
		fmt.Println(`level=ERROR msg="session lost" err="session: lost"`)
		os.Exit(1)
	case "failpoint":
		os.Exit(137)
	case "run":
		fmt.Println("ready")
		time.Sleep(time.Minute)
	}
	os.Exit(3)
}

// childCluster is a Cluster with no servers, whose processes are the test binary acting as
// Weir processes.
type childCluster struct{ *Cluster }

func newChildCluster(t *testing.T) childCluster {
	return childCluster{&Cluster{T: t, Procs: map[string]*testcluster.Process{}}}
}

// start runs the test binary as name, ending as mode says, the way StartEnv runs a role.
func (c childCluster) start(name, mode string) *testcluster.Process {
	p := testcluster.Start(c.T, name, os.Args[0], []string{"-test.run=^$"}, []string{childEnv + "=" + mode})
	c.track(name, p)
	c.Procs[name] = p
	return p
}

func (c childCluster) exited(p *testcluster.Process) {
	_, err := p.Wait(10 * time.Second)
	require.NoError(c.T, err)
}

// TestEveryProcessIsChecked: panics and exits are checked for every process the cluster ever
// started, also when a scenario removed it from Procs or started another under its name; a
// process ends unexpectedly unless the test ended it or Expect allowed how it ended.
func TestEveryProcessIsChecked(t *testing.T) {
	t.Run("a panicking process removed from Procs is caught", func(t *testing.T) {
		c := newChildCluster(t)
		c.exited(c.start("dn1", "panic"))
		delete(c.Procs, "dn1")
		require.Equal(t, 1, c.Panics())
		require.Equal(t, 1, c.UnexpectedExits(), "exit status 2")
	})
	t.Run("a panicking process replaced under its name is caught", func(t *testing.T) {
		c := newChildCluster(t)
		c.exited(c.start("dn1", "panic"))
		c.start("dn1", "run")
		require.Equal(t, 1, c.Panics())
		require.Equal(t, 1, c.UnexpectedExits())
	})
	t.Run("an exit counts only where the scenario expects it", func(t *testing.T) {
		c := newChildCluster(t)
		c.exited(c.start("dn1", "session-lost"))
		require.Equal(t, 1, c.UnexpectedExits(), "nothing expected")
		c.Expect("dn1", FailpointExit)
		require.Equal(t, 1, c.UnexpectedExits(), "status 1 is not the failpoint's 137")
		c.Expect("dn1", SessionLost)
		require.Zero(t, c.UnexpectedExits())

		c.exited(c.start("dn2", "failpoint"))
		require.Equal(t, 1, c.UnexpectedExits())
		c.Expect("dn2", SessionLost)
		require.Equal(t, 1, c.UnexpectedExits(), "137 is not a lost session")
		c.Expect("dn2", FailpointExit)
		require.Zero(t, c.UnexpectedExits())
		require.Zero(t, c.Panics())
	})
	t.Run("an exit is no lost session without its log line", func(t *testing.T) {
		c := newChildCluster(t)
		p := c.start("coord", "exit-3")
		c.exited(p)
		require.Equal(t, 3, p.Ending().Code)
		c.Expect("coord", Exit{Code: 3, Log: "session lost"})
		require.Equal(t, 1, c.UnexpectedExits())
	})
	t.Run("what the test ended is expected", func(t *testing.T) {
		c := newChildCluster(t)
		c.start("dn1", "run").Kill()
		delete(c.Procs, "dn1")
		p := c.start("dn2", "run")
		require.Eventually(t, func() bool { return p.Log() != "" }, 10*time.Second, 10*time.Millisecond)
		_, err := p.Stop(10 * time.Second)
		require.NoError(t, err)
		c.start("dn3", "run")
		require.Zero(t, c.UnexpectedExits(), "killed, stopped and running")
		require.Zero(t, c.Panics())
	})
	t.Run("RestartExited picks what exited on its own", func(t *testing.T) {
		c := newChildCluster(t)
		c.exited(c.start("dn1", "session-lost"))
		c.start("dn2", "run").Kill()
		c.start("dn3", "run")
		require.Equal(t, []string{"dn1"}, c.exitedOnTheirOwn())
	})
}
