package querynode

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
)

// Consistency is a request's consistency level and, for Session, its guarantee timestamp (the
// latest timestamp its client's writes returned).
type Consistency struct {
	Level       commonpb.ConsistencyLevel `json:"level"`
	GuaranteeTs uint64                    `json:"guarantee_ts,omitempty"`
	// ReadTs, when set, is the timestamp to read at instead of everything consumed.
	ReadTs uint64 `json:"read_ts,omitempty"`
}

// ShardRequest names the shard a request reads and what it sees of it.
type ShardRequest struct {
	CollectionID int64  `json:"collection_id"`
	Channel      string `json:"channel"`
	// Partitions are the partitions to read; empty means every partition.
	Partitions  []int64     `json:"partitions,omitempty"`
	Filter      string      `json:"filter,omitempty"`
	Consistency Consistency `json:"consistency"`
	// Output are the columns to return for each row, by name.
	Output []string `json:"output,omitempty"`
}

// SearchRequest is a search of one shard.
type SearchRequest struct {
	ShardRequest
	FieldID int64       `json:"field_id"`
	Metric  string      `json:"metric"`
	Vectors [][]float32 `json:"vectors"`
	// K is how many rows to return per query vector (the client's topk plus offset).
	K int `json:"k"`
}

// Hit is a row found: its primary key (IntKey or StrKey, by the key's type) and its score.
type Hit struct {
	IntKey int64   `json:"i,omitempty"`
	StrKey string  `json:"s,omitempty"`
	Score  float32 `json:"score,omitempty"`
}

// SearchResult holds, for each query vector, its hits best first, and the output columns of
// every hit, the hits of each query in turn.
type SearchResult struct {
	Hits   [][]Hit           `json:"hits"`
	Fields arrow.RecordBatch `json:"-"`
}

// QueryRequest is a query or count(*) of one shard.
type QueryRequest struct {
	ShardRequest
	// Limit is the most rows to return (the client's limit plus offset); negative: no limit.
	Limit int  `json:"limit"`
	Count bool `json:"count,omitempty"`
}

// QueryResult is the rows found in primary key order with their output columns, or the count.
type QueryResult struct {
	Keys   []Hit             `json:"keys,omitempty"`
	Fields arrow.RecordBatch `json:"-"`
	Count  int64             `json:"count"`
}
