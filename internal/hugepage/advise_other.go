//go:build !linux

package hugepage

func advise([]byte) error { return nil }

func release(addr, n uintptr) {}

// Advised is false where nothing is advised.
func (r Region) Advised() (bool, error) { return false, nil }
