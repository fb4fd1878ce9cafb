package batch

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/twpayne/go-geom/encoding/wkb"
	"github.com/twpayne/go-geom/encoding/wkbcommon"
	"github.com/twpayne/go-geom/encoding/wkt"

	"github.com/weir-db/weir/internal/apierr"
)

// Geometry values arrive as WKT (ScalarField.geometry_wkt_data, the only form Milvus 2.6's SDKs
// send) and are stored as little-endian WKB, as Milvus stores them; reads turn the WKB back
// into go-geom's canonical WKT ("point(1 2)" comes back as "POINT (1 2)"), as Milvus's proxy
// does for query results. The parser and encoder are go-geom's, the library Milvus uses, so
// the same strings are accepted and the same errors reported.

// emptyPointNaN encodes POINT EMPTY, which WKB cannot express, as a point of NaN coordinates,
// and decodes it back (Milvus's common.ConvertWKTToWKB).
var emptyPointNaN = wkbcommon.WKBOptionEmptyPointHandling(wkbcommon.EmptyPointHandlingNaN)

// wktToWKB converts one WKT value.
func wktToWKB(s string) ([]byte, error) {
	g, err := wkt.Unmarshal(s)
	if err != nil {
		return nil, err
	}
	return wkb.Marshal(g, wkb.NDR, emptyPointNaN)
}

// geometryToWKB converts the WKT column fd of Geometry field f into a column of WKB values
// (geometry_data), as Milvus's proxy does before anything else checks the column
// (checkGeometryFieldData); the rest of FromFieldData sees only WKB, and each value is parsed
// once. fd itself is not modified. A column without WKT, such as one that carries WKB
// already, is refused in Milvus's words: clients send WKT only. A value go-geom cannot parse
// or encode is refused as Milvus refuses it, "IO failed: " and go-geom's error, here with the
// field and row in between.
func geometryToWKB(f *schemapb.FieldSchema, fd *schemapb.FieldData) (*schemapb.FieldData, error) {
	wktData := fd.GetScalars().GetGeometryWktData()
	if wktData == nil {
		what := "got " + payloadKind(fd) + " data"
		if fd.GetScalars().GetGeometryData() != nil {
			what = "clients send WKT (geometry_wkt_data), not WKB (geometry_data)"
		}
		return nil, noData(f).With("%s", what)
	}
	v := wktData.GetData()
	out := make([][]byte, len(v))
	for i, s := range v {
		b, err := wktToWKB(s)
		if err != nil {
			return nil, apierr.Milvus(apierr.GeometryInvalid, err).With("geometry field %q, row %d", f.GetName(), i)
		}
		out[i] = b
	}
	return &schemapb.FieldData{
		Type: fd.GetType(), FieldName: fd.GetFieldName(), FieldId: fd.GetFieldId(), ValidData: fd.GetValidData(),
		Field: scalars(&schemapb.ScalarField{Data: &schemapb.ScalarField_GeometryData{GeometryData: &schemapb.GeometryArray{Data: out}}}),
	}, nil
}

// geometryFieldData converts a WKB column back into WKT strings. A null or empty value becomes
// "", as Milvus returns null geometries.
func geometryFieldData(fd *schemapb.FieldData, col arrow.Array) (*schemapb.FieldData, error) {
	b := col.(*array.Binary)
	out := make([]string, b.Len())
	for i := range out {
		if b.IsNull(i) || b.ValueLen(i) == 0 {
			continue
		}
		g, err := wkb.Unmarshal(b.Value(i), emptyPointNaN)
		if err != nil {
			return nil, fmt.Errorf("geometry field %q, row %d: %w", fd.GetFieldName(), i, err)
		}
		if out[i], err = wkt.Marshal(g); err != nil {
			return nil, fmt.Errorf("geometry field %q, row %d: %w", fd.GetFieldName(), i, err)
		}
	}
	fd.Field = scalars(&schemapb.ScalarField{Data: &schemapb.ScalarField_GeometryWktData{GeometryWktData: &schemapb.GeometryWktArray{Data: out}}})
	return fd, nil
}
