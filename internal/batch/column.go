package batch

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/weir-db/weir/internal/apierr"
	"github.com/weir-db/weir/internal/schema"
)

// payloadKind names the kind of data a FieldData carries, in the words of the Milvus data type
// that carries it; "no" when it carries none.
func payloadKind(fd *schemapb.FieldData) string {
	if sc := fd.GetScalars(); sc != nil {
		return scalarKind(sc)
	}
	if v := fd.GetVectors(); v != nil {
		switch v.GetData().(type) {
		case *schemapb.VectorField_FloatVector:
			return schemapb.DataType_FloatVector.String()
		case *schemapb.VectorField_BinaryVector:
			return schemapb.DataType_BinaryVector.String()
		case *schemapb.VectorField_Float16Vector:
			return schemapb.DataType_Float16Vector.String()
		case *schemapb.VectorField_Bfloat16Vector:
			return schemapb.DataType_BFloat16Vector.String()
		case *schemapb.VectorField_Int8Vector:
			return schemapb.DataType_Int8Vector.String()
		case *schemapb.VectorField_SparseFloatVector:
			return schemapb.DataType_SparseFloatVector.String()
		case *schemapb.VectorField_VectorArray:
			return schemapb.DataType_ArrayOfVector.String()
		}
		return "no"
	}
	if fd.GetStructArrays() != nil {
		return schemapb.DataType_ArrayOfStruct.String()
	}
	return "no"
}

func scalarKind(sc *schemapb.ScalarField) string {
	switch sc.GetData().(type) {
	case *schemapb.ScalarField_BoolData:
		return schemapb.DataType_Bool.String()
	case *schemapb.ScalarField_IntData:
		return schemapb.DataType_Int32.String()
	case *schemapb.ScalarField_LongData:
		return schemapb.DataType_Int64.String()
	case *schemapb.ScalarField_FloatData:
		return schemapb.DataType_Float.String()
	case *schemapb.ScalarField_DoubleData:
		return schemapb.DataType_Double.String()
	case *schemapb.ScalarField_StringData:
		return schemapb.DataType_VarChar.String()
	case *schemapb.ScalarField_ArrayData:
		return schemapb.DataType_Array.String()
	case *schemapb.ScalarField_JsonData:
		return schemapb.DataType_JSON.String()
	case *schemapb.ScalarField_BytesData:
		return "bytes"
	case *schemapb.ScalarField_GeometryData, *schemapb.ScalarField_GeometryWktData:
		return schemapb.DataType_Geometry.String()
	case *schemapb.ScalarField_TimestamptzData:
		return schemapb.DataType_Timestamptz.String()
	}
	return "no"
}

// expectedKind is the payloadKind that carries values of type dt: Milvus sends 8-, 16- and
// 32-bit integers as int32s.
func expectedKind(dt schemapb.DataType) string {
	switch dt {
	case schemapb.DataType_Int8, schemapb.DataType_Int16, schemapb.DataType_Int32:
		return schemapb.DataType_Int32.String()
	case schemapb.DataType_String:
		return schemapb.DataType_VarChar.String()
	}
	return dt.String()
}

func typeParam(f *schemapb.FieldSchema, key string) (int, error) {
	for _, kv := range f.GetTypeParams() {
		if kv.GetKey() == key {
			v, err := strconv.Atoi(kv.GetValue())
			if err != nil || v <= 0 {
				return 0, fmt.Errorf("batch: field %q: bad %s %q", f.GetName(), key, kv.GetValue())
			}
			return v, nil
		}
	}
	return 0, fmt.Errorf("batch: field %q: no %s", f.GetName(), key)
}

func rowsError(name string, got, want int) error {
	return apierr.Milvus(apierr.NumRowsMismatch, got, name, want, want, got)
}

// elementWord is Milvus's word for an array element type in ArrayElementMismatch.
func elementWord(et schemapb.DataType) string {
	switch et {
	case schemapb.DataType_Bool:
		return "bool"
	case schemapb.DataType_Int8, schemapb.DataType_Int16, schemapb.DataType_Int32:
		return "int"
	case schemapb.DataType_Int64:
		return "int64"
	case schemapb.DataType_Float:
		return "float"
	case schemapb.DataType_Double:
		return "double"
	case schemapb.DataType_VarChar, schemapb.DataType_String:
		return "string"
	}
	return et.String()
}

// actualArray names the payload of an array row the way Milvus prints it (its Go type).
func actualArray(row *schemapb.ScalarField) string {
	if row.GetData() == nil {
		return "nil"
	}
	return fmt.Sprintf("%T", row.GetData())
}

func intRange(dt schemapb.DataType) (lo, hi int32) {
	if dt == schemapb.DataType_Int8 {
		return math.MinInt8, math.MaxInt8
	}
	return math.MinInt16, math.MaxInt16
}

func intWidth(dt schemapb.DataType) int {
	switch dt {
	case schemapb.DataType_Int8:
		return 1
	case schemapb.DataType_Int16:
		return 2
	}
	return 4
}

// outOfRange returns the index of the first value outside lo..hi, or -1.
func outOfRange(v []int32, lo, hi int32) int {
	for i, x := range v {
		if x < lo || x > hi {
			return i
		}
	}
	return -1
}

// nonFinite returns the index of the first NaN or infinity in v, or -1. x-x is 0 for every
// finite x and NaN otherwise, one subtraction and compare per value.
func nonFinite[T float32 | float64](v []T) int {
	for i, x := range v {
		if x-x != 0 {
			return i
		}
	}
	return -1
}

// nonFinite32 is nonFinite for float vectors, where the check runs over every value of the
// ingest path: a branch-free pass decides whether any value is NaN or infinite, and only then
// does nonFinite look for which.
func nonFinite32(v []float32) int {
	if allFinite32(v) {
		return -1
	}
	return nonFinite(v)
}

// allFinite32 reads v two floats at a time as uint64 words. A float32 is NaN or infinite when
// its 8 exponent bits are all ones; adding one to the exponent field then carries into the
// sign bit, and only then, since the mask clears the sign first. The two lanes cannot carry
// into each other, so OR-ing the sums and testing both sign bits covers every value.
func allFinite32(v []float32) bool {
	const (
		exp  = 0x7f800000_7f800000
		one  = 0x00800000_00800000
		sign = 0x80000000_80000000
		// the same for one float
		exp32 = 0x7f800000
		one32 = 0x00800000
	)
	var acc uint64
	if len(v) > 0 && uintptr(unsafe.Pointer(unsafe.SliceData(v)))%8 != 0 {
		acc |= uint64(math.Float32bits(v[0])&exp32 + one32)
		v = v[1:]
	}
	if len(v)%2 == 1 {
		acc |= uint64(math.Float32bits(v[len(v)-1])&exp32 + one32)
		v = v[:len(v)-1]
	}
	w := unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(v))), len(v)/2)
	var a0, a1, a2, a3 uint64
	i := 0
	for ; i+4 <= len(w); i += 4 {
		a0 |= w[i]&exp + one
		a1 |= w[i+1]&exp + one
		a2 |= w[i+2]&exp + one
		a3 |= w[i+3]&exp + one
	}
	for ; i < len(w); i++ {
		a0 |= w[i]&exp + one
	}
	return (acc|a0|a1|a2|a3)&sign == 0
}

// nonFinite16 returns the index of the first NaN or infinity among the little-endian 16-bit
// floats in b, whose exponent bits are expMask (float16 0x7c00, bfloat16 0x7f80), or -1.
func nonFinite16(b []byte, expMask uint16) int {
	for i := 0; i+1 < len(b); i += 2 {
		if binary.LittleEndian.Uint16(b[i:])&expMask == expMask {
			return i / 2
		}
	}
	return -1
}

// arrayLen is the number of elements of an array row of element type et, whatever it carries.
func arrayLen(et schemapb.DataType, row *schemapb.ScalarField) int {
	switch et {
	case schemapb.DataType_Bool:
		return len(row.GetBoolData().GetData())
	case schemapb.DataType_Int8, schemapb.DataType_Int16, schemapb.DataType_Int32:
		return len(row.GetIntData().GetData())
	case schemapb.DataType_Int64:
		return len(row.GetLongData().GetData())
	case schemapb.DataType_Float:
		return len(row.GetFloatData().GetData())
	case schemapb.DataType_Double:
		return len(row.GetDoubleData().GetData())
	}
	return len(row.GetStringData().GetData())
}

// checkArray validates the rows of array field f and returns their number: as Milvus's
// checkArrayFieldData, every row's capacity first, then each row's element type and values.
func checkArray(f *schemapb.FieldSchema, rows []*schemapb.ScalarField) (int, error) {
	name, et := f.GetName(), f.GetElementType()
	capacity, err := typeParam(f, schema.KeyMaxCapacity)
	if err != nil {
		return 0, err
	}
	maxLen := 0
	if et == schemapb.DataType_VarChar || et == schemapb.DataType_String {
		if maxLen, err = typeParam(f, schema.KeyMaxLength); err != nil {
			return 0, err
		}
	}
	for r, row := range rows {
		if l := arrayLen(et, row); l > capacity {
			return 0, apierr.Milvus(apierr.ArrayTooLong, l, r, capacity).With("field %q", name)
		}
	}
	want := expectedKind(et)
	for r, row := range rows {
		if got := scalarKind(row); got != want {
			return 0, apierr.Milvus(apierr.ArrayElementMismatch, elementWord(et), actualArray(row)).With("field %q, row %d", name, r)
		}
		switch et {
		case schemapb.DataType_Int8, schemapb.DataType_Int16:
			lo, hi := intRange(et)
			if i := outOfRange(row.GetIntData().GetData(), lo, hi); i >= 0 {
				return 0, apierr.Milvus(apierr.IntegerOverflow, i, row.GetIntData().GetData()[i], lo, hi).With("field %q, row %d", name, r)
			}
		case schemapb.DataType_VarChar, schemapb.DataType_String:
			for i, s := range row.GetStringData().GetData() {
				if len(s) > maxLen {
					// Milvus names the field's type here, Array, not the element's.
					return 0, apierr.Milvus(apierr.VarCharArrayTooLong, f.GetDataType(), name, r, i, len(s), maxLen)
				}
			}
		case schemapb.DataType_Bool, schemapb.DataType_Int32, schemapb.DataType_Int64, schemapb.DataType_Float, schemapb.DataType_Double:
		default:
			return 0, invalid("field %q: arrays of %s are not supported", name, et)
		}
	}
	return len(rows), nil
}

// checkDynamic validates the dynamic column as Milvus's verifyDynamicFieldData does: JSON
// objects, with neither a "$meta" key nor a key that names a schema field (its row count is
// checked with the other columns').
func checkDynamic(s *schemapb.CollectionSchema, fd *schemapb.FieldData) error {
	if got := payloadKind(fd); got != schemapb.DataType_JSON.String() {
		return invalid("field %q: expected JSON data, got %s data", DynamicColumn, got)
	}
	v := fd.GetScalars().GetJsonData().GetData()
	for i, b := range v {
		if len(b) > MaxJSONBytes {
			return apierr.Milvus(apierr.DynamicTooLong, len(b), MaxJSONBytes).With("row %d", i)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil || m == nil {
			why := "not a JSON object"
			if err != nil {
				why = err.Error()
			}
			return apierr.Milvus(apierr.DynamicNotObject, why).With("row %d", i)
		}
		if _, ok := m[DynamicColumn]; ok {
			return apierr.Milvus(apierr.DynamicMetaKey).With("row %d", i)
		}
		for _, f := range s.GetFields() {
			if _, ok := m[f.GetName()]; ok {
				return apierr.Milvus(apierr.DynamicStaticName, f.GetName()).With("row %d", i)
			}
		}
	}
	return nil
}

func newBuffer(mem memory.Allocator, size int) *memory.Buffer {
	buf := memory.NewResizableBuffer(mem)
	buf.Resize(size)
	return buf
}

// fixedArray makes an array of n values of fixed-width type t over buf, taking buf's reference.
func fixedArray(t arrow.DataType, n int, buf *memory.Buffer) arrow.Array {
	data := array.NewData(t, n, []*memory.Buffer{nil, buf}, nil, 0, 0)
	buf.Release()
	defer data.Release()
	return array.MakeFromData(data)
}

func copyFixed[T int8 | int16 | int32 | int64 | uint64 | float32 | float64](mem memory.Allocator, t arrow.DataType, v []T) arrow.Array {
	b := bytesOf(v)
	buf := newBuffer(mem, len(b))
	copy(buf.Bytes(), b)
	return fixedArray(t, len(v), buf)
}

func stringArray(mem memory.Allocator, v []string) arrow.Array {
	b := array.NewStringBuilder(mem)
	defer b.Release()
	total := 0
	for _, s := range v {
		total += len(s)
	}
	b.Reserve(len(v))
	b.ReserveData(total)
	b.AppendValues(v, nil)
	return b.NewArray()
}

func binaryArray(mem memory.Allocator, v [][]byte) arrow.Array {
	b := array.NewBinaryBuilder(mem, arrow.BinaryTypes.Binary)
	defer b.Release()
	b.AppendValues(v, nil)
	return b.NewArray()
}

// buildColumn converts a column checkColumn accepted into an array of type t.
func buildColumn(mem memory.Allocator, f *schemapb.FieldSchema, t arrow.DataType, fd *schemapb.FieldData, n int) arrow.Array {
	sc := fd.GetScalars()
	switch f.GetDataType() {
	case schemapb.DataType_Bool:
		b := array.NewBooleanBuilder(mem)
		defer b.Release()
		b.AppendValues(sc.GetBoolData().GetData(), nil)
		return b.NewArray()
	case schemapb.DataType_Int8:
		buf := newBuffer(mem, n)
		dst := arrow.Int8Traits.CastFromBytes(buf.Bytes())
		for i, x := range sc.GetIntData().GetData() {
			dst[i] = int8(x)
		}
		return fixedArray(t, n, buf)
	case schemapb.DataType_Int16:
		buf := newBuffer(mem, 2*n)
		dst := arrow.Int16Traits.CastFromBytes(buf.Bytes())
		for i, x := range sc.GetIntData().GetData() {
			dst[i] = int16(x)
		}
		return fixedArray(t, n, buf)
	case schemapb.DataType_Int32:
		return copyFixed(mem, t, sc.GetIntData().GetData())
	case schemapb.DataType_Int64:
		return copyFixed(mem, t, sc.GetLongData().GetData())
	case schemapb.DataType_Float:
		return copyFixed(mem, t, sc.GetFloatData().GetData())
	case schemapb.DataType_Double:
		return copyFixed(mem, t, sc.GetDoubleData().GetData())
	case schemapb.DataType_VarChar, schemapb.DataType_String:
		return stringArray(mem, sc.GetStringData().GetData())
	case schemapb.DataType_JSON:
		return binaryArray(mem, sc.GetJsonData().GetData())
	case schemapb.DataType_Geometry:
		return binaryArray(mem, sc.GetGeometryData().GetData())
	case schemapb.DataType_SparseFloatVector:
		return binaryArray(mem, fd.GetVectors().GetSparseFloatVector().GetContents())
	case schemapb.DataType_Array:
		return listArray(mem, t.(*arrow.ListType).Elem(), sc.GetArrayData().GetData())
	case schemapb.DataType_FloatVector:
		v := fd.GetVectors().GetFloatVector().GetData()
		if b := floatBytes(v); b != nil {
			// Vectors are most of an insert: borrowing them saves a copy and an allocation
			// of the request's size (see FromFieldData).
			return fixedArray(t, n, memory.NewBufferBytes(b))
		}
		buf := newBuffer(mem, 4*len(v))
		putFloats(buf.Bytes(), v)
		return fixedArray(t, n, buf)
	}
	// Float16, BFloat16, Int8 and binary vectors arrive as the little-endian bytes the
	// column holds.
	vf := fd.GetVectors()
	var raw []byte
	switch f.GetDataType() {
	case schemapb.DataType_BinaryVector:
		raw = vf.GetBinaryVector()
	case schemapb.DataType_Float16Vector:
		raw = vf.GetFloat16Vector()
	case schemapb.DataType_BFloat16Vector:
		raw = vf.GetBfloat16Vector()
	default:
		raw = vf.GetInt8Vector()
	}
	buf := newBuffer(mem, len(raw))
	copy(buf.Bytes(), raw)
	return fixedArray(t, n, buf)
}

func listArray(mem memory.Allocator, elem arrow.DataType, rows []*schemapb.ScalarField) arrow.Array {
	lb := array.NewListBuilder(mem, elem)
	defer lb.Release()
	lb.Reserve(len(rows))
	vb := lb.ValueBuilder()
	for _, row := range rows {
		lb.Append(true)
		switch b := vb.(type) {
		case *array.BooleanBuilder:
			b.AppendValues(row.GetBoolData().GetData(), nil)
		case *array.Int8Builder:
			for _, x := range row.GetIntData().GetData() {
				b.Append(int8(x))
			}
		case *array.Int16Builder:
			for _, x := range row.GetIntData().GetData() {
				b.Append(int16(x))
			}
		case *array.Int32Builder:
			b.AppendValues(row.GetIntData().GetData(), nil)
		case *array.Int64Builder:
			b.AppendValues(row.GetLongData().GetData(), nil)
		case *array.Float32Builder:
			b.AppendValues(row.GetFloatData().GetData(), nil)
		case *array.Float64Builder:
			b.AppendValues(row.GetDoubleData().GetData(), nil)
		case *array.StringBuilder:
			b.AppendValues(row.GetStringData().GetData(), nil)
		}
	}
	return lb.NewArray()
}

func autoIDColumn(mem memory.Allocator, f *schemapb.FieldSchema, t arrow.DataType, first int64, n int) (arrow.Array, PKs) {
	if f.GetDataType() == schemapb.DataType_VarChar {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = strconv.FormatInt(first+int64(i), 10)
		}
		return stringArray(mem, ids), PKs{Strings: ids}
	}
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = first + int64(i)
	}
	return copyFixed(mem, t, ids), PKs{Int64: ids}
}

func buildDynamic(mem memory.Allocator, fd *schemapb.FieldData, n int) arrow.Array {
	if fd != nil {
		return binaryArray(mem, fd.GetScalars().GetJsonData().GetData())
	}
	b := array.NewBinaryBuilder(mem, arrow.BinaryTypes.Binary)
	defer b.Release()
	b.Reserve(n)
	b.ReserveData(2 * n)
	empty := []byte("{}")
	for range n {
		b.Append(empty)
	}
	return b.NewArray()
}
