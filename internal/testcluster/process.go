package testcluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weir-db/weir/internal/subproc"
)

const (
	// stopTimeout is how long Stop waits after SIGTERM before it kills.
	stopTimeout = 10 * time.Second
	// logTail is how much of a process's log a failed test shows.
	logTail = 64 << 10
)

// Process is a running child process whose output goes to a log file.
type Process struct {
	name     string
	logPath  string
	logStart int64 // the log's length when the process started: a server's runs share a file
	cmd      *exec.Cmd
	done     chan struct{} // closed once the process has exited and been reaped
	state    *os.ProcessState
	// sent records the ending signals the test sent (SIGTERM, SIGKILL), so that an ending
	// can be told from one the process chose.
	sent struct {
		sync.Mutex
		term, kill bool
	}
}

// Start runs bin with args as a child process named name (for logs), with env added to the
// test's environment, and its stdout and stderr in a log file in t.TempDir(). The process is
// killed when the test ends; when the test failed, the tail of its log is shown.
func Start(t testing.TB, name, bin string, args, env []string) *Process {
	t.Helper()
	p, err := spawn(name, bin, args, env, filepath.Join(t.TempDir(), name+".log"))
	require.NoError(t, err)
	t.Cleanup(func() {
		p.Kill()
		showLogOnFailure(t, p.name, p.logPath)
	})
	return p
}

// spawn starts a process appending its output to logPath.
func spawn(name, bin string, args, env []string, logPath string) (*Process, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	// The child holds its own copy of the descriptor; ours is closed once it has started.
	defer f.Close()
	var logStart int64
	if fi, err := f.Stat(); err == nil {
		logStart = fi.Size()
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = subproc.SysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{name: name, logPath: logPath, logStart: logStart, cmd: cmd, done: make(chan struct{})}
	go func() {
		// Wait's error only repeats the exit status, which ProcessState holds.
		_ = cmd.Wait()
		p.state = cmd.ProcessState
		close(p.done)
	}()
	return p, nil
}

// Name is the name the process was started with.
func (p *Process) Name() string { return p.name }

// PID is the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Signal sends sig to the process; signalling a process that has exited does nothing.
func (p *Process) Signal(sig os.Signal) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	p.sent.Lock()
	switch sig {
	case syscall.SIGTERM:
		p.sent.term = true
	case syscall.SIGKILL:
		p.sent.kill = true
	}
	p.sent.Unlock()
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %s: %w", p.name, err)
	}
	return nil
}

// Kill sends SIGKILL, which stops the process at once without a chance to clean up (also when
// paused), and returns once it has exited.
func (p *Process) Kill() {
	_ = p.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop asks the process to exit with SIGTERM (resuming it if paused), kills it when it has
// not exited within timeout, and returns its exit code; the error says when it had to kill.
func (p *Process) Stop(timeout time.Duration) (int, error) {
	_ = p.Signal(syscall.SIGTERM)
	_ = p.Signal(syscall.SIGCONT) // a stopped process acts on SIGTERM only once continued
	code, err := p.Wait(timeout)
	if err != nil {
		p.Kill()
		return p.exitCode(), fmt.Errorf("stop %s: no exit %s after SIGTERM, killed: %w", p.name, timeout, err)
	}
	return code, nil
}

// Pause stops the process with SIGSTOP, as a machine that hangs or a long GC pause would: it
// keeps its sockets and state but answers nothing. It returns once every thread has stopped.
func (p *Process) Pause() error {
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		return err
	}
	if err := waitStopped(p.PID(), stopTimeout); err != nil {
		select {
		case <-p.done:
			return nil // exited meanwhile: nothing left to pause
		default:
			return fmt.Errorf("pause %s: %w", p.name, err)
		}
	}
	return nil
}

// Resume continues a paused process with SIGCONT.
func (p *Process) Resume() error { return p.Signal(syscall.SIGCONT) }

// Wait waits up to timeout for the process to exit and returns its exit code: -1 when a
// signal ended it. It returns ErrStillRunning when the process is still running.
func (p *Process) Wait(timeout time.Duration) (int, error) {
	select {
	case <-p.done: // first, so that an exited process is reported even with no timeout
		return p.exitCode(), nil
	default:
	}
	select {
	case <-p.done:
		return p.exitCode(), nil
	case <-time.After(timeout):
		return 0, fmt.Errorf("wait for %s %s: %w", p.name, timeout, ErrStillRunning)
	}
}

func (p *Process) exitCode() int { return p.state.ExitCode() }

// Log returns everything the process has written to stdout and stderr so far (not what
// earlier runs of the same server wrote to the same file).
func (p *Process) Log() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(read log of %s: %v)", p.name, err)
	}
	return string(b[min(p.logStart, int64(len(b))):])
}

// Ending says how a process ended, so that a test can tell an ending it caused (Kill, Stop)
// from one the process chose (an exit, a panic) or that came from elsewhere.
type Ending struct {
	// Running: the process has not exited; the other fields are zero.
	Running bool
	// Code is the exit status, -1 when a signal ended the process.
	Code int
	// Signal is the signal that ended the process, 0 when it exited.
	Signal syscall.Signal
	// Stopped and Killed say whether the test sent SIGTERM (Stop) and SIGKILL (Kill, or Stop
	// after its timeout) before the process ended.
	Stopped, Killed bool
}

// Ending reports how the process ended, or that it is still running.
func (p *Process) Ending() Ending {
	select {
	case <-p.done:
	default:
		return Ending{Running: true}
	}
	p.sent.Lock()
	defer p.sent.Unlock()
	e := Ending{Code: p.state.ExitCode(), Stopped: p.sent.term, Killed: p.sent.kill}
	if ws, ok := p.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		e.Signal = ws.Signal()
	}
	return e
}

// Asked reports whether the process ended as the test asked: killed after the test sent
// SIGKILL, or, after SIGTERM, with status 0 or by the SIGTERM itself (etcd re-raises it).
func (e Ending) Asked() bool {
	switch {
	case e.Running:
		return false
	case e.Killed:
		return true
	case e.Stopped:
		return e.Code == 0 || e.Signal == syscall.SIGTERM
	}
	return false
}

func (e Ending) String() string {
	var s string
	switch {
	case e.Running:
		return "running"
	case e.Signal != 0:
		s = "signal: " + e.Signal.String()
	default:
		s = fmt.Sprintf("exit status %d", e.Code)
	}
	switch {
	case e.Killed:
		s += " (the test sent SIGKILL)"
	case e.Stopped:
		s += " (the test sent SIGTERM)"
	}
	return s
}

// LogPath is the file holding the process's output.
func (p *Process) LogPath() string { return p.logPath }

// showLogOnFailure shows the tail of a log when the test failed.
func showLogOnFailure(t testing.TB, name, path string) {
	if !t.Failed() {
		return
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Logf("log of %s: %v", name, err)
		return
	}
	t.Logf("log of %s (%s):\n%s", name, path, subproc.Tail(string(b), logTail))
}

// processSlot holds the current process of a server that restarts; its methods act on
// whichever process runs now. It also keeps every process it held, for checks at the end.
type processSlot struct {
	mu   sync.Mutex
	proc *Process
	all  []*Process
}

func (s *processSlot) get() *Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc
}

func (s *processSlot) set(p *Process) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.proc = p
	s.all = append(s.all, p)
}

// history is every process the slot held, the current one last.
func (s *processSlot) history() []*Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.all)
}
