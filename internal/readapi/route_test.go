package readapi

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/querynode"
)

// TestFanOutFailingOneShardReleasesTheOthers: when one channel's call fails and another's
// succeeded, fanOut answers the error and releases the record it got, and only that one: the
// failed channel has no result to release (it used to be read through a nil result, a panic
// every search and query hit while a query node was failing over).
func TestFanOutFailingOneShardReleasesTheOthers(t *testing.T) {
	s, _ := newService(t)
	coll := &meta.Collection{ID: 99, Name: "two", VChannels: []string{"a", "b"}}
	s.routes.byCol[coll.ID] = &routeSet{at: time.Now(), serving: map[string][]int64{"a": {1}, "b": {1}}}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	_, err := fanOut(context.Background(), s, coll, func(ctx context.Context, ch string, node int64) (*querynode.SearchResult, error) {
		if ch == "b" {
			return nil, errors.New("node 1 is gone")
		}
		b := array.NewInt64Builder(mem)
		defer b.Release()
		b.Append(1)
		col := b.NewArray()
		defer col.Release()
		schema := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil)
		return &querynode.SearchResult{Fields: array.NewRecordBatch(schema, []arrow.Array{col}, 1)}, nil
	}, func(r *querynode.SearchResult) arrow.RecordBatch { return r.Fields })
	require.ErrorContains(t, err, "node 1 is gone")
}
