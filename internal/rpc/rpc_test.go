package rpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/status"

	"github.com/weir-db/weir/internal/meta"

	"github.com/weir-db/weir/internal/apierr"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// dataNode is a DataNodeServer that records its requests and answers with what the test set.
type dataNode struct {
	mu       sync.Mutex
	watched  []*WatchRequest
	released []*ReleaseRequest
	status   *StatusResponse
	err      error                                   // returned by every method when set
	hook     func(ctx context.Context) (bool, error) // when set and it returns true, Status returns its error
}

func (d *dataNode) Watch(_ context.Context, req *WatchRequest) (*WatchResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return nil, d.err
	}
	d.watched = append(d.watched, req)
	return &WatchResponse{}, nil
}

func (d *dataNode) Release(_ context.Context, req *ReleaseRequest) (*ReleaseResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return nil, d.err
	}
	d.released = append(d.released, req)
	return nil, nil // a nil answer must still reach the caller as a response
}

func (d *dataNode) Status(ctx context.Context, _ *StatusRequest) (*StatusResponse, error) {
	if d.hook != nil {
		if handled, err := d.hook(ctx); handled {
			return nil, err
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.status, d.err
}

type coord struct {
	UnimplementedCoordServer
	got   *RecoveryInfoRequest
	resp  *RecoveryInfoResponse
	saved *SaveBinlogPathsRequest
	cp    *UpdateChannelCheckpointRequest
}

func (c *coord) SaveBinlogPaths(_ context.Context, req *SaveBinlogPathsRequest) (*SaveBinlogPathsResponse, error) {
	c.saved = req
	return &SaveBinlogPathsResponse{}, nil
}

func (c *coord) UpdateChannelCheckpoint(_ context.Context, req *UpdateChannelCheckpointRequest) (*UpdateChannelCheckpointResponse, error) {
	c.cp = req
	return &UpdateChannelCheckpointResponse{}, nil
}

func (c *coord) GetRecoveryInfo(_ context.Context, req *RecoveryInfoRequest) (*RecoveryInfoResponse, error) {
	c.got = req
	return c.resp, nil
}

// syncBuffer is a log sink the server's goroutines write to while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type env struct {
	dn   *dataNode
	co   *coord
	logs *syncBuffer
	addr string
	cc   *grpc.ClientConn
}

// serve runs a server with both services on a loopback port and dials it; both are stopped
// when the test ends.
func serve(t *testing.T) *env {
	t.Helper()
	e := &env{dn: &dataNode{}, co: &coord{}, logs: &syncBuffer{}}
	srv := NewServer(slog.New(slog.NewTextHandler(e.logs, nil)))
	RegisterDataNodeServer(srv, e.dn)
	RegisterCoordServer(srv, e.co)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.Stop()
		require.NoError(t, <-served)
	})
	e.addr = lis.Addr().String()
	e.cc = dial(t, e.addr)
	return e
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	cc, err := Dial(ctx, addr)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, cc.Close()) })
	return cc
}

func TestDataNodeRoundTrip(t *testing.T) {
	e := serve(t)
	c := NewDataNodeClient(e.cc)

	wr, err := c.Watch(t.Context(), &WatchRequest{Channel: "by-dml-0", LeaseRevision: math.MaxInt64})
	require.NoError(t, err)
	require.Equal(t, &WatchResponse{}, wr)
	require.Equal(t, []*WatchRequest{{Channel: "by-dml-0", LeaseRevision: math.MaxInt64}}, e.dn.watched)

	rr, err := c.Release(t.Context(), &ReleaseRequest{Channel: "by-dml-1"})
	require.NoError(t, err)
	require.Equal(t, &ReleaseResponse{}, rr, "a handler's nil answer arrives as an empty response")
	require.Equal(t, []*ReleaseRequest{{Channel: "by-dml-1"}}, e.dn.released)

	want := &StatusResponse{NodeID: 7, Channels: map[string]int64{"a": 1, "b": 1 << 40}, Errors: map[string]string{"c": "meta: channel lease lost"}}
	e.dn.status = want
	sr, err := c.Status(t.Context(), &StatusRequest{})
	require.NoError(t, err)
	require.Equal(t, want, sr)

	// A nil request is an empty one.
	_, err = c.Watch(t.Context(), nil)
	require.NoError(t, err)
	require.Equal(t, &WatchRequest{}, e.dn.watched[1])
}

func TestCoordRoundTrip(t *testing.T) {
	e := serve(t)
	c := NewCoordClient(e.cc)
	want := &RecoveryInfoResponse{
		Revision: 42,
		Channels: []ChannelRecovery{
			{
				Channel: "by-dml-0", Checkpoint: math.MaxUint64, CheckpointTs: 1<<63 + 1, // full 64-bit precision
				Flushed: []SegmentRecovery{{
					ID: 1, PartitionID: 2, Rows: 3, State: "Flushed", Level: "L1", MaxPos: 99,
					Files: []FileRecovery{
						{Key: "weir/insert/1/2/1/5-6.parquet", Kind: "insert", Rows: 3, Bytes: 4096},
						{Key: "weir/stats/1/2/1/5-7.parquet", Kind: "stats", Rows: 3, Bytes: 128},
					},
				}},
				Growing: []SegmentRecovery{{ID: 8, PartitionID: 2, Rows: 1, State: "Growing", Level: "L1", MaxPos: 100, Files: []FileRecovery{}}},
			},
			{Channel: "by-dml-1"},
		},
	}
	e.co.resp = want
	got, err := c.GetRecoveryInfo(t.Context(), &RecoveryInfoRequest{CollectionID: 5, Channel: "by-dml-0"})
	require.NoError(t, err)
	require.Equal(t, want, got)
	require.Equal(t, &RecoveryInfoRequest{CollectionID: 5, Channel: "by-dml-0"}, e.co.got)

	save := &SaveBinlogPathsRequest{Channel: "c", NodeID: 2, OpID: 9,
		Segments:   []SegmentUpdate{{Segment: meta.Segment{ID: 4, Rows: 10, MaxPos: 7, State: meta.Flushed}, Files: []meta.File{{ID: 5, Key: "k", Kind: meta.InsertFile}}}},
		Checkpoint: &meta.Checkpoint{Position: 7, Timestamp: 1 << 60}}
	_, err = c.SaveBinlogPaths(t.Context(), save)
	require.NoError(t, err)
	require.Equal(t, save, e.co.saved)
	upd := &UpdateChannelCheckpointRequest{Channel: "c", NodeID: 2, OpID: 9, Checkpoint: meta.Checkpoint{Position: 8}}
	_, err = c.UpdateChannelCheckpoint(t.Context(), upd)
	require.NoError(t, err)
	require.Equal(t, upd, e.co.cp)
}

func TestErrorsKeepCodeAndMessage(t *testing.T) {
	cases := []struct {
		name string
		err  error
		code codes.Code
		msg  string
	}{
		{"status error", status.Error(codes.FailedPrecondition, "by-dml-0 is leased to node 2"), codes.FailedPrecondition, "by-dml-0 is leased to node 2"},
		{"apierr", apierr.New(apierr.CollectionNotFound, "collection 5"), codes.NotFound, "collection not found: collection 5"},
		{"wrapped apierr", fmt.Errorf("recovery of %d: %w", 5, apierr.New(apierr.ParameterInvalid, "channel %q", "x")), codes.InvalidArgument, `recovery of 5: invalid parameter: channel "x"`},
		{"canceled", fmt.Errorf("read lease: %w", context.Canceled), codes.Canceled, "read lease: context canceled"},
		{"deadline", fmt.Errorf("read lease: %w", context.DeadlineExceeded), codes.DeadlineExceeded, "read lease: context deadline exceeded"},
		{"plain error", errors.New("datanode: node closed"), codes.Unknown, "datanode: node closed"},
	}
	e := serve(t)
	c := NewDataNodeClient(e.cc)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.dn.mu.Lock()
			e.dn.err = tc.err
			e.dn.mu.Unlock()
			resp, err := c.Watch(t.Context(), &WatchRequest{Channel: "by-dml-0"})
			require.Nil(t, resp)
			st, ok := status.FromError(err)
			require.True(t, ok, "a status error: %v", err)
			require.Equal(t, tc.code, st.Code())
			require.Equal(t, tc.msg, st.Message())
		})
	}
}

func TestCallerDeadlineIsDeadlineExceeded(t *testing.T) {
	e := serve(t)
	e.dn.hook = func(ctx context.Context) (bool, error) {
		<-ctx.Done() // the caller's deadline reaches the handler
		return true, ctx.Err()
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := NewDataNodeClient(e.cc).Status(ctx, &StatusRequest{})
	require.Equal(t, codes.DeadlineExceeded, status.Code(err))
}

func TestPanicReturnsInternalAndServerSurvives(t *testing.T) {
	e := serve(t)
	e.dn.hook = func(context.Context) (bool, error) { panic("broken invariant") }
	c := NewDataNodeClient(e.cc)

	_, err := c.Status(t.Context(), &StatusRequest{})
	require.Equal(t, codes.Internal, status.Code(err))
	require.Equal(t, "internal error in /weir.DataNode/Status", status.Convert(err).Message())
	require.Contains(t, e.logs.String(), "panic in rpc handler")
	require.Contains(t, e.logs.String(), "broken invariant")
	require.Contains(t, e.logs.String(), "goroutine ", "the stack is logged")

	// Same connection, same server: still serving.
	e.dn.hook = nil
	e.dn.status = &StatusResponse{NodeID: 3}
	sr, err := c.Status(t.Context(), &StatusRequest{})
	require.NoError(t, err)
	require.Equal(t, int64(3), sr.NodeID)
}

func TestUnknownMethodIsUnimplemented(t *testing.T) {
	e := serve(t)
	for _, method := range []string{"/weir.DataNode/Compact", "/weir.Nope/Watch"} {
		t.Run(method, func(t *testing.T) {
			err := e.cc.Invoke(t.Context(), method, &WatchRequest{}, &WatchResponse{})
			require.Equal(t, codes.Unimplemented, status.Code(err), "%v", err)
		})
	}
}

func TestUnimplementedServers(t *testing.T) {
	srv := NewServer(nil)
	RegisterDataNodeServer(srv, UnimplementedDataNodeServer{})
	RegisterCoordServer(srv, UnimplementedCoordServer{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	defer func() {
		srv.GracefulStop()
		require.NoError(t, <-served)
	}()
	cc := dial(t, lis.Addr().String())

	dn, co := NewDataNodeClient(cc), NewCoordClient(cc)
	calls := map[string]func() error{
		"Watch":           func() error { _, err := dn.Watch(t.Context(), &WatchRequest{}); return err },
		"Release":         func() error { _, err := dn.Release(t.Context(), &ReleaseRequest{}); return err },
		"Status":          func() error { _, err := dn.Status(t.Context(), &StatusRequest{}); return err },
		"GetRecoveryInfo": func() error { _, err := co.GetRecoveryInfo(t.Context(), &RecoveryInfoRequest{}); return err },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			err := call()
			require.Equal(t, codes.Unimplemented, status.Code(err))
			require.Contains(t, status.Convert(err).Message(), name)
		})
	}
}

// rawCodec sends bytes as they are, to put arbitrary JSON on the wire.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error)      { return v.([]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error { *(v.(*[]byte)) = data; return nil }
func (rawCodec) Name() string                       { return CodecName }

func TestWireCompatibility(t *testing.T) {
	e := serve(t)
	raw := grpc.ForceCodec(rawCodec{})

	t.Run("unknown fields are ignored", func(t *testing.T) {
		var out []byte
		in := []byte(`{"channel":"by-dml-0","lease_revision":12,"field_of_a_newer_version":{"x":1}}`)
		require.NoError(t, e.cc.Invoke(t.Context(), "/weir.DataNode/Watch", in, &out, raw))
		require.JSONEq(t, `{}`, string(out))
		require.Equal(t, &WatchRequest{Channel: "by-dml-0", LeaseRevision: 12}, e.dn.watched[len(e.dn.watched)-1])
	})
	t.Run("missing fields are zero", func(t *testing.T) {
		var out []byte
		require.NoError(t, e.cc.Invoke(t.Context(), "/weir.DataNode/Watch", []byte(`{}`), &out, raw))
		require.Equal(t, &WatchRequest{}, e.dn.watched[len(e.dn.watched)-1])
	})
	t.Run("field names on the wire", func(t *testing.T) {
		e.dn.status = &StatusResponse{NodeID: 1, Channels: map[string]int64{"a": 2}, Errors: map[string]string{}}
		var out []byte
		require.NoError(t, e.cc.Invoke(t.Context(), "/weir.DataNode/Status", []byte(`{}`), &out, raw))
		require.JSONEq(t, `{"node_id":1,"channels":{"a":2},"errors":{}}`, string(out))
	})
	t.Run("malformed request", func(t *testing.T) {
		var out []byte
		err := e.cc.Invoke(t.Context(), "/weir.DataNode/Watch", []byte(`{"channel":`), &out, raw)
		require.Equal(t, codes.Internal, status.Code(err), "%v", err)
		require.Contains(t, status.Convert(err).Message(), "unmarshal")
	})
}

func TestCodec(t *testing.T) {
	c := encoding.GetCodec(CodecName)
	require.NotNil(t, c, "registered with grpc-go")
	require.Equal(t, CodecName, c.Name())
	_, err := c.Marshal(make(chan int))
	require.Error(t, err)
	b, err := c.Marshal(&ReleaseRequest{Channel: "x"})
	require.NoError(t, err)
	var r ReleaseRequest
	require.NoError(t, c.Unmarshal(b, &r))
	require.Equal(t, ReleaseRequest{Channel: "x"}, r)
}

func TestDial(t *testing.T) {
	t.Run("nothing listens", func(t *testing.T) {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := lis.Addr().String()
		require.NoError(t, lis.Close())
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		cc, err := Dial(ctx, addr)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.ErrorContains(t, err, addr)
		require.Nil(t, cc)
	})
	for _, addr := range []string{"", "dns:///%zz"} {
		t.Run(fmt.Sprintf("invalid address %q", addr), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			cc, err := Dial(ctx, addr)
			require.ErrorIs(t, err, ErrInvalidAddress)
			require.Nil(t, cc)
		})
	}
	t.Run("reconnects after the server restarts", func(t *testing.T) {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := lis.Addr().String()
		start := func(lis net.Listener) func() {
			srv := NewServer(nil)
			RegisterDataNodeServer(srv, &dataNode{status: &StatusResponse{NodeID: 9}})
			served := make(chan error, 1)
			go func() { served <- srv.Serve(lis) }()
			return func() { srv.Stop(); require.NoError(t, <-served) }
		}
		stop := start(lis)
		cc := dial(t, addr)
		c := NewDataNodeClient(cc)
		_, err = c.Status(t.Context(), &StatusRequest{})
		require.NoError(t, err)

		stop()
		_, err = c.Status(t.Context(), &StatusRequest{})
		require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)

		lis, err = net.Listen("tcp", addr)
		require.NoError(t, err)
		defer start(lis)()
		require.Eventually(t, func() bool {
			r, err := c.Status(t.Context(), &StatusRequest{})
			return err == nil && r.NodeID == 9
		}, 10*time.Second, 50*time.Millisecond)
	})
}

// The services need nothing from NewServer: a plain grpc.Server (no interceptors) serves them.
func TestServicesOnAPlainServer(t *testing.T) {
	srv := grpc.NewServer()
	co := &coord{resp: &RecoveryInfoResponse{Revision: 3}}
	RegisterCoordServer(srv, co)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	defer func() {
		srv.Stop()
		require.NoError(t, <-served)
	}()
	got, err := NewCoordClient(dial(t, lis.Addr().String())).GetRecoveryInfo(t.Context(), &RecoveryInfoRequest{CollectionID: 1})
	require.NoError(t, err)
	require.Equal(t, &RecoveryInfoResponse{Revision: 3}, got)
	require.Equal(t, &RecoveryInfoRequest{CollectionID: 1}, co.got)
}
