package schema

import (
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/apierr"
)

func sparseField(name string, params ...*commonpb.KeyValuePair) *schemapb.FieldSchema {
	return &schemapb.FieldSchema{Name: name, DataType: schemapb.DataType_SparseFloatVector, TypeParams: params}
}

func geoField(name string) *schemapb.FieldSchema {
	return &schemapb.FieldSchema{Name: name, DataType: schemapb.DataType_Geometry}
}

// TestNormalizeAcceptsSparseAndGeometry: a sparse vector has no dim and counts as a vector
// field; Geometry is a scalar without type parameters. Other parameters are kept as given.
func TestNormalizeAcceptsSparseAndGeometry(t *testing.T) {
	out, err := Normalize("places", &schemapb.CollectionSchema{Fields: []*schemapb.FieldSchema{
		pkField(), vecField("8"), sparseField("sparse", kv("mmap.enabled", "true")), geoField("geo"),
	}})
	require.NoError(t, err)
	require.Len(t, out.Fields, 4)
	require.Equal(t, schemapb.DataType_SparseFloatVector, out.Fields[2].DataType)
	require.Equal(t, FirstFieldID+2, out.Fields[2].FieldID)
	require.Equal(t, []*commonpb.KeyValuePair{kv("mmap.enabled", "true")}, out.Fields[2].TypeParams)
	require.Equal(t, schemapb.DataType_Geometry, out.Fields[3].DataType)
	require.Empty(t, out.Fields[3].TypeParams)
	require.True(t, Equal(out, renormalize(out)), "normalising is idempotent")

	// A sparse vector is the collection's vector field on its own.
	_, err = Normalize("books", books(pkField(), sparseField("sparse")))
	require.NoError(t, err)
}

func TestNormalizeRejectsSparseAndGeometry(t *testing.T) {
	vec := func(name string) *schemapb.FieldSchema { f := vecField("4"); f.Name = name; return f }
	withID := func(f *schemapb.FieldSchema, id int64) *schemapb.FieldSchema { f.FieldID = id; return f }
	cases := []struct {
		name   string
		schema *schemapb.CollectionSchema
		kind   apierr.Kind
		msg    string
	}{
		// Milvus's text names the field ID the client sent (0 from the SDKs).
		{"sparse with dim", books(pkField(), sparseField("sparse", kv("dim", "128"))), apierr.Unexpected,
			"dim should not be specified for sparse vector field sparse(0)"},
		{"sparse with dim and a client field id", books(pkField(), withID(sparseField("sp", kv("DIM", "8")), 7)), apierr.Unexpected,
			"dim should not be specified for sparse vector field sp(7)"},
		{"sparse primary key", books(&schemapb.FieldSchema{Name: "id", DataType: schemapb.DataType_SparseFloatVector, IsPrimaryKey: true}, vecField("4")),
			apierr.Unexpected, "the data type of primary key should be Int64 or VarChar"},
		{"geometry primary key", books(&schemapb.FieldSchema{Name: "id", DataType: schemapb.DataType_Geometry, IsPrimaryKey: true}, vecField("4")),
			apierr.Unexpected, "the data type of primary key should be Int64 or VarChar"},
		{"nullable sparse", books(pkField(), &schemapb.FieldSchema{Name: "sparse", DataType: schemapb.DataType_SparseFloatVector, Nullable: true}),
			apierr.ParameterInvalid, "null"},
		{"sparse with a default", books(pkField(), &schemapb.FieldSchema{Name: "sparse", DataType: schemapb.DataType_SparseFloatVector,
			DefaultValue: &schemapb.ValueField{Data: &schemapb.ValueField_BytesData{BytesData: []byte{}}}}), apierr.ParameterInvalid, "default"},
		{"sparse partition key", books(pkField(), &schemapb.FieldSchema{Name: "sparse", DataType: schemapb.DataType_SparseFloatVector, IsPartitionKey: true}),
			apierr.Unexpected, "the data type of partition key should be Int64 or VarChar"},
		{"only geometry", books(pkField(), geoField("geo")), apierr.ParameterInvalid, "schema does not contain vector field"},
		{"sparse counts as a vector field", books(pkField(), vec("a"), vec("b"), vec("c"), vec("d"), vec("e"), vec("f"), vec("g"), vec("h"), vec("i"), vec("j"), sparseField("k")), apierr.Unexpected, "maximum vector field's number should be limited to 10"},
		{"geometry default that is not WKT", books(pkField(), vecField("4"), &schemapb.FieldSchema{Name: "geo", DataType: schemapb.DataType_Geometry,
			DefaultValue: &schemapb.ValueField{Data: &schemapb.ValueField_StringData{StringData: "POINT (1"}}}), apierr.ParameterInvalid, "invalid default value for geometry field: invalid parameter"},
		{"array of geometry", books(pkField(), vecField("4"), &schemapb.FieldSchema{Name: "a", DataType: schemapb.DataType_Array, ElementType: schemapb.DataType_Geometry,
			TypeParams: []*commonpb.KeyValuePair{kv("max_capacity", "3")}}), apierr.Unexpected, "element type Geometry is not supported"},
		{"array of sparse vectors", books(pkField(), vecField("4"), &schemapb.FieldSchema{Name: "a", DataType: schemapb.DataType_Array, ElementType: schemapb.DataType_SparseFloatVector,
			TypeParams: []*commonpb.KeyValuePair{kv("max_capacity", "3")}}), apierr.Unexpected, "element type SparseFloatVector is not supported"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Normalize("books", c.schema)
			require.Error(t, err)
			require.Equal(t, c.kind, apierr.KindOf(err), "kind of %v", err)
			require.Contains(t, err.Error(), c.msg)
		})
	}
}
