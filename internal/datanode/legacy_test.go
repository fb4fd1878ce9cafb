package datanode

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestEarlierCoordinatorIsTheMethodMissing: a legacy pipeline falls back to the earlier release's
// rules only when the coordinator service lacks ClaimChannel, not when the address answers with
// no coordinator service at all or fails otherwise (found by review).
func TestEarlierCoordinatorIsTheMethodMissing(t *testing.T) {
	require.True(t, earlierCoordinator(status.Error(codes.Unimplemented, "unknown method ClaimChannel for service weir.Coord")))
	require.True(t, earlierCoordinator(status.Error(codes.Unimplemented, "method ClaimChannel not implemented")))
	require.False(t, earlierCoordinator(status.Error(codes.Unimplemented, "unknown service weir.Coord")))
	require.False(t, earlierCoordinator(status.Error(codes.Unavailable, "ClaimChannel: connection refused")))
	require.False(t, earlierCoordinator(nil))
}
