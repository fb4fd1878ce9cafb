package bench

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// requireRoundTrip writes r as JSON and reads it back unchanged.
func requireRoundTrip(t testing.TB, r *Report) {
	t.Helper()
	dir := t.TempDir()
	path, err := r.WriteJSON(dir)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, r.Name+".json"), path)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var back Report
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, r.Tables, back.Tables)
	require.Equal(t, r.Figures, back.Figures)
	require.Equal(t, r.Targets, back.Targets)
	require.Equal(t, r.Notes, back.Notes)
	require.Equal(t, r.Name, back.Name)
	require.True(t, back.Quick)
	require.Positive(t, back.Machine.CPUs)
}
