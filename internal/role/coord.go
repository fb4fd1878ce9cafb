package role

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weir-db/weir/internal/coord"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/objstore"
	"github.com/weir-db/weir/internal/rpc"
	"github.com/weir-db/weir/internal/wal"
)

// RunCoord runs the coordinator until ctx ends or its session is lost.
func RunCoord(ctx context.Context, cfg Config, ccfg coord.Config, logger *slog.Logger) error {
	b, err := newBase(ctx, cfg, "coord", logger)
	if err != nil {
		return err
	}
	defer b.close()
	bucket, err := objstore.Open(ctx, cfg.Storage)
	if err != nil {
		return fmt.Errorf("role: open storage: %w", err)
	}
	ccfg.RootPath = cfg.RootPath
	nodes := newRemoteNodes(b)
	b.closers = append(b.closers, nodes.close)
	co, err := coord.New(ccfg, b.catalog, meta.NewView(b.store, cfg.RootPath, meta.ReloadChanged), nodes, bucket, b.reg, b.logger)
	if err != nil {
		return err
	}
	qnodes := newRemoteQueryNodes(b)
	b.closers = append(b.closers, qnodes.close)
	co.SetQuery(b.catalog, qnodes)
	srv := rpc.NewServer(b.logger)
	rpc.RegisterCoordServer(srv, coordServer{co})
	if err := b.serveGRPC(srv); err != nil {
		return err
	}
	// One coordinator at a time: a second one with the same node ID waits for the first
	// session to expire. (Two coordinators with different IDs would both assign; safety holds
	// through the leases, but they would fight, so run one.)
	if err := b.register(ctx, b.grpcLn.Addr().String(), ccfg.Protocol); err != nil {
		return err
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); co.Run(rctx) }()
	// Garbage collection deletes the streams of dropped collections. The coordinator needs
	// NATS for nothing else, so it connects in the background rather than wait for it.
	logDone := make(chan struct{})
	var log *wal.Log
	go func() {
		defer close(logDone)
		l, err := wal.Open(rctx, cfg.NATS, wal.Config{Logger: b.logger})
		if err != nil {
			if rctx.Err() == nil {
				b.logger.Warn("connect to nats: dropped collections' channels stay until it is reachable", "nats", cfg.NATS, "err", err)
			}
			return
		}
		log = l
		co.SetLog(l)
	}()
	b.closers = append(b.closers, func() {
		stop()
		<-done
		<-logDone
		if log != nil {
			_ = log.Close()
		}
	})
	return b.wait(ctx)
}

// remoteNodes reaches data nodes through their sessions and internal gRPC.
type remoteNodes struct{ peers }

func newRemoteNodes(b *base) *remoteNodes { return &remoteNodes{newPeers(b, "datanode")} }

func (r *remoteNodes) client(ctx context.Context, node int64) (*rpc.DataNodeClient, error) {
	cc, err := r.conn(ctx, node)
	if err != nil {
		return nil, err
	}
	return rpc.NewDataNodeClient(cc), nil
}

func (r *remoteNodes) Watch(ctx context.Context, node int64, ch string, lease int64) error {
	c, err := r.client(ctx, node)
	if err != nil {
		return err
	}
	_, err = c.Watch(ctx, &rpc.WatchRequest{Channel: ch, LeaseRevision: lease})
	return err
}

func (r *remoteNodes) Release(ctx context.Context, node int64, ch string) error {
	c, err := r.client(ctx, node)
	if err != nil {
		return err
	}
	_, err = c.Release(ctx, &rpc.ReleaseRequest{Channel: ch})
	return err
}

// coordServer answers recovery targets over internal gRPC.
type coordServer struct{ c *coord.Coordinator }

func (s coordServer) GetRecoveryInfo(ctx context.Context, req *rpc.RecoveryInfoRequest) (*rpc.RecoveryInfoResponse, error) {
	info, err := s.c.RecoveryInfo(ctx, req.CollectionID, req.Channel)
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	resp := &rpc.RecoveryInfoResponse{Revision: info.Revision}
	conv := func(in []coord.SegmentRecovery) []rpc.SegmentRecovery {
		out := make([]rpc.SegmentRecovery, 0, len(in))
		for _, s := range in {
			sr := rpc.SegmentRecovery{ID: s.ID, PartitionID: s.PartitionID, Rows: s.Rows, State: string(s.State), Level: string(s.Level), MaxPos: s.MaxPos}
			for _, f := range s.Files {
				sr.Files = append(sr.Files, rpc.FileRecovery{Key: f.Key, Kind: string(f.Kind), Rows: f.Rows, Bytes: f.Bytes})
			}
			out = append(out, sr)
		}
		return out
	}
	for _, ch := range info.Channels {
		resp.Channels = append(resp.Channels, rpc.ChannelRecovery{Channel: ch.Channel, Checkpoint: ch.Checkpoint.Position,
			CheckpointTs: ch.Checkpoint.Timestamp, Flushed: conv(ch.Flushed), Growing: conv(ch.Growing), L0: conv(ch.L0)})
	}
	return resp, nil
}

func (s coordServer) ClaimChannel(ctx context.Context, req *rpc.ClaimChannelRequest) (*rpc.ClaimChannelResponse, error) {
	epoch, err := s.c.ClaimChannel(ctx, req.Channel, req.NodeID, req.OpID)
	if err != nil {
		return nil, legacyStatus(err)
	}
	return &rpc.ClaimChannelResponse{Epoch: epoch}, nil
}

func (s coordServer) SaveBinlogPaths(ctx context.Context, req *rpc.SaveBinlogPathsRequest) (*rpc.SaveBinlogPathsResponse, error) {
	segs := make([]coord.SegmentUpdate, len(req.Segments))
	for i, u := range req.Segments {
		segs[i] = coord.SegmentUpdate{Segment: u.Segment, Files: u.Files, Prev: u.Prev}
	}
	caller := coord.LegacyCaller{Channel: req.Channel, Node: req.NodeID, OpID: req.OpID, Epoch: req.Epoch}
	revs, err := s.c.SaveBinlogPaths(ctx, caller, segs, req.Checkpoint)
	if err != nil {
		return nil, legacyStatus(err)
	}
	return &rpc.SaveBinlogPathsResponse{Revisions: revs}, nil
}

func (s coordServer) UpdateChannelCheckpoint(ctx context.Context, req *rpc.UpdateChannelCheckpointRequest) (*rpc.UpdateChannelCheckpointResponse, error) {
	caller := coord.LegacyCaller{Channel: req.Channel, Node: req.NodeID, OpID: req.OpID, Epoch: req.Epoch}
	if err := s.c.UpdateChannelCheckpoint(ctx, caller, req.Checkpoint); err != nil {
		return nil, legacyStatus(err)
	}
	return &rpc.UpdateChannelCheckpointResponse{}, nil
}

// legacyStatus maps a legacy write's failure to a gRPC code: a caller that does not own the
// channel (or was superseded by a later incarnation) must stop (FailedPrecondition); one whose
// view of a segment is wrong must start again from what is stored (Aborted); anything else may
// be retried (Unavailable).
func legacyStatus(err error) error {
	switch {
	case errors.Is(err, coord.ErrNotWatcher):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, coord.ErrConflict):
		return status.Error(codes.Aborted, err.Error())
	}
	return status.Error(codes.Unavailable, err.Error())
}
