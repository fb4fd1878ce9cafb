package e2e

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/testcluster"
	"github.com/weir-db/weir/internal/weirtest"
)

// process is a running `weir standalone`.
type process struct {
	cmd      *exec.Cmd
	addr     string
	httpAddr string
	dataDir  string
	logPath  string
	done     chan error
}

// startStandalone starts `weir standalone` on free loopback ports over dataDir and waits until
// /healthz answers 200.
func startStandalone(t testing.TB, dataDir string, extra ...string) *process {
	t.Helper()
	p := &process{addr: weirtest.FreeAddr(t), httpAddr: weirtest.FreeAddr(t), dataDir: dataDir, done: make(chan error, 1)}
	p.logPath = filepath.Join(t.TempDir(), "weir.log")
	logf, err := os.Create(p.logPath)
	require.NoError(t, err)
	args := append([]string{"standalone", "--data-dir", dataDir, "--listen", p.addr, "--http-listen", p.httpAddr}, extra...)
	p.cmd = exec.Command(testcluster.BuildWeir(t), args...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	require.NoError(t, p.cmd.Start())
	go func() { p.done <- p.cmd.Wait(); logf.Close() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			b, _ := os.ReadFile(p.logPath)
			t.Logf("weir log:\n%s", b)
		}
	})
	started := time.Now()
	require.Eventually(t, func() bool { return p.healthz() == http.StatusOK }, 5*time.Second, 20*time.Millisecond,
		"weir standalone not healthy within 5s")
	t.Logf("weir standalone healthy after %s on %s", time.Since(started).Round(time.Millisecond), p.addr)
	return p
}

func (p *process) healthz() int {
	resp, err := http.Get("http://" + p.httpAddr + "/healthz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// stop sends SIGTERM and waits for a clean exit.
func (p *process) stop(t testing.TB) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-p.done:
		require.NoError(t, err, "weir standalone exit after SIGTERM")
	case <-time.After(15 * time.Second):
		t.Fatal("weir standalone did not exit within 15s of SIGTERM")
	}
}

func (p *process) log(t testing.TB) string {
	b, err := os.ReadFile(p.logPath)
	require.NoError(t, err)
	return string(b)
}

// TestGoSDKCompat runs the compatibility module compat/gosdk — the official Milvus Go SDK used
// as a user's program would use it — against a real `weir standalone` process.
func TestGoSDKCompat(t *testing.T) {
	p := startStandalone(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-v", "./...")
	cmd.Dir = filepath.Join("..", "compat", "gosdk")
	cmd.Env = append(os.Environ(), "WEIR_ADDR="+p.addr)
	out, err := cmd.CombinedOutput()
	t.Logf("compat/gosdk:\n%s", out)
	require.NoError(t, err, "compat/gosdk tests failed")
	require.Contains(t, string(out), "--- PASS")
	require.NotContains(t, string(out), "--- SKIP")
	p.stop(t)
	require.NotContains(t, p.log(t), "panic")
}

// TestNodeSDKCompat runs compat/nodesdk — the official Milvus Node SDK (@zilliz/milvus2-sdk-node,
// the version its package-lock.json pins) used as a user's program would use it — against a
// real `weir standalone` process. It needs Node.js and npm (.ci/run installs them) and the npm
// registry for the first `npm ci`.
func TestNodeSDKCompat(t *testing.T) {
	npm, err := exec.LookPath("npm")
	require.NoError(t, err, "the Node SDK tests need npm (apt-get install nodejs npm)")
	p := startStandalone(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir := filepath.Join("..", "compat", "nodesdk")
	install := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	install.Dir = dir
	out, err := install.CombinedOutput()
	require.NoError(t, err, "npm ci:\n%s", out)
	cmd := exec.CommandContext(ctx, npm, "test")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "WEIR_ADDR="+p.addr)
	out, err = cmd.CombinedOutput()
	t.Logf("compat/nodesdk:\n%s", out)
	require.NoError(t, err, "compat/nodesdk tests failed")
	require.Contains(t, string(out), "# fail 0")
	require.NotContains(t, string(out), "# pass 0")
	p.stop(t)
	require.NotContains(t, p.log(t), "panic")
}

// TestStandaloneLifecycle checks the contract of `weir standalone`: healthy within 5s on a fresh
// directory, a clean exit on SIGTERM, and collections kept across a restart on the same
// directory.
func TestStandaloneLifecycle(t *testing.T) {
	dir := t.TempDir()
	p := startStandalone(t, dir)
	c := weirtest.Dial(t, p.addr)
	createCollection(t, c, "kept", 2)
	p.stop(t)
	require.Contains(t, p.log(t), "stopped")

	p2 := startStandalone(t, dir)
	c2 := weirtest.Dial(t, p2.addr)
	names := showCollections(t, c2)
	require.Equal(t, []string{"kept"}, names)
	desc := describe(t, c2, "kept")
	require.Equal(t, int32(2), desc.GetShardsNum())
	p2.stop(t)
	require.False(t, strings.Contains(p2.log(t), "panic"))
}

// TestReadmeQuickstartIsTested checks that the README's quickstart is the code that
// compat/gosdk runs against Weir.
func TestReadmeQuickstartIsTested(t *testing.T) {
	snippet := func(path string) string {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		s := string(b)
		begin := strings.Index(s, "// README quickstart begin")
		end := strings.Index(s, "// README quickstart end")
		require.True(t, begin >= 0 && end > begin, "%s has no quickstart markers", path)
		var lines []string
		for _, l := range strings.Split(s[begin:end], "\n") {
			lines = append(lines, strings.TrimSpace(l))
		}
		return strings.Join(lines, "\n")
	}
	require.Equal(t, snippet("../compat/gosdk/quickstart_test.go"), snippet("../README.md"))
}
