package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/testcluster"
)

// TestRunPrintsExports runs on a cache directory (named by WEIR_TEST_BIN_DIR) holding the
// binaries already and checks that a shell evaluating the output gets their paths, quotes and all.
func TestRunPrintsExports(t *testing.T) {
	etcd, nats := testcluster.Binaries(t)
	versity := testcluster.VersityBinary(t)
	dir := filepath.Join(t.TempDir(), "it's here")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for from, to := range map[string]string{etcd: testcluster.EtcdFile, nats: testcluster.NATSFile, versity: testcluster.VersityFile} {
		b, err := os.ReadFile(from)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, to), b, 0o755))
	}
	var stdout, stderr bytes.Buffer
	t.Setenv(testcluster.EnvBinDir, dir) // the directory when -dir is not given
	require.NoError(t, run("", &stdout, &stderr))
	require.Contains(t, stderr.String(), "test server binaries ready")

	out, err := exec.Command("/bin/sh", "-c", stdout.String()+`printf '%s\n%s\n%s' "$WEIR_ETCD_BIN" "$WEIR_NATS_BIN" "$WEIR_VERSITYGW_BIN"`).Output()
	require.NoError(t, err)
	want := []string{testcluster.EtcdFile, testcluster.NATSFile, testcluster.VersityFile}
	for i := range want {
		want[i] = filepath.Join(dir, want[i])
	}
	require.Equal(t, strings.Join(want, "\n"), string(out))
}

// TestRunReportsFailure checks that an unusable directory fails the run.
func TestRunReportsFailure(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	require.Error(t, run(filepath.Join(file, "bin"), &bytes.Buffer{}, &bytes.Buffer{}))
}
