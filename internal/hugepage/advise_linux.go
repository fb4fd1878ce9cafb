package hugepage

import (
	"errors"

	"golang.org/x/sys/unix"
)

// madvCollapse is MADV_COLLAPSE (Linux 6.1): collapse the range into huge pages now, rather
// than whenever khugepaged's scan reaches it (4,096 pages every 10 s by default). It copies the
// range and may compact memory to find huge pages: a cost paid once, when an index is built
// or loaded, never on a search.
const madvCollapse = 25

func advise(r []byte) error {
	if err := unix.Madvise(r, unix.MADV_HUGEPAGE); err != nil {
		return err
	}
	// EINVAL is a kernel older than 6.1, EAGAIN or ENOMEM no huge page free now.
	// MADV_HUGEPAGE stands either way: khugepaged collapses the range later.
	err := unix.Madvise(r, madvCollapse)
	if errors.Is(err, unix.EINVAL) {
		return nil
	}
	return err
}

// release is madvise(MADV_NOHUGEPAGE) by address: the region holds no pointer, so that the
// memory it names can be freed while the region is kept for its release.
func release(addr, n uintptr) {
	_, _, _ = unix.Syscall(unix.SYS_MADVISE, addr, n, unix.MADV_NOHUGEPAGE)
}
