package rpc

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// CoordService is the gRPC name of the coordinator's service.
const CoordService = "weir.Coord"

// RecoveryInfoRequest asks for what a reader needs to rebuild a collection's channels: the
// flushed segments to load and the position to tail each channel from.
type RecoveryInfoRequest struct {
	CollectionID int64 `json:"collection_id"`
	// Channel restricts the answer to one channel; "" means every channel of the collection.
	Channel string `json:"channel"`
}

// RecoveryInfoResponse is a collection's recovery target, read at one metastore revision.
type RecoveryInfoResponse struct {
	// Revision is the metastore revision the answer was read at.
	Revision int64             `json:"revision"`
	Channels []ChannelRecovery `json:"channels"`
}

// ChannelRecovery is one channel's recovery target.
type ChannelRecovery struct {
	Channel string `json:"channel"`
	// Checkpoint is the channel position up to which segment meta holds everything; a reader
	// tails the channel from Checkpoint+1.
	Checkpoint   uint64            `json:"checkpoint"`
	CheckpointTs uint64            `json:"checkpoint_ts"`
	Flushed      []SegmentRecovery `json:"flushed"`
	Growing      []SegmentRecovery `json:"growing"`
	// L0 are the channel's delete segments; a reader applies them to the partition each
	// records (-1: every partition).
	L0 []SegmentRecovery `json:"l0,omitempty"`
}

// SegmentRecovery is one segment of a recovery target.
type SegmentRecovery struct {
	ID          int64  `json:"id"`
	PartitionID int64  `json:"partition_id"`
	Rows        int64  `json:"rows"`
	State       string `json:"state"`
	Level       string `json:"level"`
	// MaxPos is the highest channel position the segment holds.
	MaxPos uint64         `json:"max_pos"`
	Files  []FileRecovery `json:"files"`
}

// FileRecovery is one object-storage file of a segment.
type FileRecovery struct {
	Key   string `json:"key"`
	Kind  string `json:"kind"`
	Rows  int64  `json:"rows"`
	Bytes int64  `json:"bytes"`
}

// CoordServer is what the coordinator implements to serve CoordService.
//
// The legacy protocol's methods (SaveBinlogPaths, UpdateChannelCheckpoint: a data node
// watching a channel without a lease sends its meta to the coordinator, which checks the
// caller owns the channel and writes it, invariant 7) will be added here with the rolling
// upgrade work; UnimplementedCoordServer keeps implementations compiling when they are.
type CoordServer interface {
	GetRecoveryInfo(ctx context.Context, req *RecoveryInfoRequest) (*RecoveryInfoResponse, error)
}

// UnimplementedCoordServer answers every method with Unimplemented. Embedded in an
// implementation, it keeps that implementation compiling when methods are added.
type UnimplementedCoordServer struct{}

var _ CoordServer = UnimplementedCoordServer{}

func (UnimplementedCoordServer) GetRecoveryInfo(context.Context, *RecoveryInfoRequest) (*RecoveryInfoResponse, error) {
	return nil, status.Error(codes.Unimplemented, "method GetRecoveryInfo not implemented")
}

var coordDesc = grpc.ServiceDesc{
	ServiceName: CoordService,
	HandlerType: (*CoordServer)(nil),
	Methods: []grpc.MethodDesc{
		unaryMethod(CoordService, "GetRecoveryInfo", CoordServer.GetRecoveryInfo),
	},
	Metadata: "internal/rpc/coord.go",
}

// RegisterCoordServer serves impl as CoordService on s.
func RegisterCoordServer(s grpc.ServiceRegistrar, impl CoordServer) {
	s.RegisterService(&coordDesc, impl)
}

// CoordClient calls CoordService.
type CoordClient struct {
	cc grpc.ClientConnInterface
}

// NewCoordClient returns a client of CoordService over cc (usually from Dial).
func NewCoordClient(cc grpc.ClientConnInterface) *CoordClient {
	return &CoordClient{cc: cc}
}

// GetRecoveryInfo asks for a collection's recovery target.
func (c *CoordClient) GetRecoveryInfo(ctx context.Context, req *RecoveryInfoRequest, opts ...grpc.CallOption) (*RecoveryInfoResponse, error) {
	return invoke[RecoveryInfoResponse](ctx, c.cc, "/"+CoordService+"/GetRecoveryInfo", req, opts)
}
