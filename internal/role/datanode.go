package role

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weir-db/weir/internal/datanode"
	"github.com/weir-db/weir/internal/objstore"
	"github.com/weir-db/weir/internal/rpc"
	"github.com/weir-db/weir/internal/wal"
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
	log, err := wal.Open(ctx, cfg.NATS, wal.Config{Logger: b.logger})
	if err != nil {
		return fmt.Errorf("role: connect to nats %s: %w", cfg.NATS, err)
	}
	b.closers = append(b.closers, func() { _ = log.Close() })
	bucket, err := objstore.Open(ctx, cfg.Storage)
	if err != nil {
		return fmt.Errorf("role: open storage: %w", err)
	}
	dcfg.NodeID, dcfg.ObjectRoot = cfg.NodeID, cfg.RootPath
	node, err := datanode.New(dcfg, b.catalog, b.ids, log, bucket, b.reg, b.logger)
	if err != nil {
		return err
	}
	b.closers = append(b.closers, node.Close)
	srv := rpc.NewServer(b.logger)
	rpc.RegisterDataNodeServer(srv, nodeServer{node})
	if err := b.serveGRPC(srv); err != nil {
		return err
	}
	if err := b.register(ctx, b.grpcLn.Addr().String()); err != nil {
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
