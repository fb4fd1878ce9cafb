//go:build !amd64

package distance

import "unsafe"

// Prefetch does nothing without the assembly (amd64's); the plain-Go kernels run elsewhere.
func Prefetch(unsafe.Pointer) {}
