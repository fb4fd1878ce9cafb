package meta

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTSBoundOnlyRises: a proxy's saved timestamp bound never goes down, whatever order saves
// arrive in (a late save of a paused process of the same node ID).
func TestTSBoundOnlyRises(t *testing.T) {
	ctx := context.Background()
	c, _ := newCatalog(t)
	b := c.TSBound(3)
	got, err := b.LoadBound(ctx)
	require.NoError(t, err)
	require.Zero(t, got)
	require.NoError(t, b.SaveBound(ctx, 100))
	require.NoError(t, b.SaveBound(ctx, 50))
	got, err = b.LoadBound(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(100), got)
	require.NoError(t, b.SaveBound(ctx, 200))
	got, err = c.TSBound(3).LoadBound(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(200), got)
	other, err := c.TSBound(4).LoadBound(ctx)
	require.NoError(t, err)
	require.Zero(t, other, "each proxy its own bound")
}
