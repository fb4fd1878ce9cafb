package batch

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/apierr"
)

// replace returns cols with the column named name replaced by fd (or removed when fd is nil).
func replace(cols []*schemapb.FieldData, name string, fd *schemapb.FieldData) []*schemapb.FieldData {
	out := make([]*schemapb.FieldData, 0, len(cols))
	for _, c := range cols {
		if c.GetFieldName() != name {
			out = append(out, c)
		} else if fd != nil {
			out = append(out, fd)
		}
	}
	return out
}

func TestFromFieldDataRejects(t *testing.T) {
	const n = 3
	good := func() []*schemapb.FieldData { return allColumns(0, n) }
	nan := float32(math.NaN())
	inf := math.Inf(1)
	vec := func(v ...float32) []float32 { return append(make([]float32, 4*n-len(v)), v...) }
	autoInt := collection(false, pkField("id", schemapb.DataType_Int64, true), field("vec", schemapb.DataType_FloatVector, "dim", "4"))
	autoCols := []*schemapb.FieldData{vectorCol("vec", schemapb.DataType_FloatVector, floatVec(4, vec()))}
	bigJSON := `{"k":"` + strings.Repeat("x", MaxJSONBytes) + `"}`

	cases := []struct {
		name    string
		schema  *schemapb.CollectionSchema // allTypes(true) when nil
		cols    []*schemapb.FieldData
		rows    uint32 // n when 0 and zeroRows unset
		zero    bool
		opts    FromOptions
		kind    apierr.Kind
		message []string
	}{
		{name: "no rows", cols: good(), zero: true, kind: apierr.ParameterInvalid,
			message: []string{"num_rows should be greater than 0"}},
		{name: "no rows and no columns", cols: nil, zero: true, kind: apierr.ParameterInvalid,
			message: []string{"num_rows should be greater than 0"}},
		{name: "no columns", cols: nil, kind: apierr.ParameterInvalid,
			message: []string{"fieldSchema(id) has no corresponding fieldData pass in"}},
		{name: "wrong dim", cols: replace(good(), "vec", vectorCol("vec", schemapb.DataType_FloatVector, floatVec(8, make([]float32, 8*n)))),
			kind: apierr.ParameterInvalid, message: []string{"the dim (8) of field data(vec) is not equal to schema dim (4)"}},
		{name: "varchar too long", cols: replace(good(), "title", scalarCol("title", schemapb.DataType_VarChar, strs("a", strings.Repeat("x", 17), "b"))),
			kind: apierr.ParameterInvalid, message: []string{"length of varchar field title exceeds max length, row number: 1, length: 17, max length: 16"}},
		{name: "missing field", cols: replace(good(), "f", nil), kind: apierr.ParameterInvalid,
			message: []string{"fieldSchema(f) has no corresponding fieldData pass in: invalid parameter"}},
		{name: "short scalar column", cols: replace(good(), "f", scalarCol("f", schemapb.DataType_Float, floats(1, 2))),
			kind: apierr.ParameterInvalid, message: []string{"the num_rows (2) of field (f) is not equal to passed num_rows (3): invalid parameter[expected=3][actual=2]"}},
		{name: "num_rows larger than the columns", cols: good(), rows: n + 1, kind: apierr.ParameterInvalid,
			message: []string{"is not equal to passed num_rows (4)"}},
		{name: "unknown field", cols: append(good(), scalarCol("x", schemapb.DataType_Int64, longs(1, 2, 3))),
			kind: apierr.ParameterInvalid, message: []string{"fieldName x not exist in collection schema, fieldType Int64, fieldId 0: invalid parameter"}},
		{name: "unknown field id", cols: append(good(), &schemapb.FieldData{FieldId: 999, Field: &schemapb.FieldData_Scalars{Scalars: longs(1, 2, 3)}}),
			kind: apierr.ParameterInvalid, message: []string{"fieldName #999 not exist in collection schema"}},
		{name: "type mismatch", cols: replace(good(), "f", scalarCol("f", schemapb.DataType_Float, longs(1, 2, 3))),
			kind: apierr.ParameterInvalid, message: []string{"field 'f' is illegal, array type mismatch: invalid parameter[expected=need float32 array][actual=got nil]"}},
		{name: "no data", cols: replace(good(), "i32", &schemapb.FieldData{FieldName: "i32", Type: schemapb.DataType_Int32}),
			kind: apierr.ParameterInvalid, message: []string{"field 'i32' is illegal, array type mismatch: invalid parameter[expected=need int array][actual=got nil]"}},
		{name: "scalars for a vector", cols: replace(good(), "vec", scalarCol("vec", schemapb.DataType_FloatVector, floats(1, 2, 3))),
			kind: apierr.ParameterInvalid, message: []string{"float vector field 'vec' is illegal, array type mismatch: invalid parameter[expected=need float vector][actual=got nil]"}},
		{name: "binary data for a float vector", cols: replace(good(), "vec", vectorCol("vec", schemapb.DataType_FloatVector, &schemapb.VectorField{Dim: 4, Data: &schemapb.VectorField_BinaryVector{BinaryVector: make([]byte, 6)}})),
			kind: apierr.ParameterInvalid, message: []string{"float vector field 'vec' is illegal"}},
		{name: "bytes for varchar", cols: replace(good(), "title", scalarCol("title", schemapb.DataType_VarChar, &schemapb.ScalarField{Data: &schemapb.ScalarField_BytesData{}})),
			kind: apierr.ParameterInvalid, message: []string{"varchar field 'title' is illegal, array type mismatch: invalid parameter[expected=need string array][actual=got nil]"}},
		{name: "duplicate column", cols: append(good(), scalarCol("f", schemapb.DataType_Float, floats(1, 2, 3))),
			kind: apierr.ParameterInvalid, message: []string{"duplicated field f found: invalid parameter"}},
		{name: "duplicate dynamic column", cols: append(good(), dynCol("{}", "{}", "{}"), dynCol("{}", "{}", "{}")),
			kind: apierr.ParameterInvalid, message: []string{"duplicated field $meta found: invalid parameter"}},
		{name: "dynamic column without dynamic fields", schema: allTypes(false), cols: append(good(), dynCol("{}", "{}", "{}")),
			kind: apierr.ParameterInvalid, message: []string{"fieldName $meta not exist in collection schema, fieldType JSON, fieldId 0: invalid parameter"}},
		{name: "auto id passed", schema: autoInt, cols: append(autoCols, scalarCol("id", schemapb.DataType_Int64, longs(1, 2, 3))),
			kind: apierr.ParameterInvalid, message: []string{"more fieldData has pass in: invalid parameter[expected=2][actual=3]"}},
		{name: "upsert without the auto id", schema: autoInt, cols: autoCols, opts: FromOptions{Upsert: true},
			kind: apierr.ParameterInvalid, message: []string{"must assign pk when upsert, primary field: id: invalid parameter"}},
		{name: "upsert repeats a key", cols: replace(good(), "id", scalarCol("id", schemapb.DataType_Int64, longs(7, 8, 7))), opts: FromOptions{Upsert: true},
			kind: apierr.ParameterInvalid, message: []string{"duplicate primary keys are not allowed in the same batch: invalid parameter", `key 7 of field "id" at rows 0 and 2`}},
		{name: "invalid json", cols: replace(good(), "meta", scalarCol("meta", schemapb.DataType_JSON, jsons("{}", `{"a":`, "1"))),
			kind: apierr.ParameterInvalid, message: []string{`field "meta": the value at row 1 is not valid JSON`}},
		{name: "json too long", cols: replace(good(), "meta", scalarCol("meta", schemapb.DataType_JSON, jsons("{}", "{}", bigJSON))),
			kind: apierr.ParameterInvalid, message: []string{"the length (65544) of json field (meta) exceeds max length (65536): invalid parameter[expected=valid length json string][actual=length exceeds max length]", "row 2"}},
		{name: "dynamic not an object", cols: append(good(), dynCol("{}", "[1]", "{}")),
			kind: apierr.ParameterInvalid, message: []string{"invalid dynamic field data, only json map is supported: ", "row 1"}},
		{name: "dynamic null", cols: append(good(), dynCol("{}", "{}", "null")),
			kind: apierr.ParameterInvalid, message: []string{"only json map is supported", "row 2"}},
		{name: "dynamic $meta key", cols: append(good(), dynCol(`{"$meta":1}`, "{}", "{}")),
			kind: apierr.ParameterInvalid, message: []string{"cannot set json key to: $meta: invalid parameter"}},
		{name: "dynamic static key", cols: append(good(), dynCol(`{"title":"x"}`, "{}", "{}")),
			kind: apierr.ParameterInvalid, message: []string{"dynamic field name cannot include the static field name: title: invalid parameter"}},
		{name: "dynamic too long", cols: append(good(), dynCol("{}", bigJSON, "{}")),
			kind: apierr.ParameterInvalid, message: []string{"the length (65544) of dynamic field exceeds max length (65536): invalid parameter[expected=valid length dynamic field][actual=length exceeds max length]", "row 1"}},
		{name: "dynamic not json", cols: append(good(), &schemapb.FieldData{FieldName: DynamicColumn, Field: &schemapb.FieldData_Scalars{Scalars: strs("a", "b", "c")}}),
			kind: apierr.ParameterInvalid, message: []string{`field "$meta": expected JSON data, got VarChar data`}},
		{name: "dynamic short", cols: append(good(), dynCol("{}", "{}")),
			kind: apierr.ParameterInvalid, message: []string{"the num_rows (2) of field ($meta) is not equal to passed num_rows (3)"}},
		{name: "float vector NaN", cols: replace(good(), "vec", vectorCol("vec", schemapb.DataType_FloatVector, floatVec(4, vec(nan, 1, 2, 3, 4, 5)))),
			kind: apierr.Unexpected, message: []string{"value 'NaN' is not a number or infinity", `float vector field "vec", row 1`}},
		{name: "float vector Inf", cols: replace(good(), "vec", vectorCol("vec", schemapb.DataType_FloatVector, floatVec(4, vec(float32(inf))))),
			kind: apierr.Unexpected, message: []string{"value '+Inf' is not a number or infinity", "row 2"}},
		{name: "float NaN", cols: replace(good(), "f", scalarCol("f", schemapb.DataType_Float, floats(0, 0, nan))),
			kind: apierr.Unexpected, message: []string{"value 'NaN' is not a number or infinity", `field "f", row 2`}},
		{name: "double -Inf", cols: replace(good(), "d", scalarCol("d", schemapb.DataType_Double, &schemapb.ScalarField{Data: &schemapb.ScalarField_DoubleData{DoubleData: &schemapb.DoubleArray{Data: []float64{math.Inf(-1), 0, 0}}}})),
			kind: apierr.Unexpected, message: []string{"value '-Inf' is not a number or infinity", `field "d", row 0`}},
		{name: "float16 Inf", cols: replace(good(), "f16", vectorCol("f16", schemapb.DataType_Float16Vector, &schemapb.VectorField{Dim: 2, Data: &schemapb.VectorField_Float16Vector{Float16Vector: []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x7c}}})),
			kind: apierr.Unexpected, message: []string{"float16 vector contain nan or infinity value.", `field "f16", row 2`}},
		{name: "bfloat16 NaN", cols: replace(good(), "bf16", vectorCol("bf16", schemapb.DataType_BFloat16Vector, &schemapb.VectorField{Dim: 2, Data: &schemapb.VectorField_Bfloat16Vector{Bfloat16Vector: []byte{0, 0, 0xc1, 0xff, 0, 0, 0, 0, 0, 0, 0, 0}}})),
			kind: apierr.Unexpected, message: []string{"bfloat16 vector contain nan or infinity value.", `field "bf16", row 0`}},
		{name: "binary vector partial", cols: replace(good(), "bin", vectorCol("bin", schemapb.DataType_BinaryVector, &schemapb.VectorField{Dim: 16, Data: &schemapb.VectorField_BinaryVector{BinaryVector: make([]byte, 5)}})),
			kind: apierr.Unexpected, message: []string{"the num(40) of all bits should divide the dim(16)"}},
		{name: "float vector rows", cols: replace(good(), "vec", vectorCol("vec", schemapb.DataType_FloatVector, floatVec(4, make([]float32, 8)))),
			kind: apierr.ParameterInvalid, message: []string{"the num_rows (2) of field (vec) is not equal to passed num_rows (3)"}},
		{name: "int8 vector rows", cols: replace(good(), "i8v", vectorCol("i8v", schemapb.DataType_Int8Vector, &schemapb.VectorField{Dim: 4, Data: &schemapb.VectorField_Int8Vector{Int8Vector: make([]byte, 16)}})),
			kind: apierr.ParameterInvalid, message: []string{"the num_rows (4) of field (i8v)"}},
		{name: "int8 overflow", cols: replace(good(), "i8", scalarCol("i8", schemapb.DataType_Int8, ints(0, 128, 0))),
			kind: apierr.ParameterInvalid, message: []string{"the 1th element (128) out of range: [-128, 127]: invalid parameter[expected=integer doesn't overflow][actual=out of range]"}},
		{name: "int16 overflow", cols: replace(good(), "i16", scalarCol("i16", schemapb.DataType_Int16, ints(-32769, 0, 0))),
			kind: apierr.ParameterInvalid, message: []string{"the 0th element (-32769) out of range: [-32768, 32767]"}},
		{name: "array over capacity", cols: replace(good(), "i64s", scalarCol("i64s", schemapb.DataType_Array, arrays(schemapb.DataType_Int64, longs(), longs(1, 2, 3, 4, 5), longs()))),
			kind: apierr.ParameterInvalid, message: []string{"the length (5) of 1th array exceeds max capacity (4): invalid parameter[expected=valid length array][actual=array length exceeds max capacity]", `field "i64s"`}},
		{name: "array element type", cols: replace(good(), "i64s", scalarCol("i64s", schemapb.DataType_Array, arrays(schemapb.DataType_Int64, longs(), strs("a"), longs()))),
			kind: apierr.ParameterInvalid, message: []string{"insert data does not match: invalid parameter[expected=int64 array][actual=*schemapb.ScalarField_StringData array]", `field "i64s", row 1`}},
		{name: "array nil row", cols: replace(good(), "fs", scalarCol("fs", schemapb.DataType_Array, arrays(schemapb.DataType_Float, floats(), nil, floats()))),
			kind: apierr.ParameterInvalid, message: []string{"insert data does not match: invalid parameter[expected=float array][actual=nil array]"}},
		{name: "array varchar too long", cols: replace(good(), "tags", scalarCol("tags", schemapb.DataType_Array, arrays(schemapb.DataType_VarChar, strs("a", "123456789"), strs(), strs()))),
			kind: apierr.ParameterInvalid, message: []string{`length of Array array field "tags" exceeds max length, row number: 0, array index: 1, length: 9, max length: 8: invalid parameter`}},
		{name: "array int8 overflow", cols: replace(good(), "i8s", scalarCol("i8s", schemapb.DataType_Array, arrays(schemapb.DataType_Int8, ints(), ints(), ints(1, -129)))),
			kind: apierr.ParameterInvalid, message: []string{"the 1th element (-129) out of range: [-128, 127]", `field "i8s", row 2`}},
		{name: "array rows", cols: replace(good(), "ds", scalarCol("ds", schemapb.DataType_Array, arrays(schemapb.DataType_Double))),
			kind: apierr.ParameterInvalid, message: []string{"the num_rows (0) of field (ds)"}},
		{name: "array of json", schema: collection(false, pkField("id", schemapb.DataType_Int64, false), arrayField("js", schemapb.DataType_JSON)),
			cols: []*schemapb.FieldData{scalarCol("id", schemapb.DataType_Int64, longs(1, 2, 3)), scalarCol("js", schemapb.DataType_Array, arrays(schemapb.DataType_JSON, jsons("{}"), jsons(), jsons()))},
			kind: apierr.ParameterInvalid, message: []string{`field "js": arrays of JSON are not supported`}},
		{name: "null row", cols: func() []*schemapb.FieldData {
			c := good()
			c[1].ValidData = []bool{true, false, true}
			return c
		}(), kind: apierr.ParameterInvalid, message: []string{"the length of valid_data of field(b) is wrong: invalid parameter[expected=0][actual=3]"}},
		{name: "batch too large", cols: good(), opts: FromOptions{MaxBatchBytes: 100},
			kind: apierr.ParameterTooLarge, message: []string{"the limit is 100 bytes"}},
		{name: "auto ids too large", schema: autoInt, cols: autoCols, opts: FromOptions{MaxBatchBytes: 60},
			kind: apierr.ParameterTooLarge, message: []string{"the limit is 60 bytes"}},
		{name: "dynamic data too large", cols: append(good(), dynCol(`{"a":"`+strings.Repeat("x", 5000)+`"}`, "{}", "{}")), opts: FromOptions{MaxBatchBytes: 5000},
			kind: apierr.ParameterTooLarge, message: []string{"the limit is 5000 bytes"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.schema
			if s == nil {
				s = allTypes(true)
			}
			rows := tc.rows
			if rows == 0 && !tc.zero {
				rows = n
			}
			calls := 0
			opts := tc.opts
			opts.Allocator = checked(t)
			opts.AutoIDs = func(int) (int64, error) { calls++; return 1, nil }
			r, err := FromFieldData(s, tc.cols, rows, opts)
			require.Error(t, err)
			require.Nil(t, r, "a rejected request produces no rows")
			require.Zero(t, calls, "a rejected request allocates no ids")
			var ae *apierr.Error
			require.ErrorAs(t, err, &ae)
			require.Equal(t, tc.kind, ae.Kind, "%v", err)
			for _, m := range tc.message {
				require.Contains(t, err.Error(), m)
			}
		})
	}
}

func TestFromFieldDataInternalErrors(t *testing.T) {
	t.Run("no allocator for auto ids", func(t *testing.T) {
		s := collection(false, pkField("id", schemapb.DataType_Int64, true), field("vec", schemapb.DataType_FloatVector, "dim", "2"))
		_, err := FromFieldData(s, []*schemapb.FieldData{vectorCol("vec", 0, floatVec(2, []float32{1, 2}))}, 1, FromOptions{})
		require.ErrorIs(t, err, ErrNoAutoIDs)
	})
	t.Run("allocator fails", func(t *testing.T) {
		s := collection(false, pkField("id", schemapb.DataType_Int64, true), field("vec", schemapb.DataType_FloatVector, "dim", "2"))
		boom := errors.New("etcd down")
		mem := checked(t)
		_, err := FromFieldData(s, []*schemapb.FieldData{vectorCol("vec", 0, floatVec(2, []float32{1, 2}))}, 1,
			FromOptions{Allocator: mem, AutoIDs: func(int) (int64, error) { return 0, boom }})
		require.ErrorIs(t, err, boom)
		require.Equal(t, apierr.Internal, apierr.KindOf(err))
	})
	t.Run("bad schema", func(t *testing.T) {
		s := collection(false, pkField("id", schemapb.DataType_Int64, false), field("g", schemapb.DataType_Text))
		_, err := FromFieldData(s, nil, 1, FromOptions{})
		require.ErrorContains(t, err, "has no Arrow mapping")
	})
	t.Run("no primary key", func(t *testing.T) {
		s := collection(false, field("x", schemapb.DataType_Int64))
		_, err := FromFieldData(s, []*schemapb.FieldData{scalarCol("x", 0, longs(1))}, 1, FromOptions{})
		require.ErrorContains(t, err, "has no primary key")
	})
	t.Run("varchar without max_length", func(t *testing.T) {
		s := collection(false, pkField("id", schemapb.DataType_Int64, false), field("v", schemapb.DataType_VarChar))
		_, err := FromFieldData(s, []*schemapb.FieldData{scalarCol("id", 0, longs(1)), scalarCol("v", 0, strs("a"))}, 1, FromOptions{})
		require.ErrorContains(t, err, `field "v": no max_length`)
	})
	t.Run("array with a bad capacity", func(t *testing.T) {
		f := arrayField("a", schemapb.DataType_Int64)
		f.TypeParams = params("max_capacity", "many")
		s := collection(false, pkField("id", schemapb.DataType_Int64, false), f)
		_, err := FromFieldData(s, []*schemapb.FieldData{scalarCol("id", 0, longs(1)), scalarCol("a", 0, arrays(schemapb.DataType_Int64, longs()))}, 1, FromOptions{})
		require.ErrorContains(t, err, `field "a": bad max_capacity "many"`)
	})
	t.Run("varchar array without max_length", func(t *testing.T) {
		s := collection(false, pkField("id", schemapb.DataType_Int64, false), arrayField("a", schemapb.DataType_VarChar))
		_, err := FromFieldData(s, []*schemapb.FieldData{scalarCol("id", 0, longs(1)), scalarCol("a", 0, arrays(schemapb.DataType_VarChar, strs()))}, 1, FromOptions{})
		require.ErrorContains(t, err, `field "a": no max_length`)
	})
}

func TestFromFieldDataAllTypes(t *testing.T) {
	mem := checked(t)
	s := allTypes(true)
	cols := append(allColumns(10, 7), dynCol(`{"x":1}`, `{}`, `{"y":[1,2]}`, `{}`, `{}`, `{}`, `{"z":null}`))
	r, err := FromFieldData(s, cols, 7, FromOptions{Allocator: mem})
	require.NoError(t, err)
	defer r.Release()
	require.Equal(t, 7, r.Len())
	require.Equal(t, []int64{10, 11, 12, 13, 14, 15, 16}, r.PrimaryKeys().Int64)
	require.Nil(t, r.PrimaryKeys().Strings)

	rec := r.Record(42)
	defer rec.Release()
	want, err := ArrowSchema(s)
	require.NoError(t, err)
	require.True(t, want.Equal(rec.Schema()), "record schema is ArrowSchema(s)")
	require.True(t, r.Schema().Equal(want))
	require.EqualValues(t, 7, rec.NumRows())
	ts := rec.Column(int(rec.NumCols()) - 1).(*array.Uint64)
	for i := range 7 {
		require.EqualValues(t, 42, ts.Value(i))
	}
	require.Equal(t, `{"y":[1,2]}`, string(rec.Column(len(s.GetFields())).(*array.Binary).Value(2)))
	vec := rec.Column(18).(*array.FixedSizeBinary)
	got := make([]float32, 4)
	getFloats(got, vec.Value(3))
	require.Equal(t, []float32{13, 13 + float32(1)/10, 13 + float32(2)/10, 13 + float32(3)/10}, got)
}

func TestFromFieldDataMatching(t *testing.T) {
	s := collection(true, pkField("id", schemapb.DataType_Int64, false), field("vec", schemapb.DataType_FloatVector, "dim", "2"), field("n", schemapb.DataType_Int32))
	t.Run("by field id when the name is empty", func(t *testing.T) {
		mem := checked(t)
		cols := []*schemapb.FieldData{
			{FieldId: 102, Field: &schemapb.FieldData_Scalars{Scalars: ints(5)}},
			{FieldId: 100, Field: &schemapb.FieldData_Scalars{Scalars: longs(9)}},
			vectorCol("vec", schemapb.DataType_None, floatVec(2, []float32{1, 2})), // Type is ignored
		}
		r, err := FromFieldData(s, cols, 1, FromOptions{Allocator: mem})
		require.NoError(t, err)
		defer r.Release()
		rec := r.Record(1)
		defer rec.Release()
		require.EqualValues(t, 5, rec.Column(2).(*array.Int32).Value(0))
		require.EqualValues(t, 9, rec.Column(0).(*array.Int64).Value(0))
		require.Equal(t, "{}", string(rec.Column(3).(*array.Binary).Value(0)), "a missing dynamic column is filled with {}")
	})
	t.Run("dynamic column by name", func(t *testing.T) {
		mem := checked(t)
		cols := []*schemapb.FieldData{
			scalarCol("id", 0, longs(9)), vectorCol("vec", 0, floatVec(2, []float32{1, 2})), scalarCol("n", 0, ints(1)),
			scalarCol(DynamicColumn, schemapb.DataType_JSON, jsons(`{"a":1}`)),
		}
		r, err := FromFieldData(s, cols, 1, FromOptions{Allocator: mem})
		require.NoError(t, err)
		defer r.Release()
		rec := r.Record(1)
		defer rec.Release()
		require.Equal(t, `{"a":1}`, string(rec.Column(3).(*array.Binary).Value(0)))
	})
}

func TestAutoIDs(t *testing.T) {
	for _, dt := range []schemapb.DataType{schemapb.DataType_Int64, schemapb.DataType_VarChar} {
		t.Run(dt.String(), func(t *testing.T) {
			mem := checked(t)
			s := collection(false, pkField("id", dt, true), field("vec", schemapb.DataType_FloatVector, "dim", "2"))
			var asked []int
			opts := FromOptions{Allocator: mem, AutoIDs: func(n int) (int64, error) { asked = append(asked, n); return 1000, nil }}
			r, err := FromFieldData(s, []*schemapb.FieldData{vectorCol("vec", 0, floatVec(2, make([]float32, 6)))}, 3, opts)
			require.NoError(t, err)
			defer r.Release()
			require.Equal(t, []int{3}, asked)
			rec := r.Record(5)
			defer rec.Release()
			pks := r.PrimaryKeys()
			require.Equal(t, 3, pks.Len())
			if dt == schemapb.DataType_Int64 {
				require.Equal(t, []int64{1000, 1001, 1002}, pks.Int64)
				require.Equal(t, []int64{1000, 1001, 1002}, rec.Column(0).(*array.Int64).Int64Values())
				require.Equal(t, []int64{1000, 1001, 1002}, IDs(pks).GetIntId().GetData())
			} else {
				require.Equal(t, []string{"1000", "1001", "1002"}, pks.Strings)
				require.Equal(t, "1002", rec.Column(0).(*array.String).Value(2))
				require.Equal(t, []string{"1000", "1001", "1002"}, IDs(pks).GetStrId().GetData())
			}

			// An upsert passes the keys back, even a varchar longer than max_length (Milvus
			// does not check generated keys).
			var keys *schemapb.FieldData
			if dt == schemapb.DataType_Int64 {
				keys = scalarCol("id", dt, longs(1000, 1001, 1002))
			} else {
				keys = scalarCol("id", dt, strs("1000", "1001", strings.Repeat("9", 40)))
			}
			opts.Upsert = true
			u, err := FromFieldData(s, []*schemapb.FieldData{keys, vectorCol("vec", 0, floatVec(2, make([]float32, 6)))}, 3, opts)
			require.NoError(t, err)
			defer u.Release()
			require.Equal(t, []int{3}, asked, "an upsert allocates no ids")
			require.Equal(t, 3, u.PrimaryKeys().Len())
		})
	}
}

func TestUpsertVarcharDuplicate(t *testing.T) {
	s := collection(false, pkField("id", schemapb.DataType_VarChar, false), field("vec", schemapb.DataType_FloatVector, "dim", "2"))
	_, err := FromFieldData(s, []*schemapb.FieldData{scalarCol("id", 0, strs("a", "a")), vectorCol("vec", 0, floatVec(2, make([]float32, 4)))}, 2,
		FromOptions{Upsert: true})
	require.ErrorContains(t, err, `duplicate primary keys are not allowed in the same batch: invalid parameter: key a of field "id" at rows 0 and 1`)
	// The same batch is a valid insert: Milvus keeps both rows.
	r, err := FromFieldData(s, []*schemapb.FieldData{scalarCol("id", 0, strs("a", "a")), vectorCol("vec", 0, floatVec(2, make([]float32, 4)))}, 2, FromOptions{})
	require.NoError(t, err)
	r.Release()
}

// TestRowsBorrowOnlyFloatVectors checks the memory contract of FromFieldData: scalar columns
// are copied, so the request's scalars may change once Rows exist; float vectors are borrowed
// (little-endian machines), so Rows see the request's floats and must not outlive them.
func TestRowsBorrowOnlyFloatVectors(t *testing.T) {
	mem := checked(t)
	s := collection(false, pkField("id", schemapb.DataType_Int64, false), field("vec", schemapb.DataType_FloatVector, "dim", "2"))
	ids := []int64{1, 2}
	v := []float32{1, 2, 3, 4}
	r, err := FromFieldData(s, []*schemapb.FieldData{scalarCol("id", 0, longs(ids...)), vectorCol("vec", 0, floatVec(2, v))}, 2, FromOptions{Allocator: mem})
	require.NoError(t, err)
	defer r.Release()
	ids[0], v[0] = 99, 99
	require.Equal(t, int64(1), r.PrimaryKeys().Int64[0], "keys are copied")
	rec := r.Record(1)
	defer rec.Release()
	got := make([]float32, 2)
	getFloats(got, rec.Column(1).(*array.FixedSizeBinary).Value(0))
	want := []float32{99, 2} // borrowed
	if !nativeLittleEndian {
		want = []float32{1, 2}
	}
	require.Equal(t, want, got)
}

func TestPortableFloats(t *testing.T) {
	v := []float32{1, -2.5, float32(math.Inf(1)), 3.25e-20}
	fast, slow := make([]byte, 16), make([]byte, 16)
	putFloats(fast, v)
	putFloatsPortable(slow, v)
	require.Equal(t, fast, slow, "the native copy writes little-endian floats")
	back, backSlow := make([]float32, 4), make([]float32, 4)
	getFloats(back, fast)
	getFloatsPortable(backSlow, fast)
	require.Equal(t, v, back)
	require.Equal(t, v, backSlow)
	require.True(t, nativeLittleEndian, "Weir's builds run on little-endian machines; this test documents the fast path is the one tested")
	require.Nil(t, bytesOf([]int64(nil)))
}
