package batch

import (
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/apierr"
)

// nullableSchema has a nullable field, a field with a default, a nullable field with a default
// and a nullable array, as Milvus's "nullable & default" schemas do.
func nullableSchema() *schemapb.CollectionSchema {
	note := field("note", schemapb.DataType_VarChar, "max_length", "8")
	note.Nullable = true
	score := field("score", schemapb.DataType_Int64)
	score.DefaultValue = &schemapb.ValueField{Data: &schemapb.ValueField_LongData{LongData: 7}}
	both := field("both", schemapb.DataType_Float)
	both.Nullable = true
	both.DefaultValue = &schemapb.ValueField{Data: &schemapb.ValueField_FloatData{FloatData: 0.5}}
	tags := arrayField("tags", schemapb.DataType_Int64)
	tags.Nullable = true
	return collection(false, pkField("id", schemapb.DataType_Int64, false), field("vec", schemapb.DataType_FloatVector, "dim", "2"), note, score, both, tags)
}

func withValid(fd *schemapb.FieldData, valid ...bool) *schemapb.FieldData {
	fd.ValidData = valid
	return fd
}

// TestNullsAndDefaultsRoundTrip sends compact nullable columns (values for the valid rows only,
// as every Milvus SDK does) and reads back what Milvus returns: one value per row, the zero
// value at a null, valid_data for nullable fields, and defaults where a row was null or the
// column omitted.
func TestNullsAndDefaultsRoundTrip(t *testing.T) {
	s := nullableSchema()
	cols := []*schemapb.FieldData{
		scalarCol("id", 0, longs(1, 2, 3)),
		vectorCol("vec", 0, floatVec(2, make([]float32, 6))),
		withValid(scalarCol("note", 0, strs("a", "c")), true, false, true),
		withValid(scalarCol("score", 0, longs(10)), false, true, false),
		withValid(scalarCol("both", 0, floats()), false, false, false),
		// tags omitted: every row null
	}
	r, err := FromFieldData(s, cols, 3, FromOptions{Allocator: checked(t)})
	require.NoError(t, err)
	defer r.Release()
	rec := r.Record(1)
	defer rec.Release()
	require.True(t, rec.Schema().Field(2).Nullable)
	require.False(t, rec.Schema().Field(3).Nullable)
	require.Equal(t, 1, rec.Column(2).NullN())
	require.Zero(t, rec.Column(3).NullN(), "a default replaces the null")
	require.Zero(t, rec.Column(4).NullN(), "a default replaces the null of a nullable field too")
	require.Equal(t, 3, rec.Column(5).NullN())

	out, err := ToFieldData(rec, s)
	require.NoError(t, err)
	require.Equal(t, []string{"a", "", "c"}, out[2].GetScalars().GetStringData().GetData())
	require.Equal(t, []bool{true, false, true}, out[2].GetValidData())
	require.Equal(t, []int64{7, 10, 7}, out[3].GetScalars().GetLongData().GetData())
	require.Empty(t, out[3].GetValidData(), "a field that is not nullable has no valid_data")
	require.Equal(t, []float32{0.5, 0.5, 0.5}, out[4].GetScalars().GetFloatData().GetData())
	require.Equal(t, []bool{true, true, true}, out[4].GetValidData())
	require.Len(t, out[5].GetScalars().GetArrayData().GetData(), 3)
	require.Equal(t, []bool{false, false, false}, out[5].GetValidData())
}

func TestNullsRejected(t *testing.T) {
	s := nullableSchema()
	base := func() []*schemapb.FieldData {
		return []*schemapb.FieldData{scalarCol("id", 0, longs(1, 2, 3)), vectorCol("vec", 0, floatVec(2, make([]float32, 6)))}
	}
	cases := []struct {
		name string
		col  *schemapb.FieldData
		want string
	}{
		{"valid_data on a field that takes no nulls", nil, "the length of valid_data of field(id) is wrong: invalid parameter[expected=0][actual=3]"},
		{"valid_data of the wrong length", withValid(scalarCol("note", 0, strs("a")), true, false), "the length of valid_data of field(note) is wrong: invalid parameter[expected=3][actual=2]"},
		{"values not one per valid row", withValid(scalarCol("note", 0, strs("a", "b", "c")), true, false, true), "the length of field is wrong: invalid parameter[expected=2][actual=3]"},
		{"a too long value among nulls", withValid(scalarCol("note", 0, strs("far too long")), false, true, false), "length of varchar field note exceeds max length"},
		{"no values and some valid rows", withValid(&schemapb.FieldData{FieldName: "note"}, true, false, false), "the length of field is wrong: invalid parameter[expected=1][actual=0]"},
		{"no valid_data and too few values", scalarCol("note", 0, strs("a", "b")), "the length of field is wrong: invalid parameter[expected=3][actual=2]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cols := base()
			if c.col == nil {
				cols[0].ValidData = []bool{true, true, true}
			} else {
				cols = append(cols, c.col)
			}
			r, err := FromFieldData(s, cols, 3, FromOptions{Allocator: checked(t)})
			require.Nil(t, r)
			require.Equal(t, apierr.ParameterInvalid, apierr.KindOf(err), "%v", err)
			require.ErrorContains(t, err, c.want)
		})
	}
}

func TestSplitKeepsNulls(t *testing.T) {
	s := nullableSchema()
	cols := []*schemapb.FieldData{
		scalarCol("id", 0, longs(1, 2, 3, 4)),
		vectorCol("vec", 0, floatVec(2, make([]float32, 8))),
		withValid(scalarCol("note", 0, strs("a", "d")), true, false, false, true),
		withValid(scalarCol("tags", 0, arrays(schemapb.DataType_Int64, longs(9))), false, true, false, false),
	}
	r, err := FromFieldData(s, cols, 4, FromOptions{Allocator: checked(t)})
	require.NoError(t, err)
	defer r.Release()
	parts := r.Split(func(h uint32) int { return int(h % 2) }, 2)
	total := 0
	for _, p := range parts {
		if p == nil {
			continue
		}
		rec := p.Record(1)
		out, err := ToFieldData(rec, s)
		require.NoError(t, err)
		for i, id := range out[0].GetScalars().GetLongData().GetData() {
			require.Equal(t, id == 1 || id == 4, out[2].GetValidData()[i], "note of row %d", id)
			require.Equal(t, id == 2, out[5].GetValidData()[i], "tags of row %d", id)
			if id == 2 {
				require.Equal(t, []int64{9}, out[5].GetScalars().GetArrayData().GetData()[i].GetLongData().GetData())
			}
			total++
		}
		rec.Release()
		p.Release()
	}
	require.Equal(t, 4, total)
}

// TestNullableJSON: a null in a nullable JSON field, and an omitted nullable JSON column, are
// nulls, as in Milvus (its TestNullableDefault covers every nullable type).
func TestNullableJSON(t *testing.T) {
	meta := field("meta", schemapb.DataType_JSON)
	meta.Nullable = true
	s := collection(false, pkField("id", schemapb.DataType_Int64, false), field("vec", schemapb.DataType_FloatVector, "dim", "2"), meta)
	base := []*schemapb.FieldData{scalarCol("id", 0, longs(1, 2, 3)), vectorCol("vec", 0, floatVec(2, make([]float32, 6)))}
	for _, tc := range []struct {
		name  string
		cols  []*schemapb.FieldData
		valid []bool
	}{
		{"a null row", append(base[:2:2], withValid(scalarCol("meta", 0, jsons(`{"a":1}`, "[2]")), true, false, true)), []bool{true, false, true}},
		{"omitted", base[:2:2], []bool{false, false, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := FromFieldData(s, tc.cols, 3, FromOptions{Allocator: checked(t)})
			require.NoError(t, err)
			defer r.Release()
			rec := r.Record(1)
			defer rec.Release()
			out, err := ToFieldData(rec, s)
			require.NoError(t, err)
			require.Equal(t, tc.valid, out[2].GetValidData())
		})
	}
}

// TestClaimedRowsAllocateNothing: a request that claims far more rows than its columns carry is
// refused before anything the size of the claim is allocated, omitted nullable columns
// included (they would be all null, one value per claimed row).
func TestClaimedRowsAllocateNothing(t *testing.T) {
	s := nullableSchema()
	cols := []*schemapb.FieldData{scalarCol("id", 0, longs(1, 2)), vectorCol("vec", 0, floatVec(2, make([]float32, 4)))}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := FromFieldData(s, cols, 50_000_000, FromOptions{})
	runtime.ReadMemStats(&after)
	require.ErrorContains(t, err, "is not equal to passed num_rows (50000000)")
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(1<<20), "bytes allocated for a refused claim of 50 million rows")
}

// TestSplitEmptyArrays: rows whose arrays are all empty split without touching the empty
// element buffer (a valid write Milvus accepts).
func TestSplitEmptyArrays(t *testing.T) {
	s := collection(false, pkField("id", schemapb.DataType_Int64, false), field("vec", schemapb.DataType_FloatVector, "dim", "2"), arrayField("xs", schemapb.DataType_Int64))
	r, err := FromFieldData(s, []*schemapb.FieldData{
		scalarCol("id", 0, longs(1, 2, 3)), vectorCol("vec", 0, floatVec(2, make([]float32, 6))),
		scalarCol("xs", 0, arrays(schemapb.DataType_Int64, longs(), longs(), longs())),
	}, 3, FromOptions{Allocator: checked(t)})
	require.NoError(t, err)
	defer r.Release()
	for _, p := range r.Split(func(h uint32) int { return int(h % 2) }, 2) {
		if p != nil {
			p.Release()
		}
	}
}

// TestOmittedColumnsCountBeforeTheyAreMade: a request that carries its rows cheaply but omits
// fields whose columns would be large is refused for its size before those columns are made.
func TestOmittedColumnsCountBeforeTheyAreMade(t *testing.T) {
	fields := []*schemapb.FieldSchema{pkField("id", schemapb.DataType_Int64, true), field("bits", schemapb.DataType_BinaryVector, "dim", "8")}
	for i := range 8 {
		f := field("j"+strconv.Itoa(i), schemapb.DataType_JSON)
		f.Nullable = true
		fields = append(fields, f)
	}
	s := collection(false, fields...)
	const n = 200_000
	cols := []*schemapb.FieldData{vectorCol("bits", 0, &schemapb.VectorField{Dim: 8, Data: &schemapb.VectorField_BinaryVector{BinaryVector: make([]byte, n)}})}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := FromFieldData(s, cols, n, FromOptions{MaxBatchBytes: 4 << 20, AutoIDs: func(int) (int64, error) { return 1, nil }})
	runtime.ReadMemStats(&after)
	require.Equal(t, apierr.ParameterTooLarge, apierr.KindOf(err), "%v", err)
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(4<<20), "bytes allocated before the refusal")
}

// TestOmittedColumnsCountAsTheirRecord: an omitted field counts what its column will hold in
// the record, as a column sent with the same rows counts: a geometry default as its WKB (4 times
// the text of a line string: refused before it is made), a nullable Bool as a byte and a bit per
// row (accepted, as when the same nulls are sent with valid_data).
func TestOmittedColumnsCountAsTheirRecord(t *testing.T) {
	bits := func(n int) *schemapb.FieldData {
		return vectorCol("bits", 0, &schemapb.VectorField{Dim: 8, Data: &schemapb.VectorField_BinaryVector{BinaryVector: make([]byte, n)}})
	}
	autoIDs := func(int) (int64, error) { return 1, nil }

	t.Run("geometry default", func(t *testing.T) {
		geo := field("geo", schemapb.DataType_Geometry)
		geo.DefaultValue = &schemapb.ValueField{Data: &schemapb.ValueField_StringData{
			StringData: "LINESTRING(" + strings.TrimSuffix(strings.Repeat("0 0,", 2001), ",") + ")"}}
		s := collection(false, pkField("id", schemapb.DataType_Int64, true), field("bits", schemapb.DataType_BinaryVector, "dim", "8"), geo)
		const n = 2000 // 16 MB of WKT, 64 MB of WKB
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := FromFieldData(s, []*schemapb.FieldData{bits(n)}, n, FromOptions{MaxBatchBytes: 20 << 20, AutoIDs: autoIDs})
		runtime.ReadMemStats(&after)
		require.Equal(t, apierr.ParameterTooLarge, apierr.KindOf(err), "%v", err)
		require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(4<<20), "bytes allocated before the refusal")
	})

	t.Run("nullable bools", func(t *testing.T) {
		fields := []*schemapb.FieldSchema{pkField("id", schemapb.DataType_Int64, true), field("bits", schemapb.DataType_BinaryVector, "dim", "8")}
		for i := range 40 {
			f := field("b"+strconv.Itoa(i), schemapb.DataType_Bool)
			f.Nullable = true
			fields = append(fields, f)
		}
		s := collection(false, fields...)
		const n = 200_000 // 9 MB of bools and validity, 5.4 MB of keys, timestamps and vectors
		rows, err := FromFieldData(s, []*schemapb.FieldData{bits(n)}, n, FromOptions{MaxBatchBytes: 16 << 20, AutoIDs: autoIDs})
		require.NoError(t, err)
		rows.Release()
	})
}
