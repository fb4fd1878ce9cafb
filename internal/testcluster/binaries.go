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

// Versions of the server binaries: the same as the modules Weir embeds (go.mod), so that a
// multi-process test runs the servers a standalone Weir runs in-process.
const (
	EtcdVersion = "v3.7.3"
	NATSVersion = "v2.15.2"
)

// Environment variables that choose the binaries.
const (
	// EnvEtcdBin and EnvNATSBin name ready binaries; they are used as they are.
	EnvEtcdBin = "WEIR_ETCD_BIN"
	EnvNATSBin = "WEIR_NATS_BIN"
	// EnvBinDir names the cache directory the binaries are built into.
	EnvBinDir = "WEIR_TEST_BIN_DIR"
)

// File names of the binaries in a cache directory.
const (
	EtcdFile = "etcd"
	NATSFile = "nats-server"
)

const (
	natsModule       = "github.com/nats-io/nats-server/v2"
	etcdServerModule = "go.etcd.io/etcd/server/v3"
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

// binaries are the binaries Build provides. The version stamp of each is the Go build
// information inside the binary itself: it cannot disagree with the code it describes, and a
// binary cut short by a killed build has none and is rebuilt.
var binaries = []binary{
	{file: EtcdFile, current: etcdCurrent, build: buildEtcd},
	{file: NATSFile, current: natsCurrent, build: buildNATS},
}

func etcdCurrent(bi *buildinfo.BuildInfo) bool {
	for _, d := range bi.Deps {
		if d.Path == etcdServerModule {
			return d.Version == EtcdVersion && d.Replace == nil
		}
	}
	return false
}

func natsCurrent(bi *buildinfo.BuildInfo) bool {
	return bi.Main.Path == natsModule && bi.Main.Version == NATSVersion
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
	etcd, nats = os.Getenv(EnvEtcdBin), os.Getenv(EnvNATSBin)
	for _, p := range []struct{ env, path string }{{EnvEtcdBin, etcd}, {EnvNATSBin, nats}} {
		if p.path != "" {
			_, err := os.Stat(p.path)
			require.NoError(t, err, "%s names a missing binary", p.env)
		}
	}
	if etcd != "" && nats != "" {
		return etcd, nats
	}
	dir := os.Getenv(EnvBinDir)
	if dir == "" {
		var err error
		dir, err = DefaultBinDir()
		require.NoError(t, err)
	}
	builtEtcd, builtNATS, err := Build(t.Context(), slog.New(slog.NewTextHandler(tbWriter{t}, nil)), dir)
	require.NoError(t, err, "build test server binaries into %s", dir)
	if etcd == "" {
		etcd = builtEtcd
	}
	if nats == "" {
		nats = builtNATS
	}
	return etcd, nats
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
	dir, err = filepath.Abs(dir)
	if err != nil {
		return "", "", fmt.Errorf("build in %s: %w", dir, err)
	}
	etcd, nats = filepath.Join(dir, EtcdFile), filepath.Join(dir, NATSFile)
	if upToDate(binaries[0], etcd) && upToDate(binaries[1], nats) {
		return etcd, nats, nil // renames are atomic: no lock needed to read a finished build
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("build in %s: %w", dir, err)
	}
	unlock, err := lockDir(ctx, log, dir)
	if err != nil {
		return "", "", err
	}
	defer unlock()
	for _, s := range binaries {
		dst := filepath.Join(dir, s.file)
		if upToDate(s, dst) {
			continue // built by the process that held the lock before us
		}
		start := time.Now()
		log.Info("building test server binary, a few minutes on a cold cache", "binary", dst)
		if err := s.build(ctx, log, dst); err != nil {
			return "", "", fmt.Errorf("build %s: %w", s.file, err)
		}
		if !upToDate(s, dst) {
			return "", "", fmt.Errorf("build %s: %w", dst, ErrWrongVersion)
		}
		log.Info("built test server binary", "binary", dst, "took", time.Since(start).Round(time.Second))
	}
	return etcd, nats, nil
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

// buildNATS installs nats-server at NATSVersion from the module proxy and moves it to dst.
func buildNATS(ctx context.Context, log *slog.Logger, dst string) error {
	tmp, err := os.MkdirTemp(filepath.Dir(dst), ".build-nats-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := goCmd(ctx, log, tmp, []string{"GOBIN=" + tmp}, "install", natsModule+"@"+NATSVersion); err != nil {
		return err
	}
	return os.Rename(filepath.Join(tmp, NATSFile), dst)
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
