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
	MaxVectorFields        = 10 // Milvus 2.6.18 raised proxy.maxVectorFieldNum from 4
	MinDim                 = 2  // Milvus 2.4+ rejects one-dimensional float vectors
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

// Milvus's keywords of its expression language, which no field may be named
// (pkg/common/keywords.go).
var keywords = map[string]bool{
	"$meta": true, "like": true, "exists": true, "EXISTS": true, "and": true, "or": true, "not": true, "in": true,
	"json_contains": true, "JSON_CONTAINS": true, "json_contains_all": true, "JSON_CONTAINS_ALL": true,
	"json_contains_any": true, "JSON_CONTAINS_ANY": true, "array_contains": true, "ARRAY_CONTAINS": true,
	"array_contains_all": true, "ARRAY_CONTAINS_ALL": true, "array_contains_any": true, "ARRAY_CONTAINS_ANY": true,
	"array_length": true, "ARRAY_LENGTH": true, "true": true, "True": true, "TRUE": true, "false": true,
	"False": true, "FALSE": true, "text_match": true, "TEXT_MATCH": true, "phrase_match": true,
	"PHRASE_MATCH": true, "random_sample": true, "RANDOM_SAMPLE": true,
}

// Names of Milvus's system fields, which no user field may take (rootcoord validateSchema).
var systemFields = map[string]bool{"RowID": true, "Timestamp": true, "$meta": true, "$namespace_id": true}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool  { return '0' <= c && c <= '9' }

// NameRule is the first of Milvus's name rules a name breaks.
type NameRule int

// The name rules, in the order Milvus checks them.
const (
	NameOK      NameRule = iota
	NameEmpty            // no characters
	NameTooLong          // more than MaxNameLength bytes
	NameFirst            // the first byte is not an underscore or a letter (or a digit, where allowed)
	NameChars            // a later byte is not an underscore, a letter, a digit or an allowed extra
)

// CheckName returns the first of Milvus's name rules name breaks. Every kind of name follows
// them, with its own allowances: a digit first (firstDigit), and extra bytes after the first.
func CheckName(name string, firstDigit bool, extra string) NameRule {
	switch {
	case name == "":
		return NameEmpty
	case len(name) > MaxNameLength:
		return NameTooLong
	case name[0] != '_' && !isLetter(name[0]) && !(firstDigit && isDigit(name[0])):
		return NameFirst
	}
	for i := 1; i < len(name); i++ {
		if c := name[i]; c != '_' && !isLetter(c) && !isDigit(c) && !strings.ContainsRune(extra, rune(c)) {
			return NameChars
		}
	}
	return NameOK
}

// ValidateCollectionName checks a collection name as Milvus does: 1..255 bytes, the first an
// underscore or an ASCII letter, the rest underscores, letters or digits.
func ValidateCollectionName(name string) error {
	switch CheckName(name, false, "") {
	case NameEmpty:
		return apierr.Milvus(apierr.CollectionNameEmpty)
	case NameTooLong:
		return apierr.Milvus(apierr.CollectionNameLength, name, MaxNameLength)
	case NameFirst:
		return apierr.Milvus(apierr.CollectionNameFirst, name)
	case NameChars:
		return apierr.Milvus(apierr.CollectionNameChars, name)
	}
	return nil
}

// ValidatePartitionName checks a partition name as Milvus does (surrounding spaces ignored):
// 1..255 bytes, the first an underscore, a letter or a digit, the rest also '-'.
func ValidatePartitionName(name string) error {
	name = strings.TrimSpace(name)
	switch CheckName(name, true, "-") {
	case NameEmpty:
		return apierr.Milvus(apierr.PartitionNameEmpty, name)
	case NameTooLong:
		return apierr.Milvus(apierr.PartitionNameLength, name, MaxNameLength)
	case NameFirst:
		return apierr.Milvus(apierr.PartitionNameFirst, name)
	case NameChars:
		return apierr.Milvus(apierr.PartitionNameChars, name)
	}
	return nil
}

// validateFieldName checks a field name as Milvus does (surrounding spaces ignored): as a
// collection name, and not a keyword of Milvus's expressions.
func validateFieldName(name string) error {
	name = strings.TrimSpace(name)
	switch CheckName(name, false, "") {
	case NameEmpty:
		return apierr.Milvus(apierr.FieldNameEmpty, name)
	case NameTooLong:
		return apierr.Milvus(apierr.FieldNameLength, name, MaxNameLength, name)
	case NameFirst:
		return apierr.Milvus(apierr.FieldNameFirst, name, name)
	case NameChars:
		return apierr.Milvus(apierr.FieldNameChars, name, name)
	}
	if keywords[name] {
		return apierr.Milvus(apierr.FieldNameKeyword, name, name, name)
	}
	return nil
}

// Normalize validates s, the schema of a collection named name, and returns a normalised copy:
// field IDs assigned from FirstFieldID in order, the deprecated collection-level autoID dropped
// (the primary key's own flag decides), type parameters in canonical form and sorted by key.
// s is not modified. Two requests that describe the same collection normalise to proto.Equal
// schemas.
//
// The checks run in the order of Milvus's proxy (createCollectionTask.PreExecute) and then its
// root coordinator, with their texts, so that a schema with several faults gets the error
// Milvus would give.
func Normalize(name string, s *schemapb.CollectionSchema) (*schemapb.CollectionSchema, error) {
	if s == nil {
		s = &schemapb.CollectionSchema{}
	}
	if len(s.GetFunctions()) > 0 {
		return nil, apierr.New(apierr.ParameterInvalid, "collection %q: functions are not supported by Weir", name)
	}
	if len(s.GetStructArrayFields()) > 0 {
		return nil, apierr.New(apierr.ParameterInvalid, "collection %q: struct array fields are not supported by Weir", name)
	}
	fields := s.GetFields()
	if len(fields) > MaxFields {
		return nil, apierr.Milvus(apierr.FieldsLimit, MaxFields)
	}
	vectors := 0
	for _, f := range fields {
		if IsVector(f.GetDataType()) {
			vectors++
		}
	}
	if vectors > MaxVectorFields {
		return nil, apierr.Milvus(apierr.VectorFieldsLimit, MaxVectorFields)
	}
	if vectors == 0 {
		return nil, apierr.Milvus(apierr.NoVectorField)
	}
	if err := ValidateCollectionName(name); err != nil {
		return nil, err
	}
	if err := checkKeys(fields); err != nil {
		return nil, err
	}
	if err := checkPartitionKey(fields); err != nil {
		return nil, err
	}

	out := &schemapb.CollectionSchema{
		Name:               name,
		Description:        s.GetDescription(),
		EnableDynamicField: s.GetEnableDynamicField(),
		Properties:         sortedPairs(s.GetProperties()),
	}
	for i, f := range fields {
		nf, err := normalizeField(name, f)
		if err != nil {
			return nil, err
		}
		nf.FieldID = FirstFieldID + int64(i)
		out.Fields = append(out.Fields, nf)
	}
	seen := make(map[string]bool, len(fields))
	for _, f := range out.Fields {
		if seen[f.GetName()] {
			return nil, apierr.Milvus(apierr.DuplicatedFieldName, f.GetName())
		}
		seen[f.GetName()] = true
	}

	// The root coordinator's checks.
	if s.GetName() != "" && s.GetName() != name {
		return nil, apierr.Milvus(apierr.CollectionNameMismatch, name, s.GetName())
	}
	for i, f := range fields {
		if err := checkNullAndDefault(out.Fields[i]); err != nil {
			return nil, err
		}
		if err := checkParamKeys(f); err != nil {
			return nil, err
		}
	}
	for _, f := range fields {
		if systemFields[f.GetName()] {
			return nil, apierr.Milvus(apierr.SystemField)
		}
	}
	// The deprecated schema-level autoID flag is ignored, as Milvus 2.6 ignores it: the primary
	// key field's own flag decides, and the described schema reports false (out.AutoID is
	// never set). Clients that still use the schema flag (pymilvus's auto_id argument) set the
	// field's flag as well.
	return out, nil
}

// checkKeys checks the primary key, dynamic and autoID flags and the data types of fields, in
// Milvus's order.
func checkKeys(fields []*schemapb.FieldSchema) error {
	var pk *schemapb.FieldSchema
	for _, f := range fields {
		if !f.GetIsPrimaryKey() {
			continue
		}
		if pk != nil {
			return apierr.Milvus(apierr.PrimaryKeyTwice, pk.GetName(), f.GetName())
		}
		pk = f
	}
	if pk == nil {
		return apierr.Milvus(apierr.PrimaryKeyMissing)
	}
	if dt := pk.GetDataType(); dt != schemapb.DataType_Int64 && dt != schemapb.DataType_VarChar {
		return apierr.Milvus(apierr.PrimaryKeyType)
	}
	for _, f := range fields {
		if f.GetIsDynamic() {
			return apierr.Milvus(apierr.DynamicFieldDeclared)
		}
	}
	var auto *schemapb.FieldSchema
	for _, f := range fields {
		if !f.GetAutoID() {
			continue
		}
		if auto != nil {
			return apierr.Milvus(apierr.AutoIDTwice, auto.GetName(), f.GetName())
		}
		if !f.GetIsPrimaryKey() {
			return apierr.Milvus(apierr.AutoIDNotPrimary, f.GetName())
		}
		auto = f
	}
	for _, f := range fields {
		switch f.GetDataType() {
		case schemapb.DataType_String:
			return apierr.Milvus(apierr.StringType)
		case schemapb.DataType_None:
			return apierr.Milvus(apierr.NoneType)
		case schemapb.DataType_Array:
			switch et := f.GetElementType(); et {
			case schemapb.DataType_None:
				return apierr.Milvus(apierr.NoneElementType)
			case schemapb.DataType_String:
				return apierr.Milvus(apierr.StringType)
			case schemapb.DataType_Bool, schemapb.DataType_Int8, schemapb.DataType_Int16, schemapb.DataType_Int32,
				schemapb.DataType_Int64, schemapb.DataType_Float, schemapb.DataType_Double, schemapb.DataType_VarChar:
			default:
				return apierr.Milvus(apierr.ElementType, et)
			}
		}
	}
	return nil
}

func normalizeField(coll string, f *schemapb.FieldSchema) (*schemapb.FieldSchema, error) {
	name := f.GetName()
	switch {
	case f.GetIsClusteringKey():
		return nil, apierr.New(apierr.ParameterInvalid, "field %q: clustering keys are not supported by Weir", name)
	case f.GetIsFunctionOutput():
		return nil, apierr.New(apierr.ParameterInvalid, "field %q: function outputs are not supported by Weir", name)
	}
	if err := validateFieldName(name); err != nil {
		return nil, err
	}
	params := typeParams(f.GetTypeParams())
	nf := &schemapb.FieldSchema{
		Name:         name,
		IsPrimaryKey: f.GetIsPrimaryKey(),
		Description:  f.GetDescription(),
		DataType:     f.GetDataType(),
		IndexParams:  sortedPairs(f.GetIndexParams()),
		AutoID:       f.GetAutoID(),
		Nullable:     f.GetNullable(),
		DefaultValue: cloneValue(f.GetDefaultValue()),
		// Checked by checkPartitionKey.
		IsPartitionKey: f.GetIsPartitionKey(),
	}
	keep := func(key string, v int64) {
		nf.TypeParams = append(nf.TypeParams, &commonpb.KeyValuePair{Key: key, Value: strconv.FormatInt(v, 10)})
		delete(params, key)
	}
	var err error
	switch dt := f.GetDataType(); dt {
	case schemapb.DataType_Bool, schemapb.DataType_Int8, schemapb.DataType_Int16, schemapb.DataType_Int32,
		schemapb.DataType_Int64, schemapb.DataType_Float, schemapb.DataType_Double, schemapb.DataType_JSON:
	case schemapb.DataType_VarChar:
		err = maxLength(coll, name, params, keep)
	case schemapb.DataType_FloatVector, schemapb.DataType_Float16Vector, schemapb.DataType_BFloat16Vector,
		schemapb.DataType_Int8Vector, schemapb.DataType_BinaryVector:
		err = dimension(name, dt, params, keep)
	case schemapb.DataType_Array:
		nf.ElementType = f.GetElementType()
		if nf.ElementType == schemapb.DataType_VarChar {
			err = maxLength(coll, name, params, keep)
		}
		if err == nil {
			err = maxCapacity(coll, name, params, keep)
		}
	case schemapb.DataType_SparseFloatVector:
		err = sparseParams(f, params)
	case schemapb.DataType_Geometry:
		// WKT in, WKB stored; no type parameters (Milvus 2.6 checkFieldSchema).
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

// dimension checks the dim of a dense vector field (proxy util.go validateDimension).
func dimension(name string, dt schemapb.DataType, params map[string]string, keep func(string, int64)) error {
	v, ok := params[KeyDim]
	if !ok {
		return apierr.Milvus(apierr.DimMissing, name)
	}
	dim, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return apierr.Milvus(apierr.PlainError, err)
	}
	switch {
	case dim < MinDim:
		return apierr.Milvus(apierr.DimTooSmall, dim, MaxDim)
	case dt != schemapb.DataType_BinaryVector && dim > MaxDim:
		return apierr.Milvus(apierr.DimTooLarge, dim, name, MaxDim)
	case dt == schemapb.DataType_BinaryVector && dim%8 != 0:
		return apierr.Milvus(apierr.BinaryDimMultiple, dim, name)
	case dt == schemapb.DataType_BinaryVector && dim > 8*MaxDim:
		return apierr.Milvus(apierr.BinaryDimTooLarge, dim, name, 8*MaxDim)
	}
	keep(KeyDim, dim)
	return nil
}

// maxLength checks the max_length of a VarChar field or array (validateMaxLengthPerRow).
func maxLength(coll, name string, params map[string]string, keep func(string, int64)) error {
	v, ok := params[KeyMaxLength]
	if !ok {
		return apierr.Milvus(apierr.MaxLengthMissing, name, coll)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return apierr.Milvus(apierr.PlainError, err)
	}
	if n <= 0 || n > MaxVarCharLength {
		return apierr.Milvus(apierr.MaxLengthRange, name, MaxVarCharLength, n)
	}
	keep(KeyMaxLength, n)
	return nil
}

// maxCapacity checks the max_capacity of an array field (validateMaxCapacityPerRow).
func maxCapacity(coll, name string, params map[string]string, keep func(string, int64)) error {
	v, ok := params[KeyMaxCapacity]
	if !ok {
		return apierr.Milvus(apierr.MaxCapacityMissing, name, coll)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return apierr.Milvus(apierr.MaxCapacityNotInteger, name)
	}
	if n <= 0 || n > MaxArrayCapacity {
		return apierr.Milvus(apierr.MaxCapacityRange, MaxArrayCapacity)
	}
	keep(KeyMaxCapacity, n)
	return nil
}

// checkParamKeys refuses a type or index parameter given twice (rootcoord checkFieldSchema).
// Milvus compares the keys as given: "dim" and "DIM" are two keys to it.
func checkParamKeys(f *schemapb.FieldSchema) error {
	for _, p := range []struct {
		kvs  []*commonpb.KeyValuePair
		text apierr.Text
	}{{f.GetTypeParams(), apierr.DuplicatedTypeParam}, {f.GetIndexParams(), apierr.DuplicatedIndexParam}} {
		seen := map[string]bool{}
		for _, kv := range p.kvs {
			if seen[kv.GetKey()] {
				return apierr.Milvus(p.text, kv.GetKey())
			}
			seen[kv.GetKey()] = true
		}
	}
	return nil
}

// typeParams returns the type parameters by lower-cased key. A key given exactly in lower case
// wins over its other spellings ("dim" over "DIM"), as Milvus reads the lower-case key.
func typeParams(kvs []*commonpb.KeyValuePair) map[string]string {
	m := make(map[string]string, len(kvs))
	exact := map[string]bool{}
	for _, kv := range kvs {
		k := strings.ToLower(strings.TrimSpace(kv.GetKey()))
		if exact[k] {
			continue
		}
		exact[k] = kv.GetKey() == k
		m[k] = strings.TrimSpace(kv.GetValue())
	}
	return m
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
		return 0, apierr.Milvus(apierr.ShardsLimit, MaxShards)
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
	if f.GetIsPartitionKey() {
		b.WriteString(" partition_key")
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
