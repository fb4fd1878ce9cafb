package batch

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"
)

func TestTakeGathersRowsInOrder(t *testing.T) {
	mk := func(vals ...int64) arrow.RecordBatch {
		b := array.NewInt64Builder(memory.DefaultAllocator)
		defer b.Release()
		b.AppendValues(vals, nil)
		a := b.NewArray()
		defer a.Release()
		s := array.NewStringBuilder(memory.DefaultAllocator)
		defer s.Release()
		for _, v := range vals {
			s.Append(string(rune('a' + v)))
		}
		sa := s.NewArray()
		defer sa.Release()
		return array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "n", Type: arrow.PrimitiveTypes.Int64}, {Name: "s", Type: arrow.BinaryTypes.String}}, nil),
			[]arrow.Array{a, sa}, int64(len(vals)))
	}
	r1, r2 := mk(0, 1, 2, 3), mk(10, 11)
	defer r1.Release()
	defer r2.Release()
	out, err := Take([]arrow.Field{{Name: "s", Type: arrow.BinaryTypes.String}, {Name: "n", Type: arrow.PrimitiveTypes.Int64}}, []int{1, 0},
		[]RowRef{{r1, 1}, {r1, 2}, {r2, 1}, {r1, 0}, {r2, 0}})
	require.NoError(t, err)
	defer out.Release()
	require.Equal(t, []int64{1, 2, 11, 0, 10}, out.Column(1).(*array.Int64).Int64Values())
	require.Equal(t, "b", out.Column(0).(*array.String).Value(0))
	empty, err := Take([]arrow.Field{{Name: "n", Type: arrow.PrimitiveTypes.Int64}}, []int{0}, nil)
	require.NoError(t, err)
	require.Zero(t, empty.NumRows())
	empty.Release()
}
