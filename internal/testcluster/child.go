package testcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weir-db/weir/internal/subproc"
)

const (
	// startTimeout bounds how long a server may take to serve after it was started.
	startTimeout = 30 * time.Second
	// probeTimeout bounds one readiness probe, so that a hung probe cannot use up the start.
	probeTimeout = time.Second
	// probeInterval is the pause between readiness probes.
	probeInterval = 50 * time.Millisecond
	// portAttempts is how often a start picks new ports when one it picked was taken by
	// another process before the server bound it.
	portAttempts = 3
)

// pickPorts picks the ports of a start; a variable so that a test can hand out a taken one.
var pickPorts = subproc.FreePorts

// errPortTaken marks a start that failed because a port was taken in the meantime.
var errPortTaken = errors.New("testcluster: port taken")

// child is a server process that can be stopped, killed, paused and started again with the
// same arguments, and that is ready once its probe succeeds.
type child struct {
	name    string
	bin     string
	args    []string
	env     []string
	logPath string
	ready   func(ctx context.Context) error
	slot    processSlot
}

// start runs the server and waits until it serves.
func (c *child) start(ctx context.Context) error {
	offset, err := c.launch()
	if err != nil {
		return err
	}
	return c.await(ctx, offset)
}

// launch runs the server without waiting for it, and returns how long its log was before, for
// await.
func (c *child) launch() (logOffset int64, err error) {
	if fi, err := os.Stat(c.logPath); err == nil {
		logOffset = fi.Size()
	}
	p, err := spawn(c.name, c.bin, c.args, c.env, c.logPath)
	if err != nil {
		return 0, err
	}
	c.slot.set(p)
	return logOffset, nil
}

// await waits until the launched server serves, and kills it when it does not; the error
// wraps errPortTaken when the log written since logOffset says a port was taken.
func (c *child) await(ctx context.Context, logOffset int64) error {
	p := c.slot.get()
	if err := waitReady(ctx, p, c.ready); err != nil {
		p.Kill()
		if strings.Contains(subproc.LogFrom(c.logPath, logOffset), "address already in use") {
			err = fmt.Errorf("%w: %w", errPortTaken, err)
		}
		return fmt.Errorf("start %s: %w", c.name, err)
	}
	return nil
}

// waitReady polls ready until it succeeds, the process exits or startTimeout passes.
func waitReady(ctx context.Context, p *Process, ready func(ctx context.Context) error) error {
	return poll(ctx, p, probeTimeout, ready)
}

// poll calls probe, each call bounded by each, until it succeeds, p exits (when p is not nil)
// or startTimeout passes.
func poll(ctx context.Context, p *Process, each time.Duration, probe func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	var exited <-chan struct{} // nil, never ready, when there is no process to watch
	if p != nil {
		exited = p.Done()
	}
	for {
		pctx, pcancel := context.WithTimeout(ctx, each)
		err := probe(pctx)
		pcancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("%w with code %d before serving (last probe: %w)", ErrExited, p.exitCode(), err)
		case <-ctx.Done():
			return fmt.Errorf("%w within %s: %w (last probe: %w)", ErrNotReady, startTimeout, ctx.Err(), err)
		case <-time.After(probeInterval):
		}
	}
}

// startWithFreePorts configures c for n newly picked free ports and starts it, picking again
// when a port was taken between picking and binding.
func startWithFreePorts(t testing.TB, c *child, n int, configure func(ports []int) error) {
	t.Helper()
	startGroup(t, []*child{c}, n, configure)
}

// startGroup configures the servers of a cluster for n newly picked free ports in all, runs
// them all and waits until each serves: members of a cluster serve only once enough of the
// others run. When a port was taken between picking and binding, it kills them all and picks
// again; configure must then start them afresh.
func startGroup(t testing.TB, cs []*child, n int, configure func(ports []int) error) {
	t.Helper()
	var err error
	for attempt := 1; attempt <= portAttempts; attempt++ {
		var ports []int
		ports, err = pickPorts(n)
		require.NoError(t, err)
		require.NoError(t, configure(ports))
		if err = launchAll(t.Context(), cs); !errors.Is(err, errPortTaken) {
			break
		}
		for _, c := range cs {
			c.Kill()
		}
		t.Logf("a port was taken before the server bound it, picking new ports: %v", err)
	}
	require.NoError(t, err)
}

// launchAll runs every server, then waits for each; it stops at the first error, leaving the
// others to the caller.
func launchAll(ctx context.Context, cs []*child) error {
	offsets := make([]int64, len(cs))
	for i, c := range cs {
		var err error
		if offsets[i], err = c.launch(); err != nil {
			return err
		}
	}
	for i, c := range cs {
		if err := c.await(ctx, offsets[i]); err != nil {
			return err
		}
	}
	return nil
}

// The methods below are those of every server handle (Etcd, NATS, S3), which embed child;
// they act on whichever process of the server runs now.

// Stop ends the server with SIGTERM, as an operator does, and waits for it to exit, killing it
// when it does not exit within 10 s.
func (c *child) Stop() {
	if p := c.slot.get(); p != nil {
		_, _ = p.Stop(stopTimeout)
	}
}

// Kill ends the server with SIGKILL, as a crash does, and waits for it to exit. A restart
// after Kill starts from what the server had made durable.
func (c *child) Kill() {
	if p := c.slot.get(); p != nil {
		p.Kill()
	}
}

// Restart stops the server if it runs, starts it again with the same arguments (the same
// data directory and ports) and returns once it is ready, as its Start function says ready.
func (c *child) Restart(t testing.TB) {
	t.Helper()
	c.Stop()
	require.NoError(t, c.start(t.Context()))
}

// Pause freezes the server with SIGSTOP and returns once it has stopped: its connections
// stay open, requests go unanswered.
func (c *child) Pause() {
	if p := c.slot.get(); p != nil {
		_ = p.Pause()
	}
}

// Resume lets a paused server continue.
func (c *child) Resume() {
	if p := c.slot.get(); p != nil {
		_ = p.Resume()
	}
}

// Process is the server's process running now (a new one after each Restart).
func (c *child) Process() *Process { return c.slot.get() }

// Processes is every process the server ran, in start order, the one running now last: a
// test checks how each ended and what each logged.
func (c *child) Processes() []*Process { return c.slot.history() }

// Log returns the server's output over all its runs.
func (c *child) Log() string {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return fmt.Sprintf("(read log of %s: %v)", c.name, err)
	}
	return string(b)
}

// cleanup kills the server at the end of the test and shows its log when the test failed.
func (c *child) cleanup(t testing.TB) {
	t.Cleanup(func() {
		c.Kill()
		showLogOnFailure(t, c.name, c.logPath)
	})
}
