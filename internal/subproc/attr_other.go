//go:build !linux

package subproc

import "syscall"

// SysProcAttr has no parent-death signal to set outside Linux: there children outlive a
// parent killed mid-run.
func SysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
