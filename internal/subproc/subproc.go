// Package subproc holds what running Weir's and its servers' binaries as child processes needs
// outside of tests too: the parent-death signal, free loopback ports, and reading a child's
// log. internal/testcluster (tests) and internal/bench (`weir bench`) both build on it; it
// imports no testing code, so the weir binary can.
package subproc

import (
	"fmt"
	"net"
	"os"
)

// FreePorts picks n distinct free loopback ports. They stay free only until someone binds
// them, so a start that finds one taken picks again.
func FreePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a free port: %w", err)
		}
		// Held open until all are picked, so that the kernel hands out distinct ports.
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// LogFrom returns what was written to the log at path after offset ("" when there is none).
func LogFrom(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil || offset > int64(len(b)) {
		return ""
	}
	return string(b[offset:])
}

// Tail returns the last n bytes of s, saying how much it left out.
func Tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("[... %d bytes before]\n%s", len(s)-n, s[len(s)-n:])
}
