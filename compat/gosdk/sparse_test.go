package gosdk_test

import (
	"context"
	"encoding/binary"
	"math"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/milvus-io/milvus/client/v2/column"
	"github.com/milvus-io/milvus/client/v2/entity"
	"github.com/milvus-io/milvus/client/v2/milvusclient"
)

const (
	sparseRows  = 1_000
	sparseBatch = 250
)

// sparseSchema is an int64 key, a dense vector and a sparse vector; withDim adds the dim that
// Milvus refuses on a sparse field.
func sparseSchema(name string, withDim bool) *entity.Schema {
	sparse := entity.NewField().WithName("sparse").WithDataType(entity.FieldTypeSparseVector)
	if withDim {
		sparse = sparse.WithDim(128)
	}
	return entity.NewSchema().WithName(name).WithDescription("weir go sdk sparse").
		WithField(entity.NewField().WithName("id").WithDataType(entity.FieldTypeInt64).WithIsPrimaryKey(true)).
		WithField(entity.NewField().WithName("vec").WithDataType(entity.FieldTypeFloatVector).WithDim(vecDim)).
		WithField(sparse)
}

// sparseColumns returns rows with keys from..from+n-1: key k's sparse vector has k%4 elements
// (none for every fourth key) at indices k, k+1000, k+2000, given in descending order, which
// the SDK sorts.
func sparseColumns(t *testing.T, from int64, n int) []column.Column {
	ids := make([]int64, n)
	vecs := make([][]float32, n)
	sparse := make([]entity.SparseEmbedding, n)
	for i := range n {
		k := from + int64(i)
		ids[i] = k
		vecs[i] = make([]float32, vecDim)
		for j := range vecs[i] {
			vecs[i][j] = float32(k) + float32(j)/100
		}
		var pos []uint32
		var vals []float32
		for e := k % 4; e > 0; e-- {
			pos = append(pos, uint32(k+1000*(e-1)))
			vals = append(vals, float32(e)/2)
		}
		emb, err := entity.NewSliceSparseEmbedding(pos, vals)
		require.NoError(t, err)
		sparse[i] = emb
	}
	return []column.Column{
		column.NewColumnInt64("id", ids),
		column.NewColumnFloatVector("vec", vecDim, vecs),
		column.NewColumnSparseVectors("sparse", sparse),
	}
}

// rawSparse is a sparse row exactly as given, in the wire layout (uint32 index, float32
// value, little-endian): the SDK's DeserializeSliceSparseEmbedding keeps the order, so it
// sends rows its NewSliceSparseEmbedding would have sorted.
func rawSparse(t *testing.T, pos []uint32, vals []float32) entity.SparseEmbedding {
	t.Helper()
	var b []byte
	for i := range pos {
		b = binary.LittleEndian.AppendUint32(b, pos[i])
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(vals[i]))
	}
	emb, err := entity.DeserializeSliceSparseEmbedding(b)
	require.NoError(t, err)
	return emb
}

// TestSparseVectors creates a collection with a SparseFloatVector field, describes it, writes
// to it through the SDK, and checks that rows Milvus refuses are refused in Milvus's words
// and store nothing.
func TestSparseVectors(t *testing.T) {
	c := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*testTimeout)
	defer cancel()

	name := uniqueName("weir_compat_sparse")
	dropAtCleanup(t, c, name)

	// badRow inserts three rows whose middle sparse vector is emb.
	badRow := func(t *testing.T, emb entity.SparseEmbedding) error {
		cols := sparseColumns(t, 0, 3)
		ok, err := entity.NewSliceSparseEmbedding([]uint32{1}, []float32{1})
		require.NoError(t, err)
		cols[2] = column.NewColumnSparseVectors("sparse", []entity.SparseEmbedding{ok, emb, ok})
		_, err = c.Insert(ctx, milvusclient.NewColumnBasedInsertOption(name, cols...))
		return err
	}

	steps := []step{
		{"create with a dim is refused", func(t *testing.T) {
			err := c.CreateCollection(ctx, milvusclient.NewCreateCollectionOption(name, sparseSchema(name, true)))
			requireMilvusError(t, err, "dim should not be specified for sparse vector field sparse(0)", unexpected)
			requireHas(ctx, t, c, name, false)
		}},
		{"create", func(t *testing.T) {
			require.NoError(t, c.CreateCollection(ctx, milvusclient.NewCreateCollectionOption(name, sparseSchema(name, false))))
		}},
		{"describe", func(t *testing.T) {
			coll, err := c.DescribeCollection(ctx, milvusclient.NewDescribeCollectionOption(name))
			require.NoError(t, err)
			require.Len(t, coll.Schema.Fields, 3)
			f := coll.Schema.Fields[2]
			require.Equal(t, "sparse", f.Name)
			require.Equal(t, entity.FieldTypeSparseVector, f.DataType)
			require.NotContains(t, f.TypeParams, entity.TypeParamDim, "a sparse vector has no dim")
			require.False(t, f.PrimaryKey)
			require.Equal(t, entity.FieldTypeFloatVector, coll.Schema.Fields[1].DataType)
		}},
		{"insert", func(t *testing.T) {
			for from := int64(0); from < sparseRows; from += sparseBatch {
				res, err := c.Insert(ctx, milvusclient.NewColumnBasedInsertOption(name, sparseColumns(t, from, sparseBatch)...))
				require.NoError(t, err, "batch at %d", from)
				require.Equal(t, int64(sparseBatch), res.InsertCount)
			}
		}},
		{"unsorted indices are refused", func(t *testing.T) {
			requireMilvusError(t, badRow(t, rawSparse(t, []uint32{9, 2}, []float32{1, 1})), "unsorted or same indices in sparse float vector", unexpected)
		}},
		{"repeated indices are refused", func(t *testing.T) {
			emb, err := entity.NewSliceSparseEmbedding([]uint32{4, 4}, []float32{1, 2})
			require.NoError(t, err)
			requireMilvusError(t, badRow(t, emb), "unsorted or same indices in sparse float vector", unexpected)
		}},
		{"negative values are refused", func(t *testing.T) {
			emb, err := entity.NewSliceSparseEmbedding([]uint32{1, 7}, []float32{0.5, -0.5})
			require.NoError(t, err)
			requireMilvusError(t, badRow(t, emb), "negative value in sparse float vector", unexpected)
		}},
		{"NaN is refused", func(t *testing.T) {
			emb, err := entity.NewSliceSparseEmbedding([]uint32{1}, []float32{float32(math.NaN())})
			require.NoError(t, err)
			requireMilvusError(t, badRow(t, emb), "value 'NaN' is not a number or infinity", unexpected)
		}},
		{"the largest index is refused", func(t *testing.T) {
			emb, err := entity.NewSliceSparseEmbedding([]uint32{math.MaxUint32}, []float32{1})
			require.NoError(t, err)
			requireMilvusError(t, badRow(t, emb), "invalid index in sparse float vector: must be less than 2^32-1", unexpected)
		}},
		{"flush counts only the accepted rows", func(t *testing.T) {
			flushAndWait(ctx, t, c, name)
			requireRowCount(ctx, t, c, name, strconv.Itoa(sparseRows))
		}},
	}
	runSteps(t, steps)
}
