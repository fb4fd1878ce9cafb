package standalone

import (
	"context"
	"fmt"

	"github.com/weir-db/weir/internal/datanode"
	"github.com/weir-db/weir/internal/querynode"
)

// localNodes is the coordinator's view of standalone's one data node: always live, reached by
// direct calls instead of gRPC.
type localNodes struct {
	id   int64
	node *datanode.Node
}

func (l localNodes) Live(context.Context) ([]int64, error) { return []int64{l.id}, nil }

func (l localNodes) Watch(ctx context.Context, _ int64, ch string, _ int64) error {
	return l.node.Watch(ctx, ch)
}

func (l localNodes) Protocol(int64) string { return "" }

func (l localNodes) Release(_ context.Context, _ int64, ch string) error {
	l.node.Release(ch)
	return nil
}

// localQueryNodes is standalone's one query node, for the coordinator's shard assignment and the
// proxy's reads: always live, reached by direct calls.
type localQueryNodes struct {
	id   int64
	node *querynode.Node
}

func (l localQueryNodes) LiveQueryNodes(context.Context) ([]int64, error) { return []int64{l.id}, nil }

func (l localQueryNodes) Live(context.Context) ([]int64, error) { return []int64{l.id}, nil }

func (l localQueryNodes) Search(ctx context.Context, node int64, req *querynode.SearchRequest) (*querynode.SearchResult, error) {
	if node != l.id {
		return nil, fmt.Errorf("%w: no query node %d in this process", querynode.ErrNotServing, node)
	}
	return l.node.Search(ctx, req)
}

func (l localQueryNodes) Query(ctx context.Context, node int64, req *querynode.QueryRequest) (*querynode.QueryResult, error) {
	if node != l.id {
		return nil, fmt.Errorf("%w: no query node %d in this process", querynode.ErrNotServing, node)
	}
	return l.node.Query(ctx, req)
}
