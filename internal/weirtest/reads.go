package weirtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/readapi"
)

// IndexAndLoad defines a FLAT L2 index on the writer's collection's "vec" and loads it with
// replicas replicas, waiting until it is loaded.
func IndexAndLoad(t *testing.T, w *Writer, replicas int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := w.C.CreateIndex(ctx, &milvuspb.CreateIndexRequest{CollectionName: w.Name, FieldName: "vec",
		ExtraParams: []*commonpb.KeyValuePair{{Key: "index_type", Value: "FLAT"}, {Key: "metric_type", Value: "L2"}}})
	require.NoError(t, err)
	require.Zero(t, st.GetCode(), st.GetReason())
	LoadReplicas(t, w, replicas)
}

// LoadReplicas loads the writer's collection with replicas replicas (a change of the replica
// number of a loaded collection too) and waits until every shard serves.
func LoadReplicas(t *testing.T, w *Writer, replicas int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := w.C.LoadCollection(ctx, &milvuspb.LoadCollectionRequest{CollectionName: w.Name, ReplicaNumber: replicas})
	require.NoError(t, err)
	require.Zero(t, st.GetCode(), st.GetReason())
	WaitLoaded(t, w)
}

// WaitLoaded waits until the writer's collection is loaded.
func WaitLoaded(t *testing.T, w *Writer) {
	t.Helper()
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r, err := w.C.GetLoadState(ctx, &milvuspb.GetLoadStateRequest{CollectionName: w.Name})
		return err == nil && r.GetState() == commonpb.LoadState_LoadStateLoaded
	}, 60*time.Second, 50*time.Millisecond, "collection %s never loaded", w.Name)
}

// CountStrong is count(*) of the writer's collection at Strong consistency.
func CountStrong(w *Writer) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := w.C.Query(ctx, &milvuspb.QueryRequest{CollectionName: w.Name, OutputFields: []string{"count(*)"},
		ConsistencyLevel: commonpb.ConsistencyLevel_Strong})
	if err != nil {
		return 0, err
	}
	if r.GetStatus().GetCode() != 0 {
		return 0, fmt.Errorf("count: %s", r.GetStatus().GetReason())
	}
	return r.GetFieldsData()[0].GetScalars().GetLongData().GetData()[0], nil
}

// SearchKey searches the writer's collection, at Strong consistency, for the vector of key k
// (Writer.Insert's [k, 0, 0, ...]) and returns the top hit's key.
func SearchKey(w *Writer, k int64) (int64, error) {
	q := make([]float32, max(w.Dim, 8))
	q[0] = float32(k)
	req, err := readapi.FloatSearch(w.Name, q, 1, "vec", "L2", commonpb.ConsistencyLevel_Strong)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := w.C.Search(ctx, req)
	if err != nil {
		return 0, err
	}
	if r.GetStatus().GetCode() != 0 {
		return 0, fmt.Errorf("search: %s", r.GetStatus().GetReason())
	}
	ids := r.GetResults().GetIds().GetIntId().GetData()
	if len(ids) != 1 {
		return 0, fmt.Errorf("search for %d: %d hits", k, len(ids))
	}
	return ids[0], nil
}

// Live is the number of keys acknowledged as inserted and not acknowledged as deleted.
func (w *Writer) Live() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for k := range w.acked {
		if !w.deleted[k] {
			n++
		}
	}
	return n
}
