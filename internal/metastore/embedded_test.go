package metastore

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// lockedBuffer collects log output written from etcd's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := freeLoopbackAddr()
	require.NoError(t, err)
	return addr
}

// TestEmbeddedRestartKeepsData starts a server on fixed URLs in a fresh directory, writes,
// stops it and starts it again on the same directory and URLs.
func TestEmbeddedRestartKeepsData(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etcd")
	cfg := EmbeddedConfig{
		Dir:       dir,
		ClientURL: "http://" + freeAddr(t),
		PeerURL:   "http://" + freeAddr(t),
		Name:      "test",
	}
	logs := &lockedBuffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	start := time.Now()
	srv, err := StartEmbedded(t.Context(), cfg)
	require.NoError(t, err)
	took := time.Since(start)
	t.Logf("fresh start took %v", took)
	require.Less(t, took, 5*time.Second, "a fresh single member is ready quickly")
	require.Equal(t, []string{cfg.ClientURL}, srv.Endpoints())

	s, err := Dial(t.Context(), Config{Endpoints: srv.Endpoints()})
	require.NoError(t, err)
	rev := put(t, s, "k", "v")
	require.NoError(t, s.Close())
	require.NoError(t, srv.Close())
	require.NoError(t, srv.Close(), "closing twice is harmless")
	_, open := <-srv.Err()
	require.False(t, open, "the error channel is closed once the server stopped")
	require.NotContains(t, logs.String(), "level=ERROR", "an orderly start and stop logs no errors")
	require.NotContains(t, logs.String(), "single port", "known noise is dropped")
	require.NotContains(t, logs.String(), "level=INFO", "etcd's info logs are not forwarded")

	srv = startServer(t, cfg)
	s = dial(t, srv.Endpoints())
	require.Equal(t, KV{Key: "k", Value: []byte("v"), CreateRevision: rev, ModRevision: rev, Version: 1}, get(t, s, "k"))
	require.Equal(t, rev+1, put(t, s, "k2", "v"), "the revision continues where it stopped")
}

func TestEmbeddedConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for name, cfg := range map[string]EmbeddedConfig{
		"no dir":          {},
		"any address":     {Dir: dir, ClientURL: "http://0.0.0.0:2379"},
		"remote address":  {Dir: dir, ClientURL: "http://10.1.2.3:2379"},
		"host name":       {Dir: dir, ClientURL: "http://localhost:2379"},
		"https":           {Dir: dir, ClientURL: "https://127.0.0.1:2379"},
		"no port":         {Dir: dir, ClientURL: "http://127.0.0.1"},
		"port zero":       {Dir: dir, ClientURL: "http://127.0.0.1:0"},
		"unparsable":      {Dir: dir, ClientURL: "http://[::1"},
		"bad peer":        {Dir: dir, PeerURL: "http://192.168.1.1:2380"},
		"negative quota":  {Dir: dir, QuotaBackendBytes: -1},
		"bad member name": {Dir: dir, Name: "bad,name=x"},
	} {
		_, err := StartEmbedded(t.Context(), cfg)
		require.Error(t, err, name)
	}
}

func TestEmbeddedContextDone(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := StartEmbedded(ctx, EmbeddedConfig{Dir: t.TempDir()})
	require.ErrorIs(t, err, context.Canceled)
}

func TestEmbeddedPortTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	busy := l.Addr().String()

	start := time.Now()
	_, err = StartEmbedded(t.Context(), EmbeddedConfig{Dir: t.TempDir(), ClientURL: "http://" + busy})
	require.ErrorIs(t, err, syscall.EADDRINUSE, "a configured port is not replaced")
	require.Less(t, time.Since(start), 5*time.Second)

	// Someone takes the free port this package picked before etcd binds it: it picks again.
	orig := freeLoopbackAddr
	defer func() { freeLoopbackAddr = orig }()
	calls := 0
	freeLoopbackAddr = func() (string, error) {
		calls++
		if calls == 1 {
			return busy, nil
		}
		return orig()
	}
	logs := &lockedBuffer{}
	srv := startServer(t, EmbeddedConfig{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	require.Greater(t, calls, 2, "the ports were picked again")
	require.NotContains(t, srv.Endpoints()[0], busy)
	require.Contains(t, logs.String(), "embedded etcd port taken, retrying")
	s := dial(t, srv.Endpoints())
	put(t, s, "k", "v")
}
