package proxy

import (
	"log/slog"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/weir-db/weir/internal/rpc"
)

// MaxMessageSize bounds one request or response, as Milvus's proxy.grpc.serverMaxRecvSize
// (256 MiB) does: an insert of 1,000 rows of 32,768-dim vectors is 128 MiB.
const MaxMessageSize = 256 << 20

// insertWindow is the flow-control window of one insert stream.
const insertWindow = 8 << 20

// NewGRPCServer returns a gRPC server with the Milvus service registered, a panic guard, and the
// keepalive policy Milvus SDKs need: the Go SDK pings every 5 s even without calls in flight,
// which grpc-go's default policy answers with GOAWAY "too_many_pings".
func NewGRPCServer(s *Server, logger *slog.Logger) *grpc.Server {
	srv := grpc.NewServer(
		grpc.MaxRecvMsgSize(MaxMessageSize),
		grpc.MaxSendMsgSize(MaxMessageSize),
		// An insert of 1,000 768-dim rows is 3 MB. With gRPC's 64 KB starting window the client
		// waits for a window update every 64 KB until the estimator has grown it; a window that
		// holds a whole request lets it be sent in one go.
		grpc.InitialWindowSize(insertWindow),
		grpc.InitialConnWindowSize(4*insertWindow),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 2 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.ChainUnaryInterceptor(rpc.RecoverUnary(logger)),
	)
	milvuspb.RegisterMilvusServiceServer(srv, s)
	return srv
}
