package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func createCollection(t testing.TB, c milvuspb.MilvusServiceClient, name string, shards int32) {
	t.Helper()
	s := &schemapb.CollectionSchema{Name: name, Fields: []*schemapb.FieldSchema{
		{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
		{Name: "vec", DataType: schemapb.DataType_FloatVector, TypeParams: []*commonpb.KeyValuePair{{Key: "dim", Value: "8"}}},
	}}
	b, err := proto.Marshal(s)
	require.NoError(t, err)
	st, err := c.CreateCollection(ctxT(t), &milvuspb.CreateCollectionRequest{CollectionName: name, Schema: b, ShardsNum: shards})
	require.NoError(t, err)
	require.Zero(t, st.GetCode(), st.GetReason())
}

func showCollections(t testing.TB, c milvuspb.MilvusServiceClient) []string {
	t.Helper()
	resp, err := c.ShowCollections(ctxT(t), &milvuspb.ShowCollectionsRequest{})
	require.NoError(t, err)
	require.Zero(t, resp.GetStatus().GetCode(), resp.GetStatus().GetReason())
	return resp.GetCollectionNames()
}

func describe(t testing.TB, c milvuspb.MilvusServiceClient, name string) *milvuspb.DescribeCollectionResponse {
	t.Helper()
	resp, err := c.DescribeCollection(ctxT(t), &milvuspb.DescribeCollectionRequest{CollectionName: name})
	require.NoError(t, err)
	require.Zero(t, resp.GetStatus().GetCode(), resp.GetStatus().GetReason())
	return resp
}
