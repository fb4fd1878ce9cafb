package datanode

import (
	"context"
	"fmt"
	"strings"
	"time"

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
	ClaimChannel(ctx context.Context, req *rpc.ClaimChannelRequest) (*rpc.ClaimChannelResponse, error)
	SaveBinlogPaths(ctx context.Context, req *rpc.SaveBinlogPathsRequest) (*rpc.SaveBinlogPathsResponse, error)
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
// channel under the watch operation (the watch info's revision), as the incarnation the
// pipeline's claim made (epoch), and writes it. Each segment write carries the record revision
// the pipeline last saw, as the direct writer's compare-and-swap does. Calls are retried with
// backoff: the coordinator answers a resend of a call that applied as a success. A refusal
// because the channel is no longer this incarnation's stops the pipeline like a lost lease; a
// segment that is not as the pipeline saw it stops it too (its restart reads what is stored).
type legacyWriter struct {
	p     *pipeline
	coord Coordinator
	epoch int64
}

// coordCallTimeout bounds one call to the coordinator. The metastore's and the log's clients
// bound each request themselves; a call to the coordinator ends only with its context, and the
// contexts it is made under need not end at all: a lease sync's (SyncLeases watches under the
// sync loop's context) and a pipeline's. When the coordinator is gone while its session still
// names it (it crashed within its TTL, is cut off from this node, or came back at another
// address), dialing it waits until it connects, so an unbounded call held the channel's lock
// (Release waited behind it), the whole lease sync, or the pipeline's syncs, for as long as the
// coordinator stayed away from that address. Bounded, a claim fails and the start is refused
// and retried after its backoff, and a write is retried (the coordinator answers a resend of a
// call that applied as a success), each time looking the coordinator up anew.
const coordCallTimeout = 5 * time.Second

// claimLegacy starts the pipeline's incarnation through the coordinator, which claims the
// channel on its behalf: every earlier pipeline under the same watch info is fenced from then
// on, as Fence.Claim fences them under the current protocol.
func claimLegacy(ctx context.Context, coord Coordinator, ch string, node int64, lease meta.Lease) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, coordCallTimeout)
	defer cancel()
	resp, err := coord.ClaimChannel(ctx, &rpc.ClaimChannelRequest{Channel: ch, NodeID: node, OpID: lease.Revision})
	if earlierCoordinator(err) {
		// A coordinator of the earlier release: it fences by the watch info alone, as that
		// release did (epoch 0).
		return 0, nil
	}
	if err != nil {
		if status.Code(err) == codes.FailedPrecondition {
			err = fmt.Errorf("%w: coordinator refused the claim: %v", meta.ErrLeaseLost, err)
		}
		return 0, fmt.Errorf("claim channel %s through the coordinator: %w", ch, err)
	}
	return resp.Epoch, nil
}

// earlierCoordinator reports whether err is a coordinator's answer that it has no ClaimChannel:
// the coordinator service without that method (the earlier release), not a process without the
// service at all (a stale address).
func earlierCoordinator(err error) bool {
	st, ok := status.FromError(err)
	return ok && st.Code() == codes.Unimplemented && strings.Contains(st.Message(), "ClaimChannel") &&
		!strings.Contains(st.Message(), "unknown service")
}

func (w legacyWriter) commitSegments(pend []pending) error {
	req := &rpc.SaveBinlogPathsRequest{Channel: w.p.ch, NodeID: w.p.n.cfg.NodeID, OpID: w.p.lease.Revision, Epoch: w.epoch}
	for _, pd := range pend {
		rec := pd.rec
		rec.Lease = w.p.lease.Revision
		prev := pd.prev
		req.Segments = append(req.Segments, rpc.SegmentUpdate{Segment: rec, Files: pd.files, Prev: &prev})
	}
	var resp *rpc.SaveBinlogPathsResponse
	if err := w.call("save-binlog-paths", func(ctx context.Context) (err error) {
		resp, err = w.coord.SaveBinlogPaths(ctx, req)
		return err
	}); err != nil {
		return err
	}
	revs := resp.Revisions
	if len(revs) == 0 && len(pend) > 0 {
		// A coordinator of the earlier release answers without revisions: read them.
		var err error
		if revs, err = w.readRevisions(pend); err != nil {
			return err
		}
	}
	if len(revs) != len(pend) {
		return fmt.Errorf("%w: the coordinator answered %d revisions for %d segments", errCorruptState, len(revs), len(pend))
	}
	for i, pd := range pend {
		rec := pd.rec
		rec.ModRevision = revs[i]
		w.p.committed[rec.ID] = &rec
	}
	return nil
}

// readRevisions reads the mod revision of each segment record the coordinator just wrote.
func (w legacyWriter) readRevisions(pend []pending) ([]int64, error) {
	revs := make([]int64, len(pend))
	for i, pd := range pend {
		got, err := w.p.retryRead("read-segment", func(ctx context.Context) (*meta.Segment, error) {
			return w.p.n.catalog.GetSegment(ctx, pd.rec.CollectionID, pd.rec.ID)
		})
		if err != nil {
			return nil, err
		}
		revs[i] = got.ModRevision
	}
	return revs, nil
}

func (w legacyWriter) commitCheckpoint(cp meta.Checkpoint) error {
	req := &rpc.UpdateChannelCheckpointRequest{Channel: w.p.ch, NodeID: w.p.n.cfg.NodeID, OpID: w.p.lease.Revision, Epoch: w.epoch, Checkpoint: cp}
	if err := w.call("update-channel-checkpoint", func(ctx context.Context) error { return w.coord.UpdateChannelCheckpoint(ctx, req) }); err != nil {
		return err
	}
	w.p.cp = cp
	return nil
}

func (w legacyWriter) call(step string, f func(context.Context) error) error {
	_, err := w.p.retry(step, func() (struct{}, error) {
		ctx, cancel := context.WithTimeout(w.p.ctx, coordCallTimeout) // see coordCallTimeout
		err := f(ctx)
		cancel()
		switch status.Code(err) {
		case codes.FailedPrecondition:
			return struct{}{}, fmt.Errorf("%w: coordinator refused %s: %v", meta.ErrLeaseLost, step, err)
		case codes.Aborted:
			return struct{}{}, fmt.Errorf("%w: coordinator refused %s: %v", errCorruptState, step, err)
		}
		return struct{}{}, err
	})
	return err
}
