package role

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weir-db/weir/internal/datanode"
	"github.com/weir-db/weir/internal/rpc"
	"github.com/weir-db/weir/internal/session"
)

// LeaseSyncInterval is how often a data node compares its pipelines with the leases in the
// metastore, which is how it resumes its channels while the coordinator is down.
const LeaseSyncInterval = time.Second

// RunDataNode runs a data node until ctx ends or its session is lost.
func RunDataNode(ctx context.Context, cfg Config, dcfg datanode.Config, logger *slog.Logger) error {
	b, err := newBase(ctx, cfg, "datanode", logger)
	if err != nil {
		return err
	}
	defer b.close()
	log, bucket, err := b.openData(ctx)
	if err != nil {
		return err
	}
	dcfg.NodeID, dcfg.ObjectRoot = cfg.NodeID, cfg.RootPath
	node, err := datanode.New(dcfg, b.catalog, b.ids, log, bucket, b.reg, b.logger)
	if err != nil {
		return err
	}
	b.closers = append(b.closers, node.Close)
	legacy := newCoordClient(b)
	b.closers = append(b.closers, legacy.close)
	node.SetCoordinator(legacy)
	srv := rpc.NewServer(b.logger)
	rpc.RegisterDataNodeServer(srv, nodeServer{node})
	if err := b.serveGRPC(srv); err != nil {
		return err
	}
	if err := b.register(ctx, b.grpcLn.Addr().String(), dcfg.Protocol); err != nil {
		return err
	}
	lctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); node.RunLeaseSync(lctx, b.catalog, LeaseSyncInterval) }()
	b.closers = append(b.closers, func() { stop(); <-done })
	return b.wait(ctx)
}

// nodeServer serves the coordinator's notifications. The lease revision in a Watch is only a
// hint: the node always reads the lease from the metastore and fences with that.
type nodeServer struct{ n *datanode.Node }

func (s nodeServer) Watch(ctx context.Context, req *rpc.WatchRequest) (*rpc.WatchResponse, error) {
	err := s.n.Watch(ctx, req.Channel)
	switch {
	case errors.Is(err, datanode.ErrNotOwner):
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, datanode.ErrClosed):
		return nil, status.Error(codes.Unavailable, err.Error())
	case err != nil:
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return &rpc.WatchResponse{}, nil
}

func (s nodeServer) Release(_ context.Context, req *rpc.ReleaseRequest) (*rpc.ReleaseResponse, error) {
	s.n.Release(req.Channel)
	return &rpc.ReleaseResponse{}, nil
}

func (s nodeServer) Status(context.Context, *rpc.StatusRequest) (*rpc.StatusResponse, error) {
	resp := &rpc.StatusResponse{Channels: s.n.Channels(), Errors: map[string]string{}}
	return resp, nil
}

// coordClient reaches the coordinator's legacy meta service, finding it through its session
// and dialing again when a call fails (the coordinator may have restarted elsewhere).
type coordClient struct {
	b *base
	// mu guards cc; it is a channel so that a caller waiting for it gives up when its context
	// ends: a dial to a coordinator that is gone lasts as long as the dialing caller's context,
	// and the other pipelines' calls must not queue behind it.
	mu chan struct{}
	cc *grpc.ClientConn
}

func newCoordClient(b *base) *coordClient {
	return &coordClient{b: b, mu: make(chan struct{}, 1)}
}

// lock takes mu, or fails when ctx ends first.
func (c *coordClient) lock(ctx context.Context) (unlock func(), err error) {
	select {
	case c.mu <- struct{}{}:
		return func() { <-c.mu }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *coordClient) client(ctx context.Context) (*rpc.CoordClient, error) {
	unlock, err := c.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if c.cc != nil {
		return rpc.NewCoordClient(c.cc), nil
	}
	infos, _, err := session.List(ctx, c.b.store, c.b.cfg.RootPath, "coord")
	if err != nil {
		return nil, err
	}
	if len(infos) == 0 {
		return nil, status.Error(codes.Unavailable, "no coordinator session")
	}
	if c.cc, err = rpc.Dial(ctx, infos[0].GRPCAddr); err != nil {
		return nil, err
	}
	return rpc.NewCoordClient(c.cc), nil
}

// reset drops the connection after a failure other than a refusal, so the next call looks
// the coordinator up again.
func (c *coordClient) reset(err error) {
	if code := status.Code(err); err == nil || code == codes.FailedPrecondition || code == codes.Aborted {
		return
	}
	c.close()
}

func (c *coordClient) close() {
	unlock, _ := c.lock(context.Background())
	defer unlock()
	if c.cc != nil {
		_ = c.cc.Close()
		c.cc = nil
	}
}

func (c *coordClient) ClaimChannel(ctx context.Context, req *rpc.ClaimChannelRequest) (*rpc.ClaimChannelResponse, error) {
	return call(ctx, c, func(cl *rpc.CoordClient) (*rpc.ClaimChannelResponse, error) { return cl.ClaimChannel(ctx, req) })
}

func (c *coordClient) SaveBinlogPaths(ctx context.Context, req *rpc.SaveBinlogPathsRequest) (*rpc.SaveBinlogPathsResponse, error) {
	return call(ctx, c, func(cl *rpc.CoordClient) (*rpc.SaveBinlogPathsResponse, error) { return cl.SaveBinlogPaths(ctx, req) })
}

func (c *coordClient) UpdateChannelCheckpoint(ctx context.Context, req *rpc.UpdateChannelCheckpointRequest) error {
	_, err := call(ctx, c, func(cl *rpc.CoordClient) (*rpc.UpdateChannelCheckpointResponse, error) {
		return cl.UpdateChannelCheckpoint(ctx, req)
	})
	return err
}

// call makes one call to the coordinator, dropping the connection after a failure that is not
// an answer.
func call[R any](ctx context.Context, c *coordClient, f func(*rpc.CoordClient) (*R, error)) (*R, error) {
	cl, err := c.client(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := f(cl)
	c.reset(err)
	return resp, err
}
