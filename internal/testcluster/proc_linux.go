package testcluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// waitStopped waits until every thread of pid is stopped: SIGSTOP takes effect only when each
// thread next enters the kernel, and a server still running for that moment can answer a
// request the caller expects to go unanswered.
func waitStopped(pid int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		stopped, err := allThreadsStopped(pid)
		if err != nil || stopped {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process %d not stopped within %s", pid, timeout)
		}
		time.Sleep(time.Millisecond) // no event tells when a thread stops: poll /proc
	}
}

func allThreadsStopped(pid int) (bool, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(tasks) == 0 {
		return false, fmt.Errorf("threads of %d: %w", pid, os.ErrNotExist)
	}
	for _, task := range tasks {
		b, err := os.ReadFile(task)
		if err != nil {
			return false, nil // a thread that exits meanwhile: look again
		}
		s := string(b)
		if fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]); len(fields) == 0 || fields[0] != "T" {
			return false, nil
		}
	}
	return true, nil
}
