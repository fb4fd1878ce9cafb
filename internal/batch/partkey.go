package batch

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow/array"
)

// KeyPartitions returns, for every row, the index among n partitions of the partition its value
// of the partition key field belongs to, as Milvus's HashKey2Partitions
// (pkg/util/typeutil/hash.go) computes it: HashInt64 of an Int64 key, HashString of a VarChar
// key — the hashes that route primary keys to channels — modulo n. Milvus names partition i
// `_default_i`; mapping indexes to partitions is the caller's. The hash is taken from the
// rows as built, so a value filled in by FromFieldData is hashed like one the client sent,
// as in Milvus, which fills defaults before it hashes. n must be positive.
func (r *Rows) KeyPartitions(field string, n int) ([]int32, error) {
	if n <= 0 {
		return nil, fmt.Errorf("batch: %d partitions for the partition key %q", n, field)
	}
	idx := r.schema.FieldIndices(field)
	if len(idx) != 1 || idx[0] >= len(r.cols) {
		return nil, fmt.Errorf("batch: no column %q for the partition key", field)
	}
	out := make([]int32, r.n)
	switch col := r.cols[idx[0]].(type) {
	case *array.Int64:
		for i, v := range col.Int64Values() {
			out[i] = int32(HashInt64(v) % uint32(n))
		}
	case *array.String:
		for i := range out {
			out[i] = int32(HashString(col.Value(i)) % uint32(n))
		}
	default:
		return nil, fmt.Errorf("batch: the partition key %q is a column of %s, want int64 or utf8", field, col.DataType())
	}
	return out, nil
}
