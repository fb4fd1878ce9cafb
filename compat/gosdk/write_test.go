package gosdk_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/milvus-io/milvus/client/v2/column"
	"github.com/milvus-io/milvus/client/v2/milvusclient"
	"github.com/milvus-io/milvus/pkg/v2/util/merr"
)

const (
	writeRows      = 20_000
	writeBatch     = 1_000
	deletedKeys    = 100
	flushTimeout   = 60 * time.Second
	upsertedKeys   = 10
	writeRowsCount = "20000"
)

// writeColumns returns the columns of rows with keys from..from+n-1: the vector of key k is
// k, k+0.01, ...; the title names the key; the score is half the key.
func writeColumns(from int64, n int) []column.Column {
	ids := make([]int64, n)
	vecs := make([][]float32, n)
	titles := make([]string, n)
	scores := make([]float32, n)
	for i := range n {
		k := from + int64(i)
		ids[i] = k
		vecs[i] = make([]float32, vecDim)
		for j := range vecs[i] {
			vecs[i][j] = float32(k) + float32(j)/100
		}
		titles[i] = fmt.Sprintf("book %d", k)
		scores[i] = float32(k) / 2
	}
	return []column.Column{
		column.NewColumnInt64("id", ids),
		column.NewColumnFloatVector("vec", vecDim, vecs),
		column.NewColumnVarChar("title", titles),
		column.NewColumnFloat("score", scores),
	}
}

// requireInt64IDs asserts an ID column holds exactly want.
func requireInt64IDs(t *testing.T, ids column.Column, want []int64) {
	t.Helper()
	require.NotNil(t, ids)
	require.Equal(t, "id", ids.Name())
	require.Equal(t, len(want), ids.Len())
	for i, w := range want {
		got, err := ids.GetAsInt64(i)
		require.NoError(t, err)
		require.Equal(t, w, got, "id %d", i)
	}
}

// flushAndWait flushes the collection and waits, as a user's program does, until the flush
// is complete: every row inserted before it is in committed segments.
func flushAndWait(ctx context.Context, t *testing.T, c *milvusclient.Client, name string) {
	t.Helper()
	task, err := c.Flush(ctx, milvusclient.NewFlushOption(name))
	require.NoError(t, err)
	wctx, cancel := context.WithTimeout(ctx, flushTimeout)
	defer cancel()
	require.NoError(t, task.Await(wctx), "flush did not complete within %s", flushTimeout)
}

func requireRowCount(ctx context.Context, t *testing.T, c *milvusclient.Client, name, want string) {
	t.Helper()
	stats, err := c.GetCollectionStats(ctx, milvusclient.NewGetCollectionStatsOption(name))
	require.NoError(t, err)
	require.Equal(t, want, stats[rowCountStat])
}

// TestWritePath inserts, deletes, flushes and upserts through the SDK the way a user's
// program does, and checks that rejected writes change nothing.
func TestWritePath(t *testing.T) {
	c := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*testTimeout)
	defer cancel()

	name := uniqueName("weir_compat_write")
	dropAtCleanup(t, c, name)

	steps := []step{
		{"create", func(t *testing.T) {
			require.NoError(t, c.CreateCollection(ctx, createOption(name, baseSpec)))
		}},
		{"insert in batches", func(t *testing.T) {
			for from := int64(0); from < writeRows; from += writeBatch {
				res, err := c.Insert(ctx, milvusclient.NewColumnBasedInsertOption(name, writeColumns(from, writeBatch)...))
				require.NoError(t, err, "batch at %d", from)
				require.Equal(t, int64(writeBatch), res.InsertCount)
				want := make([]int64, writeBatch)
				for i := range want {
					want[i] = from + int64(i)
				}
				requireInt64IDs(t, res.IDs, want)
			}
		}},
		{"delete by keys", func(t *testing.T) {
			keys := make([]int64, deletedKeys)
			for i := range keys {
				keys[i] = int64(i * 7) // spread over both shards
			}
			res, err := c.Delete(ctx, milvusclient.NewDeleteOption(name).WithInt64IDs("id", keys))
			require.NoError(t, err)
			require.Equal(t, int64(deletedKeys), res.DeleteCount)
		}},
		{"flush and await", func(t *testing.T) {
			flushAndWait(ctx, t, c, name)
		}},
		{"row count", func(t *testing.T) {
			// Deletes are not subtracted from row_count until compaction rewrites segments.
			requireRowCount(ctx, t, c, name, writeRowsCount)
		}},
		{"rejected writes change nothing", func(t *testing.T) {
			rejects := []struct {
				name     string
				cols     func() []column.Column
				coll     string
				mentions string
				code     error
			}{
				{"wrong dimension", func() []column.Column {
					cols := writeColumns(writeRows, 2)
					cols[1] = column.NewColumnFloatVector("vec", vecDim/2, [][]float32{make([]float32, vecDim/2), make([]float32, vecDim/2)})
					return cols
				}, name, "dim", nil}, // the SDK itself refuses it, before the server sees it
				{"missing field", func() []column.Column {
					return writeColumns(writeRows, 2)[:3]
				}, name, "fieldSchema(score) has no corresponding fieldData pass in", merr.ErrParameterInvalid},
				{"over-long varchar", func() []column.Column {
					cols := writeColumns(writeRows, 2)
					cols[2] = column.NewColumnVarChar("title", []string{"ok", strings.Repeat("x", titleMaxLen+1)})
					return cols
				}, name, "exceeds max length", merr.ErrParameterInvalid},
				{"unknown collection", func() []column.Column {
					return writeColumns(writeRows, 2)
				}, name + "_missing", "can't find collection", merr.ErrCollectionNotFound},
			}
			for _, r := range rejects {
				t.Run(r.name, func(t *testing.T) {
					_, err := c.Insert(ctx, milvusclient.NewColumnBasedInsertOption(r.coll, r.cols()...))
					requireMentions(t, err, r.mentions)
					if r.code != nil {
						require.True(t, errors.Is(err, r.code), "want code %d, got %d: %v", merr.Code(r.code), merr.Code(err), err)
					}
				})
			}
			flushAndWait(ctx, t, c, name)
			requireRowCount(ctx, t, c, name, writeRowsCount)
		}},
		{"upsert", func(t *testing.T) {
			keys := make([]int64, upsertedKeys)
			for i := range keys {
				keys[i] = int64(i)
			}
			res, err := c.Upsert(ctx, milvusclient.NewColumnBasedInsertOption(name, writeColumns(0, upsertedKeys)...))
			require.NoError(t, err)
			require.Equal(t, int64(upsertedKeys), res.UpsertCount)
			requireInt64IDs(t, res.IDs, keys)
			flushAndWait(ctx, t, c, name)
		}},
	}
	runSteps(t, steps)
}
