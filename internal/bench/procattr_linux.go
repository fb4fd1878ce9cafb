package bench

import "syscall"

// dieWithParent makes the kernel SIGKILL a child when the bench process dies, so that a
// benchmark killed mid-run leaves no roles behind holding ports and gigabytes of buffers.
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
