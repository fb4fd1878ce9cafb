package role

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weir-db/weir/internal/batch"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/querynode"
	"github.com/weir-db/weir/internal/rpc"
)

// RunQueryNode runs a query node until ctx ends or its session is lost. It needs etcd, NATS
// and object storage only (R6): its assignments are read from etcd, so it resumes its shards
// after a restart while the coordinator is down.
func RunQueryNode(ctx context.Context, cfg Config, qcfg querynode.Config, logger *slog.Logger) error {
	if err := qcfg.Validate(); err != nil {
		return err
	}
	b, err := newBase(ctx, cfg, "querynode", logger)
	if err != nil {
		return err
	}
	defer b.close()
	log, bucket, err := b.openData(ctx)
	if err != nil {
		return err
	}
	qcfg.NodeID, qcfg.RootPath = cfg.NodeID, cfg.RootPath
	node := querynode.New(qcfg, querynode.Deps{Catalog: b.catalog, Store: b.store, Log: log, Bucket: bucket}, b.reg, b.logger)
	srv := rpc.NewServer(b.logger)
	rpc.RegisterQueryNodeServer(srv, queryServer{node})
	if err := b.serveGRPC(srv); err != nil {
		return err
	}
	if err := b.register(ctx, b.grpcLn.Addr().String(), meta.ProtocolCurrent); err != nil {
		return err
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); node.Run(rctx) }()
	b.closers = append(b.closers, func() { stop(); <-done })
	return b.wait(ctx)
}

// queryServer serves proxies' searches and queries over internal gRPC.
type queryServer struct{ n *querynode.Node }

func (s queryServer) Search(ctx context.Context, call *rpc.ShardCall) (*rpc.ShardResult, error) {
	var req querynode.SearchRequest
	if err := json.Unmarshal(call.Request, &req); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	res, err := s.n.Search(ctx, &req)
	if err != nil {
		return nil, shardStatus(err)
	}
	return encodeResult(res, res.Fields)
}

func (s queryServer) Query(ctx context.Context, call *rpc.ShardCall) (*rpc.ShardResult, error) {
	var req querynode.QueryRequest
	if err := json.Unmarshal(call.Request, &req); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	res, err := s.n.Query(ctx, &req)
	if err != nil {
		return nil, shardStatus(err)
	}
	return encodeResult(res, res.Fields)
}

// shardStatus tells a shard that is not served here (try another replica) from other failures.
func shardStatus(err error) error {
	if errors.Is(err, querynode.ErrNotServing) {
		return status.Error(codes.FailedPrecondition, err.Error())
	}
	return err
}

// encodeResult sends a shard's result as JSON and its rows' columns as Arrow IPC, releasing
// them.
func encodeResult(res any, fields arrow.RecordBatch) (*rpc.ShardResult, error) {
	if fields != nil {
		defer fields.Release()
	}
	out := &rpc.ShardResult{}
	var err error
	if out.Result, err = json.Marshal(res); err != nil {
		return nil, err
	}
	if fields != nil && fields.NumCols() > 0 {
		if out.Fields, err = batch.EncodeIPC(fields); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// remoteQueryNodes reaches query nodes through their sessions and internal gRPC: the proxy's
// way to its query nodes, and the coordinator's list of live ones.
type remoteQueryNodes struct{ peers }

func newRemoteQueryNodes(b *base) *remoteQueryNodes {
	r := &remoteQueryNodes{newPeers(b, "querynode")}
	// A search waits for no dead replica: after a second it goes to the next one.
	r.dialTimeout = time.Second
	return r
}

func (r *remoteQueryNodes) LiveQueryNodes(ctx context.Context) ([]int64, error) { return r.Live(ctx) }

// call sends req to node with method and decodes the result into out; it returns the rows'
// columns. A node that does not serve the shard answers FailedPrecondition, which becomes
// querynode.ErrNotServing so that the next replica is tried.
func (r *remoteQueryNodes) call(ctx context.Context, node int64, method string, req, out any) (arrow.RecordBatch, error) {
	cc, err := r.conn(ctx, node)
	if err != nil {
		// The serving map may name a node this proxy has not listed yet.
		if _, lerr := r.Live(ctx); lerr == nil {
			cc, err = r.conn(ctx, node)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", querynode.ErrNotServing, err)
		}
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	c := rpc.NewQueryNodeClient(cc)
	call := c.Search
	if method == "query" {
		call = c.Query
	}
	res, err := call(ctx, &rpc.ShardCall{Request: b})
	if status.Code(err) == codes.Unavailable {
		// The node may have restarted on another address: look its session up again.
		if _, lerr := r.Live(ctx); lerr == nil {
			if cc2, cerr := r.conn(ctx, node); cerr == nil && cc2 != cc {
				c = rpc.NewQueryNodeClient(cc2)
				call = c.Search
				if method == "query" {
					call = c.Query
				}
				res, err = call(ctx, &rpc.ShardCall{Request: b})
			}
		}
	}
	if err != nil {
		if status.Code(err) == codes.FailedPrecondition {
			return nil, fmt.Errorf("%w: %s", querynode.ErrNotServing, status.Convert(err).Message())
		}
		return nil, err
	}
	if err := json.Unmarshal(res.Result, out); err != nil {
		return nil, err
	}
	if len(res.Fields) == 0 {
		return nil, nil
	}
	return batch.DecodeIPC(res.Fields)
}

func (r *remoteQueryNodes) Search(ctx context.Context, node int64, req *querynode.SearchRequest) (*querynode.SearchResult, error) {
	out := &querynode.SearchResult{}
	fields, err := r.call(ctx, node, "search", req, out)
	if err != nil {
		return nil, err
	}
	out.Fields = fields
	return out, nil
}

func (r *remoteQueryNodes) Query(ctx context.Context, node int64, req *querynode.QueryRequest) (*querynode.QueryResult, error) {
	out := &querynode.QueryResult{}
	fields, err := r.call(ctx, node, "query", req, out)
	if err != nil {
		return nil, err
	}
	out.Fields = fields
	return out, nil
}
