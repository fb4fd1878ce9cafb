package batch

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/weir-db/weir/internal/apierr"
)

// sparseRow encodes a sparse row as the SDKs do: (uint32 index, float32 value) pairs,
// little-endian, in the order given.
func sparseRow(idx []uint32, vals []float32) []byte {
	b := make([]byte, 0, 8*len(idx))
	for i := range idx {
		b = binary.LittleEndian.AppendUint32(b, idx[i])
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(vals[i]))
	}
	return b
}

// sparseVec is a sparse column as the Go SDK sends it: VectorField.dim is the largest row dim,
// SparseFloatArray.dim is unset.
func sparseVec(dim int64, rows ...[]byte) *schemapb.VectorField {
	return &schemapb.VectorField{Dim: dim, Data: &schemapb.VectorField_SparseFloatVector{SparseFloatVector: &schemapb.SparseFloatArray{Contents: rows}}}
}

func wkts(v ...string) *schemapb.ScalarField {
	return &schemapb.ScalarField{Data: &schemapb.ScalarField_GeometryWktData{GeometryWktData: &schemapb.GeometryWktArray{Data: v}}}
}

// places is a collection with a sparse vector and a geometry next to the usual fields.
func places() *schemapb.CollectionSchema {
	return collection(false,
		pkField("id", schemapb.DataType_Int64, false),
		field("vec", schemapb.DataType_FloatVector, "dim", "2"),
		field("sparse", schemapb.DataType_SparseFloatVector),
		field("geo", schemapb.DataType_Geometry),
	)
}

// The WKT the Milvus go_client tests insert (GenDefaultGeometryData), odd spellings, and the
// canonical WKT go-geom writes for each.
var geometryCases = []struct{ in, out string }{
	{"POINT (30.123 -10.456)", "POINT (30.123 -10.456)"},
	{"point(1 2)", "POINT (1 2)"},
	{"LINESTRING (30.123 -10.456, 10.789 30.123, -40.567 40.890)", "LINESTRING (30.123 -10.456, 10.789 30.123, -40.567 40.89)"},
	{"POLYGON ((30.123 -10.456, 40.678 40.890, 20.345 40.567, 10.123 20.456, 30.123 -10.456))", "POLYGON ((30.123 -10.456, 40.678 40.89, 20.345 40.567, 10.123 20.456, 30.123 -10.456))"},
	{"MULTIPOINT ((10.111 40.222), (40.333 30.444))", "MULTIPOINT (10.111 40.222, 40.333 30.444)"},
	{"MULTILINESTRING ((10.111 10.222, 20.333 20.444), (-30.999 20.000, 40.111 30.222))", "MULTILINESTRING ((10.111 10.222, 20.333 20.444), (-30.999 20, 40.111 30.222))"},
	{"MULTIPOLYGON (((0 0, 1 0, 1 1, 0 0)), ((5 5, 6 5, 6 6, 5 5)))", "MULTIPOLYGON (((0 0, 1 0, 1 1, 0 0)), ((5 5, 6 5, 6 6, 5 5)))"},
	{"POINT Z (1 2 3)", "POINT Z (1 2 3)"},
	{"POINT EMPTY", "POINT EMPTY"},
	{"GEOMETRYCOLLECTION EMPTY", "GEOMETRYCOLLECTION EMPTY"},
	{"GEOMETRYCOLLECTION (POINT (1 2), LINESTRING (0 0, 1 1))", "GEOMETRYCOLLECTION (POINT (1 2), LINESTRING (0 0, 1 1))"},
}

// placesColumns returns n valid rows of places: row r's sparse vector has r%4 elements
// (row 0 is empty), its geometry is geometryCases[r%len].in.
func placesColumns(n int) (cols []*schemapb.FieldData, sparse [][]byte, geo []string) {
	ids := make([]int64, n)
	vec := make([]float32, 0, 2*n)
	var dim int64
	for r := range n {
		ids[r] = int64(r)
		vec = append(vec, float32(r), -float32(r))
		var idx []uint32
		var vals []float32
		for e := range r % 4 {
			idx = append(idx, uint32(r*1000+e*7))
			vals = append(vals, float32(e)+0.25)
		}
		if r == 5 {
			idx, vals = []uint32{0, math.MaxUint32 - 1}, []float32{0, 1} // the largest index, a zero value
		}
		sparse = append(sparse, sparseRow(idx, vals))
		dim = max(dim, SparseRowDim(sparse[r]))
		geo = append(geo, geometryCases[r%len(geometryCases)].in)
	}
	return []*schemapb.FieldData{
		scalarCol("id", schemapb.DataType_Int64, longs(ids...)),
		vectorCol("vec", schemapb.DataType_FloatVector, floatVec(2, vec)),
		vectorCol("sparse", schemapb.DataType_SparseFloatVector, sparseVec(dim, sparse...)),
		scalarCol("geo", schemapb.DataType_Geometry, wkts(geo...)),
	}, sparse, geo
}

// wantPlaces is what ToFieldData returns for rows from..to of placesColumns(n): sparse rows as
// sent with their largest dim on the field and the array, geometries in canonical WKT.
func wantPlaces(s *schemapb.CollectionSchema, n, from, to int) []*schemapb.FieldData {
	cols, sparse, _ := placesColumns(n)
	ids := cols[0].GetScalars().GetLongData().GetData()[from:to]
	vec := cols[1].GetVectors().GetFloatVector().GetData()[2*from : 2*to]
	var dim int64
	var geo []string
	for r := from; r < to; r++ {
		dim = max(dim, SparseRowDim(sparse[r]))
		geo = append(geo, geometryCases[r%len(geometryCases)].out)
	}
	return withIDs(s, []*schemapb.FieldData{
		scalarCol("id", schemapb.DataType_Int64, longs(ids...)),
		vectorCol("vec", schemapb.DataType_FloatVector, floatVec(2, vec)),
		vectorCol("sparse", schemapb.DataType_SparseFloatVector, &schemapb.VectorField{Dim: dim, Data: &schemapb.VectorField_SparseFloatVector{
			SparseFloatVector: &schemapb.SparseFloatArray{Contents: sparse[from:to], Dim: dim}}}),
		scalarCol("geo", schemapb.DataType_Geometry, wkts(geo...)),
	})
}

func TestSparseRowDim(t *testing.T) {
	require.EqualValues(t, 0, SparseRowDim(nil))
	require.EqualValues(t, 0, SparseRowDim([]byte{}))
	require.EqualValues(t, 8, SparseRowDim(sparseRow([]uint32{3, 7}, []float32{1, 2})))
	require.EqualValues(t, math.MaxUint32, SparseRowDim(sparseRow([]uint32{math.MaxUint32 - 1}, []float32{1})))
}

// TestRoundTripSparseAndGeometry: sparse rows keep their bytes and geometries come back as
// canonical WKT, through Rows, the record, IPC, and ToFieldData, whole and sliced.
func TestRoundTripSparseAndGeometry(t *testing.T) {
	const n = 14
	s := places()
	cols, _, _ := placesColumns(n)
	requireColumnsEqual(t, wantPlaces(s, n, 0, n), roundTrip(t, s, cols, n))

	mem := checked(t)
	r, err := FromFieldData(s, cols, n, FromOptions{Allocator: mem})
	require.NoError(t, err)
	defer r.Release()
	require.Equal(t, arrow.BinaryTypes.Binary, r.Schema().Field(2).Type, "sparse rows are a binary column")
	require.Equal(t, arrow.BinaryTypes.Binary, r.Schema().Field(3).Type, "geometries are a binary column")
	rec := r.Record(1)
	defer rec.Release()
	wkb := rec.Column(3).(*array.Binary).Value(1) // POINT (1 2)
	require.Equal(t, []byte{1, 1, 0, 0, 0}, wkb[:5], "little-endian WKB of a 2D point")
	require.Equal(t, 1.0, math.Float64frombits(binary.LittleEndian.Uint64(wkb[5:])))
	require.Equal(t, 2.0, math.Float64frombits(binary.LittleEndian.Uint64(wkb[13:])))

	// A query result: rows 3..8, so the binary columns start at an offset.
	sub := rec.NewSlice(3, 9)
	defer sub.Release()
	got, err := ToFieldData(sub, s)
	require.NoError(t, err)
	requireColumnsEqual(t, wantPlaces(s, n, 3, 9), got)

	// No rows: an empty sparse array of dim 0, no geometries.
	empty := rec.NewSlice(0, 0)
	defer empty.Release()
	got, err = ToFieldData(empty, s)
	require.NoError(t, err)
	require.Empty(t, got[2].GetVectors().GetSparseFloatVector().GetContents())
	require.Zero(t, got[2].GetVectors().GetDim())
	require.Empty(t, got[3].GetScalars().GetGeometryWktData().GetData())
}

func TestFromFieldDataRejectsBadSparseAndGeometry(t *testing.T) {
	const n = 3
	good := func() []*schemapb.FieldData { cols, _, _ := placesColumns(n); return cols }
	ok := sparseRow([]uint32{1}, []float32{1})
	sparse := func(rows ...[]byte) []*schemapb.FieldData {
		return replace(good(), "sparse", vectorCol("sparse", 0, sparseVec(0, rows...)))
	}
	geo := func(v ...string) []*schemapb.FieldData {
		return replace(good(), "geo", scalarCol("geo", 0, wkts(v...)))
	}
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	var bigSparse []byte
	for i := range 1000 {
		bigSparse = append(bigSparse, sparseRow([]uint32{uint32(i)}, []float32{1})...)
	}
	cases := []struct {
		name    string
		cols    []*schemapb.FieldData
		opts    FromOptions
		kind    apierr.Kind
		message string
	}{
		// Sparse rows, in the order and words of Milvus's typeutil.ValidateSparseFloatRows.
		{"sparse length not a multiple of 8", sparse(ok, ok, append(sparseRow([]uint32{1}, []float32{1}), 0, 0, 0)), FromOptions{}, apierr.Unexpected,
			"invalid data length in sparse float vector: 11: sparse float field \"sparse\", row 2"},
		{"sparse index 2^32-1", sparse(ok, sparseRow([]uint32{3, math.MaxUint32}, []float32{1, 1}), ok), FromOptions{}, apierr.Unexpected,
			"invalid index in sparse float vector: must be less than 2^32-1"},
		{"sparse unsorted", sparse(sparseRow([]uint32{5, 2}, []float32{1, 1}), ok, ok), FromOptions{}, apierr.Unexpected,
			"unsorted or same indices in sparse float vector: sparse float field \"sparse\", row 0"},
		{"sparse repeated index", sparse(ok, ok, sparseRow([]uint32{2, 2}, []float32{1, 1})), FromOptions{}, apierr.Unexpected,
			"unsorted or same indices in sparse float vector"},
		{"sparse NaN", sparse(sparseRow([]uint32{1, 2}, []float32{1, nan}), ok, ok), FromOptions{}, apierr.Unexpected,
			"value 'NaN' is not a number or infinity"},
		{"sparse +Inf", sparse(ok, sparseRow([]uint32{1}, []float32{inf}), ok), FromOptions{}, apierr.Unexpected,
			"value '+Inf' is not a number or infinity"},
		{"sparse -Inf before negative", sparse(ok, sparseRow([]uint32{1}, []float32{-inf}), ok), FromOptions{}, apierr.Unexpected,
			"value '-Inf' is not a number or infinity"},
		{"sparse negative", sparse(ok, ok, sparseRow([]uint32{1, 9}, []float32{0.5, -0.5})), FromOptions{}, apierr.Unexpected,
			"negative value in sparse float vector: sparse float field \"sparse\", row 2"},
		{"sparse elements in order", sparse(sparseRow([]uint32{5, 2}, []float32{nan, 1}), ok, ok), FromOptions{}, apierr.Unexpected,
			"value 'NaN' is not a number or infinity"},
		{"sparse index before value", sparse(sparseRow([]uint32{5, 5}, []float32{1, nan}), ok, ok), FromOptions{}, apierr.Unexpected,
			"unsorted or same indices in sparse float vector"},
		{"sparse rows", sparse(ok, ok), FromOptions{}, apierr.ParameterInvalid,
			"the num_rows (2) of field (sparse) is not equal to passed num_rows (3)"},
		{"sparse no rows", sparse(), FromOptions{}, apierr.ParameterInvalid,
			"sparse float field 'sparse' is illegal, array type mismatch"},
		{"sparse column without vectors", replace(good(), "sparse", scalarCol("sparse", 0, floats(1, 2, 3))), FromOptions{}, apierr.ParameterInvalid,
			"sparse float field 'sparse' is illegal, nil SparseFloatVector: invalid parameter[expected=need sparse float array][actual=got nil]"},
		{"sparse column of float vectors", replace(good(), "sparse", vectorCol("sparse", 0, floatVec(2, make([]float32, 6)))), FromOptions{}, apierr.ParameterInvalid,
			"sparse float field 'sparse' is illegal, nil SparseFloatVector"},
		{"sparse column with no data", replace(good(), "sparse", &schemapb.FieldData{FieldName: "sparse"}), FromOptions{}, apierr.ParameterInvalid,
			"sparse float field 'sparse' is illegal, nil SparseFloatVector: invalid parameter[expected=need sparse float array][actual=got nil]"},
		{"sparse rows count in the batch size", sparse(ok, ok, bigSparse), FromOptions{MaxBatchBytes: 8000}, apierr.ParameterTooLarge,
			"the limit is 8000 bytes"},

		// Geometry: go-geom's parser error after Milvus's "IO failed", code 1001.
		{"geometry keyword", geo("POINT (1 2)", "INVALID_WKT_FORMAT", "POINT (1 2)"), FromOptions{}, apierr.IOFailed,
			"IO failed: syntax error: invalid keyword at line 1, pos 0"},
		{"geometry coordinates", geo("POINT (INVALID COORDINATES)", "POINT (1 2)", "POINT (1 2)"), FromOptions{}, apierr.IOFailed,
			"IO failed: syntax error"},
		{"geometry short ring", geo("POINT (1 2)", "POINT (1 2)", "POLYGON ((0 0, 10 0, 10 10))"), FromOptions{}, apierr.IOFailed,
			"polygon ring doesn't have enough points"},
		{"geometry empty string", geo("", "POINT (1 2)", "POINT (1 2)"), FromOptions{}, apierr.IOFailed,
			"IO failed: syntax error: unexpected $end"},
		{"geometry rows", geo("POINT (1 2)"), FromOptions{}, apierr.ParameterInvalid,
			"the num_rows (1) of field (geo) is not equal to passed num_rows (3)"},
		{"geometry as WKB", replace(good(), "geo", scalarCol("geo", 0, &schemapb.ScalarField{Data: &schemapb.ScalarField_GeometryData{GeometryData: &schemapb.GeometryArray{Data: [][]byte{{1}, {1}, {1}}}}})),
			FromOptions{}, apierr.ParameterInvalid, "geometry field 'geo' is illegal, array type mismatch: invalid parameter[expected=need geometry array][actual=got nil]: clients send WKT"},
		{"geometry as varchar", replace(good(), "geo", scalarCol("geo", 0, strs("POINT (1 2)", "POINT (1 2)", "POINT (1 2)"))),
			FromOptions{}, apierr.ParameterInvalid, "geometry field 'geo' is illegal, array type mismatch: invalid parameter[expected=need geometry array][actual=got nil]"},
		{"geometry WKB counts in the batch size", geo("LINESTRING (0 0, 1 1, 2 2, 3 3, 4 4, 5 5, 6 6, 7 7)", "POINT (1 2)", "POINT (1 2)"), FromOptions{MaxBatchBytes: 170}, apierr.ParameterTooLarge,
			"the limit is 170 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			opts.Allocator = checked(t)
			r, err := FromFieldData(places(), tc.cols, n, opts)
			require.Error(t, err)
			require.Nil(t, r)
			require.Equal(t, tc.kind, apierr.KindOf(err), "%v", err)
			require.Contains(t, err.Error(), tc.message)
		})
	}
}

// TestSparseAndGeometryAccepted: the edge cases Milvus accepts.
func TestSparseAndGeometryAccepted(t *testing.T) {
	s := places()
	cols := []*schemapb.FieldData{
		scalarCol("id", 0, longs(1, 2, 3)),
		vectorCol("vec", 0, floatVec(2, make([]float32, 6))),
		// Empty rows, nil rows (gRPC cannot tell them apart), zero values, the largest index.
		vectorCol("sparse", 0, sparseVec(0, []byte{}, nil, sparseRow([]uint32{0, math.MaxUint32 - 1}, []float32{0, 3.5}))),
		scalarCol("geo", 0, wkts("POINT EMPTY", "  point ( 1   2 ) ", "GEOMETRYCOLLECTION EMPTY")),
	}
	got := roundTrip(t, s, cols, 3)
	sv := got[2].GetVectors()
	require.EqualValues(t, math.MaxUint32, sv.GetDim())
	require.EqualValues(t, math.MaxUint32, sv.GetSparseFloatVector().GetDim())
	require.Len(t, sv.GetSparseFloatVector().GetContents(), 3)
	require.Empty(t, sv.GetSparseFloatVector().GetContents()[0])
	require.Empty(t, sv.GetSparseFloatVector().GetContents()[1])
	require.Equal(t, []string{"POINT EMPTY", "POINT (1 2)", "GEOMETRYCOLLECTION EMPTY"}, got[3].GetScalars().GetGeometryWktData().GetData())
}

// TestSplitSparseAndGeometry: split copies the binary columns row by row; each channel's rows
// convert back to the values of the rows with the same keys.
func TestSplitSparseAndGeometry(t *testing.T) {
	mem := checked(t)
	s := places()
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 60).Draw(t, "rows")
		shards := rapid.IntRange(2, 8).Draw(t, "shards")
		keys := rapid.SliceOfNDistinct(rapid.Int64(), n, n, rapid.ID[int64]).Draw(t, "keys")
		row := make(map[int64]int, n)
		for i, k := range keys {
			row[k] = i
		}
		cols, sparse, _ := placesColumns(n)
		cols = replace(cols, "id", scalarCol("id", 0, longs(keys...)))
		r, err := FromFieldData(s, cols, uint32(n), FromOptions{Allocator: mem})
		require.NoError(t, err)
		defer r.Release()
		seen := 0
		for c, p := range r.Split(ChannelOf(shards), shards) {
			if p == nil {
				continue
			}
			defer p.Release()
			rec := p.Record(1)
			defer rec.Release()
			got, err := ToFieldData(rec, s)
			require.NoError(t, err)
			for k, key := range got[0].GetScalars().GetLongData().GetData() {
				i := row[key]
				require.Equal(t, c, int(HashInt64(key)%uint32(shards)))
				require.Equal(t, sparse[i], got[2].GetVectors().GetSparseFloatVector().GetContents()[k], "channel %d row %d", c, k)
				require.Equal(t, geometryCases[i%len(geometryCases)].out, got[3].GetScalars().GetGeometryWktData().GetData()[k], "channel %d row %d", c, k)
			}
			seen += p.Len()
		}
		require.Equal(t, n, seen)
	})
}

func BenchmarkGeometryColumn(b *testing.B) {
	const n = 1000
	s := places()
	cols, _, _ := placesColumns(n)
	b.ReportAllocs()
	for b.Loop() {
		r, err := FromFieldData(s, cols, n, FromOptions{})
		if err != nil {
			b.Fatal(err)
		}
		r.Release()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/row")
}
