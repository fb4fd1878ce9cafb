package rpc

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weir-db/weir/internal/meta"
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

// SegmentUpdate is one segment's new state and its new files, as a legacy data node reports
// them.
type SegmentUpdate struct {
	Segment meta.Segment `json:"segment"`
	Files   []meta.File  `json:"files"`
	// Prev is the mod revision the caller last saw the segment's record at (0: it has none),
	// the write's compare-and-swap. Nil from a data node of an earlier release, which sends
	// none.
	Prev *int64 `json:"prev,omitempty"`
}

// ClaimChannelRequest starts a legacy pipeline's incarnation: the coordinator checks that
// NodeID watches Channel under operation OpID and claims the channel on its behalf, which
// fences every earlier pipeline under the same watch info.
type ClaimChannelRequest struct {
	Channel string `json:"channel"`
	NodeID  int64  `json:"node_id"`
	OpID    int64  `json:"op_id"`
}

// ClaimChannelResponse is the incarnation's epoch, which its later writes present.
type ClaimChannelResponse struct {
	Epoch int64 `json:"epoch"`
}

// SaveBinlogPathsRequest is the legacy protocol's segment meta write: a data node watching a
// channel without a lease sends it to the coordinator, which checks that NodeID watches Channel
// under watch operation OpID, as incarnation Epoch, and writes it (BRIEF invariant 7).
// Checkpoint, when set, is written after the segments.
type SaveBinlogPathsRequest struct {
	Channel string `json:"channel"`
	NodeID  int64  `json:"node_id"`
	OpID    int64  `json:"op_id"`
	// Epoch is what ClaimChannel returned; 0 from a data node of an earlier release, whose
	// writes are checked against the watch info alone.
	Epoch      int64            `json:"epoch,omitempty"`
	Segments   []SegmentUpdate  `json:"segments"`
	Checkpoint *meta.Checkpoint `json:"checkpoint,omitempty"`
}

// SaveBinlogPathsResponse answers SaveBinlogPaths: the mod revision each segment's record has
// once written, in request order.
type SaveBinlogPathsResponse struct {
	Revisions []int64 `json:"revisions,omitempty"`
}

// UpdateChannelCheckpointRequest is the legacy protocol's checkpoint write.
type UpdateChannelCheckpointRequest struct {
	Channel    string          `json:"channel"`
	NodeID     int64           `json:"node_id"`
	OpID       int64           `json:"op_id"`
	Epoch      int64           `json:"epoch,omitempty"`
	Checkpoint meta.Checkpoint `json:"checkpoint"`
}

// UpdateChannelCheckpointResponse answers UpdateChannelCheckpoint.
type UpdateChannelCheckpointResponse struct{}

// CoordServer is what the coordinator implements to serve CoordService. SaveBinlogPaths and
// UpdateChannelCheckpoint are the legacy protocol's calls; they stay until a documented
// breaking release.
type CoordServer interface {
	GetRecoveryInfo(ctx context.Context, req *RecoveryInfoRequest) (*RecoveryInfoResponse, error)
	ClaimChannel(ctx context.Context, req *ClaimChannelRequest) (*ClaimChannelResponse, error)
	SaveBinlogPaths(ctx context.Context, req *SaveBinlogPathsRequest) (*SaveBinlogPathsResponse, error)
	UpdateChannelCheckpoint(ctx context.Context, req *UpdateChannelCheckpointRequest) (*UpdateChannelCheckpointResponse, error)
}

// UnimplementedCoordServer answers every method with Unimplemented. Embedded in an
// implementation, it keeps that implementation compiling when methods are added.
type UnimplementedCoordServer struct{}

var _ CoordServer = UnimplementedCoordServer{}

func (UnimplementedCoordServer) GetRecoveryInfo(context.Context, *RecoveryInfoRequest) (*RecoveryInfoResponse, error) {
	return nil, status.Error(codes.Unimplemented, "method GetRecoveryInfo not implemented")
}

func (UnimplementedCoordServer) ClaimChannel(context.Context, *ClaimChannelRequest) (*ClaimChannelResponse, error) {
	return nil, status.Error(codes.Unimplemented, "method ClaimChannel not implemented")
}

func (UnimplementedCoordServer) SaveBinlogPaths(context.Context, *SaveBinlogPathsRequest) (*SaveBinlogPathsResponse, error) {
	return nil, status.Error(codes.Unimplemented, "method SaveBinlogPaths not implemented")
}

func (UnimplementedCoordServer) UpdateChannelCheckpoint(context.Context, *UpdateChannelCheckpointRequest) (*UpdateChannelCheckpointResponse, error) {
	return nil, status.Error(codes.Unimplemented, "method UpdateChannelCheckpoint not implemented")
}

var coordDesc = grpc.ServiceDesc{
	ServiceName: CoordService,
	HandlerType: (*CoordServer)(nil),
	Methods: []grpc.MethodDesc{
		unaryMethod(CoordService, "GetRecoveryInfo", CoordServer.GetRecoveryInfo),
		unaryMethod(CoordService, "ClaimChannel", CoordServer.ClaimChannel),
		unaryMethod(CoordService, "SaveBinlogPaths", CoordServer.SaveBinlogPaths),
		unaryMethod(CoordService, "UpdateChannelCheckpoint", CoordServer.UpdateChannelCheckpoint),
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

// ClaimChannel starts a legacy pipeline's incarnation.
func (c *CoordClient) ClaimChannel(ctx context.Context, req *ClaimChannelRequest, opts ...grpc.CallOption) (*ClaimChannelResponse, error) {
	return invoke[ClaimChannelResponse](ctx, c.cc, "/"+CoordService+"/ClaimChannel", req, opts)
}

// SaveBinlogPaths sends a legacy segment meta write.
func (c *CoordClient) SaveBinlogPaths(ctx context.Context, req *SaveBinlogPathsRequest, opts ...grpc.CallOption) (*SaveBinlogPathsResponse, error) {
	return invoke[SaveBinlogPathsResponse](ctx, c.cc, "/"+CoordService+"/SaveBinlogPaths", req, opts)
}

// UpdateChannelCheckpoint sends a legacy checkpoint write.
func (c *CoordClient) UpdateChannelCheckpoint(ctx context.Context, req *UpdateChannelCheckpointRequest, opts ...grpc.CallOption) (*UpdateChannelCheckpointResponse, error) {
	return invoke[UpdateChannelCheckpointResponse](ctx, c.cc, "/"+CoordService+"/UpdateChannelCheckpoint", req, opts)
}
