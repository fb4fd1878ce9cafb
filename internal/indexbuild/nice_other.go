//go:build !linux

package indexbuild

// lowerPriority does nothing where threads have no priority of their own to lower.
func lowerPriority() {}
