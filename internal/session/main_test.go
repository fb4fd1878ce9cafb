package session

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/weir-db/weir/internal/metastore"
)

// shared is the etcd server every test registers sessions in, each test under its own root.
var shared *metastore.Embedded

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "session-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	shared, err = metastore.StartEmbedded(ctx, metastore.EmbeddedConfig{
		Dir:    tmp + "/etcd",
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	if err := shared.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			return 1
		}
	}
	return code
}

// newClient returns an etcd client of the shared server, closed when the test ends (closing
// it earlier is fine).
func newClient(t testing.TB) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: shared.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() }) // a test may have closed it already
	return c
}

// store returns a metastore over its own client, for List.
func store(t testing.TB) *metastore.Etcd {
	t.Helper()
	s := metastore.NewEtcd(newClient(t), metastore.Config{})
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

var roots atomic.Int64

// testConfig returns a Config with a root no other test (or -count run) uses.
func testConfig(t testing.TB, ttl time.Duration) Config {
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	return Config{Root: fmt.Sprintf("test/%s/%d", name, roots.Add(1)), TTL: ttl, Logger: testLogger(t)}
}

type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// register registers a session that the test closes at its end (if it is still open).
func register(t testing.TB, c *clientv3.Client, cfg Config, info Info) *Session {
	t.Helper()
	s, err := Register(t.Context(), c, cfg, info)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(context.Background()) }) // its client may be closed already
	return s
}

func list(t testing.TB, kv Reader, root, role string) []Info {
	t.Helper()
	infos, _, err := List(t.Context(), kv, root, role)
	require.NoError(t, err)
	return infos
}

func nodeIDs(infos []Info) []int64 {
	var ids []int64
	for _, i := range infos {
		ids = append(ids, i.NodeID)
	}
	return ids
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
