package datanode

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/rpc"
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

// goneCoord is the coordinator's legacy service as a data node reaches it once the coordinator
// is gone while its session still names its address (it crashed within its session TTL, is cut
// off from this node, or came back at another address): every call dials that address, as the
// role's client does, and rpc.Dial returns only once it connects or its context ends. With
// earlier set, ClaimChannel answers as a coordinator of the earlier release, which has none.
type goneCoord struct {
	addr    string
	earlier bool
	dials   *atomic.Int32
}

func newGoneCoord(t *testing.T, earlier bool) goneCoord {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there any more
	return goneCoord{addr: addr, earlier: earlier, dials: new(atomic.Int32)}
}

func (c goneCoord) dial(ctx context.Context) (*rpc.CoordClient, func(), error) {
	c.dials.Add(1)
	cc, err := rpc.Dial(ctx, c.addr)
	if err != nil {
		return nil, nil, err
	}
	return rpc.NewCoordClient(cc), func() { _ = cc.Close() }, nil
}

func (c goneCoord) ClaimChannel(ctx context.Context, req *rpc.ClaimChannelRequest) (*rpc.ClaimChannelResponse, error) {
	if c.earlier {
		return nil, status.Error(codes.Unimplemented, "method ClaimChannel not implemented")
	}
	cl, done, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	return cl.ClaimChannel(ctx, req)
}

func (c goneCoord) SaveBinlogPaths(ctx context.Context, req *rpc.SaveBinlogPathsRequest) (*rpc.SaveBinlogPathsResponse, error) {
	cl, done, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	return cl.SaveBinlogPaths(ctx, req)
}

func (c goneCoord) UpdateChannelCheckpoint(ctx context.Context, req *rpc.UpdateChannelCheckpointRequest) error {
	cl, done, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer done()
	_, err = cl.UpdateChannelCheckpoint(ctx, req)
	return err
}

// TestLegacyCommitGivesUpOnAGoneCoordinator: a legacy pipeline whose coordinator is gone gives
// up each call after a while and tries again (the role's client then looks the coordinator up
// anew), instead of waiting for the old address for as long as the pipeline runs. It waited:
// the call ran under the pipeline's context alone, so a coordinator that came back elsewhere
// never got the sync, and the node's memory filled behind it.
func TestLegacyCommitGivesUpOnAGoneCoordinator(t *testing.T) {
	e := newEnv(t, envOpts{})
	ch := e.coll.VChannels[0]
	e.assign(ch, 1)
	cfg := testConfig(1)
	cfg.Protocol = ProtocolLegacy
	n := e.node(cfg)
	gone := newGoneCoord(t, true)
	n.SetCoordinator(gone)
	require.NoError(t, n.Watch(e.ctx, ch))
	e.insert(ch, meta.DefaultPartition, 4)
	e.flush(ch)
	require.Eventually(t, func() bool { return gone.dials.Load() >= 2 }, 30*time.Second, 10*time.Millisecond,
		"the sync's first call to the gone coordinator is never given up and tried again")
}
