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
	logPath string
	ready   func(ctx context.Context) error
	slot    processSlot
}

// start runs the server and waits until it serves.
func (c *child) start(ctx context.Context) error {
	var offset int64
	if fi, err := os.Stat(c.logPath); err == nil {
		offset = fi.Size()
	}
	p, err := spawn(c.name, c.bin, c.args, nil, c.logPath)
	if err != nil {
		return err
	}
	c.slot.set(p)
	if err := waitReady(ctx, p, c.ready); err != nil {
		p.Kill()
		if strings.Contains(subproc.LogFrom(c.logPath, offset), "address already in use") {
			err = fmt.Errorf("%w: %w", errPortTaken, err)
		}
		return fmt.Errorf("start %s: %w", c.name, err)
	}
	return nil
}

// waitReady polls ready until it succeeds, the process exits or startTimeout passes.
func waitReady(ctx context.Context, p *Process, ready func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	for {
		pctx, pcancel := context.WithTimeout(ctx, probeTimeout)
		err := ready(pctx)
		pcancel()
		if err == nil {
			return nil
		}
		select {
		case <-p.Done():
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
	var err error
	for attempt := 1; attempt <= portAttempts; attempt++ {
		var ports []int
		ports, err = pickPorts(n)
		require.NoError(t, err)
		require.NoError(t, configure(ports))
		if err = c.start(t.Context()); !errors.Is(err, errPortTaken) {
			break
		}
		t.Logf("%s: a port was taken before the server bound it, picking new ports: %v", c.name, err)
	}
	require.NoError(t, err)
}

// restart stops the server if it runs and starts it again with the same arguments.
func (c *child) restart(t testing.TB) {
	t.Helper()
	c.stop()
	require.NoError(t, c.start(t.Context()))
}

// stop ends the server with SIGTERM, killing it when it does not exit in time.
func (c *child) stop() {
	if p := c.slot.get(); p != nil {
		_, _ = p.Stop(stopTimeout)
	}
}

func (c *child) kill() {
	if p := c.slot.get(); p != nil {
		p.Kill()
	}
}

func (c *child) pause() {
	if p := c.slot.get(); p != nil {
		_ = p.Pause()
	}
}

func (c *child) resume() {
	if p := c.slot.get(); p != nil {
		_ = p.Resume()
	}
}

// cleanup kills the server at the end of the test and shows its log when the test failed.
func (c *child) cleanup(t testing.TB) {
	t.Cleanup(func() {
		c.kill()
		showLogOnFailure(t, c.name, c.logPath)
	})
}

func (c *child) log() string {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return fmt.Sprintf("(read log of %s: %v)", c.name, err)
	}
	return string(b)
}
