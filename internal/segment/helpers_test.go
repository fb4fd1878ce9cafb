package segment

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/weir-db/weir/internal/batch"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func dimParam(d int) []*commonpb.KeyValuePair {
	return []*commonpb.KeyValuePair{{Key: "dim", Value: fmt.Sprint(d)}}
}

// allTypes is a collection with a field of every type Weir stores, and dynamic fields.
func allTypes(pk schemapb.DataType) *schemapb.CollectionSchema {
	f := func(id int64, name string, dt schemapb.DataType) *schemapb.FieldSchema {
		return &schemapb.FieldSchema{FieldID: id, Name: name, DataType: dt}
	}
	pkField := f(100, "pk", pk)
	pkField.IsPrimaryKey = true
	fields := []*schemapb.FieldSchema{
		pkField,
		f(101, "b", schemapb.DataType_Bool),
		f(102, "i8", schemapb.DataType_Int8),
		f(103, "i16", schemapb.DataType_Int16),
		f(104, "i32", schemapb.DataType_Int32),
		f(105, "i64", schemapb.DataType_Int64),
		f(106, "f", schemapb.DataType_Float),
		f(107, "d", schemapb.DataType_Double),
		f(108, "s", schemapb.DataType_VarChar),
		f(109, "j", schemapb.DataType_JSON),
		{FieldID: 110, Name: "ai", DataType: schemapb.DataType_Array, ElementType: schemapb.DataType_Int32},
		{FieldID: 111, Name: "as", DataType: schemapb.DataType_Array, ElementType: schemapb.DataType_VarChar},
		{FieldID: 112, Name: "fv", DataType: schemapb.DataType_FloatVector, TypeParams: dimParam(8)},
		{FieldID: 113, Name: "bv", DataType: schemapb.DataType_BinaryVector, TypeParams: dimParam(16)},
		{FieldID: 114, Name: "f16", DataType: schemapb.DataType_Float16Vector, TypeParams: dimParam(4)},
		{FieldID: 115, Name: "bf16", DataType: schemapb.DataType_BFloat16Vector, TypeParams: dimParam(4)},
		{FieldID: 116, Name: "i8v", DataType: schemapb.DataType_Int8Vector, TypeParams: dimParam(8)},
	}
	return &schemapb.CollectionSchema{Name: "all", Fields: fields, EnableDynamicField: true}
}

func arrowSchema(tb testing.TB, s *schemapb.CollectionSchema) *arrow.Schema {
	tb.Helper()
	as, err := batch.ArrowSchema(s)
	require.NoError(tb, err)
	return as
}

// randomRecord returns n rows of schema: column "pk" holds firstPK, firstPK+1, ... (as decimal
// strings for a string key), _ts holds ts0+i, every other column random values.
func randomRecord(schema *arrow.Schema, n int, firstPK int64, ts0 uint64, rng *rand.Rand) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for c, f := range schema.Fields() {
		for i := range n {
			switch {
			case f.Name == "pk":
				appendPK(b.Field(c), firstPK+int64(i))
			case f.Name == batch.TimestampColumn:
				b.Field(c).(*array.Uint64Builder).Append(ts0 + uint64(i))
			default:
				appendRandom(b.Field(c), rng)
			}
		}
	}
	return b.NewRecordBatch()
}

func appendPK(b array.Builder, pk int64) {
	switch b := b.(type) {
	case *array.Int64Builder:
		b.Append(pk)
	case *array.StringBuilder:
		b.Append(fmt.Sprintf("key-%08d", pk))
	}
}

func appendRandom(b array.Builder, rng *rand.Rand) {
	switch b := b.(type) {
	case *array.BooleanBuilder:
		b.Append(rng.IntN(2) == 1)
	case *array.Int8Builder:
		b.Append(int8(rng.Int32()))
	case *array.Int16Builder:
		b.Append(int16(rng.Int32()))
	case *array.Int32Builder:
		b.Append(rng.Int32())
	case *array.Int64Builder:
		b.Append(rng.Int64())
	case *array.Uint64Builder:
		b.Append(rng.Uint64())
	case *array.Float32Builder:
		b.Append(rng.Float32())
	case *array.Float64Builder:
		b.Append(rng.NormFloat64())
	case *array.StringBuilder:
		b.Append(fmt.Sprintf("s%d", rng.IntN(1000)))
	case *array.BinaryBuilder:
		b.Append(fmt.Appendf(nil, `{"k":%d}`, rng.IntN(1000)))
	case *array.ListBuilder:
		b.Append(true)
		for range rng.IntN(4) {
			appendRandom(b.ValueBuilder(), rng)
		}
	case *array.FixedSizeBinaryBuilder:
		v := make([]byte, b.Type().(*arrow.FixedSizeBinaryType).ByteWidth)
		for i := 0; i+4 <= len(v); i += 4 {
			binary.LittleEndian.PutUint32(v[i:], math.Float32bits(rng.Float32()))
		}
		if len(v)%4 != 0 {
			v[0] = byte(rng.Uint32())
		}
		b.Append(v)
	default:
		panic(fmt.Sprintf("no generator for %T", b))
	}
}

// writeInsert writes recs to memory and returns the file.
func writeInsert(tb testing.TB, schema *arrow.Schema, recs []arrow.RecordBatch, opts WriteOptions) ([]byte, FileInfo) {
	tb.Helper()
	var buf bytes.Buffer
	info, err := WriteInsert(&buf, schema, recs, opts)
	require.NoError(tb, err)
	return buf.Bytes(), info
}

// concat returns the concatenation of column c of recs.
func concat(tb testing.TB, recs []arrow.RecordBatch, c int) arrow.Array {
	tb.Helper()
	cols := make([]arrow.Array, len(recs))
	for i, r := range recs {
		cols[i] = r.Column(c)
	}
	a, err := array.Concatenate(cols, memory.DefaultAllocator)
	require.NoError(tb, err)
	return a
}

func release[T interface{ Release() }](xs []T) {
	for _, x := range xs {
		x.Release()
	}
}
