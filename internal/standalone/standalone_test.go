package standalone

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func testConfig(t *testing.T) Config {
	cfg := Defaults()
	cfg.DataDir, cfg.Listen, cfg.HTTPListen = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0"
	return cfg
}

func TestValidate(t *testing.T) {
	require.NoError(t, Defaults().Validate())
	for _, c := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"data dir", func(c *Config) { c.DataDir = "" }, "data-dir"},
		{"listen", func(c *Config) { c.Listen = "" }, "listen"},
		{"http listen", func(c *Config) { c.HTTPListen = "" }, "http-listen"},
		{"wal sync", func(c *Config) { c.WALSync = "sometimes" }, `got "sometimes"`},
		{"root path", func(c *Config) { c.RootPath = "" }, "root-path"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := Defaults()
			c.edit(&cfg)
			require.ErrorContains(t, cfg.Validate(), c.want)
		})
	}
}

func get(t *testing.T, url string) (int, string) {
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestStartServesHealthAndMetrics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t0 := time.Now()
	s, err := Start(ctx, testConfig(t), "1.2.3", slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.Less(t, time.Since(t0), 5*time.Second, "ready within 5s on a fresh directory")
	code, body := get(t, "http://"+s.HTTPAddr()+"/healthz")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok\n", body)
	code, body = get(t, "http://"+s.HTTPAddr()+"/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `weir_build_info{role="standalone",version="1.2.3"} 1`)
	require.Contains(t, body, "go_goroutines")
	require.Contains(t, body, "weir_querynode_shards 0", "the query node's metrics")
	require.Contains(t, body, "weir_querynode_memory_bytes 0")
	require.NotEmpty(t, s.EtcdEndpoints())
	require.Contains(t, s.NATSURL(), "nats://127.0.0.1:")

	// Before Start returns and after Close begins, /healthz says 503.
	s.health.SetReady(false)
	code, _ = get(t, "http://"+s.HTTPAddr()+"/healthz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.NoError(t, s.Close())
}

func TestStartFailsCleanlyWhenThePortIsTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	cfg := testConfig(t)
	cfg.Listen = ln.Addr().String()
	_, err = Start(context.Background(), cfg, "test", slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "listen grpc")
	// Everything started before the failure was stopped: goleak in TestMain checks it, and the
	// same data directory can be opened again at once (etcd holds a file lock while running).
	cfg.Listen = "127.0.0.1:0"
	s, err := Start(context.Background(), cfg, "test", slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.NoError(t, s.Close())
}

func TestStartRejectsInvalidConfig(t *testing.T) {
	cfg := testConfig(t)
	cfg.WALSync = "never"
	_, err := Start(context.Background(), cfg, "test", slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "wal-sync")
}
