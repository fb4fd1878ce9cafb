package readapi

import (
	"encoding/binary"
	"math"
	"strconv"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/protobuf/proto"
)

// FloatSearch builds the Milvus request of a top-k search of one float vector of field
// annsField (empty: the collection's only vector field) under metric, at consistency level:
// what the SDKs send, for Weir's own clients (the demo, the benchmarks, test support).
func FloatSearch(collection string, q []float32, topk int, annsField, metric string, level commonpb.ConsistencyLevel) (*milvuspb.SearchRequest, error) {
	b := make([]byte, 4*len(q))
	for i, v := range q {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	pg, err := proto.Marshal(&commonpb.PlaceholderGroup{Placeholders: []*commonpb.PlaceholderValue{{Tag: "$0", Type: commonpb.PlaceholderType_FloatVector, Values: [][]byte{b}}}})
	if err != nil {
		return nil, err
	}
	params := []*commonpb.KeyValuePair{{Key: "topk", Value: strconv.Itoa(topk)}, {Key: "metric_type", Value: metric}}
	if annsField != "" {
		params = append(params, &commonpb.KeyValuePair{Key: "anns_field", Value: annsField})
	}
	return &milvuspb.SearchRequest{CollectionName: collection, DslType: commonpb.DslType_BoolExprV1, Nq: 1,
		SearchInput: &milvuspb.SearchRequest_PlaceholderGroup{PlaceholderGroup: pg}, SearchParams: params, ConsistencyLevel: level}, nil
}
