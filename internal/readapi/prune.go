package readapi

import (
	"slices"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/weir-db/weir/internal/batch"
	"github.com/weir-db/weir/internal/expr"
	"github.com/weir-db/weir/internal/meta"
)

// keyPartitions returns the partitions of a collection with a partition key that a filter can
// match rows in, as Milvus prunes them: a filter that requires the key to be one of some values
// (`key == v`, `key in [...]`, either under `and`, both sides of an `or`) can only match the
// partitions those values hash to. nil means no pruning: every partition.
func keyPartitions(coll *meta.Collection, filter string) []int64 {
	if coll.KeyPartitions == 0 || filter == "" {
		return nil
	}
	var key *schemapb.FieldSchema
	for _, f := range coll.Schema.GetFields() {
		if f.GetIsPartitionKey() {
			key = f
		}
	}
	n, err := expr.Parse(filter, coll.Schema)
	if key == nil || err != nil {
		return nil
	}
	parts, ok := keyValues(n, key, coll)
	if !ok {
		return nil
	}
	if len(parts) == 0 {
		return []int64{noPartition} // the filter matches nothing: no partition to search
	}
	return parts
}

// noPartition is a partition ID no partition has (IDs are positive; -1 is every partition):
// a read of it reads nothing.
const noPartition = -2

// keyValues returns the partitions n restricts the key to, and whether it restricts it at all.
func keyValues(n expr.Node, key *schemapb.FieldSchema, coll *meta.Collection) ([]int64, bool) {
	partOf := func(v expr.Value) (int64, bool) {
		var h uint32
		switch {
		case key.GetDataType() == schemapb.DataType_Int64 && v.Kind == expr.Int:
			h = batch.HashInt64(v.I)
		case key.GetDataType() == schemapb.DataType_VarChar && v.Kind == expr.String:
			h = batch.HashString(v.S)
		default:
			return 0, false
		}
		return coll.FirstKeyPartition + int64(h%uint32(coll.KeyPartitions)), true
	}
	values := func(vs []expr.Value) ([]int64, bool) {
		var out []int64
		for _, v := range vs {
			p, ok := partOf(v)
			if !ok {
				return nil, false
			}
			out = append(out, p)
		}
		slices.Sort(out)
		return slices.Compact(out), true
	}
	switch e := n.(type) {
	case expr.Compare:
		if e.Field.Name == key.GetName() && e.Op == expr.Eq {
			return values([]expr.Value{e.Value})
		}
	case expr.In:
		if e.Field.Name == key.GetName() && !e.Not {
			return values(e.Values)
		}
	case expr.And:
		l, lok := keyValues(e.L, key, coll)
		r, rok := keyValues(e.R, key, coll)
		switch {
		case lok && rok:
			return slices.DeleteFunc(l, func(p int64) bool { return !slices.Contains(r, p) }), true
		case lok:
			return l, true
		case rok:
			return r, true
		}
	case expr.Or:
		l, lok := keyValues(e.L, key, coll)
		r, rok := keyValues(e.R, key, coll)
		if lok && rok {
			out := append(l, r...)
			slices.Sort(out)
			return slices.Compact(out), true
		}
	}
	return nil, false
}

// prune narrows parts (the partitions a read covers, nil: all of a whole load) to those a
// filter on the partition key can match, within what the load covers.
func prune(coll *meta.Collection, l *meta.Load, parts []int64, filter string) []int64 {
	pruned := keyPartitions(coll, filter)
	if pruned == nil {
		return parts
	}
	if l != nil && !l.Whole() {
		pruned = slices.DeleteFunc(pruned, func(p int64) bool { return !l.Covers(p) })
		if len(pruned) == 0 {
			pruned = []int64{noPartition}
		}
	}
	return pruned
}
