package apierr

import (
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestIOFailed: a Geometry value that is not WKT is reported as Milvus's proxy reports it,
// "IO failed: <reason>" with code 1001, and is marked as the caller's error.
func TestIOFailed(t *testing.T) {
	err := New(IOFailed, "syntax error: invalid keyword at line 1, pos 0")
	st := Status(err)
	require.Equal(t, int32(1001), st.GetCode())
	require.Equal(t, commonpb.ErrorCode_UnexpectedError, st.GetErrorCode())
	require.Equal(t, "IO failed: syntax error: invalid keyword at line 1, pos 0", st.GetReason())
	require.False(t, st.GetRetriable())
	require.Equal(t, "true", st.GetExtraInfo()["is_input_error"])
	require.Equal(t, codes.InvalidArgument, status.Code(err))
}
