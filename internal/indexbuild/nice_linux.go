package indexbuild

import (
	"runtime"
	"syscall"
)

// lowerPriority runs the calling goroutine, until it returns, on an OS thread of its own at
// the lowest scheduling priority (nice 19): a build then takes only the CPU that ingestion
// leaves. The thread is never unlocked, so it ends with the goroutine instead of going back to
// the runtime's pool with its lowered priority.
func lowerPriority() {
	runtime.LockOSThread()
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), 19)
}
