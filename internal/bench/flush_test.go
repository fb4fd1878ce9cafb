package bench

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestFlushQuick runs the flush benchmark at its quick size. Flush refuses to report when the
// data node synced before the flush (the figure would not be the flush of what was buffered),
// so a pass also shows the sync thresholds held everything until the flush.
func TestFlushQuick(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := Flush(ctx, Options{Quick: true, Dir: t.TempDir()})
	require.NoError(t, err)
	require.Len(t, r.Tables, 1)
	require.Len(t, r.Tables[0].Rows, 1)
	require.Positive(t, r.Figures["flush.4mb.ms"])
	require.Positive(t, r.Figures["flush.4mb.floor_ms"])
	requireRoundTrip(t, r)
}
