package schema

import (
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/weir-db/weir/internal/apierr"
)

// Partition-key limits, with Milvus's defaults: common.DefaultPartitionsWithPartitionKey and
// rootCoord.maxPartitionNum (the limit meta.MaxPartitions also keeps).
const (
	DefaultKeyPartitions = 16
	MaxPartitions        = 1024
)

// checkPartitionKey applies Milvus 2.6's partition-key rules (proxy
// createCollectionTask.validatePartitionKey) to a request's fields, field by field and in
// Milvus's order, with Milvus's texts: at most one key, not the primary key, not nullable, Int64
// or VarChar. Milvus runs it after the checks of checkKeys and before the per-field ones.
func checkPartitionKey(fields []*schemapb.FieldSchema) error {
	var key *schemapb.FieldSchema
	for _, f := range fields {
		if !f.GetIsPartitionKey() {
			continue
		}
		switch {
		case key != nil:
			return apierr.Milvus(apierr.PartitionKeyTwice, key.GetName(), f.GetName())
		case f.GetIsPrimaryKey():
			return apierr.Milvus(apierr.PartitionKeyPrimary)
		case f.GetNullable():
			return apierr.Milvus(apierr.PartitionKeyNullable)
		case f.GetDataType() != schemapb.DataType_Int64 && f.GetDataType() != schemapb.DataType_VarChar:
			return apierr.Milvus(apierr.PartitionKeyType)
		}
		key = f
	}
	return nil
}

// PartitionKey returns the partition key field of a normalised schema, or nil when it has none.
func PartitionKey(s *schemapb.CollectionSchema) *schemapb.FieldSchema {
	for _, f := range s.GetFields() {
		if f.GetIsPartitionKey() {
			return f
		}
	}
	return nil
}

// NumPartitions returns how many partitions a collection of normalised schema s is created with
// for a request's num_partitions, as Milvus decides it: with a partition key, 0 means
// DefaultKeyPartitions and the count must be in 1..MaxPartitions; without one the collection
// has only its default partition, 0 is returned, and a count is refused.
func NumPartitions(s *schemapb.CollectionSchema, requested int64) (int, error) {
	if PartitionKey(s) == nil {
		if requested != 0 {
			return 0, apierr.Milvus(apierr.KeyPartitionsWithoutKey)
		}
		return 0, nil
	}
	switch {
	case requested < 0:
		return 0, apierr.Milvus(apierr.KeyPartitionsNegative)
	case requested > MaxPartitions:
		return 0, apierr.Milvus(apierr.KeyPartitionsLimit, requested, MaxPartitions)
	case requested == 0:
		return DefaultKeyPartitions, nil
	}
	return int(requested), nil
}
