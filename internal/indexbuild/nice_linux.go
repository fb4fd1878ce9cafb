package indexbuild

import (
	"runtime"
	"syscall"
)

// Nice is the scheduling priority of index builds: against a thread of normal priority
// contending for a core, Linux gives a nice-10 thread about a tenth of it (weights 110 to 1024).
// Nice 19 (1.5%) starved builds on a busy machine for good: a 50,000-row HNSW build that takes
// 10 s alone did not finish in 3 minutes beside a test suite.
const Nice = 10

// lowerPriority runs the calling goroutine, until it returns, on an OS thread of its own at
// priority Nice: a build then takes mostly the CPU that ingestion leaves. The thread is never
// unlocked, so it ends with the goroutine instead of going back to the runtime's pool with its
// lowered priority.
func lowerPriority() {
	runtime.LockOSThread()
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), Nice)
}
