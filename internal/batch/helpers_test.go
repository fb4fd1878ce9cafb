package batch

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/float16"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// collection returns a schema as schema.Normalize produces it: field IDs from 100 in order.
// It is built by hand because the all-types schema has more vector fields than Weir allows.
func collection(dynamic bool, fields ...*schemapb.FieldSchema) *schemapb.CollectionSchema {
	for i, f := range fields {
		f.FieldID = 100 + int64(i)
	}
	return &schemapb.CollectionSchema{Name: "c", EnableDynamicField: dynamic, Fields: fields}
}

func params(kv ...string) []*commonpb.KeyValuePair {
	var out []*commonpb.KeyValuePair
	for i := 0; i < len(kv); i += 2 {
		out = append(out, &commonpb.KeyValuePair{Key: kv[i], Value: kv[i+1]})
	}
	return out
}

func field(name string, dt schemapb.DataType, kv ...string) *schemapb.FieldSchema {
	return &schemapb.FieldSchema{Name: name, DataType: dt, TypeParams: params(kv...)}
}

func arrayField(name string, et schemapb.DataType, kv ...string) *schemapb.FieldSchema {
	f := field(name, schemapb.DataType_Array, append([]string{"max_capacity", "4"}, kv...)...)
	f.ElementType = et
	return f
}

func pkField(name string, dt schemapb.DataType, autoID bool) *schemapb.FieldSchema {
	f := field(name, dt)
	if dt == schemapb.DataType_VarChar {
		f.TypeParams = params("max_length", "32")
	}
	f.IsPrimaryKey, f.AutoID = true, autoID
	return f
}

// allTypes is a collection with a field of every type Weir stores.
func allTypes(dynamic bool) *schemapb.CollectionSchema {
	return collection(dynamic,
		pkField("id", schemapb.DataType_Int64, false),
		field("b", schemapb.DataType_Bool),
		field("i8", schemapb.DataType_Int8),
		field("i16", schemapb.DataType_Int16),
		field("i32", schemapb.DataType_Int32),
		field("i64", schemapb.DataType_Int64),
		field("f", schemapb.DataType_Float),
		field("d", schemapb.DataType_Double),
		field("title", schemapb.DataType_VarChar, "max_length", "16"),
		field("meta", schemapb.DataType_JSON),
		arrayField("bools", schemapb.DataType_Bool),
		arrayField("i8s", schemapb.DataType_Int8),
		arrayField("i16s", schemapb.DataType_Int16),
		arrayField("i32s", schemapb.DataType_Int32),
		arrayField("i64s", schemapb.DataType_Int64),
		arrayField("fs", schemapb.DataType_Float),
		arrayField("ds", schemapb.DataType_Double),
		arrayField("tags", schemapb.DataType_VarChar, "max_length", "8"),
		field("vec", schemapb.DataType_FloatVector, "dim", "4"),
		field("bin", schemapb.DataType_BinaryVector, "dim", "16"),
		field("f16", schemapb.DataType_Float16Vector, "dim", "2"),
		field("bf16", schemapb.DataType_BFloat16Vector, "dim", "2"),
		field("i8v", schemapb.DataType_Int8Vector, "dim", "4"),
	)
}

func scalarCol(name string, dt schemapb.DataType, sf *schemapb.ScalarField) *schemapb.FieldData {
	return &schemapb.FieldData{FieldName: name, Type: dt, Field: &schemapb.FieldData_Scalars{Scalars: sf}}
}

func vectorCol(name string, dt schemapb.DataType, vf *schemapb.VectorField) *schemapb.FieldData {
	return &schemapb.FieldData{FieldName: name, Type: dt, Field: &schemapb.FieldData_Vectors{Vectors: vf}}
}

func longs(v ...int64) *schemapb.ScalarField {
	return &schemapb.ScalarField{Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: v}}}
}

func ints(v ...int32) *schemapb.ScalarField {
	return &schemapb.ScalarField{Data: &schemapb.ScalarField_IntData{IntData: &schemapb.IntArray{Data: v}}}
}

func strs(v ...string) *schemapb.ScalarField {
	return &schemapb.ScalarField{Data: &schemapb.ScalarField_StringData{StringData: &schemapb.StringArray{Data: v}}}
}

func floats(v ...float32) *schemapb.ScalarField {
	return &schemapb.ScalarField{Data: &schemapb.ScalarField_FloatData{FloatData: &schemapb.FloatArray{Data: v}}}
}

func jsons(v ...string) *schemapb.ScalarField {
	b := make([][]byte, len(v))
	for i, s := range v {
		b[i] = []byte(s)
	}
	return &schemapb.ScalarField{Data: &schemapb.ScalarField_JsonData{JsonData: &schemapb.JSONArray{Data: b}}}
}

func arrays(et schemapb.DataType, rows ...*schemapb.ScalarField) *schemapb.ScalarField {
	return &schemapb.ScalarField{Data: &schemapb.ScalarField_ArrayData{ArrayData: &schemapb.ArrayArray{Data: rows, ElementType: et}}}
}

func floatVec(dim int, v []float32) *schemapb.VectorField {
	return &schemapb.VectorField{Dim: int64(dim), Data: &schemapb.VectorField_FloatVector{FloatVector: &schemapb.FloatArray{Data: v}}}
}

func dynCol(v ...string) *schemapb.FieldData {
	fd := scalarCol("", schemapb.DataType_JSON, jsons(v...))
	fd.IsDynamic = true
	return fd
}

func f16(v float32) []byte { // float16 bits of small integers and halves, enough for tests
	var b [2]byte
	binary.LittleEndian.PutUint16(b[:], float16.New(v).Uint16())
	return b[:]
}

// allColumns returns valid columns of allTypes for rows first..first+n-1, as an SDK sends
// them (FieldName and Type, FieldId 0), in schema order.
func allColumns(first, n int) []*schemapb.FieldData {
	var (
		id, i64                      []int64
		b                            []bool
		i8, i16, i32                 []int32
		f                            []float32
		d                            []float64
		title                        []string
		meta                         [][]byte
		bools, i8s, i16s, i32s, i64s []*schemapb.ScalarField
		fs, ds, tags                 []*schemapb.ScalarField
		vec                          []float32
		bin, half, bhalf, i8v        []byte
	)
	for r := first; r < first+n; r++ {
		id = append(id, int64(r))
		i64 = append(i64, -int64(r)*1e12)
		b = append(b, r%3 == 0)
		i8 = append(i8, int32(r%256-128))
		i16 = append(i16, int32(r*7%65536-32768))
		i32 = append(i32, int32(r)*-100003)
		f = append(f, float32(r)/4)
		d = append(d, float64(r)*1e-3)
		title = append(title, "t"+strconv.Itoa(r))
		meta = append(meta, []byte(fmt.Sprintf(`{"row":%d,"tags":["x"]}`, r)))
		k := r % 5 // 0..4 elements, exercising empty arrays
		var bb []bool
		var ii, ll []int64
		var ff []float32
		var dd []float64
		var ss []string
		for e := range k {
			bb = append(bb, (r+e)%2 == 0)
			ii = append(ii, int64((r*e)%100-50))
			ll = append(ll, int64(r)<<33+int64(e))
			ff = append(ff, float32(e)+0.5)
			dd = append(dd, float64(r)+float64(e)/8)
			ss = append(ss, "s"+strconv.Itoa(r%1000)+"."+strconv.Itoa(e))
		}
		i32v := make([]int32, len(ii))
		for e, x := range ii {
			i32v[e] = int32(x)
		}
		bools = append(bools, &schemapb.ScalarField{Data: &schemapb.ScalarField_BoolData{BoolData: &schemapb.BoolArray{Data: bb}}})
		i8s = append(i8s, ints(i32v...))
		i16s = append(i16s, ints(i32v...))
		i32s = append(i32s, ints(i32v...))
		i64s = append(i64s, longs(ll...))
		fs = append(fs, floats(ff...))
		ds = append(ds, &schemapb.ScalarField{Data: &schemapb.ScalarField_DoubleData{DoubleData: &schemapb.DoubleArray{Data: dd}}})
		tags = append(tags, strs(ss...))
		for e := range 4 {
			vec = append(vec, float32(r)+float32(e)/10)
			i8v = append(i8v, byte(r+e))
		}
		bin = append(bin, byte(r), byte(r>>8))
		half = append(half, f16(float32(r%100))...)
		half = append(half, f16(0.5)...)
		bhalf = append(bhalf, byte(r), 0x3f, 0x80, 0xbf) // 1.0 + r-dependent mantissa, -1.0
	}
	return []*schemapb.FieldData{
		scalarCol("id", schemapb.DataType_Int64, longs(id...)),
		scalarCol("b", schemapb.DataType_Bool, &schemapb.ScalarField{Data: &schemapb.ScalarField_BoolData{BoolData: &schemapb.BoolArray{Data: b}}}),
		scalarCol("i8", schemapb.DataType_Int8, ints(i8...)),
		scalarCol("i16", schemapb.DataType_Int16, ints(i16...)),
		scalarCol("i32", schemapb.DataType_Int32, ints(i32...)),
		scalarCol("i64", schemapb.DataType_Int64, longs(i64...)),
		scalarCol("f", schemapb.DataType_Float, floats(f...)),
		scalarCol("d", schemapb.DataType_Double, &schemapb.ScalarField{Data: &schemapb.ScalarField_DoubleData{DoubleData: &schemapb.DoubleArray{Data: d}}}),
		scalarCol("title", schemapb.DataType_VarChar, strs(title...)),
		scalarCol("meta", schemapb.DataType_JSON, &schemapb.ScalarField{Data: &schemapb.ScalarField_JsonData{JsonData: &schemapb.JSONArray{Data: meta}}}),
		scalarCol("bools", schemapb.DataType_Array, arrays(schemapb.DataType_Bool, bools...)),
		scalarCol("i8s", schemapb.DataType_Array, arrays(schemapb.DataType_Int8, i8s...)),
		scalarCol("i16s", schemapb.DataType_Array, arrays(schemapb.DataType_Int16, i16s...)),
		scalarCol("i32s", schemapb.DataType_Array, arrays(schemapb.DataType_Int32, i32s...)),
		scalarCol("i64s", schemapb.DataType_Array, arrays(schemapb.DataType_Int64, i64s...)),
		scalarCol("fs", schemapb.DataType_Array, arrays(schemapb.DataType_Float, fs...)),
		scalarCol("ds", schemapb.DataType_Array, arrays(schemapb.DataType_Double, ds...)),
		scalarCol("tags", schemapb.DataType_Array, arrays(schemapb.DataType_VarChar, tags...)),
		vectorCol("vec", schemapb.DataType_FloatVector, floatVec(4, vec)),
		vectorCol("bin", schemapb.DataType_BinaryVector, &schemapb.VectorField{Dim: 16, Data: &schemapb.VectorField_BinaryVector{BinaryVector: bin}}),
		vectorCol("f16", schemapb.DataType_Float16Vector, &schemapb.VectorField{Dim: 2, Data: &schemapb.VectorField_Float16Vector{Float16Vector: half}}),
		vectorCol("bf16", schemapb.DataType_BFloat16Vector, &schemapb.VectorField{Dim: 2, Data: &schemapb.VectorField_Bfloat16Vector{Bfloat16Vector: bhalf}}),
		vectorCol("i8v", schemapb.DataType_Int8Vector, &schemapb.VectorField{Dim: 4, Data: &schemapb.VectorField_Int8Vector{Int8Vector: i8v}}),
	}
}

// withIDs returns copies of cols with FieldId set from s, as ToFieldData returns them.
func withIDs(s *schemapb.CollectionSchema, cols []*schemapb.FieldData) []*schemapb.FieldData {
	out := make([]*schemapb.FieldData, len(cols))
	for i, c := range cols {
		c = proto.Clone(c).(*schemapb.FieldData)
		for _, f := range s.GetFields() {
			if f.GetName() == c.GetFieldName() {
				c.FieldId = f.GetFieldID()
			}
		}
		if c.GetIsDynamic() {
			c.FieldName = DynamicColumn
		}
		out[i] = c
	}
	return out
}

func requireColumnsEqual(t testing.TB, want, got []*schemapb.FieldData) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		if !proto.Equal(want[i], got[i]) {
			require.Equal(t, prototext.Format(want[i]), prototext.Format(got[i]), "column %d (%s)", i, want[i].GetFieldName())
			require.Fail(t, "columns differ", "column %d (%s)", i, want[i].GetFieldName())
		}
	}
}

// checked returns an allocator that fails the test if anything it allocated is still held
// when the test ends.
func checked(t testing.TB) *memory.CheckedAllocator {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	return mem
}
