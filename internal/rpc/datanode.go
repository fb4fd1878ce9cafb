package rpc

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DataNodeService is the gRPC name of the data node's service: the coordinator tells a data
// node which channels to run and asks what it runs.
const DataNodeService = "weir.DataNode"

// WatchRequest asks a data node to run a channel's pipeline.
type WatchRequest struct {
	Channel string `json:"channel"`
	// LeaseRevision is the revision of the channel lease the coordinator wrote for this node.
	// The node fences its writes with the lease it reads from the metastore; a different value
	// there means this request is stale. 0 means the legacy protocol (watch info without a
	// lease: the node sends its meta to the coordinator, invariant 7).
	LeaseRevision int64 `json:"lease_revision"`
}

// WatchResponse answers Watch.
type WatchResponse struct{}

// ReleaseRequest asks a data node to stop a channel's pipeline, dropping what it buffered.
type ReleaseRequest struct {
	Channel string `json:"channel"`
}

// ReleaseResponse answers Release.
type ReleaseResponse struct{}

// StatusRequest asks a data node what it runs.
type StatusRequest struct{}

// StatusResponse is what a data node runs.
type StatusResponse struct {
	NodeID int64 `json:"node_id"`
	// Channels maps each running channel to the lease revision its pipeline writes under.
	Channels map[string]int64 `json:"channels"`
	// Errors maps each stopped channel to why it stopped (for example a lost lease).
	Errors map[string]string `json:"errors"`
}

// DataNodeServer is what a data node implements to serve DataNodeService.
type DataNodeServer interface {
	Watch(ctx context.Context, req *WatchRequest) (*WatchResponse, error)
	Release(ctx context.Context, req *ReleaseRequest) (*ReleaseResponse, error)
	Status(ctx context.Context, req *StatusRequest) (*StatusResponse, error)
}

// UnimplementedDataNodeServer answers every method with Unimplemented. Embedded in an
// implementation, it keeps that implementation compiling when methods are added.
type UnimplementedDataNodeServer struct{}

var _ DataNodeServer = UnimplementedDataNodeServer{}

func (UnimplementedDataNodeServer) Watch(context.Context, *WatchRequest) (*WatchResponse, error) {
	return nil, status.Error(codes.Unimplemented, "method Watch not implemented")
}

func (UnimplementedDataNodeServer) Release(context.Context, *ReleaseRequest) (*ReleaseResponse, error) {
	return nil, status.Error(codes.Unimplemented, "method Release not implemented")
}

func (UnimplementedDataNodeServer) Status(context.Context, *StatusRequest) (*StatusResponse, error) {
	return nil, status.Error(codes.Unimplemented, "method Status not implemented")
}

var dataNodeDesc = grpc.ServiceDesc{
	ServiceName: DataNodeService,
	HandlerType: (*DataNodeServer)(nil),
	Methods: []grpc.MethodDesc{
		unaryMethod(DataNodeService, "Watch", DataNodeServer.Watch),
		unaryMethod(DataNodeService, "Release", DataNodeServer.Release),
		unaryMethod(DataNodeService, "Status", DataNodeServer.Status),
	},
	Metadata: "internal/rpc/datanode.go",
}

// RegisterDataNodeServer serves impl as DataNodeService on s.
func RegisterDataNodeServer(s grpc.ServiceRegistrar, impl DataNodeServer) {
	s.RegisterService(&dataNodeDesc, impl)
}

// DataNodeClient calls DataNodeService.
type DataNodeClient struct {
	cc grpc.ClientConnInterface
}

// NewDataNodeClient returns a client of DataNodeService over cc (usually from Dial).
func NewDataNodeClient(cc grpc.ClientConnInterface) *DataNodeClient {
	return &DataNodeClient{cc: cc}
}

// Watch asks the node to run req.Channel.
func (c *DataNodeClient) Watch(ctx context.Context, req *WatchRequest, opts ...grpc.CallOption) (*WatchResponse, error) {
	return invoke[WatchResponse](ctx, c.cc, "/"+DataNodeService+"/Watch", req, opts)
}

// Release asks the node to stop req.Channel.
func (c *DataNodeClient) Release(ctx context.Context, req *ReleaseRequest, opts ...grpc.CallOption) (*ReleaseResponse, error) {
	return invoke[ReleaseResponse](ctx, c.cc, "/"+DataNodeService+"/Release", req, opts)
}

// Status asks the node what it runs.
func (c *DataNodeClient) Status(ctx context.Context, req *StatusRequest, opts ...grpc.CallOption) (*StatusResponse, error) {
	return invoke[StatusResponse](ctx, c.cc, "/"+DataNodeService+"/Status", req, opts)
}
