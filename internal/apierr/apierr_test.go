package apierr

import (
	"errors"
	"fmt"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestEveryKindHasARow(t *testing.T) {
	for k := Internal; k <= IOFailed; k++ {
		r, ok := table[k]
		require.True(t, ok, "kind %d has no row", k)
		require.NotEmpty(t, r.name)
		require.NotZero(t, r.code, "kind %d: Milvus code 0 means success", k)
		require.NotEqual(t, codes.OK, r.grpc, "kind %d", k)
	}
}

func TestStatus(t *testing.T) {
	require.Equal(t, int32(0), Status(nil).GetCode())
	require.Equal(t, commonpb.ErrorCode_Success, Status(nil).GetErrorCode())

	err := New(CollectionNotFound, "collection %q in database %q", "books", "default")
	st := Status(err)
	require.Equal(t, int32(100), st.GetCode())
	require.Equal(t, commonpb.ErrorCode_CollectionNotExists, st.GetErrorCode())
	require.Equal(t, `collection not found: collection "books" in database "default"`, st.GetReason())
	require.False(t, st.GetRetriable())
	require.Equal(t, "true", st.GetExtraInfo()["is_input_error"])
	require.Empty(t, Status(New(Internal, "x")).GetExtraInfo())

	// A wrapped Weir error keeps its kind; anything else is internal.
	wrapped := fmt.Errorf("describe: %w", New(ParameterInvalid, "dim: expected 1..32768, got 0"))
	require.Equal(t, int32(1100), Status(wrapped).GetCode())
	require.Equal(t, commonpb.ErrorCode_IllegalArgument, Status(wrapped).GetErrorCode())
	require.Equal(t, int32(5), Status(errors.New("disk on fire")).GetCode())
	require.True(t, Status(New(ServiceNotReady, "")).GetRetriable())
}

func TestGRPCStatusAndIs(t *testing.T) {
	cause := errors.New("etcd down")
	err := Wrap(Unavailable, cause, "create collection %q", "c")
	require.Equal(t, codes.Unavailable, status.Code(err))
	require.ErrorIs(t, err, cause)
	require.ErrorIs(t, err, &Error{Kind: Unavailable})
	require.NotErrorIs(t, err, &Error{Kind: Internal})
	require.Equal(t, Unavailable, KindOf(fmt.Errorf("x: %w", err)))
	require.Equal(t, codes.NotFound, GRPCCode(CollectionNotFound))
	require.Equal(t, int32(1101), Code(ParameterMissing))
	require.Contains(t, err.Error(), "etcd down")
}
