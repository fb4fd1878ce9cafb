//go:build linux

package hugepage

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// TestAdviseBacksTheRegionWithHugePages: after Advise, the mapping holding the region reports
// anonymous huge pages covering the whole 2 MiB pages inside it, and the contents are unchanged.
func TestAdviseBacksTheRegionWithHugePages(t *testing.T) {
	mode, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	require.NoError(t, err)
	require.NotContains(t, string(mode), "[never]", "the test needs transparent huge pages enabled or madvise")
	v := make([]float32, 16*Size/4) // 16 MiB: at least 15 whole huge pages inside
	for i := range v {
		v[i] = float32(i)
	}
	n, err := Floats(v)
	require.NoError(t, err)
	require.GreaterOrEqual(t, n, 15*Size)
	// The advice splits the mapping: the advised range is a mapping of its own, from the first
	// whole huge page.
	start := (uintptr(unsafe.Pointer(&v[0])) + Size - 1) &^ (Size - 1)
	require.GreaterOrEqual(t, anonHugeBytes(t, start), int64(n), "huge pages under the advised range")
	for i := range v {
		if v[i] != float32(i) {
			t.Fatalf("value %d changed to %v", i, v[i])
		}
	}
}

// TestAdviseSmallOrEmpty: nothing below MinBytes is advised, and empty slices are fine.
func TestAdviseSmallOrEmpty(t *testing.T) {
	for _, b := range [][]byte{nil, make([]byte, MinBytes-1)} {
		n, err := Advise(b)
		require.NoError(t, err)
		require.Zero(t, n)
	}
	n, err := Floats(nil)
	require.NoError(t, err)
	require.Zero(t, n)
	n, err = Uint32s(nil)
	require.NoError(t, err)
	require.Zero(t, n)
}

// anonHugeBytes is the AnonHugePages of the mapping of /proc/self/smaps holding addr.
func anonHugeBytes(t *testing.T, addr uintptr) int64 {
	f, err := os.Open("/proc/self/smaps")
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	in := false
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) > 0 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			var lo, hi uintptr
			if _, err := fmt.Sscanf(fields[0], "%x-%x", &lo, &hi); err == nil {
				in = lo <= addr && addr < hi
			}
			continue
		}
		if in && fields[0] == "AnonHugePages:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			require.NoError(t, err)
			return kb << 10
		}
	}
	require.NoError(t, sc.Err())
	t.Fatalf("no mapping holds %#x", addr)
	return 0
}
