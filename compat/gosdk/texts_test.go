package gosdk_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/milvus-io/milvus/client/v2/column"
	"github.com/milvus-io/milvus/client/v2/entity"
	"github.com/milvus-io/milvus/client/v2/milvusclient"
	"github.com/milvus-io/milvus/pkg/v2/util/merr"
)

// These tests hold Weir to Milvus 2.6's error texts the way Milvus's own Go client tests
// (tests/go_client) do: each rejection must carry Milvus's words as a substring of the error
// the SDK returns, and Milvus's status code. Code 65535 is what Milvus answers for the
// rejections its proxy raises as plain errors.

// unexpected is Milvus's code for plain errors.
var unexpected = merr.Code(errors.New("plain"))

// requireMilvusError asserts err carries text and Milvus's status code code.
func requireMilvusError(t *testing.T, err error, text string, code int32) {
	t.Helper()
	require.Error(t, err)
	require.Contains(t, err.Error(), text)
	require.Equal(t, code, merr.Code(err), "status code of %q", err)
}

func pkInt64() *entity.Field {
	return entity.NewField().WithName("id").WithDataType(entity.FieldTypeInt64).WithIsPrimaryKey(true)
}

func vecField(name string, dim int64) *entity.Field {
	return entity.NewField().WithName(name).WithDataType(entity.FieldTypeFloatVector).WithDim(dim)
}

func schemaOf(fields ...*entity.Field) *entity.Schema {
	s := entity.NewSchema()
	for _, f := range fields {
		s = s.WithField(f)
	}
	return s
}

// TestCreateCollectionTexts creates collections Milvus refuses and checks its words and codes.
func TestCreateCollectionTexts(t *testing.T) {
	c := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	varchar := func(name string) *entity.Field {
		return entity.NewField().WithName(name).WithDataType(entity.FieldTypeVarChar)
	}
	array := func(et entity.FieldType) *entity.Field {
		return entity.NewField().WithName("arr").WithDataType(entity.FieldTypeArray).WithElementType(et)
	}
	elevenVectors := []*entity.Field{pkInt64()}
	for _, n := range []string{"v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10"} {
		elevenVectors = append(elevenVectors, vecField(n, 4))
	}
	cases := []struct {
		name   string
		coll   string
		schema *entity.Schema
		shards int32
		text   string
		code   int32
	}{
		{"nil schema", "", nil, 0, "schema does not contain vector field", 1100},
		{"no vector field", "", schemaOf(pkInt64()), 0, "schema does not contain vector field", 1100},
		{"no primary key", "", schemaOf(vecField("vec", 4)), 0, "primary key is not specified", unexpected},
		{"two primary keys", "", schemaOf(pkInt64(), entity.NewField().WithName("id2").WithDataType(entity.FieldTypeInt64).WithIsPrimaryKey(true), vecField("vec", 4)), 0, "there are more than one primary key, field name = id, id2", unexpected},
		{"float primary key", "", schemaOf(entity.NewField().WithName("id").WithDataType(entity.FieldTypeFloat).WithIsPrimaryKey(true), vecField("vec", 4)), 0, "the data type of primary key should be Int64 or VarChar", unexpected},
		{"two auto ids", "", schemaOf(pkInt64().WithIsAutoID(true), entity.NewField().WithName("n").WithDataType(entity.FieldTypeInt64).WithIsAutoID(true), vecField("vec", 4)), 0, "only one field can speficy AutoID with true, field name = id, n", unexpected},
		{"auto id on another field", "", schemaOf(pkInt64(), entity.NewField().WithName("n").WithDataType(entity.FieldTypeInt64).WithIsAutoID(true), vecField("vec", 4)), 0, "only primary field can speficy AutoID with true, field name = n", unexpected},
		{"duplicate field", "", schemaOf(pkInt64(), vecField("vec", 4), vecField("vec", 4)), 0, "duplicated field name", unexpected},
		{"17 shards", "", schemaOf(pkInt64(), vecField("vec", 4)), 17, "maximum shards's number should be limited to 16", unexpected},
		{"eleven vectors", "", schemaOf(elevenVectors...), 0, "maximum vector field's number should be limited to 10", unexpected},
		{"dim 1", "", schemaOf(pkInt64(), vecField("vec", 1)), 0, "should be in range 2 ~ 32768", unexpected},
		{"dim 32769", "", schemaOf(pkInt64(), vecField("vec", 32769)), 0, "float vector dimension should be in range 2 ~ 32768", unexpected},
		{"no dim", "", schemaOf(pkInt64(), entity.NewField().WithName("vec").WithDataType(entity.FieldTypeFloatVector)), 0, "dimension is not defined in field type params of field vec", unexpected},
		{"binary dim 10", "", schemaOf(pkInt64(), entity.NewField().WithName("vec").WithDataType(entity.FieldTypeBinaryVector).WithDim(10)), 0, "binary vector dimension should be multiple of 8", unexpected},
		{"binary dim 294912", "", schemaOf(pkInt64(), entity.NewField().WithName("vec").WithDataType(entity.FieldTypeBinaryVector).WithDim(294912)), 0, "binary vector dimension should be in range 2 ~ 262144", unexpected},
		{"varchar without max_length", "", schemaOf(pkInt64(), vecField("vec", 4), varchar("varchar")), 0, "type param(max_length) should be specified for the field", unexpected},
		{"varchar max_length 65536", "", schemaOf(pkInt64(), vecField("vec", 4), varchar("varchar").WithMaxLength(65536)), 0, "the maximum length specified for the field(varchar) should be in (0, 65535]", 1100},
		{"array without capacity", "", schemaOf(pkInt64(), vecField("vec", 4), array(entity.FieldTypeInt64)), 0, "type param(max_capacity) should be specified for array field", unexpected},
		{"array capacity 4097", "", schemaOf(pkInt64(), vecField("vec", 4), array(entity.FieldTypeInt64).WithMaxCapacity(4097)), 0, "the maximum capacity specified for a Array should be in (0, 4096]", unexpected},
		{"array of JSON", "", schemaOf(pkInt64(), vecField("vec", 4), array(entity.FieldTypeJSON).WithMaxCapacity(4)), 0, "element type JSON is not supported", unexpected},
		{"string type", "", schemaOf(pkInt64(), vecField("vec", 4), entity.NewField().WithName("s").WithDataType(entity.FieldTypeString)), 0, "string data type not supported yet, please use VarChar type instead", unexpected},
		{"no type", "", schemaOf(pkInt64(), vecField("vec", 4), entity.NewField().WithName("none")), 0, "data type None is not valid", unexpected},
		{"field name starts with a digit", "", schemaOf(pkInt64(), vecField("vec", 4), entity.NewField().WithName("1a").WithDataType(entity.FieldTypeInt64)), 0, "The first character of a field name must be an underscore or letter", 1701},
		{"field name with a dash", "", schemaOf(pkInt64(), vecField("vec", 4), entity.NewField().WithName("a-b").WithDataType(entity.FieldTypeInt64)), 0, "Field name can only contain numbers, letters, and underscores", 1701},
		{"empty field name", "", schemaOf(pkInt64(), vecField("vec", 4), entity.NewField().WithDataType(entity.FieldTypeInt64)), 0, "field name should not be empty", 1701},
		{"field name too long", "", schemaOf(pkInt64(), vecField("vec", 4), entity.NewField().WithName(strings.Repeat("a", 256)).WithDataType(entity.FieldTypeInt64)), 0, "The length of a field name must be less than 255 characters", 1701},
		{"keyword field name", "", schemaOf(pkInt64(), vecField("vec", 4), entity.NewField().WithName("like").WithDataType(entity.FieldTypeInt64)), 0, "like is keyword in milvus", 1701},
		{"system field name", "", schemaOf(pkInt64(), vecField("vec", 4), entity.NewField().WithName("RowID").WithDataType(entity.FieldTypeInt64)), 0, "schema contains system field: RowID, Timestamp, $meta, $namespace_id", 1100},
		{"collection name starts with a digit", "1abc", schemaOf(pkInt64(), vecField("vec", 4)), 0, "the first character of a collection name must be an underscore or letter", 1100},
		{"collection name with a dash", "a-b", schemaOf(pkInt64(), vecField("vec", 4)), 0, "collection name can only contain numbers, letters and underscores", 1100},
		{"collection name too long", strings.Repeat("a", 256), schemaOf(pkInt64(), vecField("vec", 4)), 0, "the length of a collection name must be less than 255 characters", 1100},
		{"nullable primary key", "", schemaOf(pkInt64().WithNullable(true), vecField("vec", 4)), 0, "primary field not support null, type:Int64, name:id", 1100},
		{"nullable vector", "", schemaOf(pkInt64(), vecField("vec", 4).WithNullable(true)), 0, "vector type not support null, type:FloatVector, name:vec", 1100},
		{"primary key default", "", schemaOf(pkInt64().WithDefaultValueLong(1), vecField("vec", 4)), 0, "primary field not support default_value, type:Int64, name:id", 1100},
		{"array default", "", schemaOf(pkInt64(), vecField("vec", 4), array(entity.FieldTypeInt64).WithMaxCapacity(4).WithDefaultValueLong(1)), 0, "type not support default_value, type:Array, name:arr", 1100},
		{"default of another type", "", schemaOf(pkInt64(), vecField("vec", 4), varchar("varchar").WithMaxLength(8).WithDefaultValueInt(1)), 0, "type (VarChar) of field (varchar) is not equal to the type(DataType_Int) of default_value", 1100},
		{"int8 default out of range", "", schemaOf(pkInt64(), vecField("vec", 4), entity.NewField().WithName("i8").WithDataType(entity.FieldTypeInt8).WithDefaultValueInt(128)), 0, "default value out of range: invalid parameter[128 out of range -128 <= value <= 127]", 1100},
		{"geometry default that is not WKT", "", schemaOf(pkInt64(), vecField("vec", 4), entity.NewField().WithName("geo").WithDataType(entity.FieldTypeGeometry).WithDefaultValueString("POINT (1")), 0, "invalid default value for geometry field", 1100},
		{"varchar default too long", "", schemaOf(pkInt64(), vecField("vec", 4), varchar("varchar").WithMaxLength(2).WithDefaultValueString("too long")), 0, "the length (8) of string exceeds max length (2)", 1100},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := tc.coll
			if name == "" {
				name = uniqueName("weir_texts")
			}
			opt := milvusclient.NewCreateCollectionOption(name, tc.schema)
			if tc.shards != 0 {
				opt = opt.WithShardNum(tc.shards)
			}
			requireMilvusError(t, c.CreateCollection(ctx, opt), tc.text, tc.code)
			has, err := c.HasCollection(ctx, milvusclient.NewHasCollectionOption(name))
			if err == nil {
				require.False(t, has, "a refused create leaves no collection")
			}
		})
	}

	t.Run("same name, another definition", func(t *testing.T) {
		name := uniqueName("weir_texts")
		dropAtCleanup(t, c, name)
		require.NoError(t, c.CreateCollection(ctx, milvusclient.NewCreateCollectionOption(name, schemaOf(pkInt64(), vecField("vec", 4)))))
		err := c.CreateCollection(ctx, milvusclient.NewCreateCollectionOption(name, schemaOf(pkInt64(), vecField("vec", 8))))
		requireMilvusError(t, err, "create duplicate collection with different parameters, collection: "+name, unexpected)
	})
	t.Run("empty collection name", func(t *testing.T) {
		err := c.CreateCollection(ctx, milvusclient.NewCreateCollectionOption("", schemaOf(pkInt64(), vecField("vec", 4))))
		requireMilvusError(t, err, "collection name should not be empty", 1100)
	})
	t.Run("describe a missing collection", func(t *testing.T) {
		_, err := c.DescribeCollection(ctx, milvusclient.NewDescribeCollectionOption("notExist"))
		requireMilvusError(t, err, "can't find collection[database=default][collection=notExist]", 100)
	})
}

// TestAutoIDComesFromThePrimaryKey: the deprecated schema-level autoID flag is ignored; the
// primary key field's own flag decides, as in Milvus 2.6 (TestCreateCollectionInconsistentAutoId).
func TestAutoIDComesFromThePrimaryKey(t *testing.T) {
	c := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for _, tc := range []struct {
		name         string
		schema, pkID bool
	}{{"schema true, field false", true, false}, {"schema false, field true", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			name := uniqueName("weir_autoid")
			dropAtCleanup(t, c, name)
			s := schemaOf(pkInt64().WithIsAutoID(tc.pkID), vecField("vec", 4)).WithAutoID(tc.schema)
			require.NoError(t, c.CreateCollection(ctx, milvusclient.NewCreateCollectionOption(name, s)))
			coll, err := c.DescribeCollection(ctx, milvusclient.NewDescribeCollectionOption(name))
			require.NoError(t, err)
			require.Equal(t, tc.pkID, coll.Schema.PKField().AutoID)
			require.Equal(t, tc.pkID, coll.Schema.AutoID, "the SDK derives the schema flag from the fields")
			vec := column.NewColumnFloatVector("vec", 4, [][]float32{{1, 2, 3, 4}})
			if tc.pkID {
				_, err = c.Insert(ctx, milvusclient.NewColumnBasedInsertOption(name, vec))
				require.NoError(t, err, "keys are generated")
				_, err = c.Insert(ctx, milvusclient.NewColumnBasedInsertOption(name, column.NewColumnInt64("id", []int64{1}), vec))
				requireMilvusError(t, err, "more fieldData has pass in", 1100)
			} else {
				_, err = c.Insert(ctx, milvusclient.NewColumnBasedInsertOption(name, vec))
				requireMilvusError(t, err, "fieldSchema(id) has no corresponding fieldData pass in", 1100)
				_, err = c.Insert(ctx, milvusclient.NewColumnBasedInsertOption(name, column.NewColumnInt64("id", []int64{1}), vec))
				require.NoError(t, err)
			}
		})
	}
}

// TestPartitionTexts checks the partition APIs' words.
func TestPartitionTexts(t *testing.T) {
	c := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	name := uniqueName("weir_parts")
	dropAtCleanup(t, c, name)
	require.NoError(t, c.CreateCollection(ctx, milvusclient.NewCreateCollectionOption(name, schemaOf(pkInt64(), vecField("vec", 4)))))

	for _, tc := range []struct{ part, text string }{
		{"", "Partition name should not be empty"},
		{"a b", "Partition name can only contain numbers, letters and underscores"},
		{"(mn)", "The first character of a partition name must be an underscore or letter"},
		{strings.Repeat("a", 256), "The length of a partition name must be less than 255 characters"},
	} {
		err := c.CreatePartition(ctx, milvusclient.NewCreatePartitionOption(name, tc.part))
		requireMilvusError(t, err, tc.text, unexpected)
	}
	require.NoError(t, c.CreatePartition(ctx, milvusclient.NewCreatePartitionOption(name, "1")), "a partition name may start with a digit")
	require.NoError(t, c.CreatePartition(ctx, milvusclient.NewCreatePartitionOption(name, "1")), "creating it again succeeds")
	err := c.DropPartition(ctx, milvusclient.NewDropPartitionOption(name, "_default"))
	requireMilvusError(t, err, "default partition cannot be deleted", unexpected)
	require.NoError(t, c.DropPartition(ctx, milvusclient.NewDropPartitionOption(name, "never_created")), "dropping a missing partition succeeds")
	err = c.CreatePartition(ctx, milvusclient.NewCreatePartitionOption(name+"_missing", "p"))
	requireMilvusError(t, err, "collection not found", 100)
	_, err = c.ListPartitions(ctx, milvusclient.NewListPartitionOption(name+"_missing"))
	requireMilvusError(t, err, "collection not found", 100)
}

// TestWriteTexts checks the words of insert, upsert and delete rejections.
func TestWriteTexts(t *testing.T) {
	c := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	name := uniqueName("weir_writes")
	dropAtCleanup(t, c, name)
	s := schemaOf(pkInt64(), vecField("vec", 4),
		entity.NewField().WithName("varchar").WithDataType(entity.FieldTypeVarChar).WithMaxLength(4),
		entity.NewField().WithName("arr").WithDataType(entity.FieldTypeArray).WithElementType(entity.FieldTypeInt64).WithMaxCapacity(2),
		entity.NewField().WithName("f").WithDataType(entity.FieldTypeFloat))
	require.NoError(t, c.CreateCollection(ctx, milvusclient.NewCreateCollectionOption(name, s)))

	good := func() []column.Column {
		return []column.Column{
			column.NewColumnInt64("id", []int64{1, 2}),
			column.NewColumnFloatVector("vec", 4, [][]float32{{1, 2, 3, 4}, {5, 6, 7, 8}}),
			column.NewColumnVarChar("varchar", []string{"a", "b"}),
			column.NewColumnInt64Array("arr", [][]int64{{1}, {2}}),
			column.NewColumnFloat("f", []float32{1, 2}),
		}
	}
	with := func(i int, col column.Column) []column.Column {
		cols := good()
		cols[i] = col
		return cols
	}
	without := func(i int) []column.Column {
		cols := good()
		return append(cols[:i], cols[i+1:]...)
	}
	nullVarchar, err := column.NewNullableColumnVarChar("varchar", []string{"a"}, []bool{true, false})
	require.NoError(t, err)
	nan := float32(0)
	nan /= nan

	inserts := []struct {
		name string
		coll string
		part string
		cols []column.Column
		text string
		code int32
	}{
		{"missing collection", name + "_missing", "", good(), "can't find collection", 100},
		{"missing partition", name, "aaa", good(), "partition not found[partition=aaa]", 200},
		{"missing column", name, "", without(1), "fieldSchema(vec) has no corresponding fieldData pass in", 1100},
		{"varchar too long", name, "", with(2, column.NewColumnVarChar("varchar", []string{"a", "too long"})), "length of varchar field varchar exceeds max length, row number: 1", 1100},
		{"array over capacity", name, "", with(3, column.NewColumnInt64Array("arr", [][]int64{{1}, {1, 2, 3}})), "the length (3) of 1th array exceeds max capacity (2): invalid parameter[expected=valid length array][actual=array length exceeds max capacity]", 1100},
		{"NaN", name, "", with(4, column.NewColumnFloat("f", []float32{0, nan})), "value 'NaN' is not a number or infinity", unexpected},
		{"null for a field that is not nullable", name, "", with(2, nullVarchar), "the length of valid_data of field(varchar) is wrong", 1100},
		// The SDK lets an empty first column through; gRPC carries it as none.
		{"empty first column", name, "", with(0, column.NewColumnInt64("id", nil)), "field 'id' is illegal, array type mismatch: invalid parameter[expected=need long int array][actual=got nil]", 1100},
		{"invalid partition name", name, "a b", good(), "Invalid partition name: a b. Partition name can only contain numbers, letters and underscores.", unexpected},
		{"a missing column before a missing partition", name, "aaa", without(1), "fieldSchema(vec) has no corresponding fieldData pass in", 1100},
	}
	for _, tc := range inserts {
		t.Run("insert "+tc.name, func(t *testing.T) {
			opt := milvusclient.NewColumnBasedInsertOption(tc.coll, tc.cols...)
			if tc.part != "" {
				opt = opt.WithPartition(tc.part)
			}
			_, err := c.Insert(ctx, opt)
			requireMilvusError(t, err, tc.text, tc.code)
		})
	}
	t.Run("upsert without the primary key", func(t *testing.T) {
		_, err := c.Upsert(ctx, milvusclient.NewColumnBasedInsertOption(name, without(0)...))
		requireMilvusError(t, err, "must assign pk when upsert, primary field: id", 1100)
	})
	t.Run("upsert into a missing partition", func(t *testing.T) {
		_, err := c.Upsert(ctx, milvusclient.NewColumnBasedInsertOption(name, good()...).WithPartition("aaa"))
		requireMilvusError(t, err, "partition not found[partition=aaa]", 200)
	})
	t.Run("upsert repeating a key", func(t *testing.T) {
		_, err := c.Upsert(ctx, milvusclient.NewColumnBasedInsertOption(name, with(0, column.NewColumnInt64("id", []int64{1, 1}))...))
		requireMilvusError(t, err, "duplicate primary keys are not allowed in the same batch", 1100)
	})
	t.Run("delete from a missing collection", func(t *testing.T) {
		_, err := c.Delete(ctx, milvusclient.NewDeleteOption(name+"_missing").WithExpr("id in [1]"))
		requireMilvusError(t, err, "Failed to get collection id: collection not found[database=default][collection="+name+"_missing]", 100)
	})
	t.Run("delete with an empty expression", func(t *testing.T) {
		_, err := c.Delete(ctx, milvusclient.NewDeleteOption(name))
		requireMilvusError(t, err, "delete plan can't be empty or always true", 1100)
	})
	t.Run("delete with an invalid expression", func(t *testing.T) {
		_, err := c.Delete(ctx, milvusclient.NewDeleteOption(name).WithExpr("id in [1"))
		requireMilvusError(t, err, "failed to create delete plan: cannot parse expression: id in [1", 1100)
	})
	t.Run("delete from a missing partition", func(t *testing.T) {
		_, err := c.Delete(ctx, milvusclient.NewDeleteOption(name).WithExpr("id in [1]").WithPartition("aaa"))
		requireMilvusError(t, err, "Failed to get partition id: partition not found[partition=aaa]", 200)
	})
	t.Run("flush of a missing collection", func(t *testing.T) {
		_, err := c.Flush(ctx, milvusclient.NewFlushOption(name+"_missing"))
		requireMilvusError(t, err, "collection not found[database=default][collection="+name+"_missing]", 100)
	})
}

// TestNullableAndDefaultValues creates nullable fields and fields with defaults, writes nulls
// and omitted columns through the SDK (which sends them compacted with valid_data), and checks
// Describe reports them as created.
func TestNullableAndDefaultValues(t *testing.T) {
	c := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	name := uniqueName("weir_nullable")
	dropAtCleanup(t, c, name)
	s := schemaOf(pkInt64(), vecField("vec", 4),
		entity.NewField().WithName("note").WithDataType(entity.FieldTypeVarChar).WithMaxLength(8).WithNullable(true),
		entity.NewField().WithName("score").WithDataType(entity.FieldTypeInt32).WithDefaultValueInt(7),
		entity.NewField().WithName("tags").WithDataType(entity.FieldTypeArray).WithElementType(entity.FieldTypeInt64).WithMaxCapacity(4).WithNullable(true),
		entity.NewField().WithName("meta").WithDataType(entity.FieldTypeJSON).WithNullable(true))
	require.NoError(t, c.CreateCollection(ctx, milvusclient.NewCreateCollectionOption(name, s)))
	coll, err := c.DescribeCollection(ctx, milvusclient.NewDescribeCollectionOption(name))
	require.NoError(t, err)
	byName := map[string]*entity.Field{}
	for _, f := range coll.Schema.Fields {
		byName[f.Name] = f
	}
	require.True(t, byName["note"].Nullable)
	require.Equal(t, int32(7), byName["score"].DefaultValue.GetIntData())
	require.True(t, byName["tags"].Nullable)
	require.False(t, byName["score"].Nullable)

	note, err := column.NewNullableColumnVarChar("note", []string{"a"}, []bool{false, true, false})
	require.NoError(t, err)
	score, err := column.NewNullableColumnInt32("score", []int32{1}, []bool{true, false, false})
	require.NoError(t, err)
	ids := column.NewColumnInt64("id", []int64{1, 2, 3})
	vecs := column.NewColumnFloatVector("vec", 4, [][]float32{{1, 2, 3, 4}, {1, 2, 3, 4}, {1, 2, 3, 4}})
	meta, err := column.NewNullableColumnJSONBytes("meta", [][]byte{[]byte(`{"a":1}`)}, []bool{false, false, true})
	require.NoError(t, err)
	res, err := c.Insert(ctx, milvusclient.NewColumnBasedInsertOption(name, ids, vecs, note, score, meta))
	require.NoError(t, err, "tags is omitted: all null")
	require.Equal(t, int64(3), res.InsertCount)
	_, err = c.Upsert(ctx, milvusclient.NewColumnBasedInsertOption(name, ids, vecs))
	require.NoError(t, err, "an upsert may omit every nullable and defaulted field")
	flushAndWait(ctx, t, c, name)
	// As in Milvus, the statistics count the upserted rows until compaction drops the rows
	// they replaced.
	requireRowCount(ctx, t, c, name, "6")
}

// TestUpsertIntoGeneratedKeys: an upsert into a collection whose keys are generated replaces the
// rows it names under new keys, as Milvus 2.6 does (its TestUpsertAutoID).
func TestUpsertIntoGeneratedKeys(t *testing.T) {
	c := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	name := uniqueName("weir_upsert_auto")
	dropAtCleanup(t, c, name)
	require.NoError(t, c.CreateCollection(ctx, milvusclient.NewCreateCollectionOption(name, schemaOf(pkInt64().WithIsAutoID(true), vecField("vec", 4)))))
	vecs := column.NewColumnFloatVector("vec", 4, [][]float32{{1, 2, 3, 4}, {5, 6, 7, 8}})
	ins, err := c.Insert(ctx, milvusclient.NewColumnBasedInsertOption(name, vecs))
	require.NoError(t, err)
	var old []int64
	for i := range ins.IDs.Len() {
		k, err := ins.IDs.GetAsInt64(i)
		require.NoError(t, err)
		old = append(old, k)
	}
	up, err := c.Upsert(ctx, milvusclient.NewColumnBasedInsertOption(name, column.NewColumnInt64("id", old), vecs))
	require.NoError(t, err)
	require.Equal(t, int64(2), up.UpsertCount)
	require.Equal(t, 2, up.IDs.Len())
	for i := range up.IDs.Len() {
		k, err := up.IDs.GetAsInt64(i)
		require.NoError(t, err)
		require.NotContains(t, old, k, "the upserted rows get new keys")
		require.NotZero(t, k)
	}
	flushAndWait(ctx, t, c, name)
	requireRowCount(ctx, t, c, name, "4") // as in Milvus, deletes count until compaction
}
