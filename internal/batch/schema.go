// Package batch represents a batch of rows of one collection as an Arrow record, the form rows
// take from the proxy through the DML channel to the data node's buffer and into Parquet files.
package batch

import (
	"fmt"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/weir-db/weir/internal/schema"
)

// Column names Weir adds to every batch. Milvus reserves field IDs 0 (RowID) and 1
// (Timestamp); Weir keeps the row's hybrid timestamp in TimestampColumn.
const (
	TimestampColumn = "_ts"
	// DynamicColumn holds the JSON of fields not in the schema when the collection has
	// enable_dynamic_field set, as Milvus's "$meta" field does.
	DynamicColumn = "$meta"
	// FieldIDKey is the Arrow field metadata key that carries the Milvus field ID.
	FieldIDKey = "weir.field_id"
	// TimestampFieldID is Milvus's system field ID for the row timestamp.
	TimestampFieldID = 1
)

// ArrowType returns the Arrow type that stores values of field f. Vectors are fixed-size binary,
// the layout Parquet writes 3–5 times faster than a fixed-size list of floats, and which any
// reader can reinterpret as little-endian floats.
func ArrowType(f *schemapb.FieldSchema) (arrow.DataType, error) {
	switch f.GetDataType() {
	case schemapb.DataType_Bool:
		return arrow.FixedWidthTypes.Boolean, nil
	case schemapb.DataType_Int8:
		return arrow.PrimitiveTypes.Int8, nil
	case schemapb.DataType_Int16:
		return arrow.PrimitiveTypes.Int16, nil
	case schemapb.DataType_Int32:
		return arrow.PrimitiveTypes.Int32, nil
	case schemapb.DataType_Int64:
		return arrow.PrimitiveTypes.Int64, nil
	case schemapb.DataType_Float:
		return arrow.PrimitiveTypes.Float32, nil
	case schemapb.DataType_Double:
		return arrow.PrimitiveTypes.Float64, nil
	case schemapb.DataType_VarChar, schemapb.DataType_String:
		return arrow.BinaryTypes.String, nil
	case schemapb.DataType_JSON:
		return arrow.BinaryTypes.Binary, nil
	case schemapb.DataType_SparseFloatVector, schemapb.DataType_Geometry:
		// A sparse row's (index, value) pairs and a geometry's WKB, bytes as they come.
		return arrow.BinaryTypes.Binary, nil
	case schemapb.DataType_Array:
		elem, err := ArrowType(&schemapb.FieldSchema{Name: f.GetName(), DataType: f.GetElementType()})
		if err != nil {
			return nil, err
		}
		return arrow.ListOf(elem), nil
	}
	width, err := VectorBytes(f)
	if err != nil {
		return nil, err
	}
	return &arrow.FixedSizeBinaryType{ByteWidth: width}, nil
}

// Dim returns the dim type parameter of a vector field.
func Dim(f *schemapb.FieldSchema) (int, error) { return typeParam(f, schema.KeyDim) }

// VectorBytes returns the size in bytes of one vector of field f.
func VectorBytes(f *schemapb.FieldSchema) (int, error) {
	per := map[schemapb.DataType]int{ // bits per dimension
		schemapb.DataType_FloatVector:    32,
		schemapb.DataType_Float16Vector:  16,
		schemapb.DataType_BFloat16Vector: 16,
		schemapb.DataType_Int8Vector:     8,
		schemapb.DataType_BinaryVector:   1,
	}[f.GetDataType()]
	if per == 0 {
		return 0, fmt.Errorf("batch: field %q: type %s has no Arrow mapping", f.GetName(), f.GetDataType())
	}
	dim, err := Dim(f)
	if err != nil {
		return 0, err
	}
	return dim * per / 8, nil
}

// ArrowSchema returns the Arrow schema of a collection's batches: its fields in schema order
// (each with its Milvus field ID in the field metadata), then DynamicColumn when the collection
// has dynamic fields, then TimestampColumn. The columns of nullable fields are nullable; the
// others are not.
func ArrowSchema(s *schemapb.CollectionSchema) (*arrow.Schema, error) {
	fields := make([]arrow.Field, 0, len(s.GetFields())+2)
	for _, f := range s.GetFields() {
		t, err := ArrowType(f)
		if err != nil {
			return nil, err
		}
		fields = append(fields, arrow.Field{Name: f.GetName(), Type: t, Nullable: f.GetNullable(),
			Metadata: arrow.NewMetadata([]string{FieldIDKey}, []string{strconv.FormatInt(f.GetFieldID(), 10)})})
	}
	if s.GetEnableDynamicField() {
		fields = append(fields, arrow.Field{Name: DynamicColumn, Type: arrow.BinaryTypes.Binary})
	}
	fields = append(fields, arrow.Field{Name: TimestampColumn, Type: arrow.PrimitiveTypes.Uint64,
		Metadata: arrow.NewMetadata([]string{FieldIDKey}, []string{strconv.Itoa(TimestampFieldID)})})
	return arrow.NewSchema(fields, nil), nil
}
