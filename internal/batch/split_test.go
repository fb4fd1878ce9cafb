package batch

import (
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// splitInput draws a batch: the all-types collection with random (possibly repeated) int64
// keys, or a varchar-keyed collection with random string keys.
func splitInput(t *rapid.T) (*schemapb.CollectionSchema, []*schemapb.FieldData, int) {
	n := rapid.IntRange(1, 120).Draw(t, "rows")
	if rapid.Bool().Draw(t, "varchar") {
		s := collection(true,
			pkField("pk", schemapb.DataType_VarChar, false),
			field("vec", schemapb.DataType_FloatVector, "dim", "3"),
			arrayField("tags", schemapb.DataType_VarChar, "max_length", "8"),
			field("ok", schemapb.DataType_Bool),
		)
		keys := rapid.SliceOfN(rapid.StringN(0, 12, 32), n, n).Draw(t, "keys")
		all := allColumns(0, n)
		vec := make([]float32, 0, 3*n)
		for i := range 3 * n {
			vec = append(vec, float32(i))
		}
		dyn := make([]string, n)
		for i := range dyn {
			dyn[i] = `{"row":` + strconv.Itoa(i) + `}`
		}
		return s, []*schemapb.FieldData{
			scalarCol("pk", 0, strs(keys...)),
			vectorCol("vec", 0, floatVec(3, vec)),
			all[17], // tags
			scalarCol("ok", 0, all[1].GetScalars()),
			dynCol(dyn...),
		}, n
	}
	keys := rapid.SliceOfN(rapid.Int64(), n, n).Draw(t, "keys")
	cols := replace(allColumns(0, n), "id", scalarCol("id", 0, longs(keys...)))
	return allTypes(true), cols, n
}

func TestSplitProperties(t *testing.T) {
	mem := checked(t)
	rapid.Check(t, func(t *rapid.T) {
		s, cols, n := splitInput(t)
		shards := rapid.IntRange(1, 8).Draw(t, "shards")
		r, err := FromFieldData(s, cols, uint32(n), FromOptions{Allocator: mem})
		require.NoError(t, err)
		defer r.Release()

		parts := r.Split(ChannelOf(shards), shards)
		require.Len(t, parts, shards)
		want := make([][]int, shards)
		pks := r.PrimaryKeys()
		for i := range n {
			c := int(pks.Hash(i) % uint32(shards))
			want[c] = append(want[c], i)
		}
		rec := r.Record(7)
		defer rec.Release()
		total := 0
		for c, p := range parts {
			if want[c] == nil {
				require.Nil(t, p, "channel %d gets no rows", c)
				continue
			}
			require.NotNil(t, p)
			defer p.Release()
			require.Equal(t, len(want[c]), p.Len())
			total += p.Len()
			prec := p.Record(7)
			defer prec.Release()
			require.True(t, prec.Schema().Equal(rec.Schema()))
			for k, i := range want[c] {
				if pks.Strings != nil {
					require.Equal(t, pks.Strings[i], p.PrimaryKeys().Strings[k])
				} else {
					require.Equal(t, pks.Int64[i], p.PrimaryKeys().Int64[k])
				}
				for j := range int(rec.NumCols()) {
					require.True(t, array.SliceEqual(rec.Column(j), int64(i), int64(i+1), prec.Column(j), int64(k), int64(k+1)),
						"channel %d row %d (source row %d) column %s", c, k, i, rec.ColumnName(j))
				}
			}
		}
		require.Equal(t, n, total, "every row goes to exactly one channel")
	})
}

func TestSplitOneChannelShares(t *testing.T) {
	mem := checked(t)
	s := allTypes(false)
	r, err := FromFieldData(s, allColumns(0, 5), 5, FromOptions{Allocator: mem})
	require.NoError(t, err)
	parts := r.Split(func(uint32) int { return 1 }, 3)
	require.Nil(t, parts[0])
	require.Nil(t, parts[2])
	require.Equal(t, 5, parts[1].Len())
	require.Same(t, r.cols[18], parts[1].cols[18], "a batch that stays whole is not copied")
	r.Release()
	rec := parts[1].Record(3) // still valid after the source is released
	require.Equal(t, []int64{0, 1, 2, 3, 4}, rec.Column(0).(*array.Int64).Int64Values())
	rec.Release()
	parts[1].Release()
}

func TestSplitRejectsBadChannel(t *testing.T) {
	mem := checked(t)
	r, err := FromFieldData(allTypes(false), allColumns(0, 2), 2, FromOptions{Allocator: mem})
	require.NoError(t, err)
	defer r.Release()
	require.PanicsWithValue(t, "batch: channelOf returned channel 2, want 0..1", func() { r.Split(func(uint32) int { return 2 }, 2) })
}
