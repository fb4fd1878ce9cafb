package testcluster

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Raft timing of the test etcd. A single member never waits for peers, so these only set how
// long a start or restart takes: 50 ms ticks and a 250 ms election (etcd's minimum ratio of 5)
// make it a few hundred milliseconds instead of up to a second. A cluster keeps etcd's
// defaults: its members do wait for each other, and on two cores busy with tests a 250 ms
// election would change leaders without any fault injected.
var (
	etcdTiming        = raftTiming{heartbeatMs: 50, electionMs: 250}
	etcdClusterTiming = raftTiming{heartbeatMs: 100, electionMs: 1000}
)

// raftTiming is etcd's --heartbeat-interval and --election-timeout.
type raftTiming struct{ heartbeatMs, electionMs int }

// Etcd is an etcd server running as a child process on loopback ports: a single-member
// cluster of its own (StartEtcd) or a member of an EtcdCluster. Stop, Kill, Restart, Pause,
// Resume, Process and Log act on its process; Restart returns once it answers a linearizable
// read, which for a member means it has rejoined its cluster.
type Etcd struct {
	dataDir   string
	clientURL string
	child
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

// options applies opts to a zero configuration.
func options[C any, O ~func(*C)](opts []O) C {
	var cfg C
	for _, o := range opts {
		o(&cfg)
	}
	return cfg
}

// StartEtcd runs etcd on free loopback ports over a fresh data directory (or EtcdDataDir) and
// returns once it answers a linearizable read. It is killed when the test ends.
func StartEtcd(t testing.TB, opts ...EtcdOption) *Etcd {
	t.Helper()
	bin, _ := Binaries(t)
	cfg := options(opts)
	if cfg.dataDir == "" {
		cfg.dataDir = filepath.Join(t.TempDir(), "etcd") // etcd creates it private, as it wants
	}
	e := newEtcd(t, bin, "etcd", cfg.dataDir)
	startWithFreePorts(t, &e.child, 2, func(ports []int) error {
		peerURL := e.listen(ports[0], ports[1])
		e.child.args = e.flags("weir-test", peerURL, "weir-test="+peerURL, "weir-test", etcdTiming, cfg.args)
		return nil
	})
	return e
}

// newEtcd prepares an etcd server named name (its member name and log file) on dataDir.
func newEtcd(t testing.TB, bin, name, dataDir string) *Etcd {
	e := &Etcd{dataDir: dataDir}
	e.child = child{name: name, bin: bin, logPath: filepath.Join(t.TempDir(), name+".log"), ready: e.ready}
	e.child.cleanup(t)
	return e
}

// listen sets the client port of e and returns its peer URL.
func (e *Etcd) listen(clientPort, peerPort int) (peerURL string) {
	e.clientURL = "http://127.0.0.1:" + strconv.Itoa(clientPort)
	return "http://127.0.0.1:" + strconv.Itoa(peerPort)
}

// flags are the flags of e as the member named name of a new cluster; extra come last, to
// override.
func (e *Etcd) flags(name, peerURL, initialCluster, token string, timing raftTiming, extra []string) []string {
	return append([]string{
		"--name=" + name,
		"--data-dir=" + e.dataDir,
		"--listen-client-urls=" + e.clientURL,
		"--advertise-client-urls=" + e.clientURL,
		"--listen-peer-urls=" + peerURL,
		"--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=" + initialCluster,
		"--initial-cluster-state=new",
		"--initial-cluster-token=" + token,
		"--heartbeat-interval=" + strconv.Itoa(timing.heartbeatMs),
		"--election-timeout=" + strconv.Itoa(timing.electionMs),
		"--log-outputs=stderr",
	}, extra...)
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

// EtcdCluster is a cluster of etcd members running as child processes on loopback ports.
type EtcdCluster struct {
	members []*Etcd
}

// StartEtcdCluster runs a new cluster of n (at least 3) etcd members, each on its own free
// loopback ports and fresh data directory, and returns once every member answers a
// linearizable read. EtcdArgs apply to every member; EtcdDataDir is refused, as a cluster's
// members cannot start on data that names other peer ports. They are killed when the test ends.
func StartEtcdCluster(t testing.TB, n int, opts ...EtcdOption) *EtcdCluster {
	t.Helper()
	require.GreaterOrEqual(t, n, 3, "an etcd cluster has at least 3 members")
	bin, _ := Binaries(t)
	cfg := options(opts)
	require.Empty(t, cfg.dataDir, "EtcdDataDir applies to StartEtcd only")
	c := &EtcdCluster{}
	children := make([]*child, n)
	for i := range n {
		name := "etcd-" + strconv.Itoa(i)
		c.members = append(c.members, newEtcd(t, bin, name, filepath.Join(t.TempDir(), name)))
		children[i] = &c.members[i].child
	}
	startGroup(t, children, 2*n, func(ports []int) error {
		peerURLs := make([]string, n)
		initial := make([]string, n)
		for i, e := range c.members {
			peerURLs[i] = e.listen(ports[2*i], ports[2*i+1])
			initial[i] = e.child.name + "=" + peerURLs[i]
		}
		// A fresh token per try keeps members of an abandoned try, or of another test's
		// cluster that got the same ports, from joining.
		token := "weir-test-" + rand.Text()
		for i, e := range c.members {
			// A try that failed may have left a member's data naming the ports it picked.
			if err := os.RemoveAll(e.dataDir); err != nil {
				return err
			}
			e.child.args = e.flags(e.child.name, peerURLs[i], strings.Join(initial, ","), token, etcdClusterTiming, cfg.args)
		}
		return nil
	})
	return c
}

// Endpoints are the client URLs of all members, for clientv3.Config.Endpoints or Weir's --etcd.
func (c *EtcdCluster) Endpoints() []string {
	var urls []string
	for _, e := range c.members {
		urls = append(urls, e.clientURL)
	}
	return urls
}

// Member is member i (from 0): its Endpoints name it alone, and its Kill, Stop, Restart, Pause
// and Resume act on it alone. Restart brings it back on its data directory and ports and
// returns once it serves a linearizable read, that is, once it rejoined the cluster.
func (c *EtcdCluster) Member(i int) *Etcd { return c.members[i] }

// Members is every member, in order: Member(i) is Members()[i].
func (c *EtcdCluster) Members() []*Etcd { return slices.Clone(c.members) }
