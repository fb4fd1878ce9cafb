package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/inspect/inspecttest"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/metastore"
	"github.com/weir-db/weir/internal/objstore"
	"github.com/weir-db/weir/internal/wal"
)

// inspectEnv is a cluster on a real embedded etcd, a local storage folder and an embedded
// NATS, with one collection written as a data node writes it.
type inspectEnv struct {
	etcd, nats, dir string
	c               *inspecttest.Cluster
	insert          meta.File
}

func newInspectEnv(t *testing.T) *inspectEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	etcd, err := metastore.StartEmbedded(ctx, metastore.EmbeddedConfig{Dir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { etcd.Close() })
	kv, err := metastore.Dial(ctx, metastore.Config{Endpoints: etcd.Endpoints()})
	require.NoError(t, err)
	t.Cleanup(func() { kv.Close() })
	srv, err := wal.StartEmbedded(wal.EmbeddedConfig{Dir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown)
	log, err := wal.Open(ctx, srv.ClientURL(), wal.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { log.Close() })
	dir := t.TempDir()
	bucket, err := objstore.NewLocal(dir)
	require.NoError(t, err)

	e := &inspectEnv{etcd: etcd.Endpoints()[0], nats: srv.ClientURL(), dir: dir}
	e.c = inspecttest.New(ctx, t, kv, bucket, 1)
	e.c.RegisterDataNode(1)
	name := e.c.Coll.VChannels[0]
	require.NoError(t, log.CreateChannel(ctx, name))
	ts := inspecttest.Timestamp(1)
	_, err = log.Append(ctx, name, []wal.Record{{Data: e.c.InsertMessage(e.c.Part, []int64{1, 2, 3}, ts)}})
	require.NoError(t, err)
	ch := e.c.Own(name, 1)
	seg := ch.Segment(e.c.Part, meta.L1)
	e.insert = ch.SyncInsert(seg, []int64{1, 2, 3}, ts, 1, 1)[0]
	ch.Checkpoint(1, ts)
	return e
}

// inspectCmd runs `weir inspect` with args and returns its output, its error and the status
// it asked exit for (-1: none).
func inspectCmd(t *testing.T, args ...string) (stdout, stderr string, err error, status int) {
	t.Helper()
	status = -1
	prev := exit
	exit = func(code int) { status = code }
	t.Cleanup(func() { exit = prev })
	root := newRoot()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"inspect"}, args...))
	err = root.Execute()
	return out.String(), errOut.String(), err, status
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee interface{ ExitCode() int }
	require.True(t, errors.As(err, &ee), "%v carries no exit code", err)
	return ee.ExitCode()
}

func TestInspectCommand(t *testing.T) {
	e := newInspectEnv(t)
	flags := []string{"--etcd", e.etcd, "--storage", "file://" + e.dir, "--nats", e.nats}

	out, _, err, status := inspectCmd(t, append(flags, "verify")...)
	require.NoError(t, err)
	require.Equal(t, -1, status)
	require.Equal(t, "verify: 0 findings (duplicate-key 0, missing-file 0, unreferenced-file 0, checkpoint-ahead 0, dead-owner 0, meta-mismatch 0, corrupt-file 0, log-rewound 0) in 1 collections, 1 segments, 2 files, 3 rows\n", out)

	out, _, err, _ = inspectCmd(t, append(flags, "--json", "channels")...)
	require.NoError(t, err)
	var rows []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &rows), out)
	require.Len(t, rows, 1)
	require.Equal(t, true, rows[0]["owner_live"])
	require.Equal(t, float64(0), rows[0]["lag"])

	for _, what := range []string{"segments", "checkpoints"} {
		out, _, err, _ = inspectCmd(t, "--etcd", e.etcd, what) // storage and NATS are optional here
		require.NoError(t, err)
		require.Len(t, strings.Split(strings.TrimSpace(out), "\n"), 2, out)
	}

	// A referenced file deleted: a finding, exit status 1 through main.
	require.NoError(t, os.Remove(filepath.Join(e.dir, filepath.FromSlash(e.insert.Key))))
	out, _, err, status = inspectCmd(t, append(flags, "verify")...)
	require.Error(t, err)
	require.Equal(t, 1, exitCode(t, err))
	require.Equal(t, -1, status, "main exits 1 on the returned error")
	require.EqualError(t, err, "verify: 1 findings")
	require.Contains(t, out, "missing-file")
	require.Contains(t, out, "verify: 1 findings (duplicate-key 0, missing-file 1,")

	out, _, err, _ = inspectCmd(t, append(flags, "--json", "verify")...)
	require.Equal(t, 1, exitCode(t, err))
	var rep struct {
		Findings []struct{ Kind string } `json:"findings"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
	require.Equal(t, "missing-file", rep.Findings[0].Kind)
}

func TestInspectUsageAndConnectionErrorsExit2(t *testing.T) {
	e := newInspectEnv(t)
	missing := filepath.Join(t.TempDir(), "nowhere")
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no command", []string{"--etcd", e.etcd}, "want one of channels, segments, checkpoints, verify"},
		{"unknown command", []string{"--etcd", e.etcd, "bogus"}, `got "bogus"`},
		{"two commands", []string{"--etcd", e.etcd, "channels", "segments"}, `got "channels segments"`},
		{"bad flag value", []string{"--grace", "soon", "verify"}, "invalid argument"},
		{"unknown flag", []string{"--colour", "verify"}, "unknown flag"},
		{"verify without storage", []string{"--etcd", e.etcd, "verify"}, "--storage is required"},
		{"storage folder missing", []string{"--etcd", e.etcd, "--storage", missing, "verify"}, "does not exist"},
		{"s3 bucket creation", []string{"--etcd", e.etcd, "--storage", "s3://bkt/p?endpoint=127.0.0.1:1&create_bucket=true", "verify"}, "must not set create_bucket"},
		{"bad storage url", []string{"--etcd", e.etcd, "--storage", "ftp://x", "verify"}, "unsupported scheme"},
		{"negative grace", []string{"--etcd", e.etcd, "--grace", "-1s", "--storage", e.dir, "verify"}, "must not be negative"},
		{"bad timeout", []string{"--etcd", e.etcd, "--connect-timeout", "0s", "channels"}, "must be positive"},
		{"bad log level", []string{"--etcd", e.etcd, "--log-level", "loud", "channels"}, "--log-level"},
		{"etcd unreachable", []string{"--etcd", "http://127.0.0.1:1", "--connect-timeout", "300ms", "channels"}, "dial etcd"},
		{"nats unreachable", []string{"--etcd", e.etcd, "--nats", "nats://127.0.0.1:1", "--connect-timeout", "300ms", "channels"}, "open nats://127.0.0.1:1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, err, status := inspectCmd(t, c.args...)
			require.Error(t, err)
			require.Equal(t, 2, status)
			require.Equal(t, 2, exitCode(t, err))
			require.Empty(t, out)
			require.Contains(t, errOut, c.want)
			require.True(t, strings.HasPrefix(errOut, "weir: "), errOut)
		})
	}
	_, err := os.Stat(missing)
	require.ErrorIs(t, err, os.ErrNotExist, "inspect created no storage folder")
}

func TestInspectHelpNamesEveryCommand(t *testing.T) {
	out, _, err, _ := inspectCmd(t, "--help")
	require.NoError(t, err)
	for _, s := range []string{"channels", "segments", "checkpoints", "verify", "--etcd", "--storage", "--nats", "--root-path", "--json", "--grace", "Exit status: 0 clean, 1 when verify found something, 2 on a usage or connection error."} {
		require.Contains(t, out, s)
	}
}
