//go:build !linux

package testcluster

import (
	"syscall"
	"time"
)

// sysProcAttr has no parent-death signal outside Linux: children outlive a killed test there.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }

// waitStopped cannot see thread states outside Linux; SIGSTOP usually acts at once.
func waitStopped(int, time.Duration) error { return nil }
