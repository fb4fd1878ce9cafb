package readapi

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"google.golang.org/protobuf/proto"

	"github.com/weir-db/weir/internal/apierr"
	"github.com/weir-db/weir/internal/expr"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/metastore"
	"github.com/weir-db/weir/internal/querynode"
	"github.com/weir-db/weir/internal/schema"
	"github.com/weir-db/weir/internal/vindex"
	"github.com/weir-db/weir/internal/vsearch"
)

// MaxTopK is Milvus's quotaAndLimits.limits.topK (and nq, and the query result window).
const MaxTopK = 16384

// Search searches a loaded collection, with Milvus's checks in its proxy's order.
func (s *Service) Search(ctx context.Context, req *milvuspb.SearchRequest) (*milvuspb.SearchResults, error) {
	res, err := s.search(ctx, req)
	if err != nil {
		return &milvuspb.SearchResults{Status: apierr.Status(err)}, nil
	}
	return res, nil
}

// searchParams are a search's parameters from its search_params.
type searchParams struct {
	topK, offset  int
	metric        string
	anns          string
	round         int
	ignoreGrowing bool
	// index are the index's search parameters: the "params" object (ef, nprobe, ...).
	index map[string]any
}

func parseSearchParams(kvs []*commonpb.KeyValuePair) (searchParams, error) {
	p := searchParams{round: -1}
	m := map[string]string{}
	for _, kv := range kvs {
		m[kv.GetKey()] = kv.GetValue()
	}
	// Milvus reads topk (and offset) from the top level, else from the params JSON.
	var inner map[string]any
	if raw := m["params"]; raw != "" {
		// Numbers as written, as knowhere reads them: 64.0 is not an integer, 1000000 is not 1e+06.
		d := json.NewDecoder(strings.NewReader(raw))
		d.UseNumber()
		_ = d.Decode(&inner)
	}
	get := func(k string) (string, bool) {
		if v, ok := m[k]; ok {
			return v, true
		}
		if v, ok := inner[k]; ok {
			return strings.Trim(strconv.Quote(toString(v)), `"`), true
		}
		return "", false
	}
	v, ok := get("topk")
	if !ok {
		return p, apierr.Milvus(apierr.TopKMissing)
	}
	k, err := strconv.ParseInt(v, 0, 64)
	if err != nil {
		return p, apierr.Milvus(apierr.TopKNotInt, v)
	}
	if k < 1 || k > MaxTopK {
		return p, apierr.Milvus(apierr.TopKRange, k, MaxTopK, k)
	}
	p.topK = int(k)
	if v, ok := get("offset"); ok {
		o, err := strconv.ParseInt(v, 0, 64)
		if err != nil {
			return p, apierr.Milvus(apierr.OffsetNotInt, v)
		}
		if o != 0 && (o < 1 || o > MaxTopK) {
			return p, apierr.Milvus(apierr.OffsetRange, o, MaxTopK, o)
		}
		p.offset = int(o)
	}
	if sum := p.topK + p.offset; sum > MaxTopK {
		return p, apierr.Milvus(apierr.OffsetTopKRange, sum, MaxTopK, sum)
	}
	if v, ok := m["round_decimal"]; ok {
		r, err := strconv.ParseInt(v, 0, 64)
		if err != nil || (r != -1 && (r < 0 || r > 6)) {
			return p, apierr.Milvus(apierr.RoundDecimalInvalid, v)
		}
		p.round = int(r)
	}
	p.metric = m["metric_type"]
	p.anns = m["anns_field"]
	p.index = inner
	p.ignoreGrowing = isTrue(m["ignore_growing"])
	// What Weir does not serve yet is refused, not ignored: an answer that looks right but
	// is not what was asked for would be worse.
	for _, k := range []string{"radius", "range_filter"} {
		if _, ok := inner[k]; ok {
			return p, apierr.New(apierr.ParameterInvalid, "range search (%s) is not served by Weir yet", k)
		}
	}
	if g := m["group_by_field"]; g != "" {
		return p, apierr.New(apierr.ParameterInvalid, "grouping search (group_by_field %q) is not served by Weir yet", g)
	}
	for _, k := range []string{"iterator", "search_iter_v2", "search_iter_batch_size", "search_iter_last_bound", "search_iter_id"} {
		if isTrue(m[k]) {
			return p, apierr.New(apierr.ParameterInvalid, "search iterators (%s) are not served by Weir yet", k)
		}
	}
	return p, nil
}

// isTrue reads a boolean parameter as Milvus does (strconv.ParseBool: pymilvus sends "True").
func isTrue(v string) bool {
	b, err := strconv.ParseBool(v)
	return err == nil && b
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case json.Number:
		return x.String()
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// loaded returns the collection's load record, or the not-loaded error notLoaded builds.
func (s *Service) loaded(ctx context.Context, coll *meta.Collection, notLoaded apierr.Text) (*meta.Load, error) {
	l, err := s.catalog.GetLoad(ctx, coll.ID)
	if errors.Is(err, metastore.ErrNotFound) {
		return nil, apierr.Milvus(notLoaded, coll.ID)
	}
	return l, err
}

// readPartitions resolves a read's partition names (every loaded partition when none), with
// Milvus's texts; a named partition that is not loaded is refused too.
func (s *Service) readPartitions(ctx context.Context, coll *meta.Collection, names []string, keyNamed apierr.Text) ([]int64, error) {
	if len(names) == 0 {
		return nil, nil
	}
	if coll.KeyPartitions > 0 {
		return nil, apierr.Milvus(keyNamed)
	}
	return s.namedPartitions(ctx, coll, names, apierr.SearchPartitionMissing)
}

// outputFields resolves output field names as Milvus does: "*" is every field (the dynamic
// field's JSON included), a name not in the schema is a key of the dynamic field when the
// collection has one. It returns the columns to fetch and the dynamic keys asked for (nil:
// the whole dynamic field).
func outputFields(sch *schemapb.CollectionSchema, names []string, addPK bool) (cols, dynKeys []string, err error) {
	want := map[string]bool{}
	all := false
	wholeDynamic := false
	for _, n := range names {
		n = strings.TrimSpace(n)
		switch {
		case n == "*":
			all = true
		case n == "$meta" && sch.GetEnableDynamicField():
			wholeDynamic = true
		case fieldNamed(sch, n) != nil:
			want[n] = true
		case sch.GetEnableDynamicField():
			dynKeys = append(dynKeys, n)
		default:
			return nil, nil, apierr.Milvus(apierr.OutputFieldMissing, n)
		}
	}
	for _, f := range sch.GetFields() {
		if all || want[f.GetName()] || (addPK && f.GetIsPrimaryKey()) {
			cols = append(cols, f.GetName())
		}
	}
	if sch.GetEnableDynamicField() && (all || wholeDynamic || len(dynKeys) > 0) {
		cols = append(cols, "$meta")
		if all || wholeDynamic {
			dynKeys = nil
		}
	}
	return cols, dynKeys, nil
}

// consistency resolves a request's consistency: the collection's level when it asks for the
// default (as the Go SDK does unless told otherwise).
func consistency(coll *meta.Collection, useDefault bool, level commonpb.ConsistencyLevel, guarantee uint64) querynode.Consistency {
	if useDefault {
		level = commonpb.ConsistencyLevel(coll.ConsistencyLevel)
	}
	return querynode.Consistency{Level: level, GuaranteeTs: guarantee}
}

// annsField picks the searched field: the one named, else the collection's only vector field.
func annsField(sch *schemapb.CollectionSchema, name string) (*schemapb.FieldSchema, error) {
	if name != "" {
		f := fieldNamed(sch, name)
		if f == nil {
			return nil, apierr.Milvus(apierr.AnnsFieldMissing, name)
		}
		if !schema.IsVector(f.GetDataType()) {
			return nil, apierr.Milvus(apierr.AnnsFieldNotVector, name)
		}
		return f, nil
	}
	var vecs []*schemapb.FieldSchema
	for _, f := range sch.GetFields() {
		if schema.IsVector(f.GetDataType()) {
			vecs = append(vecs, f)
		}
	}
	if len(vecs) > 1 {
		return nil, apierr.Milvus(apierr.AnnsFieldAmbiguous)
	}
	return vecs[0], nil
}

func parseFilter(filter string, sch *schemapb.CollectionSchema) error {
	if strings.TrimSpace(filter) == "" {
		return nil
	}
	if _, err := expr.Parse(filter, sch); err != nil {
		return apierr.Milvus(apierr.ExprParse, filter, err.Error())
	}
	return nil
}

func (s *Service) search(ctx context.Context, req *milvuspb.SearchRequest) (*milvuspb.SearchResults, error) {
	if s.nodes == nil {
		return nil, apierr.New(apierr.ServiceNotReady, "no query node is connected to this proxy")
	}
	coll, err := s.lookup(ctx, req.GetDbName(), req.GetCollectionName())
	if err != nil {
		return nil, err
	}
	if len(req.GetSubReqs()) > 0 || req.GetFunctionScore() != nil {
		return nil, apierr.New(apierr.ParameterInvalid, "Weir does not serve hybrid searches or function scores yet")
	}
	if len(req.GetExprTemplateValues()) > 0 {
		return nil, apierr.New(apierr.ParameterInvalid, "expression templates are not supported by Weir; write the values into the filter")
	}
	parts, err := s.readPartitions(ctx, coll, req.GetPartitionNames(), apierr.SearchKeyPartitionNamed)
	if err != nil {
		return nil, err
	}
	cols, dynKeys, err := outputFields(coll.Schema, req.GetOutputFields(), true)
	if err != nil {
		return nil, err
	}
	var group commonpb.PlaceholderGroup
	if err := proto.Unmarshal(req.GetPlaceholderGroup(), &group); err != nil {
		return nil, apierr.New(apierr.ParameterInvalid, "placeholder group: %v", err)
	}
	nq := 0
	if len(group.GetPlaceholders()) > 0 {
		nq = len(group.GetPlaceholders()[0].GetValues())
	}
	if nq < 1 || nq > MaxTopK {
		return nil, apierr.Milvus(apierr.NqRange, nq, MaxTopK, nq)
	}
	sp, err := parseSearchParams(req.GetSearchParams())
	if err != nil {
		return nil, err
	}
	field, err := annsField(coll.Schema, sp.anns)
	if err != nil {
		return nil, err
	}
	if err := parseFilter(req.GetDsl(), coll.Schema); err != nil {
		return nil, err
	}
	load, err := s.loaded(ctx, coll, apierr.SearchNotLoaded)
	if err != nil {
		return nil, err
	}
	parts, err = loadedPartitions(load, parts, coll)
	if err != nil {
		return nil, err
	}
	parts = prune(coll, load, parts, req.GetDsl())
	idxParams, err := s.indexParams(ctx, coll, field)
	if err != nil {
		return nil, err
	}
	idxMetric := idxParams[keyMetricType]
	if field.GetDataType() != schemapb.DataType_FloatVector || group.GetPlaceholders()[0].GetType() != commonpb.PlaceholderType_FloatVector {
		return nil, apierr.New(apierr.ParameterInvalid, "Weir searches float vector fields with float vectors for now; field %q is %s", field.GetName(), field.GetDataType())
	}
	metric := sp.metric
	if metric == "" {
		metric = idxMetric
	}
	// Milvus checks the vectors and the metric on the query node, and names it.
	node := s.someNode(ctx, coll)
	dim, _ := strconv.Atoi(schema.Param(field, schema.KeyDim))
	vectors := make([][]float32, nq)
	for i, v := range group.GetPlaceholders()[0].GetValues() {
		if len(v) != 4*dim {
			return nil, apierr.Milvus(apierr.SearchDimMismatch, node, node, 4*dim, len(v))
		}
		vec := make([]float32, dim)
		for j := range vec {
			vec[j] = math.Float32frombits(binary.LittleEndian.Uint32(v[4*j:]))
		}
		vectors[i] = vec
	}
	if !strings.EqualFold(metric, idxMetric) {
		return nil, apierr.Milvus(apierr.SearchMetricMismatch, node, node, idxMetric, metric)
	}
	m, err := vsearch.ParseMetric(strings.ToUpper(idxMetric))
	if err != nil {
		return nil, apierr.New(apierr.ParameterInvalid, "%v", err)
	}
	// The index's search parameters, checked here as every segment's index would (Milvus checks
	// them on the query node and names it).
	if spec, err := vindex.ParseBuild(idxParams); err == nil {
		if _, err := vindex.ParseSearch(spec, sp.index, sp.topK+sp.offset); err != nil {
			return nil, apierr.Milvus(apierr.SearchParamInvalid, node, node, err.Error())
		}
	}
	shard := querynode.ShardRequest{CollectionID: coll.ID, Partitions: parts, Filter: req.GetDsl(), Output: cols, IgnoreGrowing: sp.ignoreGrowing,
		Consistency: consistency(coll, req.GetUseDefaultConsistency(), req.GetConsistencyLevel(), req.GetGuaranteeTimestamp())}
	results, err := fanOut(ctx, s, coll, func(ctx context.Context, ch string, node int64) (*querynode.SearchResult, error) {
		r := &querynode.SearchRequest{ShardRequest: shard, FieldID: field.GetFieldID(), Metric: string(m), Vectors: vectors, K: sp.topK + sp.offset, Params: sp.index}
		r.Channel = ch
		return s.nodes.Search(ctx, node, r)
	}, func(r *querynode.SearchResult) arrow.RecordBatch { return r.Fields })
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, r := range results {
			if r != nil && r.Fields != nil {
				r.Fields.Release()
			}
		}
	}()
	data, err := mergeSearch(coll, m, sp, nq, results, dynKeys)
	if err != nil {
		return nil, err
	}
	data.OutputFields = outputNames(data.FieldsData, dynKeys)
	return &milvuspb.SearchResults{Status: apierr.OK(), Results: data, CollectionName: coll.Name}, nil
}

// loadedPartitions checks that the partitions a read names are loaded, and names the loaded
// ones when it names none and only some are loaded.
func loadedPartitions(l *meta.Load, parts []int64, coll *meta.Collection) ([]int64, error) {
	if l.Whole() {
		return parts, nil
	}
	if len(parts) == 0 {
		return l.Partitions, nil
	}
	for _, p := range parts {
		if !l.Covers(p) {
			return nil, apierr.Milvus(apierr.PartitionNotLoadedID, p)
		}
	}
	return parts, nil
}

// indexParams are the flattened parameters of the index on field.
func (s *Service) indexParams(ctx context.Context, coll *meta.Collection, f *schemapb.FieldSchema) (map[string]string, error) {
	idxs, err := s.catalog.ListIndexes(ctx, coll.ID)
	if err != nil {
		return nil, err
	}
	for _, idx := range idxs {
		if idx.FieldID == f.GetFieldID() {
			return flatten(fromParams(idx.Params))
		}
	}
	return nil, apierr.Milvus(apierr.LoadNoIndex, "["+f.GetName()+"]")
}

// roundScore rounds as Milvus's segcore does: half away from zero, in float32.
func roundScore(v float32, decimals int) float32 {
	if decimals < 0 {
		return v
	}
	m := math.Pow(10, float64(decimals))
	return float32(math.Round(float64(v)*m) / m)
}

// mergeSearch merges the shards' hits per query: best first (ties by smaller key), one row per
// key, offset skipped, topk kept; and gathers the output columns of the rows kept.
func mergeSearch(coll *meta.Collection, m vsearch.Metric, sp searchParams, nq int, results []*querynode.SearchResult, dynKeys []string) (*schemapb.SearchResultData, error) {
	type cand struct {
		hit   querynode.Hit
		shard int
		row   int
	}
	strPK := schema.PrimaryKey(coll.Schema).GetDataType() == schemapb.DataType_VarChar
	data := &schemapb.SearchResultData{NumQueries: int64(nq), TopK: int64(sp.topK), PrimaryFieldName: schema.PrimaryKey(coll.Schema).GetName()}
	var ints []int64
	var strs []string
	var picks []pick
	base := make([]int, len(results)) // each shard's first row of the current query
	for q := range nq {
		var cands []cand
		for s, r := range results {
			if q >= len(r.Hits) {
				continue
			}
			for i, h := range r.Hits[q] {
				h.Score = roundScore(h.Score, sp.round)
				cands = append(cands, cand{h, s, base[s] + i})
			}
			base[s] += len(r.Hits[q])
		}
		slices.SortStableFunc(cands, func(a, b cand) int {
			if a.hit.Score != b.hit.Score {
				if (a.hit.Score > b.hit.Score) == m.Larger() {
					return -1
				}
				return 1
			}
			if strPK {
				return strings.Compare(a.hit.StrKey, b.hit.StrKey)
			}
			return cmp.Compare(a.hit.IntKey, b.hit.IntKey)
		})
		seen := map[querynode.Hit]bool{}
		n, skipped := 0, 0
		for _, c := range cands {
			k := querynode.Hit{IntKey: c.hit.IntKey, StrKey: c.hit.StrKey}
			if seen[k] {
				continue
			}
			seen[k] = true
			if skipped < sp.offset {
				skipped++
				continue
			}
			if n == sp.topK {
				break
			}
			n++
			data.Scores = append(data.Scores, c.hit.Score)
			if strPK {
				strs = append(strs, c.hit.StrKey)
			} else {
				ints = append(ints, c.hit.IntKey)
			}
			picks = append(picks, pick{c.shard, c.row})
		}
		data.Topks = append(data.Topks, int64(n))
	}
	if strPK {
		data.Ids = &schemapb.IDs{IdField: &schemapb.IDs_StrId{StrId: &schemapb.StringArray{Data: strs}}}
	} else {
		data.Ids = &schemapb.IDs{IdField: &schemapb.IDs_IntId{IntId: &schemapb.LongArray{Data: ints}}}
	}
	recs := make([]arrow.RecordBatch, len(results))
	for i, r := range results {
		recs[i] = r.Fields
	}
	fields, err := takeFields(coll.Schema, recs, picks, dynKeys)
	if err != nil {
		return nil, err
	}
	data.FieldsData = fields
	return data, nil
}
