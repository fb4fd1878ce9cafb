package testcluster

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// natsMaxPayload is the largest message the test server accepts: the embedded server's
// default in Weir (wal.EmbeddedConfig), above nats-server's own default of 1 MB.
const natsMaxPayload = "8MB"

// NATS is a nats-server with JetStream running as a child process on loopback ports: a
// server of its own (StartNATS) or a node of a NATSCluster. Stop, Kill, Restart, Pause, Resume,
// Process and Log act on its process; Restart returns once JetStream answers, for a node once
// its /healthz says it has caught up with the cluster.
type NATS struct {
	storeDir string
	url      string
	child
}

// NATSOption changes how StartNATS and StartNATSCluster run nats-server.
type NATSOption func(*natsConfig)

type natsConfig struct {
	storeDir   string
	syncAlways bool
	stock      bool
}

// NATSStoreDir keeps JetStream's data in dir instead of a fresh directory, to start a server
// on the data of one that was stopped. StartNATS only.
func NATSStoreDir(dir string) NATSOption {
	return func(c *natsConfig) { c.storeDir = dir }
}

// NATSSyncAlways makes JetStream fsync every message before acknowledging it
// (sync_interval: always), so that an acknowledged message survives SIGKILL of the server;
// by default it syncs every two minutes and trusts the page cache.
func NATSSyncAlways() NATSOption {
	return func(c *natsConfig) { c.syncAlways = true }
}

// NATSStock runs nats-server with its own defaults, as an operator who installed it unchanged
// would: max_payload stays at 1 MB instead of natsMaxPayload, and JetStream syncs every two
// minutes (so NATSSyncAlways contradicts it and is refused alongside).
func NATSStock() NATSOption {
	return func(c *natsConfig) { c.stock = true }
}

// natsOptions applies opts and checks that they agree.
func natsOptions(t testing.TB, opts []NATSOption) natsConfig {
	t.Helper()
	cfg := options(opts)
	require.False(t, cfg.stock && cfg.syncAlways, "NATSStock keeps the default sync interval, NATSSyncAlways changes it")
	return cfg
}

// StartNATS runs nats-server with JetStream on a free loopback port over a fresh store
// directory (or NATSStoreDir) and returns once JetStream answers. It is killed when the test
// ends.
func StartNATS(t testing.TB, opts ...NATSOption) *NATS {
	t.Helper()
	_, bin := Binaries(t)
	cfg := natsOptions(t, opts)
	if cfg.storeDir == "" {
		cfg.storeDir = t.TempDir()
	}
	n := newNATS(t, bin, "nats", cfg.storeDir)
	n.child.ready = n.ready
	startWithFreePorts(t, &n.child, 1, func(ports []int) error {
		return n.configure(natsNode{name: "weir-test-nats", client: ports[0]}, cfg)
	})
	return n
}

// newNATS prepares a nats-server named name (its log file) on storeDir.
func newNATS(t testing.TB, bin, name, storeDir string) *NATS {
	dir := t.TempDir()
	n := &NATS{storeDir: storeDir}
	n.child = child{
		name:    name,
		bin:     bin,
		args:    []string{"-c", filepath.Join(dir, name+".conf")},
		logPath: filepath.Join(dir, name+".log"),
	}
	n.child.cleanup(t)
	return n
}

// natsNode is where one server listens: its client port, and in a cluster its monitoring
// port, its cluster port and the cluster ports of the others.
type natsNode struct {
	name    string
	client  int
	monitor int    // 0: no monitoring endpoint
	cluster string // "": not clustered
	listen  int
	routes  []int
}

// configure writes n's configuration file for node.
func (n *NATS) configure(node natsNode, cfg natsConfig) error {
	n.url = "nats://127.0.0.1:" + strconv.Itoa(node.client)
	return os.WriteFile(n.child.args[1], []byte(natsConf(node, n.storeDir, cfg)), 0o644)
}

// natsConf is the server's configuration file; sync_interval, max_payload and the cluster
// have no command-line flags.
func natsConf(node natsNode, storeDir string, cfg natsConfig) string {
	var b strings.Builder
	fmt.Fprintf(&b, "server_name: %s\nlisten: \"127.0.0.1:%d\"\n", node.name, node.client)
	if !cfg.stock {
		fmt.Fprintf(&b, "max_payload: %s\n", natsMaxPayload)
	}
	if node.monitor != 0 {
		fmt.Fprintf(&b, "http: \"127.0.0.1:%d\"\n", node.monitor)
	}
	fmt.Fprintf(&b, "jetstream {\n  store_dir: %q\n", storeDir)
	if cfg.syncAlways {
		b.WriteString("  sync_interval: always\n")
	}
	b.WriteString("}\n")
	if node.cluster != "" {
		fmt.Fprintf(&b, "cluster {\n  name: %s\n  listen: \"127.0.0.1:%d\"\n  routes: [\n", node.cluster, node.listen)
		for _, r := range node.routes {
			fmt.Fprintf(&b, "    \"nats-route://127.0.0.1:%d\"\n", r)
		}
		b.WriteString("  ]\n}\n")
	}
	return b.String()
}

// ready succeeds once the server accepts connections and JetStream answers.
func (n *NATS) ready(ctx context.Context) error {
	return withJetStream(n.url, func(js jetstream.JetStream) error {
		if _, err := js.AccountInfo(ctx); err != nil {
			return fmt.Errorf("jetstream account info: %w", err)
		}
		return nil
	})
}

// withJetStream connects to url (comma-separated servers) for one probe and calls fn with
// JetStream over the connection.
func withJetStream(url string, fn func(jetstream.JetStream) error) error {
	nc, err := nats.Connect(url, nats.Timeout(probeTimeout), nats.NoReconnect())
	if err != nil {
		return fmt.Errorf("connect to nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	return fn(js)
}

// URL is the client URL, for nats.Connect or Weir's --nats.
func (n *NATS) URL() string { return n.url }

// StoreDir is JetStream's store directory.
func (n *NATS) StoreDir() string { return n.storeDir }

// NATSCluster is a cluster of nats-servers with clustered JetStream, running as child
// processes on loopback ports.
type NATSCluster struct {
	nodes []*NATS
}

// natsReadyStream is the stream the readiness check of a cluster creates and deletes.
const natsReadyStream = "WEIR_TESTCLUSTER_READY"

// StartNATSCluster runs a new cluster of n (at least 3) nats-servers with JetStream, each with
// its own free loopback ports and fresh store directory, routed to all the others. It returns
// once every node reports itself healthy (its /healthz: in contact with the JetStream meta
// leader) and a stream with three replicas can be created and published to. The options apply
// to every node; NATSStoreDir is refused. The nodes are killed when the test ends.
func StartNATSCluster(t testing.TB, n int, opts ...NATSOption) *NATSCluster {
	t.Helper()
	require.GreaterOrEqual(t, n, 3, "a nats cluster has at least 3 nodes")
	_, bin := Binaries(t)
	cfg := natsOptions(t, opts)
	require.Empty(t, cfg.storeDir, "NATSStoreDir applies to StartNATS only")
	c := &NATSCluster{}
	children := make([]*child, n)
	for i := range n {
		node := newNATS(t, bin, "nats-"+strconv.Itoa(i), t.TempDir())
		c.nodes = append(c.nodes, node)
		children[i] = &node.child
	}
	startGroup(t, children, 3*n, func(ports []int) error {
		// A fresh name per try keeps servers of an abandoned try, or of another test's
		// cluster that got the same ports, from joining.
		name := "weir-test-" + rand.Text()
		for i, node := range c.nodes {
			// A try that failed may have left a node's data naming the others it met.
			if err := clearDir(node.storeDir); err != nil {
				return err
			}
			spec := natsNode{name: node.child.name, client: ports[3*i], monitor: ports[3*i+1], cluster: name, listen: ports[3*i+2]}
			for j := range n {
				if j != i {
					spec.routes = append(spec.routes, ports[3*j+2])
				}
			}
			node.child.ready = healthz("http://127.0.0.1:" + strconv.Itoa(spec.monitor) + "/healthz")
			if err := node.configure(spec, cfg); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, poll(t.Context(), nil, 5*time.Second, c.replicated), "a stream with 3 replicas in the nats cluster")
	return c
}

// clearDir removes what dir holds, keeping dir.
func clearDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// healthz is a readiness probe that succeeds once the server's monitoring endpoint at url
// answers 200: its JetStream knows the meta leader and every stream and consumer it holds a
// replica of is current, so a restarted node is ready once it has caught up.
func healthz(url string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		req.Close = true // no idle connection outlives the probe
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("nats healthz: %w", err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("nats healthz: %s: %s", resp.Status, strings.TrimSpace(string(body)))
		}
		return nil
	}
}

// replicated succeeds once a stream with three replicas can be created and published to: the
// meta leader places it and its own group elects a leader. The stream is deleted again.
func (c *NATSCluster) replicated(ctx context.Context) error {
	return withJetStream(c.URL(), func(js jetstream.JetStream) error {
		// Creating the same stream again is no error, so a try that timed out can be repeated.
		cfg := jetstream.StreamConfig{Name: natsReadyStream, Replicas: 3, Storage: jetstream.FileStorage}
		if _, err := js.CreateStream(ctx, cfg); err != nil {
			return fmt.Errorf("create a stream with 3 replicas: %w", err)
		}
		if _, err := js.Publish(ctx, natsReadyStream, []byte("ready")); err != nil {
			return fmt.Errorf("publish to a stream with 3 replicas: %w", err)
		}
		if err := js.DeleteStream(ctx, natsReadyStream); err != nil {
			return fmt.Errorf("delete the readiness stream: %w", err)
		}
		return nil
	})
}

// URL lists the client URLs of all nodes, comma-separated, as nats.Connect and Weir's --nats
// take them.
func (c *NATSCluster) URL() string {
	urls := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		urls[i] = n.url
	}
	return strings.Join(urls, ",")
}

// Node is node i (from 0): its URL names it alone, and its Kill, Stop, Restart, Pause and
// Resume act on it alone. Restart brings it back on its store directory and ports and returns
// once its /healthz says it is current with the cluster.
func (c *NATSCluster) Node(i int) *NATS { return c.nodes[i] }

// Nodes is every node, in order: Node(i) is Nodes()[i].
func (c *NATSCluster) Nodes() []*NATS { return slices.Clone(c.nodes) }
