package schema

import (
	"math"
	"strconv"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/twpayne/go-geom/encoding/wkb"
	"github.com/twpayne/go-geom/encoding/wkt"
	"google.golang.org/protobuf/proto"

	"github.com/weir-db/weir/internal/apierr"
)

// checkNullAndDefault checks the nullable flag and the default value of a normalised field as
// Milvus's root coordinator does (checkFieldSchema): no null and no default for the primary key,
// no null for vectors, no default for arrays, vectors and JSON, and a default of the field's own
// type, in its range and length.
func checkNullAndDefault(f *schemapb.FieldSchema) error {
	name, dt := f.GetName(), f.GetDataType()
	if f.GetNullable() {
		if f.GetIsPrimaryKey() {
			return apierr.Milvus(apierr.PrimaryKeyNullable, dt, name)
		}
		if IsVector(dt) {
			return apierr.Milvus(apierr.VectorNullable, dt, name)
		}
	}
	def := f.GetDefaultValue()
	if def == nil {
		return nil
	}
	if f.GetIsPrimaryKey() {
		return apierr.Milvus(apierr.PrimaryKeyDefault, dt, name)
	}
	if dt == schemapb.DataType_Array || dt == schemapb.DataType_JSON || IsVector(dt) {
		return apierr.Milvus(apierr.DefaultNotSupported, dt, name)
	}
	if dt == schemapb.DataType_Geometry {
		return checkGeometryDefault(def)
	}
	var kind string // Milvus's name for the default's kind
	ok := false
	switch v := def.GetData().(type) {
	case *schemapb.ValueField_BoolData:
		kind, ok = "DataType_Bool", dt == schemapb.DataType_Bool
	case *schemapb.ValueField_IntData:
		kind = "DataType_Int"
		switch dt {
		case schemapb.DataType_Int8:
			ok = true
			if x := v.IntData; x < math.MinInt8 || x > math.MaxInt8 {
				return apierr.Milvus(apierr.DefaultOutOfRange, x, math.MinInt8, math.MaxInt8)
			}
		case schemapb.DataType_Int16:
			ok = true
			if x := v.IntData; x < math.MinInt16 || x > math.MaxInt16 {
				return apierr.Milvus(apierr.DefaultOutOfRange, x, math.MinInt16, math.MaxInt16)
			}
		case schemapb.DataType_Int32:
			ok = true
		}
	case *schemapb.ValueField_LongData:
		kind, ok = "DataType_Int64", dt == schemapb.DataType_Int64
	case *schemapb.ValueField_FloatData:
		kind, ok = "DataType_Float", dt == schemapb.DataType_Float
	case *schemapb.ValueField_DoubleData:
		kind, ok = "DataType_Double", dt == schemapb.DataType_Double
	case *schemapb.ValueField_StringData:
		kind, ok = "DataType_VarChar", dt == schemapb.DataType_VarChar
		if ok {
			limit, _ := strconv.Atoi(Param(f, KeyMaxLength))
			if len(v.StringData) > limit {
				return apierr.Milvus(apierr.DefaultTooLong, len(v.StringData), limit)
			}
		}
	case *schemapb.ValueField_BytesData:
		kind = "DataType_SJON" // sic, Milvus's spelling
	case *schemapb.ValueField_TimestamptzData:
		kind = "DataType_Timestamptz"
	default:
		kind = "None"
	}
	if !ok {
		return apierr.Milvus(apierr.DefaultTypeMismatch, dt, name, kind)
	}
	return nil
}

// checkGeometryDefault checks a geometry default as Milvus's checkGeometryDefaultValue does: WKT
// that go-geom parses and encodes as WKB. Milvus encodes it without its empty-point option, so
// a default with an empty point (which WKB cannot hold) is refused, though rows may carry one.
func checkGeometryDefault(def *schemapb.ValueField) error {
	v, ok := def.GetData().(*schemapb.ValueField_StringData)
	if !ok {
		return apierr.Milvus(apierr.GeometryDefaultInvalid)
	}
	g, err := wkt.Unmarshal(v.StringData)
	if err != nil {
		return apierr.Milvus(apierr.GeometryDefaultInvalid).With("%v", err)
	}
	if _, err := wkb.Marshal(g, wkb.NDR); err != nil {
		return apierr.Milvus(apierr.GeometryDefaultInvalid).With("%v", err)
	}
	return nil
}

// Param returns the value of a normalised field's type parameter key, or "".
func Param(f *schemapb.FieldSchema, key string) string {
	for _, kv := range f.GetTypeParams() {
		if kv.GetKey() == key {
			return kv.GetValue()
		}
	}
	return ""
}

func cloneValue(v *schemapb.ValueField) *schemapb.ValueField {
	if v == nil {
		return nil
	}
	return proto.Clone(v).(*schemapb.ValueField)
}
