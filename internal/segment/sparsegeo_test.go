package segment

import (
	"bytes"
	"encoding/binary"
	"math"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/weir-db/weir/internal/batch"
)

// sparseGeoRows returns rows from..from+n-1 of a collection with a sparse vector and a
// geometry, built as the proxy builds them from an insert: row r's sparse vector has r%5
// elements, its geometry is a point at (r, -r) or, every third row, a short line.
func sparseGeoRows(t *testing.T, s *schemapb.CollectionSchema, from, n int) (*batch.Rows, []*schemapb.FieldData) {
	t.Helper()
	ids := make([]int64, n)
	vec := make([]float32, 0, 2*n)
	rows := make([][]byte, n)
	geo := make([]string, n)
	for i := range n {
		r := from + i
		ids[i] = int64(r)
		vec = append(vec, float32(r), 1)
		for e := range r % 5 {
			rows[i] = binary.LittleEndian.AppendUint32(rows[i], uint32(r+e*1000))
			rows[i] = binary.LittleEndian.AppendUint32(rows[i], math.Float32bits(float32(e)+0.5))
		}
		geo[i] = "point(" + strconv.Itoa(r) + " " + strconv.Itoa(-r) + ")"
		if r%3 == 0 {
			geo[i] = "LINESTRING (0 0, " + strconv.Itoa(r) + " 1.5)"
		}
	}
	cols := []*schemapb.FieldData{
		{FieldName: "pk", Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: ids}}}}},
		{FieldName: "vec", Field: &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{Dim: 2, Data: &schemapb.VectorField_FloatVector{FloatVector: &schemapb.FloatArray{Data: vec}}}}},
		{FieldName: "sparse", Field: &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{Data: &schemapb.VectorField_SparseFloatVector{SparseFloatVector: &schemapb.SparseFloatArray{Contents: rows}}}}},
		{FieldName: "geo", Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_GeometryWktData{GeometryWktData: &schemapb.GeometryWktArray{Data: geo}}}}},
	}
	r, err := batch.FromFieldData(s, cols, uint32(n), batch.FromOptions{})
	require.NoError(t, err)
	return r, cols
}

func sparseGeoSchema() *schemapb.CollectionSchema {
	return &schemapb.CollectionSchema{Name: "places", Fields: []*schemapb.FieldSchema{
		{FieldID: 100, Name: "pk", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
		{FieldID: 101, Name: "vec", DataType: schemapb.DataType_FloatVector, TypeParams: []*commonpb.KeyValuePair{{Key: "dim", Value: "2"}}},
		{FieldID: 102, Name: "sparse", DataType: schemapb.DataType_SparseFloatVector},
		{FieldID: 103, Name: "geo", DataType: schemapb.DataType_Geometry},
	}}
}

// TestInsertSparseAndGeometry: sparse rows and WKB geometries are BYTE_ARRAY columns with their
// field IDs, written without statistics, and read back byte for byte, so ToFieldData returns
// what it returned before the write.
func TestInsertSparseAndGeometry(t *testing.T) {
	s := sparseGeoSchema()
	var recs []arrow.RecordBatch
	var want [][]*schemapb.FieldData
	for i, part := range [][2]int{{0, 400}, {400, 1}, {401, 250}} {
		r, _ := sparseGeoRows(t, s, part[0], part[1])
		rec := r.Record(uint64(1000 + i))
		r.Release()
		recs = append(recs, rec)
		fd, err := batch.ToFieldData(rec, s)
		require.NoError(t, err)
		want = append(want, fd)
	}
	defer release(recs)
	as := recs[0].Schema()
	data, info := writeInsert(t, as, recs, WriteOptions{RowGroupBytes: 8 << 10})
	require.EqualValues(t, 651, info.Rows)

	tbl, err := ReadInsert(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	defer tbl.Release()
	require.True(t, tbl.Schema().Equal(as))
	for c := range as.NumFields() {
		wantCol := concat(t, recs, c)
		got, err := array.Concatenate(tbl.Column(c).Data().Chunks(), memory.DefaultAllocator)
		require.NoError(t, err)
		require.True(t, array.Equal(wantCol, got), "column %s", as.Field(c).Name)
		wantCol.Release()
		got.Release()
	}

	// The file's rows convert back to the same Milvus columns.
	rd := array.NewTableReader(tbl, tbl.NumRows())
	defer rd.Release()
	require.True(t, rd.Next())
	require.EqualValues(t, 651, rd.RecordBatch().NumRows())
	got, err := batch.ToFieldData(rd.RecordBatch(), s)
	require.NoError(t, err)
	sparse, geo := got[2].GetVectors(), got[3].GetScalars().GetGeometryWktData().GetData()
	var contents [][]byte
	var wkts []string
	for _, fd := range want {
		contents = append(contents, fd[2].GetVectors().GetSparseFloatVector().GetContents()...)
		wkts = append(wkts, fd[3].GetScalars().GetGeometryWktData().GetData()...)
	}
	require.True(t, proto.Equal(&schemapb.SparseFloatArray{Contents: contents, Dim: 649 + 3000 + 1}, sparse.GetSparseFloatVector()),
		"row 649 (4 elements, the last at 649+3000) spans the largest dim")
	require.Equal(t, wkts, geo)
	require.Equal(t, "POINT (1 -1)", geo[1])
	require.Equal(t, "LINESTRING (0 0, 3 1.5)", geo[3])

	// Any Parquet reader sees BYTE_ARRAY columns with the Milvus field IDs and no min/max.
	pr, err := file.NewParquetReader(bytes.NewReader(data))
	require.NoError(t, err)
	defer pr.Close()
	require.Greater(t, pr.NumRowGroups(), 1)
	for _, name := range []string{"sparse", "geo"} {
		i := as.FieldIndices(name)[0]
		leaf := pr.MetaData().Schema.Column(i)
		require.Equal(t, parquet.Types.ByteArray, leaf.PhysicalType(), name)
		require.Equal(t, parquet.Repetitions.Required, leaf.SchemaNode().RepetitionType(), name)
		require.EqualValues(t, 102+i-2, pr.MetaData().Schema.Root().Field(i).FieldID(), name)
		cc, err := pr.MetaData().RowGroup(0).ColumnChunk(i)
		require.NoError(t, err)
		ok, err := cc.StatsSet()
		require.NoError(t, err)
		require.False(t, ok, "%s: min/max of opaque bytes prunes nothing", name)
	}

	// One column alone: the sparse rows, as the query node would load them.
	col, err := ReadColumn(bytes.NewReader(data), int64(len(data)), "sparse")
	require.NoError(t, err)
	defer col.Release()
	require.Equal(t, 651, col.Len())
	require.Equal(t, contents[649], col.(*array.Binary).Value(649))
}
