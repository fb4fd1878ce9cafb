//go:build !linux

package indexbuild

// Nice is the scheduling priority of index builds where threads have one (Linux).
const Nice = 10

// lowerPriority does nothing where threads have no priority of their own to lower.
func lowerPriority() {}
