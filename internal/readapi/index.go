// Package readapi serves the read path's part of Milvus's MilvusService: index definitions now
// (index type FLAT: exact search, nothing to build); loading, search and query as they arrive.
// The proxy embeds a Service, so that the read path grows here and not in package proxy.
package readapi

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/weir-db/weir/internal/apierr"
	"github.com/weir-db/weir/internal/indexbuild"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/metastore"
	"github.com/weir-db/weir/internal/schema"
	"github.com/weir-db/weir/internal/vindex"
)

// Catalog is what the read path's API needs of the metastore.
type Catalog interface {
	CreateIndex(ctx context.Context, idx *meta.Index) (*meta.Index, bool, error)
	ListIndexes(ctx context.Context, collID int64) ([]*meta.Index, error)
	DropIndex(ctx context.Context, collID, fieldID int64) error
	ListSegments(ctx context.Context, coll int64) ([]*meta.Segment, error)
	ListPartitions(ctx context.Context, collID int64) ([]*meta.Partition, error)
	ListSegmentIndexes(ctx context.Context, coll int64) ([]*meta.SegmentIndex, error)
	ListLeases(ctx context.Context) (map[string]meta.Lease, error)

	ReadLoad(ctx context.Context, collID int64) (*meta.LoadState, error)
	SaveLoad(ctx context.Context, st *meta.LoadState, l *meta.Load) error
	Release(ctx context.Context, st *meta.LoadState) error
	GetLoad(ctx context.Context, collID int64) (*meta.Load, error)
	ListShardAssignments(ctx context.Context, coll int64) ([]meta.ShardAssignment, error)
	ListShardStates(ctx context.Context, coll int64) ([]meta.ShardState, error)
}

// Lookup resolves a request's live collection from its database and name, with Milvus's texts
// for a missing one (the proxy's own lookup).
type Lookup func(ctx context.Context, db, name string) (*meta.Collection, error)

// Service serves the read path's methods; the others answer Unimplemented.
type Service struct {
	milvuspb.UnimplementedMilvusServiceServer
	catalog Catalog
	lookup  Lookup
	nodes   QueryNodes
	routes  *routes
}

// New returns a Service over catalog, resolving collections with lookup.
func New(catalog Catalog, lookup Lookup) *Service {
	return &Service{catalog: catalog, lookup: lookup, routes: newRoutes()}
}

// Index types. Weir builds FLAT (exact search, nothing to build), HNSW, IVF_FLAT and IVF_SQ8
// (package vindex; AUTOINDEX is HNSW); the others Milvus knows are refused until Weir has them,
// with an error that names what it has.
const (
	Flat      = "FLAT"
	AutoIndex = "AUTOINDEX"
)

// comingTypes are the index types of Milvus 2.6 that Weir does not build yet.
var comingTypes = map[string]bool{
	"HNSW_SQ": true, "HNSW_PQ": true, "HNSW_PRQ": true, "IVF_PQ": true, "IVF_RABITQ": true, "SCANN": true, "DISKANN": true, "BIN_FLAT": true,
	"BIN_IVF_FLAT": true, "SPARSE_INVERTED_INDEX": true, "SPARSE_WAND": true, "INVERTED": true, "STL_SORT": true,
	"TRIE": true, "Trie": true, "BITMAP": true, "RTREE": true, "NGRAM": true, "MINHASH_LSH": true,
}

// Metrics of Milvus's index checker, by the kind of vector a field holds.
var (
	floatMetrics  = []string{"L2", "IP", "COSINE"}
	binaryMetrics = []string{"HAMMING", "JACCARD", "SUBSTRUCTURE", "SUPERSTRUCTURE", "MHJACCARD"}
	sparseMetrics = []string{"IP", "BM25"}
)

const (
	keyIndexType  = "index_type"
	keyMetricType = "metric_type"
	keyParams     = "params"
	keyDim        = "dim"
)

// CreateIndex defines an index on a field, with Milvus 2.6's checks in its order (proxy
// createIndexTask, then datacoord's CreateIndex). A repeated create of the same index succeeds
// and changes nothing.
func (s *Service) CreateIndex(ctx context.Context, req *milvuspb.CreateIndexRequest) (*commonpb.Status, error) {
	return apierr.Status(s.createIndex(ctx, req)), nil
}

func (s *Service) createIndex(ctx context.Context, req *milvuspb.CreateIndexRequest) error {
	coll, err := s.lookup(ctx, req.GetDbName(), req.GetCollectionName())
	if err != nil {
		return err
	}
	if err := validateIndexName(req.GetIndexName()); err != nil {
		return err
	}
	f := fieldNamed(coll.Schema, req.GetFieldName())
	if f == nil {
		if !coll.Schema.GetEnableDynamicField() {
			return apierr.Milvus(apierr.IndexFieldMissing, req.GetFieldName())
		}
		// Milvus indexes an unknown name as a key of the dynamic field, a JSON field.
		f = &schemapb.FieldSchema{Name: req.GetFieldName(), DataType: schemapb.DataType_JSON}
	}
	params, err := flatten(req.GetExtraParams())
	if err != nil {
		return err
	}
	if err := checkIndex(f, params); err != nil {
		return err
	}

	existing, err := s.catalog.ListIndexes(ctx, coll.ID)
	if err != nil {
		return err
	}
	want := &meta.Index{CollectionID: coll.ID, FieldID: f.GetFieldID(), Name: req.GetIndexName(), Params: toParams(req.GetExtraParams())}
	if typ := params[keyIndexType]; typ == "" || typ == AutoIndex {
		// Milvus keeps an AUTOINDEX as its type and metric (the metric COSINE when none was
		// given), and describes it so.
		want.Params = []meta.Param{{Key: keyIndexType, Value: AutoIndex}, {Key: keyMetricType, Value: cmp.Or(params[keyMetricType], string(vindex.DefaultMetric))}}
	}
	if want.Name == "" {
		// The field's own name, or the name of the index it has (datacoord's defaults).
		want.Name = f.GetName()
		for _, idx := range existing {
			if idx.FieldID == f.GetFieldID() {
				want.Name = idx.Name
			}
		}
	}
	if done, err := sameOrConflicting(existing, want); done || err != nil {
		return err
	}
	created, exists, err := s.catalog.CreateIndex(ctx, want)
	if err != nil {
		return err
	}
	if exists {
		// Another request defined the field's index meanwhile.
		_, err := sameOrConflicting([]*meta.Index{created}, want)
		return err
	}
	return nil
}

// sameOrConflicting applies datacoord's rules to want and the collection's indexes: the same
// index again is done (nothing to write), another one on its name or field a conflict.
func sameOrConflicting(existing []*meta.Index, want *meta.Index) (done bool, err error) {
	for _, idx := range existing {
		switch {
		case idx.Name == want.Name && idx.FieldID == want.FieldID && sameParams(idx.Params, want.Params):
			return true, nil
		case idx.Name == want.Name:
			return true, apierr.Milvus(apierr.IndexDistinct)
		case idx.FieldID == want.FieldID:
			return true, apierr.Milvus(apierr.IndexMultiple)
		}
	}
	return false, nil
}

// sameParams compares parameters as Milvus does: the same key-value pairs, in any order.
func sameParams(a, b []meta.Param) bool {
	if len(a) != len(b) {
		return false
	}
	for _, p := range a {
		if !slices.Contains(b, p) {
			return false
		}
	}
	return true
}

// validateIndexName checks an index name as Milvus does (surrounding spaces ignored; empty is
// the default name): after the first character, '[' and ']' are allowed too.
func validateIndexName(name string) error {
	name = strings.TrimSpace(name)
	if name == "" {
		return nil
	}
	switch schema.CheckName(name, false, "[]") {
	case schema.NameTooLong:
		return apierr.Milvus(apierr.IndexNameLength, name, schema.MaxNameLength)
	case schema.NameFirst:
		return apierr.Milvus(apierr.IndexNameFirst, name)
	case schema.NameChars:
		return apierr.Milvus(apierr.IndexNameChars, name)
	}
	return nil
}

func fieldNamed(s *schemapb.CollectionSchema, name string) *schemapb.FieldSchema {
	for _, f := range s.GetFields() {
		if f.GetName() == name {
			return f
		}
	}
	return nil
}

// flatten reads an index's parameters as Milvus does: each key once, and the entries of a
// "params" JSON object as keys of their own.
func flatten(kvs []*commonpb.KeyValuePair) (map[string]string, error) {
	out := map[string]string{}
	seen := map[string]bool{}
	for _, kv := range kvs {
		k, v := kv.GetKey(), kv.GetValue()
		if seen[k] {
			return nil, apierr.Milvus(apierr.IndexParamDuplicated, k, v)
		}
		seen[k] = true
		if k != keyParams {
			out[k] = v
			continue
		}
		var m map[string]any
		d := json.NewDecoder(strings.NewReader(v))
		d.UseNumber() // numbers as written: 1000000 stays 1000000, not 1e+06
		if err := d.Decode(&m); err != nil {
			return nil, apierr.Milvus(apierr.IndexParamsJSON, err)
		}
		for pk, pv := range m {
			out[pk] = fmt.Sprintf("%v", pv)
		}
	}
	return out, nil
}

// checkIndex checks an index of the flattened params on field f as Milvus's index checker does,
// in its order, for the types Weir builds: FLAT, HNSW, IVF_FLAT and IVF_SQ8 on float vectors,
// and AUTOINDEX, which is HNSW (M=18, efConstruction=240) as open-source Milvus maps it on CPU.
func checkIndex(f *schemapb.FieldSchema, params map[string]string) error {
	typ, given := params[keyIndexType]
	dt := f.GetDataType()
	vector := schema.IsVector(dt)
	switch {
	case given && typ == "":
		return apierr.Milvus(apierr.IndexTypeEmpty)
	case typ == "" || typ == AutoIndex:
		if !vector {
			return notYet(AutoIndex)
		}
		for k := range params {
			if k != keyMetricType && k != keyIndexType {
				return apierr.Milvus(apierr.IndexAutoOnlyMetric)
			}
		}
		if _, ok := params[keyMetricType]; !ok {
			params = maps.Clone(params)
			params[keyMetricType] = string(vindex.DefaultMetric) // Milvus's default for float vectors
		}
	case comingTypes[typ]:
		return notYet(typ)
	case !builds[typ]:
		return apierr.Milvus(apierr.IndexTypeInvalid, typ)
	}
	if !vector {
		return apierr.Milvus(apierr.IndexVectorOnly, cmp.Or(typ, AutoIndex))
	}
	// The metric for the kind of vector, then the data type, then the dimension.
	metric, ok := params[keyMetricType]
	if !ok {
		return apierr.Milvus(apierr.IndexMetricMissing)
	}
	switch dt {
	case schemapb.DataType_BinaryVector:
		if !slices.Contains(binaryMetrics, metric) {
			return apierr.Milvus(apierr.IndexMetricUnsupported, "binary", metric)
		}
	case schemapb.DataType_SparseFloatVector:
		if !slices.Contains(sparseMetrics, metric) {
			return apierr.Milvus(apierr.IndexSparseMetric)
		}
	case schemapb.DataType_Int8Vector:
		if !slices.Contains(floatMetrics, metric) {
			return apierr.Milvus(apierr.IndexMetricUnsupported, "int", metric)
		}
	default:
		if !slices.Contains(floatMetrics, metric) {
			return apierr.Milvus(apierr.IndexMetricUnsupported, "float", metric)
		}
	}
	switch dt {
	case schemapb.DataType_BinaryVector, schemapb.DataType_SparseFloatVector:
		return apierr.Milvus(apierr.IndexDataType, dt, cmp.Or(typ, AutoIndex))
	}
	if given, ok := params[keyDim]; ok {
		if want := schema.Param(f, schema.KeyDim); given != want {
			return apierr.Milvus(apierr.IndexDimMismatch, want, given)
		}
	}
	if typ == Flat {
		return nil
	}
	if dt != schemapb.DataType_FloatVector {
		return apierr.New(apierr.ParameterInvalid, "index type %s on %s fields is not built by Weir yet; it builds them on FloatVector fields", cmp.Or(typ, AutoIndex), dt)
	}
	// knowhere's ranges of the type's parameters.
	if _, err := vindex.ParseBuild(params); err != nil {
		return apierr.Milvus(apierr.IndexParamInvalid, err.Error())
	}
	return nil
}

// builds are the index types Weir builds (besides AUTOINDEX).
var builds = map[string]bool{Flat: true, string(vindex.HNSW): true, string(vindex.IVFFlat): true, string(vindex.IVFSQ8): true}

func notYet(typ string) error {
	return apierr.New(apierr.ParameterInvalid, "index type %s is not supported by Weir yet; it builds FLAT, HNSW, IVF_FLAT, IVF_SQ8 and AUTOINDEX on float vector fields", typ)
}

func toParams(kvs []*commonpb.KeyValuePair) []meta.Param {
	out := make([]meta.Param, 0, len(kvs))
	for _, kv := range kvs {
		out = append(out, meta.Param{Key: kv.GetKey(), Value: kv.GetValue()})
	}
	return out
}

func fromParams(ps []meta.Param) []*commonpb.KeyValuePair {
	out := make([]*commonpb.KeyValuePair, 0, len(ps))
	for _, p := range ps {
		out = append(out, &commonpb.KeyValuePair{Key: p.Key, Value: p.Value})
	}
	return out
}

// named returns the collection's indexes called name, or all of them when name is empty.
func (s *Service) named(ctx context.Context, coll *meta.Collection, name string) ([]*meta.Index, error) {
	all, err := s.catalog.ListIndexes(ctx, coll.ID)
	if err != nil {
		return nil, err
	}
	if name == "" {
		return all, nil
	}
	return slices.DeleteFunc(all, func(idx *meta.Index) bool { return idx.Name != name }), nil
}

// buildProgress is an index's build progress as Milvus's datacoord reports it: the rows of the
// collection's flushed segments, those indexed (a segment with its index record, or too small to
// get one: searched exactly, as Milvus's "fake finished" segments), and its state: Finished when
// every flushed segment is indexed (also with none), InProgress otherwise. A FLAT index has
// nothing to build: every committed row is indexed.
type buildProgress struct {
	indexed, total, pending int64
	state                   commonpb.IndexState
}

func (s *Service) buildProgress(ctx context.Context, coll *meta.Collection, idx *meta.Index) (buildProgress, error) {
	segs, err := s.catalog.ListSegments(ctx, coll.ID)
	if err != nil {
		return buildProgress{}, err
	}
	p := buildProgress{state: commonpb.IndexState_Finished}
	if _, built := indexbuild.Needs(idx.Params); !built {
		for _, seg := range meta.LiveInsertSegments(segs) {
			p.total += seg.Rows
		}
		p.indexed = p.total
		return p, nil
	}
	recs, err := s.catalog.ListSegmentIndexes(ctx, coll.ID)
	if err != nil {
		return buildProgress{}, err
	}
	have := map[int64]bool{}
	for _, r := range recs {
		if r.IndexID == idx.ID {
			have[r.SegmentID] = true
		}
	}
	// A channel written through the coordinator (the legacy protocol, during a rolling upgrade)
	// gets no index builds: its segments are searched exactly, and count as indexed so that the
	// state can reach Finished.
	leases, err := s.catalog.ListLeases(ctx)
	if err != nil {
		return buildProgress{}, err
	}
	for _, seg := range segs {
		if seg.Level != meta.L1 || seg.State != meta.Flushed {
			continue
		}
		p.total += seg.Rows
		if have[seg.ID] || seg.Rows < indexbuild.MinRows || leases[seg.Channel].Legacy {
			p.indexed += seg.Rows
		} else {
			p.pending += seg.Rows
			p.state = commonpb.IndexState_InProgress
		}
	}
	return p, nil
}

// DescribeIndex describes the collection's index called index_name, or all of them (Milvus 2.6
// ignores field_name here): parameters as given, state Finished, every committed row indexed.
func (s *Service) DescribeIndex(ctx context.Context, req *milvuspb.DescribeIndexRequest) (*milvuspb.DescribeIndexResponse, error) {
	descs, err := s.describe(ctx, req.GetDbName(), req.GetCollectionName(), req.GetIndexName())
	return &milvuspb.DescribeIndexResponse{Status: apierr.Status(err), IndexDescriptions: descs}, nil
}

func (s *Service) describe(ctx context.Context, db, collName, name string) ([]*milvuspb.IndexDescription, error) {
	coll, err := s.lookup(ctx, db, collName)
	if err != nil {
		return nil, err
	}
	idxs, err := s.named(ctx, coll, name)
	if err != nil {
		return nil, err
	}
	if len(idxs) == 0 {
		if name == "" {
			return nil, apierr.Milvus(apierr.IndexNotFoundInCollection, coll.Name)
		}
		return nil, apierr.Milvus(apierr.IndexNotFoundByName, name)
	}
	out := make([]*milvuspb.IndexDescription, 0, len(idxs))
	for _, idx := range idxs {
		field := ""
		for _, f := range coll.Schema.GetFields() {
			if f.GetFieldID() == idx.FieldID {
				field = f.GetName()
			}
		}
		p, err := s.buildProgress(ctx, coll, idx)
		if err != nil {
			return nil, err
		}
		out = append(out, &milvuspb.IndexDescription{
			IndexName: idx.Name, IndexID: idx.ID, Params: fromParams(idx.Params), FieldName: field,
			IndexedRows: p.indexed, TotalRows: p.total, PendingIndexRows: p.pending, State: p.state,
		})
	}
	return out, nil
}

// DropIndex drops the collection's index called index_name (Milvus 2.6 ignores field_name);
// an empty name means the collection's only index, and a name that matches none succeeds.
func (s *Service) DropIndex(ctx context.Context, req *milvuspb.DropIndexRequest) (*commonpb.Status, error) {
	return apierr.Status(s.dropIndex(ctx, req)), nil
}

func (s *Service) dropIndex(ctx context.Context, req *milvuspb.DropIndexRequest) error {
	coll, err := s.lookup(ctx, req.GetDbName(), req.GetCollectionName())
	if err != nil {
		return err
	}
	idxs, err := s.named(ctx, coll, req.GetIndexName())
	if err != nil {
		return err
	}
	if req.GetIndexName() == "" && len(idxs) > 1 {
		return apierr.Milvus(apierr.IndexDuplicates, "")
	}
	if len(idxs) > 0 {
		// Milvus refuses to drop a vector index of a loaded collection (every index Weir
		// builds is on a vector field).
		if _, err := s.catalog.GetLoad(ctx, coll.ID); err == nil {
			return apierr.Milvus(apierr.IndexDropLoaded, coll.ID)
		} else if !errors.Is(err, metastore.ErrNotFound) {
			return err
		}
	}
	for _, idx := range idxs {
		if err := s.catalog.DropIndex(ctx, coll.ID, idx.FieldID); err != nil {
			return err
		}
	}
	return nil
}

// one returns the single index of the collection called name, with Milvus's texts for none or
// several, and its build progress.
func (s *Service) one(ctx context.Context, db, collName, name string) (buildProgress, error) {
	coll, err := s.lookup(ctx, db, collName)
	if err != nil {
		return buildProgress{}, err
	}
	idxs, err := s.named(ctx, coll, name)
	switch {
	case err != nil:
		return buildProgress{}, err
	case len(idxs) == 0:
		return buildProgress{}, apierr.Milvus(apierr.IndexNotFoundByName, name)
	case len(idxs) > 1:
		return buildProgress{}, apierr.Milvus(apierr.IndexDuplicates, name)
	}
	return s.buildProgress(ctx, coll, idxs[0])
}

// GetIndexState reports an index's state (see buildProgress).
func (s *Service) GetIndexState(ctx context.Context, req *milvuspb.GetIndexStateRequest) (*milvuspb.GetIndexStateResponse, error) {
	p, err := s.one(ctx, req.GetDbName(), req.GetCollectionName(), req.GetIndexName())
	if err != nil {
		return &milvuspb.GetIndexStateResponse{Status: apierr.Status(err)}, nil
	}
	return &milvuspb.GetIndexStateResponse{Status: apierr.OK(), State: p.state}, nil
}

// GetIndexBuildProgress reports an index's indexed and total rows (see buildProgress).
func (s *Service) GetIndexBuildProgress(ctx context.Context, req *milvuspb.GetIndexBuildProgressRequest) (*milvuspb.GetIndexBuildProgressResponse, error) {
	p, err := s.one(ctx, req.GetDbName(), req.GetCollectionName(), req.GetIndexName())
	if err != nil {
		return &milvuspb.GetIndexBuildProgressResponse{Status: apierr.Status(err)}, nil
	}
	return &milvuspb.GetIndexBuildProgressResponse{Status: apierr.OK(), IndexedRows: p.indexed, TotalRows: p.total}, nil
}
