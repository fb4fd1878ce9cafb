package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
)

// ErrInvalidAddress is returned by Dial for an address grpc-go would never connect to.
var ErrInvalidAddress = errors.New("rpc: invalid address")

// MaxMessageSize bounds one request or response in both directions. A recovery answer for a
// channel lists every segment and file of it; 256 MiB (the proxy's limit too) holds hundreds
// of thousands of them.
const MaxMessageSize = 256 << 20

// Keepalive policy shared by NewServer and Dial. A client pings an idle connection every
// clientPingTime, so a peer that died without closing its sockets is noticed within
// clientPingTime+clientPingTimeout; the server permits pings that often (serverMinPingTime <=
// clientPingTime), otherwise it would answer them with GOAWAY "too_many_pings".
const (
	clientPingTime    = 10 * time.Second
	clientPingTimeout = 5 * time.Second
	serverMinPingTime = 5 * time.Second
	serverPingTime    = 30 * time.Second
	serverPingTimeout = 10 * time.Second
	// maxReconnectDelay caps grpc-go's reconnect backoff (120 s by default): a restarted
	// peer on the same address is reached again within seconds.
	maxReconnectDelay = 5 * time.Second
)

// NewServer returns a gRPC server for Weir's internal services: message limits, the keepalive
// policy Dial's clients follow, a panic guard that logs to logger and answers Internal, and
// the mapping of context errors to their codes. opts are applied after these; interceptors in
// opts run inside the panic guard.
func NewServer(logger *slog.Logger, opts ...grpc.ServerOption) *grpc.Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	all := append([]grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxMessageSize),
		grpc.MaxSendMsgSize(MaxMessageSize),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: serverMinPingTime, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: serverPingTime, Timeout: serverPingTimeout}),
		grpc.ChainUnaryInterceptor(RecoverUnary(logger), statusUnary),
	}, opts...)
	return grpc.NewServer(all...)
}

// RecoverUnary turns a panic in a handler into an Internal error and a log line with the
// stack, so that no request can crash the process or reach a caller as a dropped connection.
// Every gRPC server of Weir, the Milvus API included, installs it.
func RecoverUnary(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				logger.Error("panic in rpc handler", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
				resp, err = nil, status.Errorf(codes.Internal, "internal error in %s", info.FullMethod)
			}
		}()
		return handler(ctx, req)
	}
}

// statusUnary gives context errors their own codes; grpc-go would send them as Unknown, and a
// caller retrying on DeadlineExceeded could not tell.
func statusUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	if err == nil {
		return resp, nil
	}
	if _, ok := status.FromError(err); ok {
		return nil, err
	}
	switch {
	case errors.Is(err, context.Canceled):
		return nil, status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return nil, status.Error(codes.DeadlineExceeded, err.Error())
	}
	return nil, err
}

// Dial connects to a Weir server at addr (host:port, or any gRPC target) and returns once the
// connection is ready, or fails when ctx ends first, so that a wrong address shows at once.
// Afterwards the connection reconnects by itself; calls made while the peer is down fail with
// Unavailable. Defaults: plaintext (Weir's internal traffic runs inside the cluster network;
// TLS would come as an opt), no HTTP proxy from the environment (a proxy variable must not
// divert loopback or pod-to-pod calls), keepalive pings, the message limits, and the JSON
// codec for every call. opts are applied after these. Close the connection when done.
func Dial(ctx context.Context, addr string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	if addr == "" {
		// grpc-go accepts it and then resolves it forever.
		return nil, fmt.Errorf("%w: empty", ErrInvalidAddress)
	}
	bo := backoff.DefaultConfig
	bo.MaxDelay = maxReconnectDelay
	all := append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithNoProxy(),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: clientPingTime, Timeout: clientPingTimeout, PermitWithoutStream: true}),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bo, MinConnectTimeout: 5 * time.Second}),
		grpc.WithDefaultCallOptions(
			grpc.CallContentSubtype(CodecName),
			grpc.MaxCallRecvMsgSize(MaxMessageSize),
			grpc.MaxCallSendMsgSize(MaxMessageSize),
		),
	}, opts...)
	cc, err := grpc.NewClient(addr, all...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w: %w", addr, ErrInvalidAddress, err)
	}
	cc.Connect()
	for {
		s := cc.GetState()
		if s == connectivity.Ready {
			return cc, nil
		}
		if !cc.WaitForStateChange(ctx, s) {
			_ = cc.Close() // the context's error is the one to report
			return nil, fmt.Errorf("dial %s: connection %s: %w", addr, s, ctx.Err())
		}
	}
}

// unaryMethod builds the descriptor of one unary method of service whose server type is S,
// calling call (a method expression such as DataNodeServer.Watch) with a decoded *Req.
func unaryMethod[S, Req, Resp any](service, name string, call func(S, context.Context, *Req) (*Resp, error)) grpc.MethodDesc {
	info := &grpc.UnaryServerInfo{FullMethod: "/" + service + "/" + name}
	return grpc.MethodDesc{
		MethodName: name,
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			req := new(Req)
			if err := dec(req); err != nil {
				return nil, err
			}
			handle := func(ctx context.Context, req any) (any, error) {
				resp, err := call(srv.(S), ctx, req.(*Req))
				if resp == nil && err == nil {
					resp = new(Resp) // a nil answer would reach the caller as JSON null
				}
				return resp, err
			}
			if interceptor == nil {
				return handle(ctx, req)
			}
			i := *info
			i.Server = srv
			return interceptor(ctx, req, &i, handle)
		},
	}
}

// invoke calls method on cc and decodes the answer into a new Resp. It selects the JSON codec
// itself, so a connection not made by Dial works too.
func invoke[Resp any](ctx context.Context, cc grpc.ClientConnInterface, method string, req any, opts []grpc.CallOption) (*Resp, error) {
	resp := new(Resp)
	opts = append([]grpc.CallOption{grpc.CallContentSubtype(CodecName)}, opts...)
	if err := cc.Invoke(ctx, method, req, resp, opts...); err != nil {
		return nil, err
	}
	return resp, nil
}
