package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBenchCommand runs `weir bench flush --quick` as a user would and checks what it leaves:
// the table on stdout, the JSON report and the Markdown file; and that an unknown benchmark
// is refused before anything runs.
func TestBenchCommand(t *testing.T) {
	dir := t.TempDir()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"bench", "flush", "--quick", "--dir", dir, "--out", filepath.Join(dir, "out"), "--markdown", filepath.Join(dir, "md", "b.md")})
	require.NoError(t, root.Execute())
	require.Contains(t, out.String(), "== flush:")
	require.FileExists(t, filepath.Join(dir, "out", "flush.json"))
	md, err := os.ReadFile(filepath.Join(dir, "md", "b.md"))
	require.NoError(t, err)
	require.Contains(t, string(md), "### flush:")

	root = newRoot()
	root.SetArgs([]string{"bench", "nope"})
	require.ErrorContains(t, root.Execute(), `unknown benchmark "nope"`)
}
