package testcluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsMaxPayload is the largest message the test server accepts: the embedded server's
// default in Weir (wal.EmbeddedConfig), above nats-server's own default of 1 MB.
const natsMaxPayload = "8MB"

// NATS is a nats-server with JetStream running as a child process on a loopback port.
type NATS struct {
	storeDir string
	url      string
	c        child
}

// NATSOption changes how StartNATS runs nats-server.
type NATSOption func(*natsConfig)

type natsConfig struct {
	storeDir   string
	syncAlways bool
}

// NATSStoreDir keeps JetStream's data in dir instead of a fresh directory, to start a server
// on the data of one that was stopped.
func NATSStoreDir(dir string) NATSOption {
	return func(c *natsConfig) { c.storeDir = dir }
}

// NATSSyncAlways makes JetStream fsync every message before acknowledging it
// (sync_interval: always), so that an acknowledged message survives SIGKILL of the server;
// by default it syncs every two minutes and trusts the page cache.
func NATSSyncAlways() NATSOption {
	return func(c *natsConfig) { c.syncAlways = true }
}

// StartNATS runs nats-server with JetStream on a free loopback port over a fresh store
// directory (or NATSStoreDir) and returns once JetStream answers. It is killed when the test
// ends.
func StartNATS(t testing.TB, opts ...NATSOption) *NATS {
	t.Helper()
	_, bin := Binaries(t)
	var cfg natsConfig
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.storeDir == "" {
		cfg.storeDir = t.TempDir()
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "nats.conf")
	n := &NATS{storeDir: cfg.storeDir}
	n.c = child{
		name:    "nats",
		bin:     bin,
		args:    []string{"-c", conf},
		logPath: filepath.Join(dir, "nats.log"),
		ready:   n.ready,
	}
	n.c.cleanup(t)
	startWithFreePorts(t, &n.c, 1, func(ports []int) error {
		n.url = "nats://127.0.0.1:" + strconv.Itoa(ports[0])
		return os.WriteFile(conf, []byte(natsConf(ports[0], cfg)), 0o644)
	})
	return n
}

// natsConf is the server's configuration file; sync_interval and max_payload have no
// command-line flags.
func natsConf(port int, cfg natsConfig) string {
	sync := ""
	if cfg.syncAlways {
		sync = "  sync_interval: always\n"
	}
	return fmt.Sprintf(`server_name: weir-test-nats
listen: "127.0.0.1:%d"
max_payload: %s
jetstream {
  store_dir: %q
%s}
`, port, natsMaxPayload, cfg.storeDir, sync)
}

// ready succeeds once the server accepts connections and JetStream answers.
func (n *NATS) ready(ctx context.Context) error {
	nc, err := nats.Connect(n.url, nats.Timeout(probeTimeout), nats.NoReconnect())
	if err != nil {
		return fmt.Errorf("connect to nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	if _, err := js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("jetstream account info: %w", err)
	}
	return nil
}

// URL is the client URL, for nats.Connect or Weir's --nats.
func (n *NATS) URL() string { return n.url }

// StoreDir is JetStream's store directory.
func (n *NATS) StoreDir() string { return n.storeDir }

// Stop ends nats-server with SIGTERM and waits for it to exit.
func (n *NATS) Stop() { n.c.stop() }

// Kill ends nats-server with SIGKILL, as a crash does, and waits for it to exit.
func (n *NATS) Kill() { n.c.kill() }

// Restart stops nats-server if it runs, starts it again on the same store directory and port,
// and returns once JetStream answers.
func (n *NATS) Restart(t testing.TB) {
	t.Helper()
	n.c.restart(t)
}

// Pause freezes nats-server with SIGSTOP and returns once it has stopped.
func (n *NATS) Pause() { n.c.pause() }

// Resume lets a paused nats-server continue.
func (n *NATS) Resume() { n.c.resume() }

// Process is the nats-server process running now (a new one after each Restart).
func (n *NATS) Process() *Process { return n.c.slot.get() }

// Log returns nats-server's output over all its runs.
func (n *NATS) Log() string { return n.c.log() }
