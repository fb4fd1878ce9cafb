package proxy

import (
	"github.com/weir-db/weir/internal/apierr"
	"github.com/weir-db/weir/internal/batch"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/schema"
)

// route is where a mutation's rows go: every row to part, or, in a collection with a partition
// key, each row to the partition its key value hashes to (batch.KeyPartitions): keyed[i] is
// partition _default_i, as in Milvus.
type route struct {
	part  *meta.Partition
	key   string // the partition key field, when keyed is set
	keyed []*meta.Partition
}

// routeOf resolves where a write to coll, whose live partitions are parts, goes for the
// partition name a request gives ("" is none: the default partition, or the key's).
func routeOf(coll *meta.Collection, parts []*meta.Partition, partName string) (route, error) {
	if coll.KeyPartitions == 0 {
		part := findPartition(parts, partName)
		if part == nil {
			return route{}, apierr.Milvus(apierr.NoPartition, partNameOrDefault(partName))
		}
		return route{part: part}, nil
	}
	if partName != "" {
		// The key chooses the partition.
		return route{}, apierr.Milvus(apierr.KeyPartitionNamed)
	}
	key := schema.PartitionKey(coll.Schema)
	if key == nil {
		return route{}, apierr.New(apierr.Internal, "collection %q has %d partitions for a partition key but no partition key field", coll.Name, coll.KeyPartitions)
	}
	// The catalog lists them in index order: partition i has ID FirstKeyPartition+i. Check it
	// rather than trust it, for integers are cheap and a misrouted row is forever.
	if len(parts) != coll.KeyPartitions {
		return route{}, apierr.New(apierr.Internal, "collection %q has %d partitions, its record says %d", coll.Name, len(parts), coll.KeyPartitions)
	}
	for i, p := range parts {
		if p.ID != coll.FirstKeyPartition+int64(i) {
			return route{}, apierr.New(apierr.Internal, "collection %q: partition %d is %q (ID %d), want ID %d", coll.Name, i, p.Name, p.ID, coll.FirstKeyPartition+int64(i))
		}
	}
	return route{key: key.GetName(), keyed: parts}, nil
}

// groups returns, for every row, its group among len(coll.VChannels)*rt.partitions(): channel
// c (by primary key, as every write) and partition index p make group c*partitions+p, so that
// each (channel, partition) pair becomes its own messages.
func (rt route) groups(coll *meta.Collection, rows *batch.Rows) ([]int32, error) {
	n := rt.partitions()
	var parts []int32
	if rt.keyed != nil {
		var err error
		if parts, err = rows.KeyPartitions(rt.key, n); err != nil {
			return nil, apierr.Wrap(apierr.Internal, err, "route rows of collection %q", coll.Name)
		}
	}
	channelOf := batch.ChannelOf(coll.Shards)
	pks := rows.PrimaryKeys()
	out := make([]int32, rows.Len())
	for i := range out {
		g := channelOf(pks.Hash(i)) * n
		if parts != nil {
			g += int(parts[i])
		}
		out[i] = int32(g)
	}
	return out, nil
}

// partitions is how many partitions the route spreads rows over.
func (rt route) partitions() int { return max(1, len(rt.keyed)) }

// partitionID is the ID of the route's partition of index i.
func (rt route) partitionID(i int) int64 {
	if rt.keyed != nil {
		return rt.keyed[i].ID
	}
	return rt.part.ID
}
