//go:build !linux

package bench

import "syscall"

// dieWithParent has no parent-death signal to set outside Linux: there the roles of a
// benchmark killed mid-run outlive it.
func dieWithParent() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
