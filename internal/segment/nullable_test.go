package segment

import (
	"bytes"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/batch"
)

// TestNullableColumnsRoundTrip writes the record of a batch with null rows and reads the nulls
// back from the Parquet file (optional columns, definition levels).
func TestNullableColumnsRoundTrip(t *testing.T) {
	note := &schemapb.FieldSchema{FieldID: 102, Name: "note", DataType: schemapb.DataType_VarChar, Nullable: true, TypeParams: []*commonpb.KeyValuePair{{Key: "max_length", Value: "8"}}}
	s := &schemapb.CollectionSchema{Name: "c", Fields: []*schemapb.FieldSchema{
		{FieldID: 100, Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
		{FieldID: 101, Name: "vec", DataType: schemapb.DataType_FloatVector, TypeParams: dimParam(2)},
		note,
	}}
	rows, err := batch.FromFieldData(s, []*schemapb.FieldData{
		{FieldName: "id", Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: []int64{1, 2, 3}}}}}},
		{FieldName: "vec", Field: &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{Dim: 2, Data: &schemapb.VectorField_FloatVector{FloatVector: &schemapb.FloatArray{Data: make([]float32, 6)}}}}},
		{FieldName: "note", ValidData: []bool{false, true, false}, Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_StringData{StringData: &schemapb.StringArray{Data: []string{"b"}}}}}},
	}, 3, batch.FromOptions{})
	require.NoError(t, err)
	defer rows.Release()
	rec := rows.Record(5)
	defer rec.Release()
	data, _ := writeInsert(t, rows.Schema(), []arrow.RecordBatch{rec}, WriteOptions{})
	tbl, err := ReadInsert(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	defer tbl.Release()
	col := tbl.Column(2).Data().Chunk(0)
	require.Equal(t, 2, col.NullN())
	require.True(t, col.IsValid(1))
	require.True(t, tbl.Schema().Field(2).Nullable)
}
