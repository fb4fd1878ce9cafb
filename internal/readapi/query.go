package readapi

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/weir-db/weir/internal/apierr"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/querynode"
	"github.com/weir-db/weir/internal/schema"
)

// countStar is the output field that turns a query into a count.
const countStar = "count(*)"

// Query queries a loaded collection (or counts its rows), with Milvus's checks in its proxy's
// order.
func (s *Service) Query(ctx context.Context, req *milvuspb.QueryRequest) (*milvuspb.QueryResults, error) {
	res, err := s.query(ctx, req)
	if err != nil {
		return &milvuspb.QueryResults{Status: apierr.Status(err)}, nil
	}
	return res, nil
}

// queryWindow is a query's limit and offset; limit < 0 means none.
type queryWindow struct{ limit, offset int }

func parseQueryParams(kvs map[string]string) (queryWindow, error) {
	w := queryWindow{limit: -1}
	v, ok := kvs["limit"]
	if !ok {
		return w, nil // offset counts only with a limit
	}
	l, err := strconv.ParseInt(v, 0, 64)
	if err != nil {
		return w, apierr.Milvus(apierr.LimitNotInt, v)
	}
	if o, ok := kvs["offset"]; ok {
		off, err := strconv.ParseInt(o, 0, 64)
		if err != nil {
			return w, apierr.Milvus(apierr.OffsetQueryNotInt, o)
		}
		w.offset = int(off)
	}
	switch {
	case l <= 0:
		return w, apierr.Milvus(apierr.QueryLimitNotPositive, l)
	case w.offset < 0:
		return w, apierr.Milvus(apierr.QueryOffsetNegative, w.offset)
	case l+int64(w.offset) > MaxTopK:
		return w, apierr.Milvus(apierr.QueryWindowRange, MaxTopK, l+int64(w.offset))
	}
	w.limit = int(l)
	return w, nil
}

func (s *Service) query(ctx context.Context, req *milvuspb.QueryRequest) (*milvuspb.QueryResults, error) {
	if s.nodes == nil {
		return nil, apierr.New(apierr.ServiceNotReady, "no query node is connected to this proxy")
	}
	coll, err := s.lookup(ctx, req.GetDbName(), req.GetCollectionName())
	if err != nil {
		return nil, err
	}
	if len(req.GetExprTemplateValues()) > 0 {
		return nil, apierr.New(apierr.ParameterInvalid, "expression templates are not supported by Weir; write the values into the filter")
	}
	if coll.KeyPartitions > 0 && len(req.GetPartitionNames()) > 0 {
		return nil, apierr.Milvus(apierr.QueryKeyPartitionNamed)
	}
	params := map[string]string{}
	for _, kv := range req.GetQueryParams() {
		params[kv.GetKey()] = kv.GetValue()
	}
	w, err := parseQueryParams(params)
	if err != nil {
		return nil, err
	}
	names := req.GetOutputFields()
	count := slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(strings.TrimSpace(n), countStar) })
	var cols, dynKeys []string
	if !count {
		if cols, dynKeys, err = outputFields(coll.Schema, names, true); err != nil {
			return nil, err
		}
	}
	filter := strings.TrimSpace(req.GetExpr())
	if err := parseFilter(filter, coll.Schema); err != nil {
		return nil, err
	}
	switch {
	case count && w.limit >= 0:
		return nil, apierr.Milvus(apierr.QueryCountPaginated)
	case !count && filter == "" && w.limit < 0:
		return nil, apierr.Milvus(apierr.QueryEmptyNoLimit)
	}
	parts, err := s.readPartitions(ctx, coll, req.GetPartitionNames(), apierr.QueryKeyPartitionNamed)
	if err != nil {
		return nil, err
	}
	load, err := s.loaded(ctx, coll, apierr.QueryNotLoaded)
	if err != nil {
		return nil, err
	}
	if parts, err = loadedPartitions(load, parts, coll); err != nil {
		return nil, err
	}
	parts = prune(coll, load, parts, filter)
	if isTrue(params["iterator"]) {
		return nil, apierr.New(apierr.ParameterInvalid, "query iterators are not served by Weir yet")
	}
	shard := querynode.ShardRequest{CollectionID: coll.ID, Partitions: parts, Filter: filter, Output: cols, IgnoreGrowing: isTrue(params["ignore_growing"]),
		Consistency: consistency(coll, req.GetUseDefaultConsistency(), req.GetConsistencyLevel(), req.GetGuaranteeTimestamp())}
	limit := -1
	if w.limit >= 0 {
		limit = w.limit + w.offset
	}
	results, err := s.queryShards(ctx, coll, shard, limit, count)
	if err != nil {
		return nil, err
	}
	defer releaseQuery(results)
	if count {
		var n int64
		for _, r := range results {
			n += r.Count
		}
		return &milvuspb.QueryResults{Status: apierr.OK(), CollectionName: coll.Name, OutputFields: []string{countStar},
			FieldsData: []*schemapb.FieldData{{
				Type: schemapb.DataType_Int64, FieldName: countStar,
				Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: []int64{n}}}}},
			}}}, nil
	}
	picks := mergeQuery(coll, results, w)
	recs := make([]arrow.RecordBatch, len(results))
	for i, r := range results {
		recs[i] = r.Fields
	}
	fields, err := takeFields(coll.Schema, recs, picks, dynKeys)
	if err != nil {
		return nil, err
	}
	return &milvuspb.QueryResults{Status: apierr.OK(), CollectionName: coll.Name, FieldsData: fields, OutputFields: outputNames(fields, dynKeys),
		PrimaryFieldName: schema.PrimaryKey(coll.Schema).GetName()}, nil
}

func (s *Service) queryShards(ctx context.Context, coll *meta.Collection, shard querynode.ShardRequest, limit int, count bool) ([]*querynode.QueryResult, error) {
	return fanOut(ctx, s, coll, func(ctx context.Context, ch string, node int64) (*querynode.QueryResult, error) {
		r := &querynode.QueryRequest{ShardRequest: shard, Limit: limit, Count: count}
		r.Channel = ch
		return s.nodes.Query(ctx, node, r)
	}, func(r *querynode.QueryResult) arrow.RecordBatch { return r.Fields })
}

func releaseQuery(results []*querynode.QueryResult) {
	for _, r := range results {
		if r != nil && r.Fields != nil {
			r.Fields.Release()
		}
	}
}

// mergeQuery merges the shards' rows in primary key order (a key lives on one channel, so
// shards never repeat one), skips offset and keeps limit.
func mergeQuery(coll *meta.Collection, results []*querynode.QueryResult, w queryWindow) []pick {
	strPK := schema.PrimaryKey(coll.Schema).GetDataType() == schemapb.DataType_VarChar
	type cand struct {
		k querynode.Hit
		p pick
	}
	var cands []cand
	for s, r := range results {
		for i, k := range r.Keys {
			cands = append(cands, cand{k, pick{s, i}})
		}
	}
	slices.SortFunc(cands, func(a, b cand) int {
		if strPK {
			return strings.Compare(a.k.StrKey, b.k.StrKey)
		}
		return cmp.Compare(a.k.IntKey, b.k.IntKey)
	})
	if w.limit >= 0 {
		cands = cands[min(w.offset, len(cands)):]
		cands = cands[:min(w.limit, len(cands))]
	}
	out := make([]pick, len(cands))
	for i, c := range cands {
		out[i] = c.p
	}
	return out
}

// MatchingKeys returns the primary keys of the rows filter matches in a loaded collection, at a
// Strong snapshot: what a delete by a filter other than `pk in [...]` deletes (Milvus queries
// the keys, then deletes them).
func (s *Service) MatchingKeys(ctx context.Context, coll *meta.Collection, filter string, partition int64) (ints []int64, strs []string, err error) {
	load, err := s.loaded(ctx, coll, apierr.QueryNotLoaded)
	if err != nil {
		return nil, nil, err
	}
	if s.nodes == nil {
		return nil, nil, apierr.New(apierr.ServiceNotReady, "no query node is connected to this proxy")
	}
	// As Milvus: the keys of the matching rows of the loaded partitions (of the one named).
	var parts []int64
	if partition > 0 {
		parts = []int64{partition}
	}
	if parts, err = loadedPartitions(load, parts, coll); err != nil {
		return nil, nil, err
	}
	shard := querynode.ShardRequest{CollectionID: coll.ID, Filter: filter, Partitions: prune(coll, load, parts, filter),
		Consistency: querynode.Consistency{Level: commonpb.ConsistencyLevel_Strong}}
	results, err := s.queryShards(ctx, coll, shard, -1, false)
	if err != nil {
		return nil, nil, err
	}
	defer releaseQuery(results)
	strPK := schema.PrimaryKey(coll.Schema).GetDataType() == schemapb.DataType_VarChar
	for _, r := range results {
		for _, k := range r.Keys {
			if strPK {
				strs = append(strs, k.StrKey)
			} else {
				ints = append(ints, k.IntKey)
			}
		}
	}
	if strPK && strs == nil {
		strs = []string{}
	}
	return ints, strs, nil
}
