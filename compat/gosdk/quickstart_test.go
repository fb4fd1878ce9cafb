package gosdk_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/milvus-io/milvus/client/v2/entity"
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
		WithField(entity.NewField().WithName("embedding").WithDataType(entity.FieldTypeFloatVector).WithDim(128)).
		WithField(entity.NewField().WithName("title").WithDataType(entity.FieldTypeVarChar).WithMaxLength(256))
	if err := c.CreateCollection(ctx, milvusclient.NewCreateCollectionOption("books", schema).WithShardNum(2)); err != nil {
		return nil, err
	}
	coll, err := c.DescribeCollection(ctx, milvusclient.NewDescribeCollectionOption("books"))
	if err != nil {
		return nil, err
	}
	fmt.Println(coll.Name, coll.ShardNum, coll.Schema.Fields[1].TypeParams["dim"]) // books 2 128
	// README quickstart end
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
