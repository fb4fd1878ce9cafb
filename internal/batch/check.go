package batch

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/weir-db/weir/internal/apierr"
	"github.com/weir-db/weir/internal/schema"
)

// The columns of a request are checked in three phases, as Milvus's proxy checks them
// (validate_util.go Validate), so that a request with several faults gets the error Milvus
// gives: first every column's data, in the order the request sends them (checkData), then every
// column's nulls and defaults (fill), then every column's row count and vector dimension
// (checkAligned).

// column is one column on its way through the checks.
type column struct {
	f  *schemapb.FieldSchema
	fd *schemapb.FieldData // after fill: one value per row
	// valid says, after fill, which rows are null (nil when none is).
	valid []bool
	// values is the number of values fd carries (scalars; vectors are counted by checkAligned).
	values int
}

// checkData is the first phase for column c: a payload of its field's type, then its values.
// A field that takes nulls or defaults may come without values (its rows are all null); Milvus
// does not check a Bool column here, so its row count answers instead. gRPC carries an empty
// repeated field as none, so an empty one is no data too.
func checkData(c *column) error {
	f, dt := c.f, c.f.GetDataType()
	if payloadKind(c.fd) != expectedKind(dt) {
		if payloadKind(c.fd) == "no" && hasFill(f) || dt == schemapb.DataType_Bool {
			return nil
		}
		return noData(f)
	}
	if dt == schemapb.DataType_Geometry {
		// Milvus turns WKT into WKB before it checks anything else of the column.
		wkb, err := geometryToWKB(f, c.fd)
		if err != nil {
			return err
		}
		c.fd = wkb
	}
	if vf := c.fd.GetVectors(); vf != nil {
		if dt != schemapb.DataType_SparseFloatVector && dataSize(f, c.fd, 0) == 0 {
			return noData(f)
		}
		return checkVectorValues(f, vf)
	}
	n, err := checkValues(f, c.fd)
	if err != nil {
		return err
	}
	if n == 0 && !hasFill(f) && dt != schemapb.DataType_Bool && dt != schemapb.DataType_Array {
		return noData(f)
	}
	c.values = n
	return nil
}

// noDataWords are Milvus's words for a column without data of its field's type
// (validate_util.go check*FieldData): the opening, with the field's name, and the expectation.
var noDataWords = map[schemapb.DataType][2]string{
	schemapb.DataType_Int8:              {"field '%s' is illegal, array type mismatch", "need int array"},
	schemapb.DataType_Int16:             {"field '%s' is illegal, array type mismatch", "need int array"},
	schemapb.DataType_Int32:             {"field '%s' is illegal, array type mismatch", "need int array"},
	schemapb.DataType_Int64:             {"field '%s' is illegal, array type mismatch", "need long int array"},
	schemapb.DataType_Float:             {"field '%s' is illegal, array type mismatch", "need float32 array"},
	schemapb.DataType_Double:            {"field '%s' is illegal, array type mismatch", "need float64(double) array"},
	schemapb.DataType_VarChar:           {"varchar field '%s' is illegal, array type mismatch", "need string array"},
	schemapb.DataType_JSON:              {"json field '%s' is illegal, array type mismatch", "need json array"},
	schemapb.DataType_FloatVector:       {"float vector field '%s' is illegal, array type mismatch", "need float vector"},
	schemapb.DataType_BinaryVector:      {"binary float vector field '%s' is illegal, array type mismatch", "need bytes array"},
	schemapb.DataType_Float16Vector:     {"float16 float field '%s' is illegal, nil Vector_Float16 type", "need vector_float16 array"},
	schemapb.DataType_BFloat16Vector:    {"bfloat16 float field '%s' is illegal, nil Vector_BFloat16 type", "need vector_bfloat16 array"},
	schemapb.DataType_Int8Vector:        {"int8 vector field '%s' is illegal, nil Vector_Int8 type", "need vector_int8 array"},
	schemapb.DataType_SparseFloatVector: {"sparse float field '%s' is illegal, nil SparseFloatVector", "need sparse float array"},
	schemapb.DataType_Geometry:          {"geometry field '%s' is illegal, array type mismatch", "need geometry array"},
}

// noData is Milvus's error for a column of field f without data of its type.
func noData(f *schemapb.FieldSchema) *apierr.Error {
	w, ok := noDataWords[f.GetDataType()]
	switch {
	case f.GetDataType() == schemapb.DataType_Array:
		w = [2]string{"array field '%s' is illegal, array type mismatch", "need " + f.GetElementType().String() + " array"}
	case !ok:
		w = [2]string{"field '%s' is illegal, array type mismatch", "need " + f.GetDataType().String() + " array"}
	}
	return apierr.Milvus(apierr.NoFieldData, fmt.Sprintf(w[0], f.GetName()), w[1])
}

// checkValues validates the values of scalar column fd of field f, whose payload has the
// field's type, and returns their number.
func checkValues(f *schemapb.FieldSchema, fd *schemapb.FieldData) (int, error) {
	name, dt := f.GetName(), f.GetDataType()
	sc := fd.GetScalars()
	switch dt {
	case schemapb.DataType_Bool:
		return len(sc.GetBoolData().GetData()), nil
	case schemapb.DataType_Int8, schemapb.DataType_Int16, schemapb.DataType_Int32:
		v := sc.GetIntData().GetData()
		if dt != schemapb.DataType_Int32 {
			lo, hi := intRange(dt)
			if i := outOfRange(v, lo, hi); i >= 0 {
				return 0, apierr.Milvus(apierr.IntegerOverflow, i, v[i], lo, hi).With("field %q", name)
			}
		}
		return len(v), nil
	case schemapb.DataType_Int64:
		return len(sc.GetLongData().GetData()), nil
	case schemapb.DataType_Float:
		v := sc.GetFloatData().GetData()
		if i := nonFinite(v); i >= 0 {
			return 0, apierr.Milvus(apierr.NotFinite, v[i]).With("field %q, row %d", name, i)
		}
		return len(v), nil
	case schemapb.DataType_Double:
		v := sc.GetDoubleData().GetData()
		if i := nonFinite(v); i >= 0 {
			return 0, apierr.Milvus(apierr.NotFinite, v[i]).With("field %q, row %d", name, i)
		}
		return len(v), nil
	case schemapb.DataType_VarChar, schemapb.DataType_String:
		v := sc.GetStringData().GetData()
		// Milvus does not check the length of keys it generates (milvus#25580), nor do we
		// of keys an upsert passes back.
		if f.GetAutoID() {
			return len(v), nil
		}
		maxLen, err := typeParam(f, schema.KeyMaxLength)
		if err != nil {
			return 0, err
		}
		for i, s := range v {
			if len(s) > maxLen {
				return 0, apierr.Milvus(apierr.VarCharTooLong, name, i, len(s), maxLen)
			}
		}
		return len(v), nil
	case schemapb.DataType_JSON:
		v := sc.GetJsonData().GetData()
		for i, b := range v {
			if len(b) > MaxJSONBytes {
				return 0, apierr.Milvus(apierr.JSONTooLong, len(b), name, MaxJSONBytes).With("row %d", i)
			}
			if !json.Valid(b) {
				return 0, invalid("field %q: the value at row %d is not valid JSON", name, i)
			}
		}
		return len(v), nil
	case schemapb.DataType_Array:
		return checkArray(f, sc.GetArrayData().GetData())
	case schemapb.DataType_Geometry:
		return len(sc.GetGeometryData().GetData()), nil // WKB: checkData converted the WKT
	}
	return 0, invalid("field %q: data type %s is not supported", name, dt)
}

// checkVectorValues is the first phase for a vector column: its values (NaN and infinities,
// sparse rows); their number and dimension are checkAligned's.
func checkVectorValues(f *schemapb.FieldSchema, vf *schemapb.VectorField) error {
	name := f.GetName()
	row := func(i int) int { // the row of value i, for Weir's detail
		dim, err := Dim(f)
		if err != nil {
			return 0
		}
		return i / dim
	}
	switch f.GetDataType() {
	case schemapb.DataType_FloatVector:
		floats := vf.GetFloatVector().GetData()
		if i := nonFinite32(floats); i >= 0 {
			return apierr.Milvus(apierr.NotFinite, floats[i]).With("float vector field %q, row %d", name, row(i))
		}
	case schemapb.DataType_Float16Vector:
		if i := nonFinite16(vf.GetFloat16Vector(), 0x7c00); i >= 0 {
			return apierr.Milvus(apierr.Float16NotFinite).With("field %q, row %d", name, row(i))
		}
	case schemapb.DataType_BFloat16Vector:
		if i := nonFinite16(vf.GetBfloat16Vector(), 0x7f80); i >= 0 {
			return apierr.Milvus(apierr.BFloat16NotFinite).With("field %q, row %d", name, row(i))
		}
	case schemapb.DataType_SparseFloatVector:
		return checkSparse(name, vf)
	}
	return nil
}

// checkAligned is the third phase for column c, after fill: one value per row, and for dense
// vectors a payload of whole vectors of the schema's dimension. The order of the dimension and
// length checks is Milvus's, which differs between vector types.
func checkAligned(c *column, n int) error {
	f, name := c.f, c.f.GetName()
	vf := c.fd.GetVectors()
	rows := c.values
	switch dt := f.GetDataType(); dt {
	case schemapb.DataType_FloatVector, schemapb.DataType_BinaryVector, schemapb.DataType_Float16Vector,
		schemapb.DataType_BFloat16Vector, schemapb.DataType_Int8Vector:
		dim, err := Dim(f)
		if err != nil {
			return err
		}
		dimErr := func() error {
			if vf.GetDim() != int64(dim) {
				return apierr.Milvus(apierr.DimMismatch, vf.GetDim(), name, dim, dim, vf.GetDim())
			}
			return nil
		}
		var raw int // values of the payload: floats, bits, or 16- or 8-bit values
		var word string
		switch dt {
		case schemapb.DataType_FloatVector:
			raw, word = len(vf.GetFloatVector().GetData()), "float"
		case schemapb.DataType_BinaryVector:
			raw = 8 * len(vf.GetBinaryVector())
		case schemapb.DataType_Float16Vector:
			raw, word = len(vf.GetFloat16Vector())/2, "float16"
		case schemapb.DataType_BFloat16Vector:
			raw, word = len(vf.GetBfloat16Vector())/2, "bfloat"
		default:
			raw, word = len(vf.GetInt8Vector()), "int8"
		}
		lengthErr := func() error {
			switch {
			case dt == schemapb.DataType_BinaryVector && raw%dim != 0:
				return apierr.Milvus(apierr.BinaryBitsMismatch, raw, dim).With("field %q", name)
			case dt == schemapb.DataType_Float16Vector || dt == schemapb.DataType_BFloat16Vector:
				if b := len(vf.GetFloat16Vector()) + len(vf.GetBfloat16Vector()); b%(2*dim) != 0 {
					return apierr.Milvus(apierr.VectorBytesMismatch, b, word, dim).With("field %q", name)
				}
			case raw%dim != 0:
				return apierr.Milvus(apierr.VectorBytesMismatch, raw, word, dim).With("field %q", name)
			}
			return nil
		}
		// Float and int8 vectors: whole vectors, then the dimension; the others the reverse.
		first, second := dimErr, lengthErr
		if dt == schemapb.DataType_FloatVector || dt == schemapb.DataType_Int8Vector {
			first, second = lengthErr, dimErr
		}
		if err := first(); err != nil {
			return err
		}
		if err := second(); err != nil {
			return err
		}
		rows = raw / dim
	case schemapb.DataType_SparseFloatVector:
		rows = len(vf.GetSparseFloatVector().GetContents())
	}
	if rows != n {
		return rowsError(name, rows, n)
	}
	return nil
}

// dataSize is the size column fd of field f, one value per row, takes in a record.
func dataSize(f *schemapb.FieldSchema, fd *schemapb.FieldData, n int) int {
	if vf := fd.GetVectors(); vf != nil {
		size := 4*len(vf.GetFloatVector().GetData()) + len(vf.GetBinaryVector()) + len(vf.GetFloat16Vector()) +
			len(vf.GetBfloat16Vector()) + len(vf.GetInt8Vector())
		for _, r := range vf.GetSparseFloatVector().GetContents() {
			size += len(r) + 4
		}
		return size
	}
	sc := fd.GetScalars()
	switch dt := f.GetDataType(); dt {
	case schemapb.DataType_Bool:
		return n
	case schemapb.DataType_Int8, schemapb.DataType_Int16, schemapb.DataType_Int32:
		return n * intWidth(dt)
	case schemapb.DataType_Int64, schemapb.DataType_Double:
		return 8 * n
	case schemapb.DataType_Float:
		return 4 * n
	case schemapb.DataType_VarChar, schemapb.DataType_String:
		return stringsSize(sc.GetStringData().GetData())
	case schemapb.DataType_JSON:
		return bytesSize(sc.GetJsonData().GetData())
	case schemapb.DataType_Geometry:
		return bytesSize(sc.GetGeometryData().GetData())
	case schemapb.DataType_Array:
		size := 4 * n
		for _, row := range sc.GetArrayData().GetData() {
			switch et := f.GetElementType(); et {
			case schemapb.DataType_VarChar, schemapb.DataType_String:
				size += stringsSize(row.GetStringData().GetData())
			case schemapb.DataType_Bool:
				size += arrayLen(et, row)
			case schemapb.DataType_Int8, schemapb.DataType_Int16, schemapb.DataType_Int32:
				size += intWidth(et) * arrayLen(et, row)
			case schemapb.DataType_Float:
				size += 4 * arrayLen(et, row)
			default:
				size += 8 * arrayLen(et, row)
			}
		}
		return size
	}
	return math.MaxInt / 2 // a type FromFieldData refused; never built
}

func stringsSize(v []string) int {
	size := 0
	for _, s := range v {
		size += len(s) + 4 // and its offset
	}
	return size
}

func bytesSize(v [][]byte) int {
	size := 0
	for _, b := range v {
		size += len(b) + 4
	}
	return size
}
