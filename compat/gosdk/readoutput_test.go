package gosdk_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/milvus-io/milvus/client/v2/column"
	"github.com/milvus-io/milvus/client/v2/entity"
	"github.com/milvus-io/milvus/client/v2/index"
	"github.com/milvus-io/milvus/client/v2/milvusclient"
)

// TestOutputFieldsAsMilvusReturnsThem reads back, through search and query, what the previous
// release's schema features store: dynamic keys (asked for by name, or all of them with `*`),
// geometries as WKT, nullable values as nulls, defaults filled in, and filters on the dynamic
// field's neighbours.
func TestOutputFieldsAsMilvusReturnsThem(t *testing.T) {
	c := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	name := uniqueName("weir_output")
	dropAtCleanup(t, c, name)
	sch := entity.NewSchema().WithName(name).WithDynamicFieldEnabled(true).
		WithField(entity.NewField().WithName("id").WithDataType(entity.FieldTypeInt64).WithIsPrimaryKey(true)).
		WithField(entity.NewField().WithName("vec").WithDataType(entity.FieldTypeFloatVector).WithDim(4)).
		WithField(entity.NewField().WithName("geo").WithDataType(entity.FieldTypeGeometry)).
		WithField(entity.NewField().WithName("note").WithDataType(entity.FieldTypeVarChar).WithMaxLength(16).WithNullable(true)).
		WithField(entity.NewField().WithName("score").WithDataType(entity.FieldTypeInt32).WithDefaultValueInt(7))
	require.NoError(t, c.CreateCollection(ctx, milvusclient.NewCreateCollectionOption(name, sch)))
	notes, err := column.NewNullableColumnVarChar("note", []string{"one", "three"}, []bool{true, false, true})
	require.NoError(t, err)
	_, err = c.Insert(ctx, milvusclient.NewColumnBasedInsertOption(name,
		column.NewColumnInt64("id", []int64{1, 2, 3}),
		column.NewColumnFloatVector("vec", 4, [][]float32{{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}}),
		column.NewColumnGeometryWKT("geo", []string{"POINT (1 2)", "LINESTRING (0 0, 1 1)", "POINT (3 4)"}),
		notes,
		column.NewColumnVarChar("color", []string{"red", "green", "blue"}),
		column.NewColumnInt64("size", []int64{10, 20, 30})))
	require.NoError(t, err)
	idx, err := c.CreateIndex(ctx, milvusclient.NewCreateIndexOption(name, "vec", index.NewFlatIndex(entity.L2)))
	require.NoError(t, err)
	require.NoError(t, idx.Await(ctx))
	loadAndWait(ctx, t, c, name)

	qr, err := c.Query(ctx, milvusclient.NewQueryOption(name).WithFilter("id in [1, 2, 3]").
		WithOutputFields("color", "geo", "note", "score").WithConsistencyLevel(entity.ClStrong))
	require.NoError(t, err)
	require.Equal(t, 3, qr.ResultCount)
	for i, want := range []struct {
		color, geo string
		note       any
	}{{"red", "POINT (1 2)", "one"}, {"green", "LINESTRING (0 0, 1 1)", nil}, {"blue", "POINT (3 4)", "three"}} {
		color, err := qr.GetColumn("color").GetAsString(i)
		require.NoError(t, err)
		require.Equal(t, want.color, color, "row %d", i)
		geo, err := qr.GetColumn("geo").GetAsString(i)
		require.NoError(t, err)
		require.Equal(t, want.geo, geo)
		note := qr.GetColumn("note")
		null, err := note.IsNull(i)
		require.NoError(t, err)
		if want.note == nil {
			require.True(t, null, "row %d's note is null", i)
		} else {
			got, err := note.GetAsString(i)
			require.NoError(t, err)
			require.Equal(t, want.note, got)
		}
		score, err := qr.GetColumn("score").GetAsInt64(i)
		require.NoError(t, err)
		require.Equal(t, int64(7), score, "the default")
	}
	require.Nil(t, qr.GetColumn("size"), "a dynamic key not asked for is not returned")

	all, err := c.Query(ctx, milvusclient.NewQueryOption(name).WithFilter("id == 2").WithOutputFields("*").WithConsistencyLevel(entity.ClStrong))
	require.NoError(t, err)
	meta := all.GetColumn("$meta")
	require.NotNil(t, meta, "* returns the dynamic field whole")
	raw, err := meta.Get(0)
	require.NoError(t, err)
	require.JSONEq(t, `{"color": "green", "size": 20}`, string(raw.([]byte)))

	sr, err := c.Search(ctx, milvusclient.NewSearchOption(name, 2, []entity.Vector{entity.FloatVector{0, 0, 1, 0}}).
		WithOutputFields("color").WithFilter("note is not null").WithConsistencyLevel(entity.ClStrong))
	require.NoError(t, err)
	require.Equal(t, 2, sr[0].ResultCount)
	first, _ := sr[0].IDs.GetAsInt64(0)
	color, _ := sr[0].GetColumn("color").GetAsString(0)
	require.Equal(t, "3 blue", fmt.Sprint(first, " ", color))
	second, _ := sr[0].IDs.GetAsInt64(1)
	require.Equal(t, int64(1), second, "row 2 has a null note")
}
