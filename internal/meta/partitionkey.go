package meta

import (
	"context"
	"fmt"

	"github.com/weir-db/weir/internal/apierr"
	"github.com/weir-db/weir/internal/metastore"
)

// KeyPartitionName is the name of partition i of a collection with a partition key: Milvus's
// `_default_{i}` (rootcoord assignPartitionIDs), the partition that rows whose key hashes to i
// go to.
func KeyPartitionName(i int) string { return fmt.Sprintf("%s_%d", DefaultPartition, i) }

// keyPartitions returns the partitions of a live collection with a partition key, as its record
// at revision rev describes them; nil for any other collection, dropped or unknown.
func (c *Catalog) keyPartitions(ctx context.Context, collID int64, rev int64) ([]*Partition, error) {
	kvs, _, err := c.kv.Range(ctx, c.keys.collection(collID), metastore.ExactKey(), metastore.AtRevision(rev))
	if err != nil {
		return nil, apierr.Wrap(apierr.Unavailable, err, "list partitions")
	}
	if len(kvs) == 0 {
		return nil, nil
	}
	coll, err := decodeCollection(kvs[0].Value)
	if err != nil {
		return nil, err
	}
	if coll.State != Created || coll.KeyPartitions == 0 {
		return nil, nil
	}
	out := make([]*Partition, coll.KeyPartitions)
	for i := range out {
		out[i] = &Partition{ID: coll.FirstKeyPartition + int64(i), CollectionID: coll.ID, Name: KeyPartitionName(i),
			CreatedAt: coll.CreatedAt, State: Created}
	}
	return out, nil
}
