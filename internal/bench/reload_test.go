package bench

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestReloadQuick(t *testing.T) {
	r, err := Reload(context.Background(), Options{Quick: true, Dir: t.TempDir()})
	require.NoError(t, err)
	require.Len(t, r.Tables, 1)
	tb := r.Tables[0]
	require.Len(t, tb.Rows, 2, "quick sizes are 1,000 and 10,000 segments")
	for i, n := range []string{"1000", "10000"} {
		require.Equal(t, n, tb.Rows[i][0])
		require.Len(t, tb.Rows[i], len(tb.Columns))
		for _, k := range []string{".full_ms", ".gated_ms", ".changed_ms", ".unchanged.full_ms", ".unchanged.gated_ms", ".unchanged.changed_ms", ".changed_share"} {
			require.Positive(t, r.Figures["reload."+n+k], k)
		}
	}
	// One changed segment of 1,000: its record and its file.
	require.Equal(t, 2.0, r.Figures["reload.1000.changed_keys_read"])
	require.Empty(t, r.Targets, "the target is at 100,000 segments, which quick sizes skip")
	requireRoundTrip(t, r)
}
