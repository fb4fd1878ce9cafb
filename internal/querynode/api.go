package querynode

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"

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
	// IgnoreGrowing reads only rows committed to files, not those still in the channel.
	IgnoreGrowing bool `json:"ignore_growing,omitempty"`
}

// SearchRequest is a search of one shard.
type SearchRequest struct {
	ShardRequest
	FieldID int64   `json:"field_id"`
	Metric  string  `json:"metric"`
	Vectors Vectors `json:"vectors"`
	// K is how many rows to return per query vector (the client's topk plus offset).
	K int `json:"k"`
	// Params are the search's index parameters (the "params" object of the client's
	// search_params: ef, nprobe, ...), read per segment for its index (vindex.ParseSearch).
	Params map[string]any `json:"params,omitempty"`
}

// Hit is a row found: its primary key (IntKey or StrKey, by the key's type) and its score.
type Hit struct {
	IntKey int64
	StrKey string
	Score  float32
}

// hitJSON is how a Hit crosses the wire: the score as its bits, since JSON has no infinity
// (a stored vector of large finite values scores +Inf under IP or L2).
type hitJSON struct {
	I int64  `json:"i,omitempty"`
	S string `json:"s,omitempty"`
	B uint32 `json:"b,omitempty"`
}

// MarshalJSON encodes h with its score as bits.
func (h Hit) MarshalJSON() ([]byte, error) {
	return json.Marshal(hitJSON{I: h.IntKey, S: h.StrKey, B: math.Float32bits(h.Score)})
}

// UnmarshalJSON decodes what MarshalJSON encodes.
func (h *Hit) UnmarshalJSON(b []byte) error {
	var j hitJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*h = Hit{IntKey: j.I, StrKey: j.S, Score: math.Float32frombits(j.B)}
	return nil
}

// Vectors are query vectors; on the wire each is its little-endian float32 bytes, so that any
// value, infinities included, crosses exactly and compactly.
type Vectors [][]float32

// MarshalJSON encodes each vector as base64 of its bytes.
func (v Vectors) MarshalJSON() ([]byte, error) {
	out := make([][]byte, len(v))
	for i, vec := range v {
		b := make([]byte, 4*len(vec))
		for j, f := range vec {
			binary.LittleEndian.PutUint32(b[4*j:], math.Float32bits(f))
		}
		out[i] = b
	}
	return json.Marshal(out)
}

// UnmarshalJSON decodes what MarshalJSON encodes.
func (v *Vectors) UnmarshalJSON(b []byte) error {
	var raw [][]byte
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	out := make(Vectors, len(raw))
	for i, r := range raw {
		if len(r)%4 != 0 {
			return fmt.Errorf("querynode: vector %d of %d bytes", i, len(r))
		}
		vec := make([]float32, len(r)/4)
		for j := range vec {
			vec[j] = math.Float32frombits(binary.LittleEndian.Uint32(r[4*j:]))
		}
		out[i] = vec
	}
	*v = out
	return nil
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
