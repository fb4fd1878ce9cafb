package readapi

import (
	"context"
	"log/slog"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/apierr"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/metastore"
	"github.com/weir-db/weir/internal/schema"
)

func newService(t *testing.T) (*Service, *meta.Collection) {
	t.Helper()
	kv := metastore.NewMemory()
	t.Cleanup(func() { kv.Close() })
	cat := meta.NewCatalog(kv, "weir", meta.NewIDAllocator(kv, "weir", 10), slog.New(slog.DiscardHandler))
	s, err := schema.Normalize("books", &schemapb.CollectionSchema{Fields: []*schemapb.FieldSchema{
		{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
		{Name: "vec", DataType: schemapb.DataType_FloatVector, TypeParams: []*commonpb.KeyValuePair{{Key: "dim", Value: "4"}}},
	}})
	require.NoError(t, err)
	coll, _, err := cat.CreateCollection(context.Background(), &meta.Collection{DB: meta.DefaultDatabase, Name: "books", Schema: s, Shards: 1})
	require.NoError(t, err)
	return New(cat, func(ctx context.Context, db, name string) (*meta.Collection, error) {
		return cat.GetCollectionByName(ctx, meta.DefaultDatabase, name)
	}), coll
}

func kvs(pairs ...string) []*commonpb.KeyValuePair {
	var out []*commonpb.KeyValuePair
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, &commonpb.KeyValuePair{Key: pairs[i], Value: pairs[i+1]})
	}
	return out
}

// TestCreateIndexChecks covers what the Go SDK cannot send: a repeated parameter, parameters in
// a "params" JSON object, and the state and progress calls.
func TestCreateIndexChecks(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	st, err := s.CreateIndex(ctx, &milvuspb.CreateIndexRequest{CollectionName: "books", FieldName: "vec",
		ExtraParams: kvs("index_type", "FLAT", "metric_type", "L2", "metric_type", "IP")})
	require.NoError(t, err)
	require.Equal(t, apierr.Code(apierr.ParameterInvalid), st.GetCode())
	require.Equal(t, "duplicated index param (key=metric_type) (value=IP) found: invalid parameter", st.GetReason())

	// Keys inside "params" count as keys of their own; the parameters are kept as given.
	st, err = s.CreateIndex(ctx, &milvuspb.CreateIndexRequest{CollectionName: "books", FieldName: "vec",
		ExtraParams: kvs("params", `{"index_type": "FLAT", "metric_type": "COSINE"}`)})
	require.NoError(t, err)
	require.Zero(t, st.GetCode(), st.GetReason())
	d, err := s.DescribeIndex(ctx, &milvuspb.DescribeIndexRequest{CollectionName: "books"})
	require.NoError(t, err)
	require.Zero(t, d.GetStatus().GetCode(), d.GetStatus().GetReason())
	require.Len(t, d.GetIndexDescriptions(), 1)
	require.Equal(t, kvs("params", `{"index_type": "FLAT", "metric_type": "COSINE"}`), d.GetIndexDescriptions()[0].GetParams())
	require.Equal(t, commonpb.IndexState_Finished, d.GetIndexDescriptions()[0].GetState())

	state, err := s.GetIndexState(ctx, &milvuspb.GetIndexStateRequest{CollectionName: "books", IndexName: "vec"})
	require.NoError(t, err)
	require.Equal(t, commonpb.IndexState_Finished, state.GetState())
	progress, err := s.GetIndexBuildProgress(ctx, &milvuspb.GetIndexBuildProgressRequest{CollectionName: "books", IndexName: "vec"})
	require.NoError(t, err)
	require.Zero(t, progress.GetStatus().GetCode())
	state, err = s.GetIndexState(ctx, &milvuspb.GetIndexStateRequest{CollectionName: "books", IndexName: "nope"})
	require.NoError(t, err)
	require.Equal(t, "index not found[indexName=nope]", state.GetStatus().GetReason())
	require.Equal(t, int32(700), state.GetStatus().GetCode())
	require.Equal(t, commonpb.ErrorCode_IndexNotExist, state.GetStatus().GetErrorCode())

	st, err = s.CreateIndex(ctx, &milvuspb.CreateIndexRequest{CollectionName: "books", FieldName: "vec", ExtraParams: kvs("index_type", "HNSW_PQ", "metric_type", "L2")})
	require.NoError(t, err)
	require.Contains(t, st.GetReason(), "index type HNSW_PQ is not supported by Weir yet; it builds FLAT, HNSW, IVF_FLAT, IVF_SQ8 and AUTOINDEX")

	st, err = s.CreateIndex(ctx, &milvuspb.CreateIndexRequest{CollectionName: "nope", FieldName: "vec", ExtraParams: kvs("index_type", "FLAT", "metric_type", "L2")})
	require.NoError(t, err)
	require.Equal(t, int32(100), st.GetCode(), st.GetReason())
}
