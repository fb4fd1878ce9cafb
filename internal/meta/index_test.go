package meta

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/apierr"
)

// TestIndexDefinitions: one definition per field, created once (a repeat returns the first),
// listed, dropped (idempotently), and dropped with its collection; none on a dropped collection.
func TestIndexDefinitions(t *testing.T) {
	ctx := context.Background()
	c, _ := newCatalog(t)
	coll, _, err := c.CreateCollection(ctx, &Collection{DB: DefaultDatabase, Name: "books", Schema: testSchema(t, "books", 4), Shards: 1})
	require.NoError(t, err)
	vec := coll.Schema.Fields[1].FieldID
	params := []Param{{"index_type", "FLAT"}, {"metric_type", "L2"}}

	idx, exists, err := c.CreateIndex(ctx, &Index{CollectionID: coll.ID, FieldID: vec, Name: "vec", Params: params})
	require.NoError(t, err)
	require.False(t, exists)
	require.NotZero(t, idx.ID)
	again, exists, err := c.CreateIndex(ctx, &Index{CollectionID: coll.ID, FieldID: vec, Name: "other", Params: []Param{{"index_type", "FLAT"}}})
	require.NoError(t, err)
	require.True(t, exists, "a field has one index")
	require.Equal(t, idx, again)

	list, err := c.ListIndexes(ctx, coll.ID)
	require.NoError(t, err)
	require.Equal(t, []*Index{idx}, list)

	require.NoError(t, c.DropIndex(ctx, coll.ID, vec))
	require.NoError(t, c.DropIndex(ctx, coll.ID, vec), "dropping a missing index succeeds")
	list, err = c.ListIndexes(ctx, coll.ID)
	require.NoError(t, err)
	require.Empty(t, list)

	_, _, err = c.CreateIndex(ctx, &Index{CollectionID: coll.ID, FieldID: vec, Name: "vec", Params: params})
	require.NoError(t, err)
	_, err = c.DropCollection(ctx, DefaultDatabase, "books")
	require.NoError(t, err)
	list, err = c.ListIndexes(ctx, coll.ID)
	require.NoError(t, err)
	require.Empty(t, list, "the drop deletes the collection's index definitions")
	_, _, err = c.CreateIndex(ctx, &Index{CollectionID: coll.ID, FieldID: vec, Name: "vec", Params: params})
	require.Equal(t, apierr.CollectionNotFound, apierr.KindOf(err))
}
