package weirtest

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/testcluster"
)

// Exit is a way a Weir process may end on its own in a scenario: with status Code, its log
// holding Log ("" for no condition).
type Exit struct {
	Code int
	Log  string
}

var (
	// SessionLost is how a role whose session expired ends: it stops and exits with status 1
	// for its supervisor to restart it, "session lost" in its log (docs/operations.md).
	SessionLost = Exit{Code: 1, Log: "session lost"}
	// FailpointExit is how a failpoint's "exit" action ends a process: status 137, the status
	// a shell reports for kill -9, without unwinding anything (internal/failpoint).
	FailpointExit = Exit{Code: 137}
)

func (e Exit) String() string {
	if e.Log == "" {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return fmt.Sprintf("exit status %d with %q in its log", e.Code, e.Log)
}

// panicMarks are what a Go process's output holds when it panicked, died of a runtime fatal
// error or, built with -race, met a data race, or when one of its RPC handlers panicked: the
// server recovers those (the client gets Internal) and logs this line, and a recovered panic is
// still a bug a user met (a fanOut of reads did so during failovers, unseen for a while).
var panicMarks = []string{"panic:", "fatal error:", "DATA RACE", "panic in rpc handler"}

// started is a Weir process the cluster started, kept after it exits or is replaced under
// its name, with the ways it may end on its own.
type started struct {
	name  string
	p     *testcluster.Process
	exits []Exit
}

// track records a Weir process the cluster started as name; it is checked at the end
// whatever happens to it or to its name.
func (c *Cluster) track(name string, p *testcluster.Process) {
	c.started = append(c.started, &started{name: name, p: p})
}

// Expect allows the process running now as name to end on its own in one of the ways exits
// says (in addition to what the test asks: Kill, or Stop answered by status 0). Every other
// ending on its own counts as unexpected (UnexpectedExits).
func (c *Cluster) Expect(name string, exits ...Exit) {
	c.T.Helper()
	p, ok := c.Procs[name]
	require.True(c.T, ok, "no process %s", name)
	for _, s := range c.started {
		if s.p == p {
			s.exits = append(s.exits, exits...)
		}
	}
}

// ExpectAll is Expect for every Weir process running now.
func (c *Cluster) ExpectAll(exits ...Exit) {
	c.T.Helper()
	for name := range c.Procs {
		c.Expect(name, exits...)
	}
}

// checked is one process of the cluster as the end-of-run checks see it.
type checked struct {
	name  string
	p     *testcluster.Process
	exits []Exit // ways it may end on its own; servers have none
}

// everyProcess is every process the cluster ever started: its Weir processes, including
// those that exited, were killed or were replaced under their name, and every process of
// its servers (etcd, nats-server, versitygw), members of clusters and restarts included.
func (c *Cluster) everyProcess() []checked {
	var all []checked
	for _, s := range c.started {
		all = append(all, checked{s.name, s.p, s.exits})
	}
	var servers []interface{ Processes() []*testcluster.Process }
	if c.Etcd != nil {
		servers = append(servers, c.Etcd)
	}
	if c.NATS != nil {
		servers = append(servers, c.NATS)
	}
	if c.EtcdCluster != nil {
		for _, m := range c.EtcdCluster.Members() {
			servers = append(servers, m)
		}
	}
	if c.NATSCluster != nil {
		for _, n := range c.NATSCluster.Nodes() {
			servers = append(servers, n)
		}
	}
	if c.S3 != nil {
		servers = append(servers, c.S3)
	}
	for _, s := range servers {
		for _, p := range s.Processes() {
			all = append(all, checked{name: p.Name(), p: p})
		}
	}
	return all
}

// panicked returns the first mark of a panic in log, "" when there is none.
func panicked(log string) string {
	for _, m := range panicMarks {
		if i := strings.Index(log, m); i >= 0 {
			line, _, _ := strings.Cut(log[i:], "\n")
			return line
		}
	}
	return ""
}

// unexpected says why a process's ending is unexpected, "" when it is not: still running,
// ended as the test asked, or exited in one of the ways allowed.
func unexpected(p *testcluster.Process, exits []Exit) string {
	e := p.Ending()
	if e.Running || e.Asked() {
		return ""
	}
	if e.Signal == 0 && !e.Stopped {
		log := p.Log()
		for _, x := range exits {
			if e.Code == x.Code && strings.Contains(log, x.Log) {
				return ""
			}
		}
	}
	want := "no exit on its own"
	if len(exits) > 0 {
		want = fmt.Sprint(exits)
	}
	return fmt.Sprintf("%s, expected %s", e, want)
}

// Panics is the number of processes the cluster ever started (see everyProcess) whose log
// shows a panic, a runtime fatal error or a data race; each is logged.
func (c *Cluster) Panics() int {
	n := 0
	for _, x := range c.everyProcess() {
		if line := panicked(x.p.Log()); line != "" {
			c.T.Logf("process %s (pid %d, log %s) panicked: %s", x.name, x.p.PID(), x.p.LogPath(), line)
			n++
		}
	}
	return n
}

// UnexpectedExits is the number of processes the cluster ever started that ended neither as
// the test asked (Kill, Stop) nor in a way Expect allowed: Go's exit status 2 after a panic,
// a session lost where no scenario expected it, a server that died; each is logged.
func (c *Cluster) UnexpectedExits() int {
	n := 0
	for _, x := range c.everyProcess() {
		if why := unexpected(x.p, x.exits); why != "" {
			c.T.Logf("process %s (pid %d, log %s) ended unexpectedly: %s", x.name, x.p.PID(), x.p.LogPath(), why)
			n++
		}
	}
	return n
}

// NoPanics fails the test when a process the cluster ever started panicked.
func (c *Cluster) NoPanics() {
	c.T.Helper()
	require.Zero(c.T, c.Panics(), "processes panicked (logged above)")
}

// RestartExited starts again, as a supervisor would, every Weir process that has exited on
// its own, and returns their names; how each ended is checked with the others at the end.
func (c *Cluster) RestartExited() []string {
	c.T.Helper()
	names := c.exitedOnTheirOwn()
	for _, name := range names {
		c.Restart(name)
	}
	return names
}

// exitedOnTheirOwn names the processes in Procs that exited without the test asking, sorted.
func (c *Cluster) exitedOnTheirOwn() []string {
	var names []string
	for name, p := range c.Procs {
		if e := p.Ending(); !e.Running && !e.Asked() {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// WaitExit waits until the process running as name exits on its own and requires it to end
// in the way e says.
func (c *Cluster) WaitExit(name string, e Exit, timeout time.Duration) {
	c.T.Helper()
	p := c.Procs[name]
	code, err := p.Wait(timeout)
	require.NoError(c.T, err, "%s did not exit", name)
	require.Equal(c.T, e.Code, code, "%s: %s", name, p.Ending())
	require.Contains(c.T, p.Log(), e.Log, "%s", name)
}
