package hugepage

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Advised reports whether the region's range is marked for huge pages now ("hg" among the
// VmFlags of /proc/self/smaps): for tests, and for an operator's question of whether the
// kernel took the advice.
func (r Region) Advised() (bool, error) {
	if r.n == 0 {
		return false, nil
	}
	m, err := readMapping(r.addr)
	return slices.Contains(m.flags, "hg"), err
}

// mapping is what /proc/self/smaps says of the mapping holding an address.
type mapping struct {
	flags    []string
	anonHuge int64
}

func readMapping(addr uintptr) (mapping, error) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return mapping{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var m mapping
	in, found := false, false
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if !strings.HasSuffix(fields[0], ":") {
			// A mapping's first line: its address range.
			var lo, hi uintptr
			if _, err := fmt.Sscanf(fields[0], "%x-%x", &lo, &hi); err == nil {
				in = lo <= addr && addr < hi
				found = found || in
			}
			continue
		}
		switch {
		case !in:
		case fields[0] == "AnonHugePages:" && len(fields) > 1:
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return m, err
			}
			m.anonHuge = kb << 10
		case fields[0] == "VmFlags:":
			m.flags = slices.Clone(fields[1:])
		}
	}
	if err := sc.Err(); err != nil {
		return m, err
	}
	if !found {
		return m, fmt.Errorf("hugepage: no mapping holds %#x", addr)
	}
	return m, nil
}
