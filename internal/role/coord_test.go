package role

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
)

// TestLiveClosesConnectionsOfGoneAddresses checks that the coordinator does not keep a
// connection per data node restart: once no session advertises an address any more, the
// connection to it is closed and forgotten; connections to live addresses are kept.
func TestLiveClosesConnectionsOfGoneAddresses(t *testing.T) {
	dial := func(addr string) *grpc.ClientConn {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		t.Cleanup(func() { _ = cc.Close() })
		return cc
	}
	old, kept := dial("127.0.0.1:1"), dial("127.0.0.1:2")
	r := &remoteNodes{peers{conns: map[string]*grpc.ClientConn{"127.0.0.1:1": old, "127.0.0.1:2": kept}}}
	r.setLive(map[int64]string{1: "127.0.0.1:3", 2: "127.0.0.1:2"}, map[int64]string{1: "current", 2: "current"})
	require.Equal(t, map[string]*grpc.ClientConn{"127.0.0.1:2": kept}, r.conns)
	require.Equal(t, connectivity.Shutdown, old.GetState(), "the connection of a gone address is closed")
	require.NotEqual(t, connectivity.Shutdown, kept.GetState())
	require.Equal(t, "current", r.Protocol(1))
}
