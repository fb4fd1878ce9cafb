package batch

import (
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/weir-db/weir/internal/apierr"
)

// Nullable fields and default values follow Milvus 2.6's proxy (validate_util.go fillWithValue,
// nullutil.CheckValidData):
//
//   - A column of a nullable field, or of a field with a default value, may carry valid_data,
//     one flag per row; its values are then compact: one per valid row, in row order (that is
//     how every Milvus SDK sends them).
//   - A null row of a field with a default value takes the default; a nullable field with a
//     default therefore never stores a null. A null row of a nullable field without one is null.
//   - An omitted column of such a field is all null (so all default, where there is one).
//   - valid_data on any other field is refused, even all true.
//
// Weir differs in one place: a column of a non-nullable field with a default that comes
// without valid_data is taken as all valid, where Milvus 2.6 refuses it (its own test of this
// is skipped as a known bug); no client relies on the refusal.

// hasFill reports whether field f takes nulls or defaults.
func hasFill(f *schemapb.FieldSchema) bool {
	return f.GetNullable() || f.GetDefaultValue() != nil
}

// absentColumn stands for the omitted column of a field that takes nulls or defaults: every
// row null.
func absentColumn(f *schemapb.FieldSchema, n int) *schemapb.FieldData {
	return &schemapb.FieldData{FieldName: f.GetName(), FieldId: f.GetFieldID(), ValidData: make([]bool, n)}
}

// omittedSize is the size in a record of the column of omitted field f, n rows of its default
// (or of nulls), counted as a column sent with those rows is counted (dataSize and its validity),
// from one row filled as the n would be: a geometry default counts as the WKB it is stored as.
// The slices fill makes on the way to the record are not counted, as they are not for a column
// sent with valid_data: they are at most a few times the record's size (a header per row).
func omittedSize(f *schemapb.FieldSchema, n int) int {
	one, valid, err := fill(f, absentColumn(f, 1), 1, 0)
	if err != nil {
		return math.MaxInt / 2 // cannot happen: an absent column always fills
	}
	size := n * dataSize(f, one, 1)
	if valid != nil {
		size += n / 8
	}
	return size
}

// fill checks the valid_data of column fd of field f for n rows and returns the column with one
// value per row (nulls and defaults filled in) and which rows are null (nil when none is).
// values is the number of values fd carries.
func fill(f *schemapb.FieldSchema, fd *schemapb.FieldData, n, values int) (*schemapb.FieldData, []bool, error) {
	valid := fd.GetValidData()
	if !hasFill(f) {
		if len(valid) != 0 {
			return nil, nil, apierr.Milvus(apierr.ValidDataLength, f.GetName(), 0, len(valid))
		}
		return fd, nil, nil
	}
	if len(valid) == 0 {
		// No valid_data: every row holds a value (Milvus makes it all true for a nullable
		// field; see the package comment for a field with a default).
		if values != n {
			return nil, nil, apierr.Milvus(apierr.FieldLength, n, values)
		}
		return fd, nil, nil
	}
	if len(valid) != n {
		return nil, nil, apierr.Milvus(apierr.ValidDataLength, f.GetName(), n, len(valid))
	}
	set := 0
	for _, ok := range valid {
		if ok {
			set++
		}
	}
	if values != set {
		return nil, nil, apierr.Milvus(apierr.FieldLength, set, values)
	}
	if set == n {
		return fd, nil, nil
	}
	dense := &schemapb.FieldData{FieldName: fd.GetFieldName(), FieldId: fd.GetFieldId(), Type: f.GetDataType(),
		Field: scalars(spreadScalars(f, fd.GetScalars(), valid))}
	if f.GetDefaultValue() != nil {
		return dense, nil, nil
	}
	return dense, valid, nil
}

// spreadScalars returns the values of sc at the valid rows and f's default (or the zero value)
// at the others.
func spreadScalars(f *schemapb.FieldSchema, sc *schemapb.ScalarField, valid []bool) *schemapb.ScalarField {
	def := f.GetDefaultValue()
	switch f.GetDataType() {
	case schemapb.DataType_Bool:
		v := spread(sc.GetBoolData().GetData(), valid, def.GetBoolData())
		return &schemapb.ScalarField{Data: &schemapb.ScalarField_BoolData{BoolData: &schemapb.BoolArray{Data: v}}}
	case schemapb.DataType_Int8, schemapb.DataType_Int16, schemapb.DataType_Int32:
		v := spread(sc.GetIntData().GetData(), valid, def.GetIntData())
		return &schemapb.ScalarField{Data: &schemapb.ScalarField_IntData{IntData: &schemapb.IntArray{Data: v}}}
	case schemapb.DataType_Int64:
		v := spread(sc.GetLongData().GetData(), valid, def.GetLongData())
		return &schemapb.ScalarField{Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: v}}}
	case schemapb.DataType_Float:
		v := spread(sc.GetFloatData().GetData(), valid, def.GetFloatData())
		return &schemapb.ScalarField{Data: &schemapb.ScalarField_FloatData{FloatData: &schemapb.FloatArray{Data: v}}}
	case schemapb.DataType_Double:
		v := spread(sc.GetDoubleData().GetData(), valid, def.GetDoubleData())
		return &schemapb.ScalarField{Data: &schemapb.ScalarField_DoubleData{DoubleData: &schemapb.DoubleArray{Data: v}}}
	case schemapb.DataType_VarChar, schemapb.DataType_String:
		v := spread(sc.GetStringData().GetData(), valid, def.GetStringData())
		return &schemapb.ScalarField{Data: &schemapb.ScalarField_StringData{StringData: &schemapb.StringArray{Data: v}}}
	case schemapb.DataType_JSON:
		v := spread(sc.GetJsonData().GetData(), valid, def.GetBytesData())
		return &schemapb.ScalarField{Data: &schemapb.ScalarField_JsonData{JsonData: &schemapb.JSONArray{Data: v}}}
	case schemapb.DataType_Geometry:
		// The column is WKB already (geometryToWKB); the default is WKT, checked at create.
		var x []byte
		if def != nil {
			x, _ = wktToWKB(def.GetStringData())
		}
		v := spread(sc.GetGeometryData().GetData(), valid, x)
		return &schemapb.ScalarField{Data: &schemapb.ScalarField_GeometryData{GeometryData: &schemapb.GeometryArray{Data: v}}}
	case schemapb.DataType_Array:
		v := spread(sc.GetArrayData().GetData(), valid, emptyRow(f.GetElementType()))
		return &schemapb.ScalarField{Data: &schemapb.ScalarField_ArrayData{ArrayData: &schemapb.ArrayArray{Data: v, ElementType: f.GetElementType()}}}
	}
	return sc
}

// emptyRow is an array row of element type et without elements, the value of a null row.
func emptyRow(et schemapb.DataType) *schemapb.ScalarField {
	switch et {
	case schemapb.DataType_Bool:
		return &schemapb.ScalarField{Data: &schemapb.ScalarField_BoolData{BoolData: &schemapb.BoolArray{}}}
	case schemapb.DataType_Int8, schemapb.DataType_Int16, schemapb.DataType_Int32:
		return &schemapb.ScalarField{Data: &schemapb.ScalarField_IntData{IntData: &schemapb.IntArray{}}}
	case schemapb.DataType_Int64:
		return &schemapb.ScalarField{Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{}}}
	case schemapb.DataType_Float:
		return &schemapb.ScalarField{Data: &schemapb.ScalarField_FloatData{FloatData: &schemapb.FloatArray{}}}
	case schemapb.DataType_Double:
		return &schemapb.ScalarField{Data: &schemapb.ScalarField_DoubleData{DoubleData: &schemapb.DoubleArray{}}}
	}
	return &schemapb.ScalarField{Data: &schemapb.ScalarField_StringData{StringData: &schemapb.StringArray{}}}
}

// spread places values at the valid rows, in order, and x at the others.
func spread[T any](values []T, valid []bool, x T) []T {
	out := make([]T, len(valid))
	j := 0
	for i, ok := range valid {
		if ok {
			out[i] = values[j]
			j++
		} else {
			out[i] = x
		}
	}
	return out
}

// withNulls returns a, with the rows that valid marks false null; it takes a's reference.
func withNulls(mem memory.Allocator, a arrow.Array, valid []bool) arrow.Array {
	if valid == nil {
		return a
	}
	defer a.Release()
	bm := newBuffer(mem, int(bitutil.BytesForBits(int64(len(valid)))))
	defer bm.Release()
	bits := bm.Bytes()
	clear(bits)
	nulls := 0
	for i, ok := range valid {
		if ok {
			bitutil.SetBit(bits, i)
		} else {
			nulls++
		}
	}
	d := a.Data()
	bufs := append([]*memory.Buffer{bm}, d.Buffers()[1:]...)
	nd := array.NewData(d.DataType(), d.Len(), bufs, d.Children(), nulls, d.Offset())
	defer nd.Release()
	return array.MakeFromData(nd)
}

// validity returns which rows of col hold a value, or nil when all do.
func validity(col arrow.Array) []bool {
	if col.NullN() == 0 {
		return nil
	}
	v := make([]bool, col.Len())
	for i := range v {
		v[i] = col.IsValid(i)
	}
	return v
}
