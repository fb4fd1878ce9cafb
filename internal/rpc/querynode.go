package rpc

import (
	"context"
	"encoding/json"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// QueryNodeService is the gRPC name of the query node's service: proxies send it the searches
// and queries of the shards it serves.
const QueryNodeService = "weir.QueryNode"

// ShardCall is a search or query of one shard. Request is the query node's own request type,
// as JSON: package rpc knows no Weir types, and the two ends are the same release's query node
// package, which adds fields only as this package's rules say.
type ShardCall struct {
	Request json.RawMessage `json:"request"`
}

// ShardResult answers a ShardCall: the query node's result as JSON, and the rows' output
// columns as an Arrow IPC stream (empty when there are none).
type ShardResult struct {
	Result json.RawMessage `json:"result"`
	Fields []byte          `json:"fields,omitempty"`
}

// QueryNodeServer is what a query node implements to serve QueryNodeService.
type QueryNodeServer interface {
	Search(ctx context.Context, req *ShardCall) (*ShardResult, error)
	Query(ctx context.Context, req *ShardCall) (*ShardResult, error)
}

// UnimplementedQueryNodeServer answers every method with Unimplemented.
type UnimplementedQueryNodeServer struct{}

var _ QueryNodeServer = UnimplementedQueryNodeServer{}

func (UnimplementedQueryNodeServer) Search(context.Context, *ShardCall) (*ShardResult, error) {
	return nil, status.Error(codes.Unimplemented, "method Search not implemented")
}

func (UnimplementedQueryNodeServer) Query(context.Context, *ShardCall) (*ShardResult, error) {
	return nil, status.Error(codes.Unimplemented, "method Query not implemented")
}

var queryNodeDesc = grpc.ServiceDesc{
	ServiceName: QueryNodeService,
	HandlerType: (*QueryNodeServer)(nil),
	Methods: []grpc.MethodDesc{
		unaryMethod(QueryNodeService, "Search", QueryNodeServer.Search),
		unaryMethod(QueryNodeService, "Query", QueryNodeServer.Query),
	},
	Metadata: "internal/rpc/querynode.go",
}

// RegisterQueryNodeServer serves impl as QueryNodeService on s.
func RegisterQueryNodeServer(s grpc.ServiceRegistrar, impl QueryNodeServer) {
	s.RegisterService(&queryNodeDesc, impl)
}

// QueryNodeClient calls QueryNodeService.
type QueryNodeClient struct {
	cc grpc.ClientConnInterface
}

// NewQueryNodeClient returns a client of QueryNodeService over cc (usually from Dial).
func NewQueryNodeClient(cc grpc.ClientConnInterface) *QueryNodeClient {
	return &QueryNodeClient{cc: cc}
}

// Search searches one shard.
func (c *QueryNodeClient) Search(ctx context.Context, req *ShardCall, opts ...grpc.CallOption) (*ShardResult, error) {
	return invoke[ShardResult](ctx, c.cc, "/"+QueryNodeService+"/Search", req, opts)
}

// Query queries one shard.
func (c *QueryNodeClient) Query(ctx context.Context, req *ShardCall, opts ...grpc.CallOption) (*ShardResult, error) {
	return invoke[ShardResult](ctx, c.cc, "/"+QueryNodeService+"/Query", req, opts)
}
