package wal

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testLogger writes to t.Log at debug level when -v is set.
func testLogger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// startServer starts an embedded server that the test shuts down.
func startServer(t testing.TB, cfg EmbeddedConfig) *Embedded {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	e, err := StartEmbedded(cfg)
	require.NoError(t, err)
	t.Cleanup(e.Shutdown)
	return e
}

// openLog opens a Log that the test closes.
func openLog(t testing.TB, url string, cfg Config) *Log {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := Open(ctx, url, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, l.Close()) })
	return l
}

// newLog starts a server and opens a Log on it.
func newLog(t testing.TB) (*Embedded, *Log) {
	t.Helper()
	e := startServer(t, EmbeddedConfig{})
	return e, openLog(t, e.ClientURL(), Config{Logger: testLogger(t)})
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func records(prefix string, n int, withIDs bool) []Record {
	recs := make([]Record, n)
	for i := range recs {
		recs[i].Data = fmt.Appendf(nil, "%s-%d", prefix, i)
		if withIDs {
			recs[i].ID = fmt.Sprintf("%s-%d", prefix, i)
		}
	}
	return recs
}

func seq(from, to Position) []Position {
	var out []Position
	for p := from; p <= to; p++ {
		out = append(out, p)
	}
	return out
}

// readN reads n messages and checks they are at consecutive positions
// starting at first.
func readN(t testing.TB, r *Reader, first Position, n int) []Message {
	t.Helper()
	ctx := testCtx(t)
	out := make([]Message, 0, n)
	for i := range n {
		m, err := r.Next(ctx)
		require.NoError(t, err)
		require.Equal(t, first+Position(i), m.Pos, "message %d", i)
		out = append(out, m)
	}
	return out
}

func create(t testing.TB, l *Log, name string) {
	t.Helper()
	require.NoError(t, l.CreateChannel(testCtx(t), name))
}

func portOf(t testing.TB, clientURL string) int {
	t.Helper()
	u, err := url.Parse(clientURL)
	require.NoError(t, err)
	p, err := strconv.Atoi(u.Port())
	require.NoError(t, err)
	return p
}

// freePort returns a port nothing listens on.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	return port
}
