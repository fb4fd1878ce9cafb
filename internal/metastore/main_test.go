package metastore

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// shared is the etcd server the contract tests run against; each test works under its own
// key prefix and the tests run one after another, so revision checks are exact.
var shared *Embedded

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "metastore-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "etcd")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	shared, err = StartEmbedded(ctx, EmbeddedConfig{Dir: dir, Logger: serverLogger()})
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

// serverLogger shows the warnings of embedded servers; it writes to stderr rather than to a
// test's log because servers outlive the tests that use them.
func serverLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// startEmbedded starts a server of the test's own in a fresh directory.
func startServer(t testing.TB, cfg EmbeddedConfig) *Embedded {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = filepath.Join(t.TempDir(), "etcd") // etcd creates it private, as it wants
	}
	if cfg.Logger == nil {
		cfg.Logger = serverLogger()
	}
	e, err := StartEmbedded(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.Close()) })
	return e
}

func dial(t testing.TB, endpoints []string, mod ...func(*Config)) *Etcd {
	t.Helper()
	cfg := Config{Endpoints: endpoints}
	for _, f := range mod {
		f(&cfg)
	}
	s, err := Dial(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

type compacter interface {
	Compact(ctx context.Context, rev int64) error
}

// runs numbers the calls of forEachStore, so that a prefix stays unique when tests run
// again (-count) against the same shared server.
var runs atomic.Int64

// forEachStore runs fn against an etcd client of the shared server and against a Memory,
// each time with a key prefix no other test uses.
func forEachStore(t *testing.T, fn func(t *testing.T, s Store, p string)) {
	t.Helper()
	impls := []struct {
		name string
		open func(t *testing.T) Store
	}{
		{"etcd", func(t *testing.T) Store { return dial(t, shared.Endpoints()) }},
		{"memory", func(t *testing.T) Store {
			m := NewMemory()
			t.Cleanup(func() { require.NoError(t, m.Close()) })
			return m
		}},
	}
	for _, impl := range impls {
		t.Run(impl.name, func(t *testing.T) {
			fn(t, impl.open(t), fmt.Sprintf("%s/%d/", t.Name(), runs.Add(1)))
		})
	}
}

func put(t testing.TB, s Store, key, value string) int64 {
	t.Helper()
	rev, err := s.Put(t.Context(), key, []byte(value))
	require.NoError(t, err)
	return rev
}

func get(t testing.TB, s Store, key string) KV {
	t.Helper()
	kv, err := s.Get(t.Context(), key)
	require.NoError(t, err)
	return kv
}

func revision(t testing.TB, s Store) int64 {
	t.Helper()
	rev, err := s.Revision(t.Context())
	require.NoError(t, err)
	return rev
}

// putAll writes n keys prefix%05d in transactions of MaxTxnOps writes.
func putAll(t testing.TB, s Store, prefix string, n int, value func(i int) string) {
	t.Helper()
	var ops []Op
	for i := range n {
		ops = append(ops, Put(fmt.Sprintf("%s%05d", prefix, i), []byte(value(i))))
		if len(ops) == MaxTxnOps || i == n-1 {
			_, err := s.Txn(t.Context(), nil, ops)
			require.NoError(t, err)
			ops = nil
		}
	}
}
