package testcluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// weirBuildPrefix names the directories BuildWeir builds into, one per test process.
const weirBuildPrefix = "weir-testcluster-"

var weirBuild struct {
	once sync.Once
	path string
	err  error
}

// BuildWeir builds ./cmd/weir of the module the test runs in, once per test process, and
// returns the binary's path. When the tests run with -race the binary is built with -race too,
// so that a data race in a child process makes it exit with code 66.
func BuildWeir(t testing.TB) string {
	t.Helper()
	weirBuild.once.Do(func() {
		weirBuild.path, weirBuild.err = buildWeir()
	})
	require.NoError(t, weirBuild.err)
	return weirBuild.path
}

func buildWeir() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("build weir: %w", err)
	}
	root, err := moduleRoot(wd)
	if err != nil {
		return "", fmt.Errorf("build weir: %w", err)
	}
	removeStaleBuilds(os.TempDir())
	// The directory outlives every test of the process, so no t.TempDir; the next process to
	// build removes it once this one has exited.
	dir := filepath.Join(os.TempDir(), weirBuildPrefix+strconv.Itoa(os.Getpid()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("build weir: %w", err)
	}
	bin := filepath.Join(dir, "weir")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "./cmd/weir")...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %s in %s: %w\n%s", strings.Join(args, " "), root, err, out)
	}
	return bin, nil
}

// moduleRoot is the nearest directory at or above dir holding a go.mod.
func moduleRoot(dir string) (string, error) {
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod at or above %s: %w", dir, os.ErrNotExist)
		}
		dir = parent
	}
}

// removeStaleBuilds deletes the build directories of test processes that have exited.
func removeStaleBuilds(tmp string) {
	dirs, _ := filepath.Glob(filepath.Join(tmp, weirBuildPrefix+"*"))
	for _, d := range dirs {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), weirBuildPrefix))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = os.RemoveAll(d)
		}
	}
}
