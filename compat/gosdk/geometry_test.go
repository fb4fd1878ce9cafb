package gosdk_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/milvus-io/milvus/client/v2/column"
	"github.com/milvus-io/milvus/client/v2/entity"
	"github.com/milvus-io/milvus/client/v2/milvusclient"
	"github.com/milvus-io/milvus/pkg/v2/util/merr"
)

const geometryRows = 600

// geometryWKT is what Milvus's own Go client tests insert (GenDefaultGeometryData), with
// spellings WKT allows: lower case, no space before the parenthesis, empty geometries.
var geometryWKT = []string{
	"POINT (30.123 -10.456)",
	"LINESTRING (30.123 -10.456, 10.789 30.123, -40.567 40.890)",
	"POLYGON ((30.123 -10.456, 40.678 40.890, 20.345 40.567, 10.123 20.456, 30.123 -10.456))",
	"MULTIPOINT ((10.111 40.222), (40.333 30.444), (20.555 20.666), (30.777 10.888))",
	"MULTILINESTRING ((10.111 10.222, 20.333 20.444), (15.555 15.666, 25.777 25.888), (-30.999 20.000, 40.111 30.222))",
	"MULTIPOLYGON (((30.123 -10.456, 40.678 40.890, 20.345 40.567, 30.123 -10.456)), ((15.123 5.456, 25.678 5.890, 25.345 15.567, 15.123 5.456)))",
	"point(1 2)",
	"POINT EMPTY",
	"GEOMETRYCOLLECTION (POINT (1 2), LINESTRING (0 0, 1 1))",
}

func geometrySchema(name string) *entity.Schema {
	return entity.NewSchema().WithName(name).WithDescription("weir go sdk geometry").
		WithField(entity.NewField().WithName("id").WithDataType(entity.FieldTypeInt64).WithIsPrimaryKey(true)).
		WithField(entity.NewField().WithName("vec").WithDataType(entity.FieldTypeFloatVector).WithDim(vecDim)).
		WithField(entity.NewField().WithName("geo").WithDataType(entity.FieldTypeGeometry))
}

// geometryColumns returns rows with keys from..from+n-1; key k's geometry is
// geometryWKT[k%len], or wkt when given.
func geometryColumns(from int64, n int, wkt ...string) []column.Column {
	ids := make([]int64, n)
	vecs := make([][]float32, n)
	geo := make([]string, n)
	for i := range n {
		k := from + int64(i)
		ids[i] = k
		vecs[i] = make([]float32, vecDim)
		for j := range vecs[i] {
			vecs[i][j] = float32(k) - float32(j)
		}
		geo[i] = geometryWKT[int(k)%len(geometryWKT)]
		if i < len(wkt) {
			geo[i] = wkt[i]
		}
	}
	return []column.Column{
		column.NewColumnInt64("id", ids),
		column.NewColumnFloatVector("vec", vecDim, vecs),
		column.NewColumnGeometryWKT("geo", geo),
	}
}

// TestGeometry creates a collection with a Geometry field, describes it, writes WKT to it
// through the SDK, and checks that text that is not WKT is refused as Milvus refuses it:
// "IO failed" with go-geom's parser error, code 1001, and nothing stored.
func TestGeometry(t *testing.T) {
	c := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*testTimeout)
	defer cancel()

	name := uniqueName("weir_compat_geometry")
	dropAtCleanup(t, c, name)

	steps := []step{
		{"create", func(t *testing.T) {
			require.NoError(t, c.CreateCollection(ctx, milvusclient.NewCreateCollectionOption(name, geometrySchema(name))))
		}},
		{"describe", func(t *testing.T) {
			coll, err := c.DescribeCollection(ctx, milvusclient.NewDescribeCollectionOption(name))
			require.NoError(t, err)
			require.Len(t, coll.Schema.Fields, 3)
			f := coll.Schema.Fields[2]
			require.Equal(t, "geo", f.Name)
			require.Equal(t, entity.FieldTypeGeometry, f.DataType)
			require.Empty(t, f.TypeParams)
		}},
		{"insert", func(t *testing.T) {
			for from := int64(0); from < geometryRows; from += 200 {
				res, err := c.Insert(ctx, milvusclient.NewColumnBasedInsertOption(name, geometryColumns(from, 200)...))
				require.NoError(t, err, "batch at %d", from)
				require.Equal(t, int64(200), res.InsertCount)
			}
		}},
		{"text that is not WKT is refused", func(t *testing.T) {
			for _, bad := range []string{
				"INVALID_WKT_FORMAT",
				"POINT (INVALID COORDINATES)",
				"POLYGON ((0 0, 10 0, 10 10))", // a ring needs four points
				"",
			} {
				t.Run(fmt.Sprintf("%q", bad), func(t *testing.T) {
					_, err := c.Insert(ctx, milvusclient.NewColumnBasedInsertOption(name, geometryColumns(geometryRows, 3, "POINT (1 1)", bad)...))
					requireMentions(t, err, "IO failed")
					requireMentions(t, err, "syntax error")
					require.True(t, errors.Is(err, merr.ErrIoFailed), "want code %d, got %d: %v", merr.Code(merr.ErrIoFailed), merr.Code(err), err)
				})
			}
		}},
		{"flush counts only the accepted rows", func(t *testing.T) {
			flushAndWait(ctx, t, c, name)
			requireRowCount(ctx, t, c, name, strconv.Itoa(geometryRows))
		}},
	}
	runSteps(t, steps)
}
