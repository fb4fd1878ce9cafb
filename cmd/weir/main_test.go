package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"
)

// parse builds the standalone command, parses args and applies the config file, without
// running anything.
func parse(t *testing.T, args ...string) (*cobra.Command, error) {
	t.Helper()
	root := newRoot()
	cmd, rest, err := root.Find(append([]string{"standalone"}, args...))
	require.NoError(t, err)
	require.NoError(t, cmd.ParseFlags(rest))
	cfgPath, err := cmd.Flags().GetString("config")
	require.NoError(t, err)
	return cmd, applyConfigFile(cmd, cfgPath)
}

func writeConfig(t *testing.T, body string) string {
	p := filepath.Join(t.TempDir(), "weir.yaml")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	return p
}

func TestConfigFileSetsFlagsAndCommandLineWins(t *testing.T) {
	p := writeConfig(t, "data-dir: /var/lib/weir\nlisten: 127.0.0.1:29530\nwal-sync: interval\nlog-level: debug\n")
	cmd, err := parse(t, "--config", p, "--listen", "127.0.0.1:39530")
	require.NoError(t, err)
	get := func(name string) string {
		v, err := cmd.Flags().GetString(name)
		require.NoError(t, err)
		return v
	}
	require.Equal(t, "/var/lib/weir", get("data-dir"))
	require.Equal(t, "127.0.0.1:39530", get("listen"), "the command line wins over the file")
	require.Equal(t, "interval", get("wal-sync"))
	require.Equal(t, "debug", get("log-level"), "global flags can be set in the file too")
	require.Equal(t, ":9091", get("http-listen"), "unset keys keep their defaults")
}

func TestConfigFileErrors(t *testing.T) {
	for _, c := range []struct{ name, body, want string }{
		{"unknown key", "data_dir: x\n", `unknown key "data_dir"`},
		{"nested value", "listen:\n  host: x\n", "expected a scalar value"},
		{"empty value", "listen:\n", "has no value"},
		{"not yaml", "listen: [\n", "config"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := parse(t, "--config", writeConfig(t, c.body))
			require.ErrorContains(t, err, c.want)
		})
	}
	_, err := parse(t, "--config", filepath.Join(t.TempDir(), "missing.yaml"))
	require.ErrorContains(t, err, "no such file")
}

func TestNewLogger(t *testing.T) {
	for _, f := range []string{"text", "json"} {
		_, err := newLogger("warn", f)
		require.NoError(t, err)
	}
	_, err := newLogger("loud", "text")
	require.ErrorContains(t, err, "--log-level")
	_, err = newLogger("info", "xml")
	require.ErrorContains(t, err, "--log-format")
}

func TestDataNodeSettingsFromFlagsAndConfig(t *testing.T) {
	p := writeConfig(t, "memory-limit: 1048576\nseal-age: 1h\n")
	cmd, err := parse(t, "--config", p, "--sync-buffer-bytes", "4096")
	require.NoError(t, err)
	v, err := cmd.Flags().GetInt64("memory-limit")
	require.NoError(t, err)
	require.Equal(t, int64(1<<20), v)
	v, err = cmd.Flags().GetInt64("sync-buffer-bytes")
	require.NoError(t, err)
	require.Equal(t, int64(4096), v)
	d, err := cmd.Flags().GetDuration("seal-age")
	require.NoError(t, err)
	require.Equal(t, "1h0m0s", d.String())
}
