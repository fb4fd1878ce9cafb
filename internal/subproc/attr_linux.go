package subproc

import "syscall"

// SysProcAttr makes the kernel SIGKILL a child when its parent dies, so that a parent killed
// mid-run (a test by its timeout, a benchmark by Ctrl-C) leaves no servers behind holding
// ports, folders and memory.
func SysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
