package testcluster

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"github.com/weir-db/weir/internal/subproc"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
	"go.uber.org/zap"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testTimeout bounds every client call of these tests.
const testTimeout = 10 * time.Second

// etcdClient is a client of the etcd servers at endpoints, closed at the end of the test.
func etcdClient(t testing.TB, endpoints []string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, cli.Close()) })
	return cli
}

func etcdGet(t testing.TB, cli *clientv3.Client, key string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	resp, err := cli.Get(ctx, key)
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1, "key %s", key)
	return string(resp.Kvs[0].Value)
}

func etcdPut(t testing.TB, cli *clientv3.Client, key, value string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	_, err := cli.Put(ctx, key, value)
	require.NoError(t, err)
}

// TestEtcdKeepsDataAcrossRestarts writes through clientv3 and reads the keys back after a
// graceful restart, after a crash (SIGKILL: etcd fsyncs before it acknowledges) and from a
// new server started on the old data directory.
func TestEtcdKeepsDataAcrossRestarts(t *testing.T) {
	e := StartEtcd(t)
	require.Len(t, e.Endpoints(), 1)
	require.True(t, strings.HasPrefix(e.Endpoints()[0], "http://127.0.0.1:"), e.Endpoints())
	cli := etcdClient(t, e.Endpoints())
	etcdPut(t, cli, "a", "1")
	require.Equal(t, "1", etcdGet(t, cli, "a"))

	pid, endpoints := e.Process().PID(), e.Endpoints()
	e.Restart(t)
	require.NotEqual(t, pid, e.Process().PID(), "restart runs a new process")
	require.Equal(t, endpoints, e.Endpoints(), "restart keeps the ports")
	require.Equal(t, "1", etcdGet(t, cli, "a"))
	etcdPut(t, cli, "b", "2")

	e.Kill()
	code, err := e.Process().Wait(0)
	require.NoError(t, err)
	require.Equal(t, -1, code, "killed by a signal")
	e.Restart(t)
	require.Equal(t, "2", etcdGet(t, cli, "b"))

	e.Stop()
	_, err = e.Process().Wait(0)
	require.NoError(t, err, "Stop returns once etcd has exited")
	require.Contains(t, e.Log(), "received signal; shutting down")

	again := StartEtcd(t, EtcdDataDir(e.DataDir()))
	require.Equal(t, e.DataDir(), again.DataDir())
	require.Equal(t, "1", etcdGet(t, etcdClient(t, again.Endpoints()), "a"))
}

// TestEtcdPauseResume checks that a paused etcd leaves requests unanswered until it resumes.
func TestEtcdPauseResume(t *testing.T) {
	e := StartEtcd(t)
	cli := etcdClient(t, e.Endpoints())
	etcdPut(t, cli, "k", "v")

	e.Pause()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	_, err := cli.Get(ctx, "k")
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded, "a paused etcd answers nothing")

	e.Resume()
	require.Equal(t, "v", etcdGet(t, cli, "k"))
}

// TestEtcdArgs checks that extra flags reach etcd and override its defaults.
func TestEtcdArgs(t *testing.T) {
	e := StartEtcd(t, EtcdArgs("--max-request-bytes=1024"))
	cli := etcdClient(t, e.Endpoints())
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	_, err := cli.Put(ctx, "big", strings.Repeat("x", 4096))
	require.ErrorContains(t, err, "request is too large")
}

// TestStartFailureShowsCause starts etcd with a flag it rejects: the start fails the test,
// naming the exit, and the log shows etcd's own complaint.
func TestStartFailureShowsCause(t *testing.T) {
	r := record(t, func(tb testing.TB) { StartEtcd(tb, EtcdArgs("--no-such-flag")) })
	require.True(t, r.Failed())
	r.runCleanups()
	require.Contains(t, r.output(), ErrExited.Error())
	require.Contains(t, r.output(), "no-such-flag")
}

// jetStream connects to url (one server or a comma-separated list) and reconnects forever.
func jetStream(t testing.TB, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, nats.Timeout(5*time.Second), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return js
}

func publish(t testing.TB, js jetstream.JetStream, data []byte) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	ack, err := js.Publish(ctx, "orders.new", data)
	require.NoError(t, err)
	return ack.Sequence
}

// consume reads every message of the stream through a consumer.
func consume(t testing.TB, js jetstream.JetStream) [][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	got, err := tryConsume(ctx, js)
	require.NoError(t, err)
	return got
}

// ordersStream looks up stream ORDERS and asks for its state, which its leader answers.
func ordersStream(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, *jetstream.StreamInfo, error) {
	s, err := js.Stream(ctx, "ORDERS")
	if err != nil {
		return nil, nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, nil, err
	}
	return s, info, nil
}

// tryConsume reads every message of stream ORDERS through an ordered consumer.
func tryConsume(ctx context.Context, js jetstream.JetStream) ([][]byte, error) {
	s, info, err := ordersStream(ctx, js)
	if err != nil {
		return nil, err
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, err
	}
	var got [][]byte
	for uint64(len(got)) < info.State.Msgs {
		batch, err := c.Fetch(int(info.State.Msgs)-len(got), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, err
		}
		n := 0
		for m := range batch.Messages() {
			got = append(got, m.Data())
			n++
		}
		if err := batch.Error(); err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, fmt.Errorf("fetch returned nothing with %d of %d messages read", len(got), info.State.Msgs)
		}
	}
	return got, nil
}

// TestNATSKeepsMessagesAcrossRestarts publishes through JetStream, including a message of
// almost max_payload, and consumes everything again after a graceful restart, after SIGKILL
// with sync_interval always, and from a new server on the old store directory.
func TestNATSKeepsMessagesAcrossRestarts(t *testing.T) {
	n := StartNATS(t, NATSSyncAlways())
	require.True(t, strings.HasPrefix(n.URL(), "nats://127.0.0.1:"), n.URL())
	js := jetStream(t, n.URL())
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}, Storage: jetstream.FileStorage})
	require.NoError(t, err)
	big := bytes.Repeat([]byte("v"), 7<<20) // above nats-server's default 1 MB
	want := [][]byte{[]byte("first"), big}
	for _, m := range want {
		publish(t, js, m)
	}
	require.Equal(t, want, consume(t, js))
	require.Equal(t, int64(8<<20), js.Conn().MaxPayload())

	url, pid := n.URL(), n.Process().PID()
	n.Restart(t)
	require.Equal(t, url, n.URL(), "restart keeps the port")
	require.NotEqual(t, pid, n.Process().PID(), "restart runs a new process")
	require.Equal(t, want, consume(t, js))

	want = append(want, []byte("acked before the crash"))
	require.Equal(t, uint64(3), publish(t, js, want[2]))
	n.Kill()
	n.Restart(t)
	require.Equal(t, want, consume(t, js))

	n.Stop()
	again := StartNATS(t, NATSStoreDir(n.StoreDir()))
	require.Equal(t, n.StoreDir(), again.StoreDir())
	require.Equal(t, want, consume(t, jetStream(t, again.URL())))
}

// TestNATSPauseResume checks that a paused nats-server answers nothing until it resumes.
func TestNATSPauseResume(t *testing.T) {
	n := StartNATS(t)
	js := jetStream(t, n.URL())
	n.Pause()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	_, err := js.AccountInfo(ctx)
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded, "a paused server answers nothing")
	n.Resume()
	ctx, cancel = context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	_, err = js.AccountInfo(ctx)
	require.NoError(t, err)
}

// TestPortTakenRetries hands the first start a port someone else holds: the server fails to
// bind and the start picks another port instead of failing the test.
func TestPortTakenRetries(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	taken := ln.Addr().(*net.TCPAddr).Port
	calls := 0
	pickPorts = func(n int) ([]int, error) {
		calls++
		if calls == 1 {
			return []int{taken}, nil
		}
		return subproc.FreePorts(n)
	}
	t.Cleanup(func() { pickPorts = subproc.FreePorts })

	n := StartNATS(t)
	require.Equal(t, 2, calls)
	require.NotEqual(t, "nats://127.0.0.1:"+strconv.Itoa(taken), n.URL())
	require.Contains(t, n.Log(), "address already in use")
}

// TestProcess runs shell commands as children and checks exit codes, output, environment,
// signals, pausing and waiting.
func TestProcess(t *testing.T) {
	t.Run("exit code, output and environment", func(t *testing.T) {
		p := Start(t, "sh", "/bin/sh", []string{"-c", `echo "hello $WHO"; echo oops >&2; exit 3`}, []string{"WHO=weir"})
		code, err := p.Wait(testTimeout)
		require.NoError(t, err)
		require.Equal(t, 3, code)
		require.Contains(t, p.Log(), "hello weir\n")
		require.Contains(t, p.Log(), "oops\n")
		require.Equal(t, "sh", p.Name())
		require.Equal(t, filepath.Base(p.LogPath()), "sh.log")
	})
	t.Run("wait times out while running, signal ends it", func(t *testing.T) {
		p := Start(t, "sleep", "/bin/sleep", []string{"60"}, nil)
		_, err := p.Wait(50 * time.Millisecond)
		require.ErrorIs(t, err, ErrStillRunning)
		require.NoError(t, p.Signal(syscall.SIGTERM))
		code, err := p.Wait(testTimeout)
		require.NoError(t, err)
		require.Equal(t, -1, code)
		require.NoError(t, p.Signal(syscall.SIGTERM), "signalling an exited process does nothing")
	})
	t.Run("stop exits gracefully", func(t *testing.T) {
		p := Start(t, "trap", "/bin/sh", []string{"-c", `trap 'echo bye; exit 7' TERM; echo ready; while :; do sleep 0.05; done`}, nil)
		require.Eventually(t, func() bool { return strings.Contains(p.Log(), "ready") }, testTimeout, 10*time.Millisecond)
		require.NoError(t, p.Pause())
		require.Eventually(t, func() bool { return procState(t, p.PID()) == "T" }, testTimeout, 10*time.Millisecond)
		code, err := p.Stop(testTimeout)
		require.NoError(t, err, "Stop resumes a paused process so that it sees SIGTERM")
		require.Equal(t, 7, code)
		require.Contains(t, p.Log(), "bye")
	})
	t.Run("stop kills what ignores SIGTERM", func(t *testing.T) {
		p := Start(t, "stubborn", "/bin/sh", []string{"-c", `trap '' TERM; echo ready; while :; do sleep 0.05; done`}, nil)
		require.Eventually(t, func() bool { return strings.Contains(p.Log(), "ready") }, testTimeout, 10*time.Millisecond)
		code, err := p.Stop(200 * time.Millisecond)
		require.ErrorIs(t, err, ErrStillRunning)
		require.Equal(t, -1, code)
		select {
		case <-p.Done():
		default:
			t.Fatal("Stop returned before the process exited")
		}
	})
	t.Run("pause and resume", func(t *testing.T) {
		p := Start(t, "sleep", "/bin/sleep", []string{"60"}, nil)
		require.NoError(t, p.Pause())
		require.Eventually(t, func() bool { return procState(t, p.PID()) == "T" }, testTimeout, 10*time.Millisecond)
		require.NoError(t, p.Resume())
		require.Eventually(t, func() bool { return procState(t, p.PID()) == "S" }, testTimeout, 10*time.Millisecond)
	})
	t.Run("pausing an exited process does nothing", func(t *testing.T) {
		p := Start(t, "true", "/bin/true", nil, nil)
		_, err := p.Wait(testTimeout)
		require.NoError(t, err)
		require.NoError(t, p.Pause())
		require.NoError(t, p.Resume())
	})
	t.Run("missing binary fails the test", func(t *testing.T) {
		r := record(t, func(tb testing.TB) { Start(tb, "ghost", "/no/such/binary", nil, nil) })
		require.True(t, r.Failed())
		require.Contains(t, r.output(), "start ghost")
	})
	t.Run("failed test shows the log tail", func(t *testing.T) {
		r := record(t, func(tb testing.TB) {
			p := Start(tb, "talker", "/bin/sh", []string{"-c", "echo said-something"}, nil)
			_, err := p.Wait(testTimeout)
			require.NoError(tb, err)
			tb.Fatal("fail on purpose")
		})
		r.runCleanups()
		require.Contains(t, r.output(), "log of talker")
		require.Contains(t, r.output(), "said-something")
	})
}

// TestProcessEnding checks that Ending tells an ending the test asked for (Kill; Stop
// answered by status 0 or by the SIGTERM itself) from one the process chose, including a
// status other than 0 after Stop.
func TestProcessEnding(t *testing.T) {
	const loop = `echo ready; while :; do sleep 0.05; done`
	ready := func(p *Process) {
		require.Eventually(t, func() bool { return strings.Contains(p.Log(), "ready") }, testTimeout, 10*time.Millisecond)
	}
	for _, tc := range []struct {
		name   string
		script string
		end    func(p *Process)
		want   Ending
		asked  bool
		says   string
	}{
		{"exits on its own", "exit 2", func(*Process) {}, Ending{Code: 2}, false, "exit status 2"},
		{"killed", loop, (*Process).Kill, Ending{Code: -1, Signal: syscall.SIGKILL, Killed: true}, true, "signal: killed (the test sent SIGKILL)"},
		{"stopped, dies of SIGTERM", loop, func(p *Process) { _, _ = p.Stop(testTimeout) },
			Ending{Code: -1, Signal: syscall.SIGTERM, Stopped: true}, true, "signal: terminated (the test sent SIGTERM)"},
		{"stopped, exits 0", `trap 'exit 0' TERM; ` + loop, func(p *Process) { _, _ = p.Stop(testTimeout) }, Ending{Stopped: true}, true, "exit status 0 (the test sent SIGTERM)"},
		{"stopped, exits 1", `trap 'exit 1' TERM; ` + loop, func(p *Process) { _, _ = p.Stop(testTimeout) }, Ending{Code: 1, Stopped: true}, false, "exit status 1 (the test sent SIGTERM)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Start(t, "sh", "/bin/sh", []string{"-c", tc.script}, nil)
			if strings.Contains(tc.script, loop) {
				ready(p)
				require.Equal(t, Ending{Running: true}, p.Ending())
				require.False(t, p.Ending().Asked(), "a running process has not ended")
			}
			tc.end(p)
			_, err := p.Wait(testTimeout)
			require.NoError(t, err)
			require.Equal(t, tc.want, p.Ending())
			require.Equal(t, tc.asked, p.Ending().Asked())
			require.Equal(t, tc.says, p.Ending().String())
		})
	}
}

// TestServerKeepsEveryProcess checks that a server's Processes lists every run, each with its
// own ending and its own part of the shared log.
func TestServerKeepsEveryProcess(t *testing.T) {
	dir := t.TempDir()
	runs := filepath.Join(dir, "runs")
	c := &child{name: "counter", bin: "/bin/sh", logPath: filepath.Join(dir, "counter.log"),
		args:  []string{"-c", `echo run >> "$0"; echo "run $(wc -l < "$0")"; exec sleep 60`, runs},
		ready: func(context.Context) error { return nil }}
	c.cleanup(t)
	require.NoError(t, c.start(t.Context()))
	first := c.Process()
	require.Eventually(t, func() bool { return strings.Contains(first.Log(), "run 1") }, testTimeout, 10*time.Millisecond)
	c.Kill()
	c.Restart(t)
	second := c.Process()
	require.Eventually(t, func() bool { return strings.Contains(second.Log(), "run 2") }, testTimeout, 10*time.Millisecond)
	require.Equal(t, []*Process{first, second}, c.Processes())
	require.True(t, first.Ending().Killed)
	require.True(t, second.Ending().Running)
	require.NotContains(t, second.Log(), "run 1", "a process's log starts where it started")
	require.Contains(t, c.Log(), "run 1", "the server's log holds every run")
}

// procState is the state letter of a process in /proc (S sleeping, T stopped, ...).
func procState(t testing.TB, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return fields[0]
}

// TestWaitReadyGivesUp checks that a server that never serves fails its start with
// ErrNotReady once the deadline passes, and one that exits fails with ErrExited.
func TestWaitReadyGivesUp(t *testing.T) {
	never := func(context.Context) error { return fmt.Errorf("not yet") }
	p := Start(t, "sleep", "/bin/sleep", []string{"60"}, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, waitReady(ctx, p, never), ErrNotReady)

	q := Start(t, "true", "/bin/true", nil, nil)
	err := waitReady(t.Context(), q, never)
	require.ErrorIs(t, err, ErrExited)
	require.ErrorContains(t, err, "not yet")
}

// TestBuildWeir builds cmd/weir once and runs it.
func TestBuildWeir(t *testing.T) {
	bin := BuildWeir(t)
	require.Equal(t, bin, BuildWeir(t), "built once per test process")
	p := Start(t, "weir", bin, []string{"--help"}, nil)
	code, err := p.Wait(testTimeout)
	require.NoError(t, err)
	require.Equal(t, 0, code, p.Log())
	require.Contains(t, p.Log(), "standalone")
}

func TestModuleRoot(t *testing.T) {
	wd, err := os.Getwd()
	require.NoError(t, err)
	root, err := moduleRoot(wd)
	require.NoError(t, err)
	require.Equal(t, filepath.Dir(filepath.Dir(wd)), root)

	_, err = moduleRoot(t.TempDir())
	require.ErrorIs(t, err, os.ErrNotExist)
}

// TestRemoveStaleBuilds removes the build directory of an exited test process and keeps
// those of running ones.
func TestRemoveStaleBuilds(t *testing.T) {
	tmp := t.TempDir()
	exited := exec.Command("/bin/true")
	require.NoError(t, exited.Run())
	dead := filepath.Join(tmp, weirBuildPrefix+strconv.Itoa(exited.Process.Pid))
	alive := filepath.Join(tmp, weirBuildPrefix+strconv.Itoa(os.Getppid()))
	own := filepath.Join(tmp, weirBuildPrefix+strconv.Itoa(os.Getpid()))
	other := filepath.Join(tmp, weirBuildPrefix+"notapid")
	for _, d := range []string{dead, alive, own, other} {
		require.NoError(t, os.Mkdir(d, 0o755))
	}
	removeStaleBuilds(tmp)
	require.NoDirExists(t, dead)
	for _, d := range []string{alive, own, other} {
		require.DirExists(t, d)
	}
}

// TestVersionsMatchGoMod checks that the server binaries are the versions Weir embeds.
func TestVersionsMatchGoMod(t *testing.T) {
	b, err := os.ReadFile("../../go.mod")
	require.NoError(t, err)
	require.Contains(t, string(b), "\t"+etcdServerModule+" "+EtcdVersion+"\n")
	require.Contains(t, string(b), "\t"+natsModule+" "+NATSVersion+"\n")
}

// TestBinaries checks the order of sources: the environment first, then the cache directory.
func TestBinaries(t *testing.T) {
	etcd, nats := Binaries(t)
	requireVersion(t, etcd, "etcd Version: "+strings.TrimPrefix(EtcdVersion, "v"))
	requireVersion(t, nats, "nats-server: "+NATSVersion)

	t.Run("environment", func(t *testing.T) {
		t.Setenv(EnvEtcdBin, etcd)
		t.Setenv(EnvNATSBin, nats)
		t.Setenv(EnvBinDir, "/nonexistent") // not looked at
		e, n := Binaries(t)
		require.Equal(t, etcd, e)
		require.Equal(t, nats, n)
	})
	t.Run("cache directory fills what the environment leaves", func(t *testing.T) {
		dir := t.TempDir()
		copyFile(t, etcd, filepath.Join(dir, EtcdFile))
		copyFile(t, nats, filepath.Join(dir, NATSFile))
		t.Setenv(EnvEtcdBin, "")
		t.Setenv(EnvNATSBin, nats)
		t.Setenv(EnvBinDir, dir)
		e, n := Binaries(t)
		require.Equal(t, filepath.Join(dir, EtcdFile), e)
		require.Equal(t, nats, n)
		t.Setenv(EnvEtcdBin, etcd)
		t.Setenv(EnvNATSBin, "")
		e, n = Binaries(t)
		require.Equal(t, etcd, e)
		require.Equal(t, filepath.Join(dir, NATSFile), n)
	})
	t.Run("an empty cache directory is filled, with progress in the test log", func(t *testing.T) {
		t.Setenv(EnvEtcdBin, "")
		t.Setenv(EnvNATSBin, "")
		dir := t.TempDir()
		t.Setenv(EnvBinDir, dir)
		r := record(t, func(tb testing.TB) {
			e, n := Binaries(tb)
			require.Equal(tb, filepath.Join(dir, EtcdFile), e)
			require.Equal(tb, filepath.Join(dir, NATSFile), n)
		})
		require.False(t, r.Failed(), r.output())
		require.Equal(t, 2, strings.Count(r.output(), "msg=\"built test server binary\""), r.output())
	})
	t.Run("missing binary in the environment fails", func(t *testing.T) {
		t.Setenv(EnvEtcdBin, filepath.Join(t.TempDir(), "etcd"))
		r := record(t, func(tb testing.TB) { Binaries(tb) })
		require.True(t, r.Failed())
		require.Contains(t, r.output(), EnvEtcdBin)
	})
}

// TestVersityBinary checks where VersityBinary finds versitygw and that BuildVersity builds it
// at VersityVersion. versitygw --version names no release, so the version is read from the Go
// build information, as Build checks it.
func TestVersityBinary(t *testing.T) {
	bin := VersityBinary(t)
	requireModuleVersion(t, bin, versityModule, VersityVersion)
	out, err := exec.Command(bin, "--help").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "Versity S3 Gateway")

	t.Run("environment", func(t *testing.T) {
		t.Setenv(EnvVersityBin, bin)
		t.Setenv(EnvBinDir, "/nonexistent") // not looked at
		require.Equal(t, bin, VersityBinary(t))
	})
	t.Run("missing binary in the environment fails", func(t *testing.T) {
		t.Setenv(EnvVersityBin, filepath.Join(t.TempDir(), VersityFile))
		r := record(t, func(tb testing.TB) { VersityBinary(tb) })
		require.True(t, r.Failed())
		require.Contains(t, r.output(), EnvVersityBin)
	})
	t.Run("an empty directory is filled with versitygw only", func(t *testing.T) {
		dir := t.TempDir()
		var log bytes.Buffer
		got, err := BuildVersity(t.Context(), slog.New(slog.NewTextHandler(&log, nil)), dir)
		require.NoError(t, err)
		require.Equal(t, filepath.Join(dir, VersityFile), got)
		requireModuleVersion(t, got, versityModule, VersityVersion)
		require.Equal(t, 1, strings.Count(log.String(), "msg=\"built test server binary\""), log.String())
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		require.ElementsMatch(t, []string{".lock", VersityFile}, names, "no build leftovers")
	})
	t.Run("an up-to-date directory is used as it is", func(t *testing.T) {
		dir := t.TempDir()
		copyFile(t, bin, filepath.Join(dir, VersityFile))
		var log bytes.Buffer
		_, err := BuildVersity(t.Context(), slog.New(slog.NewTextHandler(&log, nil)), dir)
		require.NoError(t, err)
		require.Empty(t, log.String())
	})
}

// requireModuleVersion checks that bin was built from module at version.
func requireModuleVersion(t testing.TB, bin, module, version string) {
	t.Helper()
	bi, err := buildinfo.ReadFile(bin)
	require.NoError(t, err)
	require.Equal(t, module, bi.Main.Path)
	require.Equal(t, version, bi.Main.Version)
}

func requireVersion(t testing.TB, bin, want string) {
	t.Helper()
	out, err := exec.Command(bin, "--version").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), want)
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(to, b, 0o755))
}

// TestDefaultBinDir checks the cache directory beside the Go build cache, and the user cache
// when the build cache is off.
func TestDefaultBinDir(t *testing.T) {
	out, err := exec.Command("go", "env", "GOCACHE").Output()
	require.NoError(t, err)
	dir, err := DefaultBinDir()
	require.NoError(t, err)
	require.Equal(t, filepath.Join(filepath.Dir(strings.TrimSpace(string(out))), "weir-test-bin"), dir)

	t.Setenv("GOCACHE", "off")
	user, err := os.UserCacheDir()
	require.NoError(t, err)
	dir, err = DefaultBinDir()
	require.NoError(t, err)
	require.Equal(t, filepath.Join(user, "weir-test-bin"), dir)

	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", "")
	_, err = DefaultBinDir()
	require.Error(t, err, "no build cache and no home: nowhere to cache")
}

// TestBuild runs the real build into empty and stale directories. With a warm build cache
// (Binaries has built or the tests were pointed at binaries built on this machine) the go
// command only relinks, a few seconds.
func TestBuild(t *testing.T) {
	etcd, nats := Binaries(t)

	t.Run("concurrent builds into one directory build each binary once", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "bin")
		var logs [2]bytes.Buffer
		var wg sync.WaitGroup
		paths := make([][2]string, 2)
		errs := make([]error, 2)
		for i := range 2 {
			wg.Go(func() {
				log := slog.New(slog.NewTextHandler(&logs[i], nil))
				paths[i][0], paths[i][1], errs[i] = Build(t.Context(), log, dir)
			})
		}
		wg.Wait()
		for i := range 2 {
			require.NoError(t, errs[i])
			require.Equal(t, [2]string{filepath.Join(dir, EtcdFile), filepath.Join(dir, NATSFile)}, paths[i])
		}
		all := logs[0].String() + logs[1].String()
		require.Equal(t, 2, strings.Count(all, "msg=\"built test server binary\""), all)
		requireVersion(t, paths[0][0], "etcd Version: "+strings.TrimPrefix(EtcdVersion, "v"))
		requireVersion(t, paths[0][1], "nats-server: "+NATSVersion)
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		require.ElementsMatch(t, []string{".lock", EtcdFile, NATSFile}, names, "no build leftovers")
	})
	t.Run("a binary of another version is rebuilt", func(t *testing.T) {
		dir := t.TempDir()
		copyFile(t, nats, filepath.Join(dir, EtcdFile)) // right name, wrong program
		copyFile(t, nats, filepath.Join(dir, NATSFile))
		var log bytes.Buffer
		e, _, err := Build(t.Context(), slog.New(slog.NewTextHandler(&log, nil)), dir)
		require.NoError(t, err)
		requireVersion(t, e, "etcd Version: "+strings.TrimPrefix(EtcdVersion, "v"))
		require.Equal(t, 1, strings.Count(log.String(), "msg=\"built test server binary\""), log.String())
	})
	t.Run("an up-to-date directory is used as it is", func(t *testing.T) {
		dir := t.TempDir()
		copyFile(t, etcd, filepath.Join(dir, EtcdFile))
		copyFile(t, nats, filepath.Join(dir, NATSFile))
		var log bytes.Buffer
		_, _, err := Build(t.Context(), slog.New(slog.NewTextHandler(&log, nil)), dir)
		require.NoError(t, err)
		require.Empty(t, log.String())
	})
}

// TestBuildFailures replaces the builders to check how Build reports a failed build, a build
// that yields the wrong version, an unusable directory and a lock held past the deadline.
func TestBuildFailures(t *testing.T) {
	etcd, _ := Binaries(t)
	saved := etcdBinary.build
	t.Cleanup(func() { etcdBinary.build = saved })
	discard := slog.New(slog.DiscardHandler)

	etcdBinary.build = func(context.Context, *slog.Logger, string) error { return fmt.Errorf("compiler on fire") }
	_, _, err := Build(t.Context(), discard, t.TempDir())
	require.ErrorContains(t, err, "compiler on fire")

	etcdBinary.build = func(_ context.Context, _ *slog.Logger, dst string) error {
		return os.WriteFile(dst, []byte("#!/bin/sh\n"), 0o755)
	}
	_, _, err = Build(t.Context(), discard, t.TempDir())
	require.ErrorIs(t, err, ErrWrongVersion)

	notDir := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(notDir, nil, 0o644))
	_, _, err = Build(t.Context(), discard, filepath.Join(notDir, "bin"))
	require.ErrorIs(t, err, syscall.ENOTDIR)

	_, err = lockDir(t.Context(), discard, filepath.Join(t.TempDir(), "missing"))
	require.ErrorIs(t, err, os.ErrNotExist)

	etcdBinary.build = saved
	dir := t.TempDir()
	copyFile(t, etcd, filepath.Join(dir, "x")) // leave etcd missing so Build needs the lock
	unlock, err := lockDir(t.Context(), discard, dir)
	require.NoError(t, err)
	defer unlock()
	ctx, cancel := context.WithTimeout(t.Context(), 3*lockPoll)
	defer cancel()
	var log bytes.Buffer
	_, _, err = Build(ctx, slog.New(slog.NewTextHandler(&log, nil)), dir)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Contains(t, log.String(), "waiting for another process")
}

// recorder is a testing.TB that records failures instead of failing the test, so that tests
// can check how helpers fail.
type recorder struct {
	testing.TB
	mu       sync.Mutex
	failed   bool
	lines    []string
	cleanups []func()
}

// record runs fn with a recorder in its own goroutine, as FailNow ends the goroutine.
func record(t testing.TB, fn func(tb testing.TB)) *recorder {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(r)
	}()
	<-done
	t.Cleanup(r.runCleanups)
	return r
}

func (r *recorder) Helper() {}

func (r *recorder) Log(args ...any) { r.add(fmt.Sprintln(args...)) }

func (r *recorder) Logf(format string, args ...any) { r.add(fmt.Sprintf(format, args...)) }

func (r *recorder) Errorf(format string, args ...any) {
	r.Fail()
	r.add(fmt.Sprintf(format, args...))
}

func (r *recorder) Fatal(args ...any) {
	r.Log(args...)
	r.FailNow()
}

func (r *recorder) Fail() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = true
}

func (r *recorder) FailNow() {
	r.Fail()
	runtime.Goexit()
}

func (r *recorder) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

// Cleanup keeps the functions, run by runCleanups (last first, as testing does).
func (r *recorder) Cleanup(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, f)
}

func (r *recorder) runCleanups() {
	r.mu.Lock()
	fs := r.cleanups
	r.cleanups = nil
	r.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, s)
}

func (r *recorder) output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n")
}
