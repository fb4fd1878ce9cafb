package hugepage

import (
	"errors"

	"golang.org/x/sys/unix"
)

// madvCollapse is MADV_COLLAPSE (Linux 6.1): collapse the range into huge pages now, rather
// than whenever khugepaged's scan reaches it (4,096 pages every 10 s by default).
const madvCollapse = 25

func advise(r []byte) error {
	if err := unix.Madvise(r, unix.MADV_HUGEPAGE); err != nil {
		return err
	}
	// Collapsing copies the range into huge pages; EINVAL is a kernel older than 6.1, EAGAIN
	// or ENOMEM no huge page free now. MADV_HUGEPAGE stands either way: khugepaged collapses
	// the range later.
	err := unix.Madvise(r, madvCollapse)
	if errors.Is(err, unix.EINVAL) {
		return nil
	}
	return err
}
