package subproc

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFreePortsAreDistinctAndBindable(t *testing.T) {
	ports, err := FreePorts(3)
	require.NoError(t, err)
	require.Len(t, ports, 3)
	seen := map[int]bool{}
	for _, p := range ports {
		require.False(t, seen[p], "distinct")
		seen[p] = true
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		require.NoError(t, err, "free once picked")
		ln.Close()
	}
}

func TestLogFromAndTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	require.Equal(t, "", LogFrom(path, 0), "no log yet")
	require.NoError(t, os.WriteFile(path, []byte("first\nsecond\n"), 0o644))
	require.Equal(t, "second\n", LogFrom(path, 6))
	require.Equal(t, "", LogFrom(path, 100), "offset past the end")
	require.Equal(t, "abc", Tail("abc", 3))
	require.Equal(t, "[... 2 bytes before]\ncd", Tail("abcd", 2))
}

func TestTail(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"0123456789abc", 3, "[... 10 bytes before]\nabc"},
	} {
		t.Run(tc.in, func(t *testing.T) { require.Equal(t, tc.want, Tail(tc.in, tc.n)) })
	}
}
