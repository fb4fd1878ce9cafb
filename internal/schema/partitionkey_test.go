package schema

import (
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/apierr"
)

func keyField(name string, dt schemapb.DataType) *schemapb.FieldSchema {
	f := &schemapb.FieldSchema{Name: name, DataType: dt, IsPartitionKey: true}
	switch dt {
	case schemapb.DataType_VarChar:
		f.TypeParams = []*commonpb.KeyValuePair{kv("max_length", "64")}
	case schemapb.DataType_FloatVector:
		f.TypeParams = []*commonpb.KeyValuePair{kv("dim", "4")}
	case schemapb.DataType_Array:
		f.ElementType = schemapb.DataType_Int64
		f.TypeParams = []*commonpb.KeyValuePair{kv("max_capacity", "4")}
	}
	return f
}

func TestPartitionKeyAccepted(t *testing.T) {
	for _, dt := range []schemapb.DataType{schemapb.DataType_Int64, schemapb.DataType_VarChar} {
		t.Run(dt.String(), func(t *testing.T) {
			out, err := Normalize("books", books(pkField(), vecField("4"), keyField("tenant", dt)))
			require.NoError(t, err)
			key := PartitionKey(out)
			require.NotNil(t, key)
			require.Equal(t, "tenant", key.GetName())
			require.True(t, key.GetIsPartitionKey(), "Describe returns is_partition_key")
			require.Nil(t, PartitionKey(books(pkField(), vecField("4"))))

			plain, err := Normalize("books", books(pkField(), vecField("4"), &schemapb.FieldSchema{Name: "tenant", DataType: dt, TypeParams: key.GetTypeParams()}))
			require.NoError(t, err)
			require.False(t, Equal(out, plain), "a repeated create that drops the key is a different collection")
			require.Contains(t, Diff(out, plain), "partition_key")
		})
	}
}

// TestPartitionKeyRejected pins Milvus 2.6's texts (proxy validatePartitionKey) and its order:
// a second key before anything about the first, the primary key before nullable, nullable
// before the type.
func TestPartitionKeyRejected(t *testing.T) {
	nullable := keyField("tenant", schemapb.DataType_Int64)
	nullable.Nullable = true
	nullableFloat := keyField("tenant", schemapb.DataType_Float)
	nullableFloat.Nullable = true
	pkKey := pkField()
	pkKey.IsPartitionKey = true
	cases := []struct {
		name   string
		fields []*schemapb.FieldSchema
		kind   apierr.Kind
		msg    string
	}{
		{"two keys", []*schemapb.FieldSchema{pkField(), vecField("4"), keyField("a", schemapb.DataType_Int64), keyField("b", schemapb.DataType_VarChar)},
			apierr.Unexpected, "there are more than one partition key, field name = a, b"},
		{"primary key", []*schemapb.FieldSchema{pkKey, vecField("4")}, apierr.Unexpected, "the partition key field must not be primary field"},
		{"nullable", []*schemapb.FieldSchema{pkField(), vecField("4"), nullable}, apierr.ParameterInvalid, "partition key field not support nullable: invalid parameter"},
		{"nullable before type", []*schemapb.FieldSchema{pkField(), vecField("4"), nullableFloat}, apierr.ParameterInvalid, "partition key field not support nullable: invalid parameter"},
	}
	// Milvus's tests try every other type.
	for _, dt := range []schemapb.DataType{schemapb.DataType_Bool, schemapb.DataType_Int8, schemapb.DataType_Int16,
		schemapb.DataType_Int32, schemapb.DataType_Float, schemapb.DataType_Double, schemapb.DataType_JSON,
		schemapb.DataType_Array, schemapb.DataType_FloatVector} {
		cases = append(cases, struct {
			name   string
			fields []*schemapb.FieldSchema
			kind   apierr.Kind
			msg    string
		}{dt.String(), []*schemapb.FieldSchema{pkField(), vecField("4"), keyField("k", dt)}, apierr.Unexpected, "the data type of partition key should be Int64 or VarChar"})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Normalize("books", books(c.fields...))
			require.Error(t, err)
			require.Equal(t, c.kind, apierr.KindOf(err), "kind of %v", err)
			require.Contains(t, err.Error(), c.msg)
		})
	}
}

func TestNumPartitions(t *testing.T) {
	keyed, err := Normalize("books", books(pkField(), vecField("4"), keyField("tenant", schemapb.DataType_VarChar)))
	require.NoError(t, err)
	plain, err := Normalize("books", books(pkField(), vecField("4")))
	require.NoError(t, err)
	cases := []struct {
		name      string
		s         *schemapb.CollectionSchema
		requested int64
		want      int
		kind      apierr.Kind
		msg       string
	}{
		{"key, default", keyed, 0, 16, 0, ""},
		{"key, one", keyed, 1, 1, 0, ""},
		{"key, given", keyed, 7, 7, 0, ""},
		{"key, the maximum", keyed, 1024, 1024, 0, ""},
		{"key, over the maximum", keyed, 1025, 0, apierr.ParameterInvalid, "partition number (1025) exceeds max configuration (1024): invalid parameter"},
		{"key, negative", keyed, -1, 0, apierr.Unexpected, "the specified partitions should be greater than 0 if partition key is used"},
		{"no key", plain, 0, 0, 0, ""},
		{"no key, given", plain, 4, 0, apierr.Unexpected, "num_partitions should only be specified with partition key field enabled"},
		{"no key, negative", plain, -4, 0, apierr.Unexpected, "num_partitions should only be specified with partition key field enabled"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := NumPartitions(c.s, c.requested)
			require.Equal(t, c.want, got)
			if c.msg == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Equal(t, c.kind, apierr.KindOf(err), "kind of %v", err)
			require.Contains(t, err.Error(), c.msg)
		})
	}
}
