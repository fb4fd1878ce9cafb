package batch

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

// ToFieldData converts a record of collection s (all of its columns, or any subset, as query
// results carry) back into Milvus columns, in the record's column order: FieldName, FieldId
// and Type set; the dynamic column as a JSON column with IsDynamic; TimestampColumn left out.
// The result copies every value, so it outlives rec.
func ToFieldData(rec arrow.RecordBatch, s *schemapb.CollectionSchema) ([]*schemapb.FieldData, error) {
	out := make([]*schemapb.FieldData, 0, rec.NumCols())
	for i, col := range rec.Columns() {
		name := rec.ColumnName(i)
		if name == TimestampColumn {
			continue
		}
		if name == DynamicColumn {
			b, ok := col.(*array.Binary)
			if !ok || !s.GetEnableDynamicField() {
				return nil, fmt.Errorf("column %s: %w", name, ErrRecordMismatch)
			}
			out = append(out, &schemapb.FieldData{
				Type: schemapb.DataType_JSON, FieldName: DynamicColumn, IsDynamic: true,
				Field: scalars(&schemapb.ScalarField{Data: &schemapb.ScalarField_JsonData{JsonData: &schemapb.JSONArray{Data: binaryValues(b, 0, b.Len())}}}),
			})
			continue
		}
		var f *schemapb.FieldSchema
		for _, sf := range s.GetFields() {
			if sf.GetName() == name {
				f = sf
			}
		}
		if f == nil {
			return nil, fmt.Errorf("column %q is not a field of collection %q: %w", name, s.GetName(), ErrRecordMismatch)
		}
		want, err := ArrowType(f)
		if err != nil {
			return nil, err
		}
		if !arrow.TypeEqual(col.DataType(), want) {
			return nil, fmt.Errorf("column %q: type %s, field type %s: %w", name, col.DataType(), want, ErrRecordMismatch)
		}
		fd, err := fieldData(f, col)
		if err != nil {
			return nil, err
		}
		if f.GetNullable() {
			// As Milvus returns them: one value per row (the zero value at a null) and a
			// valid flag per row.
			if fd.ValidData = validity(col); fd.ValidData == nil {
				fd.ValidData = slices.Repeat([]bool{true}, col.Len())
			}
		}
		out = append(out, fd)
	}
	return out, nil
}

func scalars(sf *schemapb.ScalarField) *schemapb.FieldData_Scalars {
	return &schemapb.FieldData_Scalars{Scalars: sf}
}

func binaryValues(b *array.Binary, from, to int) [][]byte {
	out := make([][]byte, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, bytes.Clone(b.Value(i)))
	}
	return out
}

func stringValues(s *array.String, from, to int) []string {
	out := make([]string, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, strings.Clone(s.Value(i)))
	}
	return out
}

// scalarValues converts rows from..to of a column of scalar type dt.
func scalarValues(dt schemapb.DataType, col arrow.Array, from, to int) *schemapb.ScalarField {
	sf := &schemapb.ScalarField{}
	switch dt {
	case schemapb.DataType_Bool:
		a := col.(*array.Boolean)
		v := make([]bool, 0, to-from)
		for i := from; i < to; i++ {
			v = append(v, a.Value(i))
		}
		sf.Data = &schemapb.ScalarField_BoolData{BoolData: &schemapb.BoolArray{Data: v}}
	case schemapb.DataType_Int8:
		v := make([]int32, 0, to-from)
		for _, x := range col.(*array.Int8).Int8Values()[from:to] {
			v = append(v, int32(x))
		}
		sf.Data = &schemapb.ScalarField_IntData{IntData: &schemapb.IntArray{Data: v}}
	case schemapb.DataType_Int16:
		v := make([]int32, 0, to-from)
		for _, x := range col.(*array.Int16).Int16Values()[from:to] {
			v = append(v, int32(x))
		}
		sf.Data = &schemapb.ScalarField_IntData{IntData: &schemapb.IntArray{Data: v}}
	case schemapb.DataType_Int32:
		v := append([]int32(nil), col.(*array.Int32).Int32Values()[from:to]...)
		sf.Data = &schemapb.ScalarField_IntData{IntData: &schemapb.IntArray{Data: v}}
	case schemapb.DataType_Int64:
		v := append([]int64(nil), col.(*array.Int64).Int64Values()[from:to]...)
		sf.Data = &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: v}}
	case schemapb.DataType_Float:
		v := append([]float32(nil), col.(*array.Float32).Float32Values()[from:to]...)
		sf.Data = &schemapb.ScalarField_FloatData{FloatData: &schemapb.FloatArray{Data: v}}
	case schemapb.DataType_Double:
		v := append([]float64(nil), col.(*array.Float64).Float64Values()[from:to]...)
		sf.Data = &schemapb.ScalarField_DoubleData{DoubleData: &schemapb.DoubleArray{Data: v}}
	case schemapb.DataType_VarChar, schemapb.DataType_String:
		sf.Data = &schemapb.ScalarField_StringData{StringData: &schemapb.StringArray{Data: stringValues(col.(*array.String), from, to)}}
	case schemapb.DataType_JSON:
		sf.Data = &schemapb.ScalarField_JsonData{JsonData: &schemapb.JSONArray{Data: binaryValues(col.(*array.Binary), from, to)}}
	}
	return sf
}

func fieldData(f *schemapb.FieldSchema, col arrow.Array) (*schemapb.FieldData, error) {
	fd := &schemapb.FieldData{Type: f.GetDataType(), FieldName: f.GetName(), FieldId: f.GetFieldID()}
	n := col.Len()
	switch f.GetDataType() {
	case schemapb.DataType_Array:
		l := col.(*array.List)
		values := l.ListValues()
		rows := make([]*schemapb.ScalarField, n)
		for i := range rows {
			start, end := l.ValueOffsets(i)
			rows[i] = scalarValues(f.GetElementType(), values, int(start), int(end))
		}
		fd.Field = scalars(&schemapb.ScalarField{Data: &schemapb.ScalarField_ArrayData{ArrayData: &schemapb.ArrayArray{Data: rows, ElementType: f.GetElementType()}}})
		return fd, nil
	case schemapb.DataType_SparseFloatVector:
		return sparseFieldData(fd, col), nil
	case schemapb.DataType_Geometry:
		return geometryFieldData(fd, col)
	case schemapb.DataType_FloatVector, schemapb.DataType_BinaryVector, schemapb.DataType_Float16Vector,
		schemapb.DataType_BFloat16Vector, schemapb.DataType_Int8Vector:
	default:
		fd.Field = scalars(scalarValues(f.GetDataType(), col, 0, n))
		return fd, nil
	}
	dim, err := Dim(f)
	if err != nil {
		return nil, err
	}
	width := col.DataType().(*arrow.FixedSizeBinaryType).ByteWidth
	var raw []byte
	if data := col.Data(); n > 0 {
		raw = data.Buffers()[1].Bytes()[data.Offset()*width : (data.Offset()+n)*width]
	}
	vf := &schemapb.VectorField{Dim: int64(dim)}
	switch f.GetDataType() {
	case schemapb.DataType_FloatVector:
		v := make([]float32, n*dim)
		getFloats(v, raw)
		vf.Data = &schemapb.VectorField_FloatVector{FloatVector: &schemapb.FloatArray{Data: v}}
	case schemapb.DataType_BinaryVector:
		vf.Data = &schemapb.VectorField_BinaryVector{BinaryVector: bytes.Clone(raw)}
	case schemapb.DataType_Float16Vector:
		vf.Data = &schemapb.VectorField_Float16Vector{Float16Vector: bytes.Clone(raw)}
	case schemapb.DataType_BFloat16Vector:
		vf.Data = &schemapb.VectorField_Bfloat16Vector{Bfloat16Vector: bytes.Clone(raw)}
	case schemapb.DataType_Int8Vector:
		vf.Data = &schemapb.VectorField_Int8Vector{Int8Vector: bytes.Clone(raw)}
	}
	fd.Field = &schemapb.FieldData_Vectors{Vectors: vf}
	return fd, nil
}
