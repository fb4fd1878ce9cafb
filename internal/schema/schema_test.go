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
	require.True(t, out.Fields[0].AutoID, "schema-level autoID moves to the primary key")
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
	again.Fields[0].AutoID = true
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
	cases := []struct {
		name   string
		coll   string
		schema *schemapb.CollectionSchema
		kind   apierr.Kind
		msg    string
	}{
		{"empty collection name", "", books(pkField(), vecField("4")), apierr.ParameterInvalid, "should not be empty"},
		{"name starts with digit", "1books", books(pkField(), vecField("4")), apierr.ParameterInvalid, "first character"},
		{"name with dash", "bo-oks", books(pkField(), vecField("4")), apierr.ParameterInvalid, "only underscores"},
		{"name too long", strings.Repeat("a", 256), nil, apierr.ParameterInvalid, "exceeds the limit 255"},
		{"nil schema", "books", nil, apierr.ParameterMissing, "schema is empty"},
		{"schema name mismatch", "other", books(pkField(), vecField("4")), apierr.ParameterInvalid, "does not match"},
		{"no fields", "books", books(), apierr.IllegalSchema, "got 0"},
		{"too many fields", "books", books(many...), apierr.IllegalSchema, "expected 1..64 fields"},
		{"no primary key", "books", books(vecField("4")), apierr.ParameterMissing, "primary key is not specified"},
		{"two primary keys", "books", books(pkField(), &schemapb.FieldSchema{Name: "id2", DataType: schemapb.DataType_Int64, IsPrimaryKey: true}, vecField("4")), apierr.IllegalSchema, "more than one primary key"},
		{"no vector", "books", books(pkField()), apierr.ParameterInvalid, "schema does not contain vector field"},
		{"too many vectors", "books", books(pkField(), vec("a"), vec("b"), vec("c"), vec("d"), vec("e")), apierr.IllegalSchema, "at most 4"},
		{"duplicate field", "books", books(pkField(), vecField("4"), vecField("4")), apierr.IllegalSchema, `duplicate field name "vec"`},
		{"float pk", "books", books(&schemapb.FieldSchema{Name: "id", DataType: schemapb.DataType_Float, IsPrimaryKey: true}, vecField("4")), apierr.IllegalSchema, "Int64 or VarChar"},
		{"varchar pk without max_length", "books", books(&schemapb.FieldSchema{Name: "id", DataType: schemapb.DataType_VarChar, IsPrimaryKey: true}, vecField("4")), apierr.ParameterMissing, "max_length is required"},
		{"one-dimensional vector", "books", books(pkField(), vecField("1")), apierr.ParameterInvalid, "dim must be in 2..32768, got 1"},
		{"autoID off pk", "books", books(pkField(), vecField("4"), &schemapb.FieldSchema{Name: "n", DataType: schemapb.DataType_Int64, AutoID: true}), apierr.IllegalSchema, "only on the primary key"},
		{"dim missing", "books", books(pkField(), &schemapb.FieldSchema{Name: "vec", DataType: schemapb.DataType_FloatVector}), apierr.ParameterMissing, "dim is required"},
		{"dim zero", "books", books(pkField(), vecField("0")), apierr.ParameterInvalid, "dim must be in 2..32768, got 0"},
		{"dim too big", "books", books(pkField(), vecField("32769")), apierr.ParameterInvalid, "got 32769"},
		{"dim not a number", "books", books(pkField(), vecField("abc")), apierr.ParameterInvalid, `got "abc"`},
		{"binary dim not multiple of 8", "books", books(pkField(), &schemapb.FieldSchema{Name: "b", DataType: schemapb.DataType_BinaryVector, TypeParams: []*commonpb.KeyValuePair{kv("dim", "12")}}), apierr.ParameterInvalid, "multiple of 8"},
		{"varchar too long", "books", books(pkField(), vecField("4"), &schemapb.FieldSchema{Name: "s", DataType: schemapb.DataType_VarChar, TypeParams: []*commonpb.KeyValuePair{kv("max_length", "65536")}}), apierr.ParameterInvalid, "max_length must be in 1..65535"},
		{"duplicate type param", "books", books(pkField(), &schemapb.FieldSchema{Name: "vec", DataType: schemapb.DataType_FloatVector, TypeParams: []*commonpb.KeyValuePair{kv("dim", "4"), kv("DIM", "8")}}), apierr.ParameterInvalid, "given twice"},
		{"unsupported type", "books", books(pkField(), vecField("4"), &schemapb.FieldSchema{Name: "g", DataType: schemapb.DataType_Text}), apierr.ParameterInvalid, "not supported"},
		{"missing type", "books", books(pkField(), vecField("4"), &schemapb.FieldSchema{Name: "g"}), apierr.ParameterMissing, "data type is required"},
		{"array without element", "books", books(pkField(), vecField("4"), &schemapb.FieldSchema{Name: "a", DataType: schemapb.DataType_Array, TypeParams: []*commonpb.KeyValuePair{kv("max_capacity", "3")}}), apierr.ParameterMissing, "element type"},
		{"array of json", "books", books(pkField(), vecField("4"), &schemapb.FieldSchema{Name: "a", DataType: schemapb.DataType_Array, ElementType: schemapb.DataType_JSON, TypeParams: []*commonpb.KeyValuePair{kv("max_capacity", "3")}}), apierr.ParameterInvalid, "arrays of JSON"},
		{"array without capacity", "books", books(pkField(), vecField("4"), &schemapb.FieldSchema{Name: "a", DataType: schemapb.DataType_Array, ElementType: schemapb.DataType_Int8}), apierr.ParameterMissing, "max_capacity"},
		{"bad field name", "books", books(pkField(), vecField("4"), &schemapb.FieldSchema{Name: "$x", DataType: schemapb.DataType_Int8}), apierr.ParameterInvalid, "field name"},
		{"partition key", "books", books(pkField(), vecField("4"), &schemapb.FieldSchema{Name: "p", DataType: schemapb.DataType_Int64, IsPartitionKey: true}), apierr.ParameterInvalid, "partition keys"},
		{"nullable", "books", books(pkField(), vecField("4"), &schemapb.FieldSchema{Name: "p", DataType: schemapb.DataType_Int64, Nullable: true}), apierr.ParameterInvalid, "nullable"},
		{"declared dynamic", "books", books(pkField(), vecField("4"), &schemapb.FieldSchema{Name: "meta", DataType: schemapb.DataType_JSON, IsDynamic: true}), apierr.IllegalSchema, "enable_dynamic_field"},
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
	require.Error(t, ValidateName("collection", "c-1"), "dashes are for partitions only")
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
