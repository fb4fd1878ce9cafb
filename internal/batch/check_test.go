package batch

import (
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/stretchr/testify/require"
)

// TestChecksRunInMilvusOrder sends requests with two faults each and expects the error Milvus
// gives: every column's data first, in the order the request sends the columns, then nulls and
// defaults, then row counts and dimensions.
func TestChecksRunInMilvusOrder(t *testing.T) {
	const n = 3
	good := func() []*schemapb.FieldData { return allColumns(0, n) }
	idx := func(cols []*schemapb.FieldData, name string) int {
		for i, c := range cols {
			if c.GetFieldName() == name {
				return i
			}
		}
		t.Fatalf("no column %s", name)
		return -1
	}
	nan := float32(0)
	nan /= nan
	cases := []struct {
		name string
		cols func() []*schemapb.FieldData
		want string
	}{
		{"a value fault before a short column", func() []*schemapb.FieldData {
			c := replace(good(), "i64", scalarCol("i64", 0, longs(1, 2))) // short: phase 3
			return replace(c, "title", scalarCol("title", 0, strs("a", "far too long a title", "c")))
		}, "length of varchar field title exceeds max length"},
		{"the first column sent first", func() []*schemapb.FieldData {
			c := replace(good(), "f", scalarCol("f", 0, floats(0, nan, 0)))
			c = replace(c, "title", scalarCol("title", 0, strs("a", "far too long a title", "c")))
			// Send title before f: its fault is reported.
			i, j := idx(c, "title"), idx(c, "f")
			c[i], c[j] = c[j], c[i]
			return c
		}, "length of varchar field title exceeds max length"},
		{"the other way round", func() []*schemapb.FieldData {
			c := replace(good(), "f", scalarCol("f", 0, floats(0, nan, 0)))
			return replace(c, "title", scalarCol("title", 0, strs("a", "far too long a title", "c")))
		}, "value 'NaN' is not a number or infinity"},
		{"an empty column is no column", func() []*schemapb.FieldData {
			return replace(good(), "id", scalarCol("id", 0, longs()))
		}, "field 'id' is illegal, array type mismatch: invalid parameter[expected=need long int array][actual=got nil]"},
		{"an empty vector column is no column", func() []*schemapb.FieldData {
			return replace(good(), "vec", vectorCol("vec", 0, floatVec(4, nil)))
		}, "float vector field 'vec' is illegal, array type mismatch: invalid parameter[expected=need float vector][actual=got nil]"},
		{"float vectors: whole vectors before the dim", func() []*schemapb.FieldData {
			return replace(good(), "vec", vectorCol("vec", 0, floatVec(8, make([]float32, 13))))
		}, "the length(13) of float data should divide the dim(4)"},
		{"binary vectors: the dim before whole vectors", func() []*schemapb.FieldData {
			return replace(good(), "bin", vectorCol("bin", 0, &schemapb.VectorField{Dim: 8, Data: &schemapb.VectorField_BinaryVector{BinaryVector: make([]byte, 5)}}))
		}, "the dim (8) of field data(bin) is not equal to schema dim (16)"},
		{"array capacity before element types", func() []*schemapb.FieldData {
			return replace(good(), "i64s", scalarCol("i64s", 0, arrays(schemapb.DataType_Int64, strs("x"), longs(1, 2, 3, 4, 5), longs())))
		}, "the length (5) of 1th array exceeds max capacity (4)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := FromFieldData(allTypes(true), c.cols(), n, FromOptions{Allocator: checked(t)})
			require.Nil(t, r)
			require.ErrorContains(t, err, c.want)
		})
	}
}
