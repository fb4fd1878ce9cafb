package gosdk_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/milvus-io/milvus/client/v2/entity"
	"github.com/milvus-io/milvus/client/v2/index"
	"github.com/milvus-io/milvus/client/v2/milvusclient"
	"github.com/stretchr/testify/require"
)

// quickstart is the README's quickstart, verbatim between the markers, so the README cannot
// drift from code that runs.
func quickstart(addr string) ([]string, error) {
	// README quickstart begin
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	c, err := milvusclient.New(ctx, &milvusclient.ClientConfig{Address: addr}) // "localhost:19530"
	if err != nil {
		return nil, err
	}
	defer c.Close(ctx)

	schema := entity.NewSchema().WithName("books").
		WithField(entity.NewField().WithName("id").WithDataType(entity.FieldTypeInt64).WithIsPrimaryKey(true)).
		WithField(entity.NewField().WithName("embedding").WithDataType(entity.FieldTypeFloatVector).WithDim(4)).
		WithField(entity.NewField().WithName("title").WithDataType(entity.FieldTypeVarChar).WithMaxLength(256))
	if err := c.CreateCollection(ctx, milvusclient.NewCreateCollectionOption("books", schema).WithShardNum(2)); err != nil {
		return nil, err
	}
	_, err = c.Insert(ctx, milvusclient.NewColumnBasedInsertOption("books").
		WithInt64Column("id", []int64{1, 2, 3}).
		WithFloatVectorColumn("embedding", 4, [][]float32{{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}}).
		WithVarcharColumn("title", []string{"Dune", "Emma", "Ulysses"}))
	if err != nil {
		return nil, err
	}
	idx, err := c.CreateIndex(ctx, milvusclient.NewCreateIndexOption("books", "embedding", index.NewFlatIndex(entity.L2)))
	if err != nil {
		return nil, err
	}
	if err := idx.Await(ctx); err != nil {
		return nil, err
	}
	load, err := c.LoadCollection(ctx, milvusclient.NewLoadCollectionOption("books"))
	if err != nil {
		return nil, err
	}
	if err := load.Await(ctx); err != nil {
		return nil, err
	}
	results, err := c.Search(ctx, milvusclient.NewSearchOption("books", 2, []entity.Vector{entity.FloatVector{0.9, 0.1, 0, 0}}).
		WithOutputFields("title").WithConsistencyLevel(entity.ClStrong))
	if err != nil {
		return nil, err
	}
	title, _ := results[0].GetColumn("title").GetAsString(0)
	fmt.Println(results[0].ResultCount, title) // 2 Dune
	// README quickstart end
	if title != "Dune" {
		return nil, fmt.Errorf("the search found %q, want Dune", title)
	}
	names, err := c.ListCollections(ctx, milvusclient.NewListCollectionOption())
	if err != nil {
		return nil, err
	}
	return names, c.DropCollection(ctx, milvusclient.NewDropCollectionOption("books"))
}

func TestReadmeQuickstart(t *testing.T) {
	addr := os.Getenv("WEIR_ADDR")
	if addr == "" {
		addr = "localhost:19530"
	}
	names, err := quickstart(addr)
	require.NoError(t, err)
	require.Contains(t, names, "books")
}
