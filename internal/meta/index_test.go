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

// TestIndexNamesAreUniqueInACollection: the transaction that defines an index requires its name
// to be free, so two requests racing with one name on two fields cannot both succeed (the
// caller's check of the list runs before, outside the transaction); a drop frees the name, and
// a dropped collection leaves no names behind.
func TestIndexNamesAreUniqueInACollection(t *testing.T) {
	ctx := context.Background()
	c, kv := newCatalog(t)
	coll, _, err := c.CreateCollection(ctx, &Collection{DB: DefaultDatabase, Name: "books", Schema: testSchema(t, "books", 4), Shards: 1})
	require.NoError(t, err)
	pk, vec := coll.Schema.Fields[0].FieldID, coll.Schema.Fields[1].FieldID

	first, exists, err := c.CreateIndex(ctx, &Index{CollectionID: coll.ID, FieldID: vec, Name: "idx"})
	require.NoError(t, err)
	require.False(t, exists)
	other, exists, err := c.CreateIndex(ctx, &Index{CollectionID: coll.ID, FieldID: pk, Name: "idx"})
	require.NoError(t, err)
	require.True(t, exists, "the name belongs to the index of another field")
	require.Equal(t, first, other)
	list, err := c.ListIndexes(ctx, coll.ID)
	require.NoError(t, err)
	require.Equal(t, []*Index{first}, list)

	require.NoError(t, c.DropIndex(ctx, coll.ID, vec))
	_, exists, err = c.CreateIndex(ctx, &Index{CollectionID: coll.ID, FieldID: pk, Name: "idx"})
	require.NoError(t, err)
	require.False(t, exists, "a dropped index frees its name")

	_, err = c.DropCollection(ctx, DefaultDatabase, "books")
	require.NoError(t, err)
	left, _, err := kv.Range(ctx, c.keys.indexNames(coll.ID))
	require.NoError(t, err)
	require.Empty(t, left, "the drop deletes the collection's index names")
}
