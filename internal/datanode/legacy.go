package datanode

import (
	"context"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/rpc"
)

// Protocols a data node speaks for its meta writes (BRIEF invariant 7): meta's, which the
// coordinator compares with what a node announces.
const (
	ProtocolCurrent = meta.ProtocolCurrent
	ProtocolLegacy  = meta.ProtocolLegacy
)

// Coordinator is the coordinator's legacy meta service, as a data node reaches it.
type Coordinator interface {
	SaveBinlogPaths(ctx context.Context, req *rpc.SaveBinlogPathsRequest) error
	UpdateChannelCheckpoint(ctx context.Context, req *rpc.UpdateChannelCheckpointRequest) error
}

// metaWriter is the one place a pipeline's meta leaves the node: directly into the metastore
// under the lease (the current protocol), or to the coordinator (the legacy protocol). Both
// write the segments of a sync, in order, before its checkpoint.
type metaWriter interface {
	commitSegments(pend []pending) error
	commitCheckpoint(cp meta.Checkpoint) error
}

// directWriter commits through the pipeline's fence.
type directWriter struct{ p *pipeline }

func (w directWriter) commitSegments(pend []pending) error {
	for len(pend) > 0 {
		n, err := w.p.fitTxn(pend)
		if err != nil {
			return err
		}
		if err := w.p.commitSegments(pend[:n]); err != nil {
			return err
		}
		pend = pend[n:]
	}
	return nil
}

func (w directWriter) commitCheckpoint(cp meta.Checkpoint) error { return w.p.commitCheckpoint(cp) }

// legacyWriter sends the meta to the coordinator, which checks that this node watches the
// channel under the watch operation (the watch info's revision) and writes it. Calls are
// retried with backoff: the coordinator makes repeats idempotent. A refusal because the
// channel is no longer this node's stops the pipeline like a lost lease.
type legacyWriter struct {
	p     *pipeline
	coord Coordinator
}

func (w legacyWriter) commitSegments(pend []pending) error {
	req := &rpc.SaveBinlogPathsRequest{Channel: w.p.ch, NodeID: w.p.n.cfg.NodeID, OpID: w.p.lease.Revision}
	for _, pd := range pend {
		rec := pd.rec
		rec.Lease = w.p.lease.Revision
		req.Segments = append(req.Segments, rpc.SegmentUpdate{Segment: rec, Files: pd.files})
	}
	if err := w.call("save-binlog-paths", func(ctx context.Context) error { return w.coord.SaveBinlogPaths(ctx, req) }); err != nil {
		return err
	}
	for _, pd := range pend {
		rec := pd.rec
		w.p.committed[rec.ID] = &rec
	}
	return nil
}

func (w legacyWriter) commitCheckpoint(cp meta.Checkpoint) error {
	req := &rpc.UpdateChannelCheckpointRequest{Channel: w.p.ch, NodeID: w.p.n.cfg.NodeID, OpID: w.p.lease.Revision, Checkpoint: cp}
	if err := w.call("update-channel-checkpoint", func(ctx context.Context) error { return w.coord.UpdateChannelCheckpoint(ctx, req) }); err != nil {
		return err
	}
	w.p.cp = cp
	return nil
}

func (w legacyWriter) call(step string, f func(context.Context) error) error {
	_, err := w.p.retry(step, func() (struct{}, error) {
		err := f(w.p.ctx)
		if status.Code(err) == codes.FailedPrecondition {
			return struct{}{}, fmt.Errorf("%w: coordinator refused %s: %v", meta.ErrLeaseLost, step, err)
		}
		return struct{}{}, err
	})
	return err
}
