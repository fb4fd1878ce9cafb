package testcluster

import (
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Versions of the server binaries. Etcd and nats-server are the modules Weir embeds (go.mod),
// so that a multi-process test runs the servers a standalone Weir runs in-process; versitygw
// is an S3 server that Weir does not link, for tests against real S3 behaviour.
const (
	EtcdVersion    = "v3.7.3"
	NATSVersion    = "v2.15.2"
	VersityVersion = "v1.8.0"
)

// Environment variables that choose the binaries.
const (
	// EnvEtcdBin, EnvNATSBin and EnvVersityBin name ready binaries; they are used as they are.
	EnvEtcdBin    = "WEIR_ETCD_BIN"
	EnvNATSBin    = "WEIR_NATS_BIN"
	EnvVersityBin = "WEIR_VERSITYGW_BIN"
	// EnvBinDir names the cache directory the binaries are built into.
	EnvBinDir = "WEIR_TEST_BIN_DIR"
)

// File names of the binaries in a cache directory.
const (
	EtcdFile    = "etcd"
	NATSFile    = "nats-server"
	VersityFile = "versitygw"
)

const (
	natsModule       = "github.com/nats-io/nats-server/v2"
	etcdServerModule = "go.etcd.io/etcd/server/v3"
	versityModule    = "github.com/versity/versitygw"
	// lockPoll is how often a build waiting for another process's build checks the lock.
	lockPoll = 200 * time.Millisecond
)

var (
	// ErrStillRunning is returned by Process.Wait when the process has not exited in time.
	ErrStillRunning = errors.New("testcluster: process still running")
	// ErrWrongVersion is returned by Build when a binary it built is not the version asked for.
	ErrWrongVersion = errors.New("testcluster: binary has the wrong version")
	// ErrNotReady is returned when a server does not serve within its start timeout.
	ErrNotReady = errors.New("testcluster: server not ready")
	// ErrExited is returned when a server exits while it is awaited.
	ErrExited = errors.New("testcluster: process exited")
)

// binary is one binary Build knows how to check and build.
type binary struct {
	file    string
	current func(*buildinfo.BuildInfo) bool
	build   func(ctx context.Context, log *slog.Logger, dst string) error
}

// The binaries Build and BuildVersity provide. The version stamp of each is the Go build
// information inside the binary itself: it cannot disagree with the code it describes, and a
// binary cut short by a killed build has none and is rebuilt.
var (
	etcdBinary    = binary{file: EtcdFile, current: etcdCurrent, build: buildEtcd}
	natsBinary    = binary{file: NATSFile, current: mainModuleIs(natsModule, NATSVersion), build: goInstall(natsModule, NATSVersion, NATSFile)}
	versityBinary = binary{file: VersityFile, current: mainModuleIs(versityModule, VersityVersion), build: goInstall(versityModule+"/cmd/versitygw", VersityVersion, VersityFile)}
)

func etcdCurrent(bi *buildinfo.BuildInfo) bool {
	for _, d := range bi.Deps {
		if d.Path == etcdServerModule {
			return d.Version == EtcdVersion && d.Replace == nil
		}
	}
	return false
}

// mainModuleIs accepts a binary built by `go install` of a package of module at version.
func mainModuleIs(module, version string) func(*buildinfo.BuildInfo) bool {
	return func(bi *buildinfo.BuildInfo) bool {
		return bi.Main.Path == module && bi.Main.Version == version
	}
}

// upToDate reports whether path holds the binary s at the version wanted.
func upToDate(s binary, path string) bool {
	bi, err := buildinfo.ReadFile(path)
	return err == nil && s.current(bi)
}

// Binaries returns the paths of the etcd and nats-server binaries: those named by
// WEIR_ETCD_BIN / WEIR_NATS_BIN, else those in the cache directory, built there first when
// missing or of another version. A first build takes a few minutes and is logged with t.Log;
// it fails the test when it fails.
func Binaries(t testing.TB) (etcd, nats string) {
	t.Helper()
	paths := binaryPaths(t, []string{EnvEtcdBin, EnvNATSBin}, etcdBinary, natsBinary)
	return paths[0], paths[1]
}

// VersityBinary returns the path of the versitygw binary: the one named by
// WEIR_VERSITYGW_BIN, else the one in the cache directory, built there first as Binaries
// builds etcd and nats-server.
func VersityBinary(t testing.TB) string {
	t.Helper()
	return binaryPaths(t, []string{EnvVersityBin}, versityBinary)[0]
}

// binaryPaths returns, for each of bins, the binary its environment variable in envs names,
// else the one in the cache directory, building the set there when one is missing.
func binaryPaths(t testing.TB, envs []string, bins ...binary) []string {
	t.Helper()
	paths := make([]string, len(envs))
	complete := true
	for i, env := range envs {
		if paths[i] = os.Getenv(env); paths[i] == "" {
			complete = false
			continue
		}
		_, err := os.Stat(paths[i])
		require.NoError(t, err, "%s names a missing binary", env)
	}
	if complete {
		return paths
	}
	dir := os.Getenv(EnvBinDir)
	if dir == "" {
		var err error
		dir, err = DefaultBinDir()
		require.NoError(t, err)
	}
	built, err := buildSet(t.Context(), slog.New(slog.NewTextHandler(tbWriter{t}, nil)), dir, bins)
	require.NoError(t, err, "build test server binaries into %s", dir)
	for i := range paths {
		if paths[i] == "" {
			paths[i] = built[i]
		}
	}
	return paths
}

// DefaultBinDir is the cache directory used when WEIR_TEST_BIN_DIR is not set: weir-test-bin
// beside the Go build cache, so that `go clean -cache` users find it where they look.
func DefaultBinDir() (string, error) {
	out, err := exec.Command("go", "env", "GOCACHE").Output()
	if gocache := strings.TrimSpace(string(out)); err == nil && filepath.IsAbs(gocache) {
		return filepath.Join(filepath.Dir(gocache), "weir-test-bin"), nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find a cache directory: %w", err)
	}
	return filepath.Join(cache, "weir-test-bin"), nil
}

// Build makes sure dir holds etcd and nats-server at EtcdVersion and NATSVersion, building the
// missing or outdated ones with the go command, and returns their paths. Processes building
// into the same dir at once take turns through a lock file, so each binary is built once.
func Build(ctx context.Context, log *slog.Logger, dir string) (etcd, nats string, err error) {
	paths, err := buildSet(ctx, log, dir, []binary{etcdBinary, natsBinary})
	if err != nil {
		return "", "", err
	}
	return paths[0], paths[1], nil
}

// BuildVersity makes sure dir holds versitygw at VersityVersion, as Build does for etcd and
// nats-server, and returns its path. It is separate from Build because only S3 tests need it.
func BuildVersity(ctx context.Context, log *slog.Logger, dir string) (string, error) {
	paths, err := buildSet(ctx, log, dir, []binary{versityBinary})
	if err != nil {
		return "", err
	}
	return paths[0], nil
}

// buildSet makes sure dir holds bins at their versions and returns their paths.
func buildSet(ctx context.Context, log *slog.Logger, dir string, bins []binary) ([]string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("build in %s: %w", dir, err)
	}
	paths := make([]string, len(bins))
	complete := true
	for i, s := range bins {
		paths[i] = filepath.Join(dir, s.file)
		complete = complete && upToDate(s, paths[i])
	}
	if complete {
		return paths, nil // renames are atomic: no lock needed to read a finished build
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("build in %s: %w", dir, err)
	}
	unlock, err := lockDir(ctx, log, dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	for i, s := range bins {
		dst := paths[i]
		if upToDate(s, dst) {
			continue // built by the process that held the lock before us
		}
		start := time.Now()
		log.Info("building test server binary, a few minutes on a cold cache", "binary", dst)
		if err := s.build(ctx, log, dst); err != nil {
			return nil, fmt.Errorf("build %s: %w", s.file, err)
		}
		if !upToDate(s, dst) {
			return nil, fmt.Errorf("build %s: %w", dst, ErrWrongVersion)
		}
		log.Info("built test server binary", "binary", dst, "took", time.Since(start).Round(time.Second))
	}
	return paths, nil
}

// lockDir takes the build lock of dir, waiting for another holder as long as ctx allows.
func lockDir(ctx context.Context, log *slog.Logger, dir string) (unlock func(), err error) {
	path := filepath.Join(dir, ".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	logged := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			// Closing the file releases the lock.
			return func() { _ = f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !logged {
			log.Info("waiting for another process building test server binaries", "lock", path)
			logged = true
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
		case <-time.After(lockPoll):
		}
	}
}

// goInstall returns a build that installs pkg at version from the module proxy, as the binary
// file, and moves it to dst.
func goInstall(pkg, version, file string) func(ctx context.Context, log *slog.Logger, dst string) error {
	return func(ctx context.Context, log *slog.Logger, dst string) error {
		tmp, err := os.MkdirTemp(filepath.Dir(dst), ".build-"+file+"-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		if err := goCmd(ctx, log, tmp, []string{"GOBIN=" + tmp}, "install", pkg+"@"+version); err != nil {
			return err
		}
		return os.Rename(filepath.Join(tmp, file), dst)
	}
}

// etcdMain is the whole etcd program: etcd's own main package lives in a module that pulls in
// its tools, so a scratch module calling etcdmain builds the same server with less.
const etcdMain = `package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
`

// buildEtcd builds etcd at EtcdVersion in a scratch module and moves it to dst.
func buildEtcd(ctx context.Context, log *slog.Logger, dst string) error {
	tmp, err := os.MkdirTemp(filepath.Dir(dst), ".build-etcd-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	gomod := fmt.Sprintf("module weir.invalid/etcd\n\ngo 1.26\n\nrequire %s %s\n", etcdServerModule, EtcdVersion)
	if err := os.WriteFile(filepath.Join(tmp, "go.mod"), []byte(gomod), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "main.go"), []byte(etcdMain), 0o644); err != nil {
		return err
	}
	if err := goCmd(ctx, log, tmp, nil, "mod", "tidy"); err != nil {
		return err
	}
	out := filepath.Join(tmp, EtcdFile)
	if err := goCmd(ctx, log, tmp, nil, "build", "-o", out, "."); err != nil {
		return err
	}
	return os.Rename(out, dst)
}

// goCmd runs the go command in dir with the caller's environment, except for settings that
// would change what is built: the binaries are plain native builds whatever the tests use.
func goCmd(ctx context.Context, log *slog.Logger, dir string, env []string, args ...string) error {
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false", "GOWORK=off", "CGO_ENABLED=0", "GOTOOLCHAIN=local")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	log.Info("ran go", "args", strings.Join(args, " "), "took", time.Since(start).Round(100*time.Millisecond))
	return nil
}

// tbWriter turns slog output into test log lines.
type tbWriter struct{ t testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
