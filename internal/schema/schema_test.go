package schema

import (
	"strings"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/apierr"
)

func kv(k, v string) *commonpb.KeyValuePair { return &commonpb.KeyValuePair{Key: k, Value: v} }

func pkField() *schemapb.FieldSchema {
	return &schemapb.FieldSchema{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true}
}

func vecField(dim string) *schemapb.FieldSchema {
	return &schemapb.FieldSchema{Name: "vec", DataType: schemapb.DataType_FloatVector, TypeParams: []*commonpb.KeyValuePair{kv("dim", dim)}}
}

func books(fields ...*schemapb.FieldSchema) *schemapb.CollectionSchema {
	return &schemapb.CollectionSchema{Name: "books", Fields: fields}
}

func TestNormalizeAccepts(t *testing.T) {
	in := books(pkField(), vecField(" 32"),
		&schemapb.FieldSchema{Name: "title", DataType: schemapb.DataType_VarChar, TypeParams: []*commonpb.KeyValuePair{kv("max_length", "256"), kv("mmap.enabled", "true")}},
		&schemapb.FieldSchema{Name: "score", DataType: schemapb.DataType_Float},
		&schemapb.FieldSchema{Name: "tags", DataType: schemapb.DataType_Array, ElementType: schemapb.DataType_VarChar,
			TypeParams: []*commonpb.KeyValuePair{kv("max_capacity", "10"), kv("Max_Length", "8")}},
		&schemapb.FieldSchema{Name: "bits", DataType: schemapb.DataType_BinaryVector, TypeParams: []*commonpb.KeyValuePair{kv("dim", "64")}},
	)
	in.AutoID = true
	out, err := Normalize("books", in)
	require.NoError(t, err)
	require.Len(t, out.Fields, 6)
	for i, f := range out.Fields {
		require.Equal(t, FirstFieldID+int64(i), f.FieldID)
	}
	require.False(t, out.Fields[0].AutoID, "the schema-level autoID flag is ignored: the primary key's own flag decides")
	require.False(t, out.AutoID, "the normalised schema never carries the schema-level flag")
	require.Equal(t, "32", out.Fields[1].TypeParams[0].Value)
	require.Equal(t, []*commonpb.KeyValuePair{kv("max_length", "256"), kv("mmap.enabled", "true")}, out.Fields[2].TypeParams)
	require.Equal(t, []*commonpb.KeyValuePair{kv("max_capacity", "10"), kv("max_length", "8")}, out.Fields[4].TypeParams)
	require.Equal(t, "id", PrimaryKey(out).Name)
	require.False(t, in.Fields[0].AutoID, "input is not modified")

	again, err := Normalize("books", books(pkField(), vecField("32"),
		&schemapb.FieldSchema{Name: "title", DataType: schemapb.DataType_VarChar, TypeParams: []*commonpb.KeyValuePair{kv("mmap.enabled", "true"), kv("max_length", "256")}},
		&schemapb.FieldSchema{Name: "score", DataType: schemapb.DataType_Float},
		&schemapb.FieldSchema{Name: "tags", DataType: schemapb.DataType_Array, ElementType: schemapb.DataType_VarChar,
			TypeParams: []*commonpb.KeyValuePair{kv("max_length", "8"), kv("max_capacity", "10")}},
		&schemapb.FieldSchema{Name: "bits", DataType: schemapb.DataType_BinaryVector, TypeParams: []*commonpb.KeyValuePair{kv("dim", "64")}},
	))
	require.NoError(t, err)
	require.True(t, Equal(out, again), "the same collection described twice normalises equal")

	varcharPK, err := Normalize("v", &schemapb.CollectionSchema{Fields: []*schemapb.FieldSchema{
		{Name: "k", DataType: schemapb.DataType_VarChar, IsPrimaryKey: true, TypeParams: []*commonpb.KeyValuePair{kv("max_length", "64")}},
		vecField("8"),
	}})
	require.NoError(t, err)
	require.Equal(t, "v", varcharPK.Name, "an empty schema name takes the collection name")
}

func TestNormalizeRejects(t *testing.T) {
	many := []*schemapb.FieldSchema{pkField(), vecField("4")}
	for i := 0; i < MaxFields; i++ {
		many = append(many, &schemapb.FieldSchema{Name: "f" + strings.Repeat("x", i), DataType: schemapb.DataType_Int32})
	}
	vec := func(name string) *schemapb.FieldSchema { f := vecField("4"); f.Name = name; return f }
	arr := func(et schemapb.DataType, params ...*commonpb.KeyValuePair) *schemapb.FieldSchema {
		return &schemapb.FieldSchema{Name: "a", DataType: schemapb.DataType_Array, ElementType: et, TypeParams: params}
	}
	scalar := func(name string, dt schemapb.DataType, def *schemapb.ValueField, params ...*commonpb.KeyValuePair) *schemapb.FieldSchema {
		return &schemapb.FieldSchema{Name: name, DataType: dt, DefaultValue: def, TypeParams: params}
	}
	intDef := &schemapb.ValueField{Data: &schemapb.ValueField_IntData{IntData: 128}}
	strDef := &schemapb.ValueField{Data: &schemapb.ValueField_StringData{StringData: "too long"}}
	// Milvus 2.6's texts (see apierr's table); kind Unexpected is Milvus's code 65535.
	cases := []struct {
		name   string
		coll   string
		schema *schemapb.CollectionSchema
		kind   apierr.Kind
		msg    string
	}{
		{"empty collection name", "", books(pkField(), vecField("4")), apierr.ParameterInvalid, "collection name should not be empty: invalid parameter"},
		{"name starts with digit", "1books", books(pkField(), vecField("4")), apierr.ParameterInvalid, "Invalid collection name: 1books. the first character of a collection name must be an underscore or letter: invalid parameter"},
		{"name with dash", "bo-oks", books(pkField(), vecField("4")), apierr.ParameterInvalid, "collection name can only contain numbers, letters and underscores"},
		{"name too long", strings.Repeat("a", 256), books(pkField(), vecField("4")), apierr.ParameterInvalid, "the length of a collection name must be less than 255 characters"},
		{"nil schema", "books", nil, apierr.ParameterInvalid, "schema does not contain vector field: invalid parameter"},
		{"schema name mismatch", "other", books(pkField(), vecField("4")), apierr.ParameterInvalid, "collection name = other, schema.Name=books: invalid parameter"},
		{"no fields", "books", books(), apierr.ParameterInvalid, "schema does not contain vector field"},
		{"too many fields", "books", books(many...), apierr.Unexpected, "maximum field's number should be limited to 64"},
		{"no primary key", "books", books(vecField("4")), apierr.Unexpected, "primary key is not specified"},
		{"two primary keys", "books", books(pkField(), &schemapb.FieldSchema{Name: "id2", DataType: schemapb.DataType_Int64, IsPrimaryKey: true}, vecField("4")), apierr.Unexpected, "there are more than one primary key, field name = id, id2"},
		{"no vector", "books", books(pkField()), apierr.ParameterInvalid, "schema does not contain vector field"},
		{"too many vectors", "books", books(pkField(), vec("a"), vec("b"), vec("c"), vec("d"), vec("e"), vec("f"), vec("g"), vec("h"), vec("i"), vec("j"), vec("k")), apierr.Unexpected, "maximum vector field's number should be limited to 10"},
		{"duplicate field", "books", books(pkField(), vecField("4"), vecField("4")), apierr.Unexpected, "duplicated field name vec found"},
		{"float pk", "books", books(&schemapb.FieldSchema{Name: "id", DataType: schemapb.DataType_Float, IsPrimaryKey: true}, vecField("4")), apierr.Unexpected, "the data type of primary key should be Int64 or VarChar"},
		{"varchar pk without max_length", "books", books(&schemapb.FieldSchema{Name: "id", DataType: schemapb.DataType_VarChar, IsPrimaryKey: true}, vecField("4")), apierr.Unexpected, "type param(max_length) should be specified for the field(id) of collection books"},
		{"one-dimensional vector", "books", books(pkField(), vecField("1")), apierr.Unexpected, "invalid dimension: 1. should be in range 2 ~ 32768"},
		{"autoID off pk", "books", books(pkField(), vecField("4"), &schemapb.FieldSchema{Name: "n", DataType: schemapb.DataType_Int64, AutoID: true}), apierr.Unexpected, "only primary field can speficy AutoID with true, field name = n"},
		{"two autoIDs", "books", books(&schemapb.FieldSchema{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true, AutoID: true}, vecField("4"), &schemapb.FieldSchema{Name: "n", DataType: schemapb.DataType_Int64, AutoID: true}), apierr.Unexpected, "only one field can speficy AutoID with true, field name = id, n"},
		{"dim missing", "books", books(pkField(), &schemapb.FieldSchema{Name: "vec", DataType: schemapb.DataType_FloatVector}), apierr.Unexpected, "dimension is not defined in field type params of field vec"},
		{"dim zero", "books", books(pkField(), vecField("0")), apierr.Unexpected, "should be in range 2 ~ 32768"},
		{"dim too big", "books", books(pkField(), vecField("32769")), apierr.Unexpected, "invalid dimension: 32769 of field vec. float vector dimension should be in range 2 ~ 32768"},
		{"dim not a number", "books", books(pkField(), vecField("abc")), apierr.Unexpected, `strconv.ParseInt: parsing "abc": invalid syntax`},
		{"binary dim not multiple of 8", "books", books(pkField(), &schemapb.FieldSchema{Name: "b", DataType: schemapb.DataType_BinaryVector, TypeParams: []*commonpb.KeyValuePair{kv("dim", "12")}}), apierr.Unexpected, "binary vector dimension should be multiple of 8"},
		{"binary dim too big", "books", books(pkField(), &schemapb.FieldSchema{Name: "b", DataType: schemapb.DataType_BinaryVector, TypeParams: []*commonpb.KeyValuePair{kv("dim", "294912")}}), apierr.Unexpected, "binary vector dimension should be in range 2 ~ 262144"},
		{"varchar too long", "books", books(pkField(), vecField("4"), scalar("s", schemapb.DataType_VarChar, nil, kv("max_length", "65536"))), apierr.ParameterInvalid, "the maximum length specified for the field(s) should be in (0, 65535], but got 65536 instead: invalid parameter"},
		{"duplicate type param", "books", books(pkField(), &schemapb.FieldSchema{Name: "vec", DataType: schemapb.DataType_FloatVector, TypeParams: []*commonpb.KeyValuePair{kv("dim", "4"), kv("dim", "8")}}), apierr.ParameterInvalid, `duplicated type param key "dim": invalid parameter`},
		{"string type", "books", books(pkField(), vecField("4"), scalar("g", schemapb.DataType_String, nil)), apierr.Unexpected, "string data type not supported yet, please use VarChar type instead"},
		{"missing type", "books", books(pkField(), vecField("4"), &schemapb.FieldSchema{Name: "g"}), apierr.Unexpected, "data type None is not valid"},
		{"unsupported type", "books", books(pkField(), vecField("4"), scalar("t", schemapb.DataType_Text, nil)), apierr.ParameterInvalid, "data type Text is not supported by Weir"},
		{"array without element", "books", books(pkField(), vecField("4"), arr(schemapb.DataType_None, kv("max_capacity", "3"))), apierr.Unexpected, "element data type None is not valid"},
		{"array of json", "books", books(pkField(), vecField("4"), arr(schemapb.DataType_JSON, kv("max_capacity", "3"))), apierr.Unexpected, "element type JSON is not supported"},
		{"array without capacity", "books", books(pkField(), vecField("4"), arr(schemapb.DataType_Int8)), apierr.Unexpected, "type param(max_capacity) should be specified for array field a of collection books"},
		{"array capacity too large", "books", books(pkField(), vecField("4"), arr(schemapb.DataType_Int8, kv("max_capacity", "4097"))), apierr.Unexpected, "the maximum capacity specified for a Array should be in (0, 4096]"},
		{"array capacity not a number", "books", books(pkField(), vecField("4"), arr(schemapb.DataType_Int8, kv("max_capacity", "x"))), apierr.Unexpected, "the value for max_capacity of field a must be an integer"},
		{"bad field name", "books", books(pkField(), vecField("4"), scalar("$x", schemapb.DataType_Int8, nil)), apierr.FieldNameInvalid, "Invalid field name: $x. The first character of a field name must be an underscore or letter.: field name invalid[field=$x]"},
		{"field name with dash", "books", books(pkField(), vecField("4"), scalar("a-b", schemapb.DataType_Int8, nil)), apierr.FieldNameInvalid, "Field name can only contain numbers, letters, and underscores."},
		{"empty field name", "books", books(pkField(), vecField("4"), scalar("  ", schemapb.DataType_Int8, nil)), apierr.FieldNameInvalid, "field name should not be empty: field name invalid[field=]"},
		{"keyword field name", "books", books(pkField(), vecField("4"), scalar("like", schemapb.DataType_Int8, nil)), apierr.FieldNameInvalid, "Invalid field name: like. like is keyword in milvus.: field name invalid[field=like]"},
		{"duplicate index param", "books", books(pkField(), vecField("4"), &schemapb.FieldSchema{Name: "n", DataType: schemapb.DataType_Int64, IndexParams: []*commonpb.KeyValuePair{kv("metric_type", "L2"), kv("metric_type", "IP")}}), apierr.ParameterInvalid, `duplicated index param key "metric_type": invalid parameter`},
		{"null rules before system field names", "books", books(&schemapb.FieldSchema{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true, Nullable: true}, vecField("4"), scalar("RowID", schemapb.DataType_Int8, nil)), apierr.ParameterInvalid, "primary field not support null, type:Int64, name:id"},
		{"system field name", "books", books(pkField(), vecField("4"), scalar("RowID", schemapb.DataType_Int8, nil)), apierr.ParameterInvalid, "schema contains system field"},
		{"nullable primary key", "books", books(&schemapb.FieldSchema{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true, Nullable: true}, vecField("4")), apierr.ParameterInvalid, "primary field not support null, type:Int64, name:id: invalid parameter"},
		{"nullable vector", "books", books(pkField(), &schemapb.FieldSchema{Name: "vec", DataType: schemapb.DataType_FloatVector, Nullable: true, TypeParams: []*commonpb.KeyValuePair{kv("dim", "4")}}), apierr.ParameterInvalid, "vector type not support null, type:FloatVector, name:vec: invalid parameter"},
		{"primary key default", "books", books(&schemapb.FieldSchema{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true, DefaultValue: &schemapb.ValueField{Data: &schemapb.ValueField_LongData{LongData: 1}}}, vecField("4")), apierr.ParameterInvalid, "primary field not support default_value, type:Int64, name:id"},
		{"array default", "books", books(pkField(), vecField("4"), &schemapb.FieldSchema{Name: "a", DataType: schemapb.DataType_Array, ElementType: schemapb.DataType_Int8, TypeParams: []*commonpb.KeyValuePair{kv("max_capacity", "3")}, DefaultValue: intDef}), apierr.ParameterInvalid, "type not support default_value, type:Array, name:a"},
		{"default of another type", "books", books(pkField(), vecField("4"), scalar("v", schemapb.DataType_VarChar, intDef, kv("max_length", "4"))), apierr.ParameterInvalid, "type (VarChar) of field (v) is not equal to the type(DataType_Int) of default_value: invalid parameter"},
		{"int8 default out of range", "books", books(pkField(), vecField("4"), scalar("i", schemapb.DataType_Int8, intDef)), apierr.ParameterInvalid, "default value out of range: invalid parameter[128 out of range -128 <= value <= 127]"},
		{"varchar default too long", "books", books(pkField(), vecField("4"), scalar("v", schemapb.DataType_VarChar, strDef, kv("max_length", "2"))), apierr.ParameterInvalid, "the length (8) of string exceeds max length (2)"},
		{"declared dynamic", "books", books(pkField(), vecField("4"), &schemapb.FieldSchema{Name: "meta", DataType: schemapb.DataType_JSON, IsDynamic: true}), apierr.Unexpected, "cannot explicitly set a field as a dynamic field"},
		{"functions", "books", &schemapb.CollectionSchema{Fields: []*schemapb.FieldSchema{pkField(), vecField("4")}, Functions: []*schemapb.FunctionSchema{{Name: "bm25"}}}, apierr.ParameterInvalid, "functions"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Normalize(c.coll, c.schema)
			require.Error(t, err)
			require.Equal(t, c.kind, apierr.KindOf(err), "kind of %v", err)
			require.Contains(t, err.Error(), c.msg)
		})
	}
}

func TestPartitionName(t *testing.T) {
	require.NoError(t, ValidatePartitionName("p-1_x"))
	require.Error(t, ValidatePartitionName("-p"))
	require.NoError(t, ValidatePartitionName("1abc"), "a partition name may start with a digit")
	require.ErrorContains(t, ValidatePartitionName(" "), "Invalid partition name: . Partition name should not be empty.")
	require.Error(t, ValidateCollectionName("c-1"), "dashes are for partitions only")
}

func TestShards(t *testing.T) {
	for _, c := range []struct {
		in   int32
		want int
		ok   bool
	}{{-1, 1, true}, {0, 1, true}, {1, 1, true}, {16, 16, true}, {17, 0, false}} {
		got, err := Shards(c.in)
		require.Equal(t, c.ok, err == nil, "shards %d", c.in)
		require.Equal(t, c.want, got)
	}
}

func TestDiffNamesTheDifference(t *testing.T) {
	a, err := Normalize("books", books(pkField(), vecField("32")))
	require.NoError(t, err)
	b, err := Normalize("books", books(pkField(), vecField("64")))
	require.NoError(t, err)
	require.False(t, Equal(a, b))
	require.Equal(t, `field 1: existing "vec" FloatVector dim=32, requested "vec" FloatVector dim=64`, Diff(a, b))
	c, err := Normalize("books", books(pkField(), vecField("32"), &schemapb.FieldSchema{Name: "x", DataType: schemapb.DataType_Bool}))
	require.NoError(t, err)
	require.Contains(t, Diff(a, c), "2 fields, requested 3")
	d := renormalize(a)
	d.Description = "changed"
	require.Contains(t, Diff(a, d), "collection-level")
}

func renormalize(s *schemapb.CollectionSchema) *schemapb.CollectionSchema {
	out, err := Normalize(s.Name, s)
	if err != nil {
		panic(err)
	}
	return out
}

func TestParamKeysComparedAsGiven(t *testing.T) {
	// Milvus compares keys as given: "dim" and "DIM" are two keys, and it reads "dim".
	out, err := Normalize("books", books(pkField(), &schemapb.FieldSchema{Name: "vec", DataType: schemapb.DataType_FloatVector,
		TypeParams: []*commonpb.KeyValuePair{kv("DIM", "8"), kv("dim", "4")}}))
	require.NoError(t, err)
	require.Equal(t, "4", Param(out.Fields[1], KeyDim))
}

func TestGeometryDefaults(t *testing.T) {
	geo := func(def *schemapb.ValueField) *schemapb.CollectionSchema {
		return books(pkField(), vecField("4"), &schemapb.FieldSchema{Name: "geo", DataType: schemapb.DataType_Geometry, DefaultValue: def})
	}
	str := func(s string) *schemapb.ValueField {
		return &schemapb.ValueField{Data: &schemapb.ValueField_StringData{StringData: s}}
	}
	_, err := Normalize("books", geo(str("POINT (1 2)")))
	require.NoError(t, err)
	for _, bad := range []*schemapb.ValueField{
		str("POINT (1"), str("POINT EMPTY"), str("GEOMETRYCOLLECTION (POINT EMPTY)"),
		{Data: &schemapb.ValueField_IntData{IntData: 1}},
	} {
		_, err := Normalize("books", geo(bad))
		require.ErrorContains(t, err, "invalid default value for geometry field: invalid parameter", "default %v", bad)
	}
}

func TestNullableAndDefaultsAreKept(t *testing.T) {
	def := &schemapb.ValueField{Data: &schemapb.ValueField_StringData{StringData: "n/a"}}
	in := books(pkField(), vecField("4"),
		&schemapb.FieldSchema{Name: "note", DataType: schemapb.DataType_VarChar, Nullable: true, DefaultValue: def, TypeParams: []*commonpb.KeyValuePair{kv("max_length", "8")}},
		&schemapb.FieldSchema{Name: "n", DataType: schemapb.DataType_Int16, Nullable: true},
		&schemapb.FieldSchema{Name: "e", DataType: schemapb.DataType_Int16, DefaultValue: &schemapb.ValueField{Data: &schemapb.ValueField_IntData{IntData: -32768}}},
	)
	out, err := Normalize("books", in)
	require.NoError(t, err)
	require.True(t, out.Fields[2].Nullable)
	require.Equal(t, "n/a", out.Fields[2].GetDefaultValue().GetStringData())
	require.True(t, out.Fields[3].Nullable)
	require.Nil(t, out.Fields[3].DefaultValue)
	require.Equal(t, int32(-32768), out.Fields[4].GetDefaultValue().GetIntData())
	in.Fields[2].DefaultValue.Data = &schemapb.ValueField_StringData{StringData: "x"}
	require.Equal(t, "n/a", out.Fields[2].GetDefaultValue().GetStringData(), "the default is copied, not shared")
}
