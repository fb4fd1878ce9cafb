package standalone

import (
	"context"

	"github.com/weir-db/weir/internal/datanode"
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
