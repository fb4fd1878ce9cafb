package readapi

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/weir-db/weir/internal/apierr"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/querynode"
)

// TestSearchParams covers the parameters the Go SDK cannot send wrong: a missing topk, and
// topk and offset inside the params JSON.
func TestSearchParams(t *testing.T) {
	_, err := parseSearchParams(kvs("metric_type", "L2"))
	require.EqualError(t, err, "topk is required")
	require.Equal(t, apierr.Unexpected, apierr.KindOf(err))
	p, err := parseSearchParams(kvs("params", `{"topk": 7, "offset": 3}`, "round_decimal", "2"))
	require.NoError(t, err)
	require.Equal(t, searchParams{topK: 7, offset: 3, round: 2, index: map[string]any{"topk": json.Number("7"), "offset": json.Number("3")}}, p)
	_, err = parseSearchParams(kvs("topk", "5", "round_decimal", "-2"))
	require.EqualError(t, err, "round_decimal [-2] is invalid, should be -1 or an integer in range [0, 6]")
	for _, c := range []struct {
		params []string
		want   string
	}{
		{[]string{"topk", "5", "params", `{"radius": 1.0}`}, "range search (radius) is not served by Weir yet"},
		{[]string{"topk", "5", "params", `{"range_filter": 0.5}`}, "range search (range_filter) is not served by Weir yet"},
		{[]string{"topk", "5", "group_by_field", "age"}, `grouping search (group_by_field "age") is not served by Weir yet`},
		{[]string{"topk", "5", "iterator", "true"}, "search iterators (iterator) are not served by Weir yet"},
	} {
		_, err := parseSearchParams(kvs(c.params...))
		require.ErrorContains(t, err, c.want)
		require.Equal(t, apierr.ParameterInvalid, apierr.KindOf(err))
	}
	p, err = parseSearchParams(kvs("topk", "5", "ignore_growing", "true", "iterator", "false"))
	require.NoError(t, err)
	require.True(t, p.ignoreGrowing)
	p, err = parseSearchParams(kvs("topk", "5", "ignore_growing", "True", "iterator", "False"))
	require.NoError(t, err)
	require.True(t, p.ignoreGrowing, "pymilvus sends True")
	require.Equal(t, float32(0.12), roundScore(0.123456, 2))
	require.Equal(t, float32(-0.13), roundScore(-0.125, 2), "half away from zero")
}

// TestQueryParams covers the limits the Go SDK cannot send as text.
func TestQueryParams(t *testing.T) {
	_, err := parseQueryParams(map[string]string{"limit": "x"})
	require.EqualError(t, err, "limit [x] is invalid")
	_, err = parseQueryParams(map[string]string{"limit": "3", "offset": "y"})
	require.EqualError(t, err, "offset [y] is invalid")
	w, err := parseQueryParams(map[string]string{"offset": "5"})
	require.NoError(t, err)
	require.Equal(t, queryWindow{limit: -1}, w, "an offset without a limit is ignored, as in Milvus")
}

type noNodes struct{}

func (noNodes) Live(context.Context) ([]int64, error) { return []int64{1}, nil }
func (noNodes) Search(context.Context, int64, *querynode.SearchRequest) (*querynode.SearchResult, error) {
	return nil, querynode.ErrNotServing
}
func (noNodes) Query(context.Context, int64, *querynode.QueryRequest) (*querynode.QueryResult, error) {
	return nil, querynode.ErrNotServing
}

// TestLoadProgress follows a load through its states: not loaded (progress refused with
// Milvus's text), loading while no shard serves, released.
func TestLoadProgress(t *testing.T) {
	ctx := context.Background()
	s, coll := newService(t)
	s.SetQueryNodes(noNodes{})
	p, err := s.GetLoadingProgress(ctx, &milvuspb.GetLoadingProgressRequest{CollectionName: "books"})
	require.NoError(t, err)
	require.Equal(t, "collection not loaded[collection="+itoa(coll.ID)+"]", p.GetStatus().GetReason())
	require.Equal(t, int32(101), p.GetStatus().GetCode())

	st, err := s.LoadCollection(ctx, &milvuspb.LoadCollectionRequest{CollectionName: "books"})
	require.NoError(t, err)
	require.Equal(t, "index not found[collection=books]", st.GetReason())
	st, err = s.CreateIndex(ctx, &milvuspb.CreateIndexRequest{CollectionName: "books", FieldName: "vec", ExtraParams: kvs("index_type", "FLAT", "metric_type", "L2")})
	require.NoError(t, err)
	require.Zero(t, st.GetCode(), st.GetReason())
	st, err = s.LoadCollection(ctx, &milvuspb.LoadCollectionRequest{CollectionName: "books"})
	require.NoError(t, err)
	require.Zero(t, st.GetCode(), st.GetReason())

	ls, err := s.GetLoadState(ctx, &milvuspb.GetLoadStateRequest{CollectionName: "books"})
	require.NoError(t, err)
	require.Equal(t, commonpb.LoadState_LoadStateLoading, ls.GetState(), "no shard serves yet")
	p, err = s.GetLoadingProgress(ctx, &milvuspb.GetLoadingProgressRequest{CollectionName: "books"})
	require.NoError(t, err)
	require.Zero(t, p.GetStatus().GetCode())
	require.Zero(t, p.GetProgress())

	st, err = s.ReleaseCollection(ctx, &milvuspb.ReleaseCollectionRequest{CollectionName: "books"})
	require.NoError(t, err)
	require.Zero(t, st.GetCode())
	ls, err = s.GetLoadState(ctx, &milvuspb.GetLoadStateRequest{CollectionName: "books"})
	require.NoError(t, err)
	require.Equal(t, commonpb.LoadState_LoadStateNotLoad, ls.GetState())
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// TestLoadFailureIsReported: a shard whose load failed makes GetLoadingProgress fail with the
// failure first, as Milvus reports a failed load, so that a client awaiting the load stops.
func TestLoadFailureIsReported(t *testing.T) {
	ctx := context.Background()
	s, coll := newService(t)
	s.SetQueryNodes(noNodes{})
	st, err := s.CreateIndex(ctx, &milvuspb.CreateIndexRequest{CollectionName: "books", FieldName: "vec", ExtraParams: kvs("index_type", "FLAT", "metric_type", "L2")})
	require.NoError(t, err)
	require.Zero(t, st.GetCode(), st.GetReason())
	st, err = s.LoadCollection(ctx, &milvuspb.LoadCollectionRequest{CollectionName: "books"})
	require.NoError(t, err)
	require.Zero(t, st.GetCode(), st.GetReason())
	cat := s.catalog.(*meta.Catalog)
	l, err := cat.GetLoad(ctx, coll.ID)
	require.NoError(t, err)
	rev, err := cat.AssignShard(ctx, meta.ShardAssignment{CollectionID: coll.ID, Channel: coll.VChannels[0], NodeID: 3}, l.ModRevision, 0)
	require.NoError(t, err)
	require.NoError(t, cat.ReportShard(ctx, meta.ShardState{CollectionID: coll.ID, Channel: coll.VChannels[0], NodeID: 3, Assignment: rev,
		Error: "query node 3: loading needs about 2048 more bytes, over its memory limit of 1024 bytes"}))
	p, err := s.GetLoadingProgress(ctx, &milvuspb.GetLoadingProgressRequest{CollectionName: "books"})
	require.NoError(t, err)
	require.Equal(t, int32(101), p.GetStatus().GetCode())
	require.Equal(t, "load of channel "+coll.VChannels[0]+" on query node 3 failed: query node 3: loading needs about 2048 more bytes, over its memory limit of 1024 bytes: collection not loaded[collection="+itoa(coll.ID)+"]", p.GetStatus().GetReason())
}

// TestFloatSearchIsWhatSearchReads: the request FloatSearch builds carries its vector and
// parameters as the search path reads them.
func TestFloatSearchIsWhatSearchReads(t *testing.T) {
	req, err := FloatSearch("books", []float32{1.5, -2}, 7, "vec", "IP", commonpb.ConsistencyLevel_Bounded)
	require.NoError(t, err)
	p, err := parseSearchParams(req.GetSearchParams())
	require.NoError(t, err)
	require.Equal(t, searchParams{topK: 7, metric: "IP", anns: "vec", round: -1}, p)
	var g commonpb.PlaceholderGroup
	require.NoError(t, proto.Unmarshal(req.GetPlaceholderGroup(), &g))
	require.Equal(t, commonpb.PlaceholderType_FloatVector, g.GetPlaceholders()[0].GetType())
	require.Equal(t, []byte{0, 0, 0xc0, 0x3f, 0, 0, 0, 0xc0}, g.GetPlaceholders()[0].GetValues()[0])
	require.Equal(t, commonpb.ConsistencyLevel_Bounded, req.GetConsistencyLevel())
}
