package testcluster

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Raft timing of the test etcd. A single member never waits for peers, so these only set how
// long a start or restart takes: 50 ms ticks and a 250 ms election (etcd's minimum ratio of 5)
// make it a few hundred milliseconds instead of up to a second.
const (
	etcdHeartbeatMs = 50
	etcdElectionMs  = 250
)

// Etcd is a single-member etcd server running as a child process on loopback ports.
type Etcd struct {
	dataDir   string
	clientURL string
	c         child
}

// EtcdOption changes how StartEtcd runs etcd.
type EtcdOption func(*etcdConfig)

type etcdConfig struct {
	dataDir string
	args    []string
}

// EtcdDataDir runs etcd on dir instead of a fresh directory, to start a server on the data of
// one that was stopped.
func EtcdDataDir(dir string) EtcdOption {
	return func(c *etcdConfig) { c.dataDir = dir }
}

// EtcdArgs adds command-line flags, which override the defaults (for example
// --quota-backend-bytes or --auto-compaction-retention).
func EtcdArgs(args ...string) EtcdOption {
	return func(c *etcdConfig) { c.args = append(c.args, args...) }
}

// StartEtcd runs etcd on free loopback ports over a fresh data directory (or EtcdDataDir) and
// returns once it answers a linearizable read. It is killed when the test ends.
func StartEtcd(t testing.TB, opts ...EtcdOption) *Etcd {
	t.Helper()
	bin, _ := Binaries(t)
	var cfg etcdConfig
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.dataDir == "" {
		cfg.dataDir = filepath.Join(t.TempDir(), "etcd") // etcd creates it private, as it wants
	}
	e := &Etcd{dataDir: cfg.dataDir}
	e.c = child{name: "etcd", bin: bin, logPath: filepath.Join(t.TempDir(), "etcd.log"), ready: e.ready}
	e.c.cleanup(t)
	startWithFreePorts(t, &e.c, 2, func(ports []int) error {
		e.clientURL = "http://127.0.0.1:" + strconv.Itoa(ports[0])
		peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
		e.c.args = append([]string{
			"--name=weir-test",
			"--data-dir=" + e.dataDir,
			"--listen-client-urls=" + e.clientURL,
			"--advertise-client-urls=" + e.clientURL,
			"--listen-peer-urls=" + peerURL,
			"--initial-advertise-peer-urls=" + peerURL,
			"--initial-cluster=weir-test=" + peerURL,
			"--initial-cluster-state=new",
			"--heartbeat-interval=" + strconv.Itoa(etcdHeartbeatMs),
			"--election-timeout=" + strconv.Itoa(etcdElectionMs),
			"--log-outputs=stderr",
		}, cfg.args...)
		return nil
	})
	return e
}

// ready succeeds once etcd has a leader and serves a linearizable read.
func (e *Etcd) ready(ctx context.Context) error {
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   e.Endpoints(),
		DialTimeout: probeTimeout,
		Logger:      zap.NewNop(),
		Context:     ctx,
	})
	if err != nil {
		return fmt.Errorf("dial etcd: %w", err)
	}
	defer cli.Close()
	if _, err := cli.Get(ctx, "weir-testcluster-ready"); err != nil {
		return fmt.Errorf("read from etcd: %w", err)
	}
	return nil
}

// Endpoints are the client URLs, for clientv3.Config.Endpoints or Weir's --etcd.
func (e *Etcd) Endpoints() []string { return []string{e.clientURL} }

// DataDir is etcd's data directory.
func (e *Etcd) DataDir() string { return e.dataDir }

// Stop ends etcd with SIGTERM, as an operator does, and waits for it to exit.
func (e *Etcd) Stop() { e.c.stop() }

// Kill ends etcd with SIGKILL, as a crash does, and waits for it to exit.
func (e *Etcd) Kill() { e.c.kill() }

// Restart stops etcd if it runs, starts it again on the same data directory and ports, and
// returns once it serves. After Kill it restarts from what etcd had made durable.
func (e *Etcd) Restart(t testing.TB) {
	t.Helper()
	e.c.restart(t)
}

// Pause freezes etcd with SIGSTOP and returns once it has stopped: connections stay open,
// requests go unanswered.
func (e *Etcd) Pause() { e.c.pause() }

// Resume lets a paused etcd continue.
func (e *Etcd) Resume() { e.c.resume() }

// Process is the etcd process running now (a new one after each Restart).
func (e *Etcd) Process() *Process { return e.c.slot.get() }

// Log returns etcd's output over all its runs.
func (e *Etcd) Log() string { return e.c.log() }
