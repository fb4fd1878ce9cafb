// Package schema validates and normalises Milvus collection schemas the way Milvus's proxy does,
// so that a schema Weir accepts is one every Milvus client can describe and write to.
package schema

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"google.golang.org/protobuf/proto"

	"github.com/weir-db/weir/internal/apierr"
)

// Limits, with Milvus's defaults (milvus.yaml: proxy.maxFieldNum, proxy.maxVectorFieldNum,
// proxy.maxDimension, proxy.maxShardNum, proxy.maxNameLength; varchar and array limits are
// hard limits in Milvus).
const (
	MaxNameLength          = 255
	MaxFields              = 64
	MaxVectorFields        = 4
	MinDim                 = 2 // Milvus 2.4+ rejects one-dimensional float vectors
	MaxDim                 = 32768
	MaxVarCharLength       = 65535
	MaxArrayCapacity       = 4096
	MaxShards              = 16
	DefaultShards          = 1
	FirstFieldID     int64 = 100 // Milvus reserves 0 and 1 for RowID and Timestamp
)

// Type parameter keys as Milvus clients send them.
const (
	KeyDim         = "dim"
	KeyMaxLength   = "max_length"
	KeyMaxCapacity = "max_capacity"
)

// ValidateName checks a collection or field name against Milvus's rules: 1..255 characters,
// the first a letter or underscore, the rest letters, digits or underscores.
func ValidateName(what, name string) error { return validateName(what, name, false) }

// ValidatePartitionName checks a partition name: as ValidateName, and '-' is allowed after the
// first character.
func ValidatePartitionName(name string) error { return validateName("partition", name, true) }

func validateName(what, name string, dash bool) error {
	if name == "" {
		return apierr.New(apierr.ParameterInvalid, "%s name should not be empty", what)
	}
	if len(name) > MaxNameLength {
		return apierr.New(apierr.ParameterInvalid, "%s name %q: length %d exceeds the limit %d", what, name, len(name), MaxNameLength)
	}
	for i, r := range name {
		ok := r == '_' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || (i > 0 && ('0' <= r && r <= '9' || dash && r == '-'))
		if !ok {
			if i == 0 {
				return apierr.New(apierr.ParameterInvalid, "%s name %q: the first character must be an underscore or a letter", what, name)
			}
			return apierr.New(apierr.ParameterInvalid, "%s name %q: may contain only underscores, letters and digits, got %q", what, name, r)
		}
	}
	return nil
}

// Normalize validates s, the schema of a collection named name, and returns a normalised copy:
// field IDs assigned from FirstFieldID in order, the deprecated collection-level autoID moved to
// the primary key, type parameters in canonical form and sorted by key. s is not modified.
// Two requests that describe the same collection normalise to proto.Equal schemas.
func Normalize(name string, s *schemapb.CollectionSchema) (*schemapb.CollectionSchema, error) {
	if err := ValidateName("collection", name); err != nil {
		return nil, err
	}
	if s == nil {
		return nil, apierr.New(apierr.ParameterMissing, "collection %q: schema is empty", name)
	}
	if s.GetName() != "" && s.GetName() != name {
		return nil, apierr.New(apierr.ParameterInvalid, "collection name %q does not match the schema name %q", name, s.GetName())
	}
	if len(s.GetFunctions()) > 0 {
		return nil, apierr.New(apierr.ParameterInvalid, "collection %q: functions are not supported by Weir", name)
	}
	if len(s.GetStructArrayFields()) > 0 {
		return nil, apierr.New(apierr.ParameterInvalid, "collection %q: struct array fields are not supported by Weir", name)
	}
	if n := len(s.GetFields()); n == 0 || n > MaxFields {
		return nil, apierr.New(apierr.IllegalSchema, "collection %q: expected 1..%d fields, got %d", name, MaxFields, n)
	}

	out := &schemapb.CollectionSchema{
		Name:               name,
		Description:        s.GetDescription(),
		EnableDynamicField: s.GetEnableDynamicField(),
		Properties:         sortedPairs(s.GetProperties()),
	}
	seen := make(map[string]bool, len(s.GetFields()))
	var pk *schemapb.FieldSchema
	vectors := 0
	for i, f := range s.GetFields() {
		nf, err := normalizeField(f)
		if err != nil {
			return nil, err
		}
		if seen[nf.GetName()] {
			return nil, apierr.New(apierr.IllegalSchema, "duplicate field name %q", nf.GetName())
		}
		seen[nf.GetName()] = true
		nf.FieldID = FirstFieldID + int64(i)
		if nf.GetIsPrimaryKey() {
			if pk != nil {
				return nil, apierr.New(apierr.IllegalSchema, "there are more than one primary key, field names: %s, %s", pk.GetName(), nf.GetName())
			}
			pk = nf
		}
		if IsVector(nf.GetDataType()) {
			vectors++
		}
		out.Fields = append(out.Fields, nf)
	}
	if pk == nil {
		return nil, apierr.New(apierr.ParameterMissing, "primary key is not specified in the schema of collection %q", name)
	}
	if vectors == 0 {
		return nil, apierr.New(apierr.ParameterInvalid, "schema does not contain vector field, collection %q needs at least one", name)
	}
	if vectors > MaxVectorFields {
		return nil, apierr.New(apierr.IllegalSchema, "collection %q: expected at most %d vector fields, got %d", name, MaxVectorFields, vectors)
	}
	if s.GetAutoID() {
		// The deprecated schema-level flag means the primary key is generated.
		pk.AutoID = true
	}
	return out, nil
}

func normalizeField(f *schemapb.FieldSchema) (*schemapb.FieldSchema, error) {
	name := f.GetName()
	if err := ValidateName("field", name); err != nil {
		return nil, err
	}
	switch {
	case f.GetIsDynamic():
		return nil, apierr.New(apierr.IllegalSchema, "field %q: dynamic fields are added by Weir, not declared; set enable_dynamic_field instead", name)
	case f.GetIsPartitionKey():
		return nil, apierr.New(apierr.ParameterInvalid, "field %q: partition keys are not supported by Weir", name)
	case f.GetIsClusteringKey():
		return nil, apierr.New(apierr.ParameterInvalid, "field %q: clustering keys are not supported by Weir", name)
	case f.GetNullable():
		return nil, apierr.New(apierr.ParameterInvalid, "field %q: nullable fields are not supported by Weir", name)
	case f.GetDefaultValue() != nil:
		return nil, apierr.New(apierr.ParameterInvalid, "field %q: default values are not supported by Weir", name)
	case f.GetIsFunctionOutput():
		return nil, apierr.New(apierr.ParameterInvalid, "field %q: function outputs are not supported by Weir", name)
	case f.GetAutoID() && !f.GetIsPrimaryKey():
		return nil, apierr.New(apierr.IllegalSchema, "field %q: autoID is allowed only on the primary key", name)
	}
	params, err := typeParams(name, f.GetTypeParams())
	if err != nil {
		return nil, err
	}
	nf := &schemapb.FieldSchema{
		Name:         name,
		IsPrimaryKey: f.GetIsPrimaryKey(),
		Description:  f.GetDescription(),
		DataType:     f.GetDataType(),
		IndexParams:  sortedPairs(f.GetIndexParams()),
		AutoID:       f.GetAutoID(),
	}
	dt := f.GetDataType()
	if nf.IsPrimaryKey && dt != schemapb.DataType_Int64 && dt != schemapb.DataType_VarChar {
		return nil, apierr.New(apierr.IllegalSchema, "field %q: the primary key must be Int64 or VarChar, got %s", name, dt)
	}
	keep := func(key string, lo, hi int64, mult int64) error {
		v, ok := params[key]
		if !ok {
			return apierr.New(apierr.ParameterMissing, "field %q (%s): type param %s is required", name, dt, key)
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return apierr.New(apierr.ParameterInvalid, "field %q: %s must be an integer, got %q", name, key, v)
		}
		if n < lo || n > hi || n%mult != 0 {
			if mult > 1 {
				return apierr.New(apierr.ParameterInvalid, "field %q: %s must be a multiple of %d in %d..%d, got %d", name, key, mult, lo, hi, n)
			}
			return apierr.New(apierr.ParameterInvalid, "field %q: %s must be in %d..%d, got %d", name, key, lo, hi, n)
		}
		nf.TypeParams = append(nf.TypeParams, &commonpb.KeyValuePair{Key: key, Value: strconv.FormatInt(n, 10)})
		delete(params, key)
		return nil
	}
	switch dt {
	case schemapb.DataType_Bool, schemapb.DataType_Int8, schemapb.DataType_Int16, schemapb.DataType_Int32,
		schemapb.DataType_Int64, schemapb.DataType_Float, schemapb.DataType_Double, schemapb.DataType_JSON:
	case schemapb.DataType_VarChar:
		err = keep(KeyMaxLength, 1, MaxVarCharLength, 1)
	case schemapb.DataType_FloatVector, schemapb.DataType_Float16Vector, schemapb.DataType_BFloat16Vector, schemapb.DataType_Int8Vector:
		err = keep(KeyDim, MinDim, MaxDim, 1)
	case schemapb.DataType_BinaryVector:
		err = keep(KeyDim, 8, MaxDim*8, 8)
	case schemapb.DataType_Array:
		err = arrayParams(nf, f, keep)
	case schemapb.DataType_SparseFloatVector:
		err = sparseParams(f, params)
	case schemapb.DataType_Geometry:
		// WKT in, WKB stored; no type parameters (Milvus 2.6 checkFieldSchema).
	case schemapb.DataType_None:
		err = apierr.New(apierr.ParameterMissing, "field %q: data type is required", name)
	default:
		err = apierr.New(apierr.ParameterInvalid, "field %q: data type %s is not supported by Weir", name, dt)
	}
	if err != nil {
		return nil, err
	}
	// Parameters that do not apply to the type are kept as given: Milvus keeps them too and
	// clients read back what they sent (for example mmap settings).
	for k, v := range params {
		nf.TypeParams = append(nf.TypeParams, &commonpb.KeyValuePair{Key: k, Value: v})
	}
	nf.TypeParams = sortedPairs(nf.TypeParams)
	return nf, nil
}

func arrayParams(nf, f *schemapb.FieldSchema, keep func(string, int64, int64, int64) error) error {
	name := f.GetName()
	et := f.GetElementType()
	switch et {
	case schemapb.DataType_Bool, schemapb.DataType_Int8, schemapb.DataType_Int16, schemapb.DataType_Int32,
		schemapb.DataType_Int64, schemapb.DataType_Float, schemapb.DataType_Double:
	case schemapb.DataType_VarChar:
		if err := keep(KeyMaxLength, 1, MaxVarCharLength, 1); err != nil {
			return err
		}
	case schemapb.DataType_None:
		return apierr.New(apierr.ParameterMissing, "field %q: an array needs an element type", name)
	default:
		return apierr.New(apierr.ParameterInvalid, "field %q: arrays of %s are not supported", name, et)
	}
	nf.ElementType = et
	return keep(KeyMaxCapacity, 1, MaxArrayCapacity, 1)
}

func typeParams(field string, kvs []*commonpb.KeyValuePair) (map[string]string, error) {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k := strings.ToLower(strings.TrimSpace(kv.GetKey()))
		if _, dup := m[k]; dup {
			return nil, apierr.New(apierr.ParameterInvalid, "field %q: type param %s given twice", field, k)
		}
		m[k] = strings.TrimSpace(kv.GetValue())
	}
	return m, nil
}

func sortedPairs(kvs []*commonpb.KeyValuePair) []*commonpb.KeyValuePair {
	if len(kvs) == 0 {
		return nil
	}
	out := make([]*commonpb.KeyValuePair, len(kvs))
	for i, kv := range kvs {
		out[i] = &commonpb.KeyValuePair{Key: kv.GetKey(), Value: kv.GetValue()}
	}
	slices.SortStableFunc(out, func(a, b *commonpb.KeyValuePair) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// Shards returns the number of virtual channels for a request's shards_num: 0 or less means the
// default, as in Milvus; more than MaxShards is rejected.
func Shards(n int32) (int, error) {
	if n <= 0 {
		return DefaultShards, nil
	}
	if n > MaxShards {
		return 0, apierr.New(apierr.ParameterInvalid, "shards_num: expected 1..%d, got %d", MaxShards, n)
	}
	return int(n), nil
}

// Equal reports whether two normalised schemas describe the same collection.
func Equal(a, b *schemapb.CollectionSchema) bool { return proto.Equal(a, b) }

// Diff names the first difference between two normalised schemas, for error messages.
func Diff(existing, requested *schemapb.CollectionSchema) string {
	if len(existing.GetFields()) != len(requested.GetFields()) {
		return fmt.Sprintf("existing schema has %d fields, requested %d", len(existing.GetFields()), len(requested.GetFields()))
	}
	for i, e := range existing.GetFields() {
		r := requested.GetFields()[i]
		if !proto.Equal(e, r) {
			return fmt.Sprintf("field %d: existing %s, requested %s", i, describeField(e), describeField(r))
		}
	}
	return "collection-level settings differ (description, dynamic field or properties)"
}

func describeField(f *schemapb.FieldSchema) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%q %s", f.GetName(), f.GetDataType())
	for _, kv := range f.GetTypeParams() {
		fmt.Fprintf(&b, " %s=%s", kv.GetKey(), kv.GetValue())
	}
	if f.GetIsPrimaryKey() {
		b.WriteString(" primary")
	}
	if f.GetAutoID() {
		b.WriteString(" autoID")
	}
	return b.String()
}

// IsVector reports whether t is a vector type.
func IsVector(t schemapb.DataType) bool {
	switch t {
	case schemapb.DataType_FloatVector, schemapb.DataType_BinaryVector, schemapb.DataType_Float16Vector,
		schemapb.DataType_BFloat16Vector, schemapb.DataType_Int8Vector, schemapb.DataType_SparseFloatVector:
		return true
	}
	return false
}

// PrimaryKey returns the primary key field of a normalised schema.
func PrimaryKey(s *schemapb.CollectionSchema) *schemapb.FieldSchema {
	for _, f := range s.GetFields() {
		if f.GetIsPrimaryKey() {
			return f
		}
	}
	return nil
}
