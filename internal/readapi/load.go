package readapi

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"

	"github.com/weir-db/weir/internal/apierr"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/metastore"
	"github.com/weir-db/weir/internal/querynode"
	"github.com/weir-db/weir/internal/schema"
)

// QueryNodes reaches the query nodes: which are live, and their searches and queries.
type QueryNodes interface {
	Live(ctx context.Context) ([]int64, error)
	Search(ctx context.Context, node int64, req *querynode.SearchRequest) (*querynode.SearchResult, error)
	Query(ctx context.Context, node int64, req *querynode.QueryRequest) (*querynode.QueryResult, error)
}

// SetQueryNodes connects the service to the query nodes; until then loads and reads fail.
func (s *Service) SetQueryNodes(q QueryNodes) { s.nodes = q }

// LoadCollection records that the whole collection is loaded, with its replica count; the
// coordinator assigns its shards and query nodes load them. It returns at once, as Milvus
// does: clients poll GetLoadState or GetLoadingProgress.
func (s *Service) LoadCollection(ctx context.Context, req *milvuspb.LoadCollectionRequest) (*commonpb.Status, error) {
	coll, err := s.lookup(ctx, req.GetDbName(), req.GetCollectionName())
	if err != nil {
		return apierr.Status(err), nil
	}
	return apierr.Status(s.load(ctx, coll, req.GetReplicaNumber(), nil)), nil
}

// LoadPartitions records that the named partitions are loaded (added to those already).
func (s *Service) LoadPartitions(ctx context.Context, req *milvuspb.LoadPartitionsRequest) (*commonpb.Status, error) {
	coll, err := s.lookup(ctx, req.GetDbName(), req.GetCollectionName())
	if err != nil {
		return apierr.Status(err), nil
	}
	if len(req.GetPartitionNames()) == 0 {
		return apierr.Status(apierr.New(apierr.ParameterInvalid, "load partitions: no partition named")), nil
	}
	parts, err := s.partitionIDs(ctx, coll, req.GetPartitionNames())
	if err != nil {
		return apierr.Status(err), nil
	}
	return apierr.Status(s.load(ctx, coll, req.GetReplicaNumber(), parts)), nil
}

// load writes the load record: the whole collection when parts is nil, else parts added to the
// partitions loaded already.
func (s *Service) load(ctx context.Context, coll *meta.Collection, replicas int32, parts []int64) error {
	if s.nodes == nil {
		return apierr.New(apierr.ServiceNotReady, "no query node is connected to this proxy")
	}
	for range 5 {
		st, err := s.catalog.ReadLoad(ctx, coll.ID)
		if err != nil {
			return err
		}
		if err := checkIndexed(st); err != nil {
			return err
		}
		want := int(max(replicas, 1))
		if replicas <= 0 && st.Load != nil {
			want = st.Load.Replicas
		}
		if st.Load != nil && st.Load.Replicas != want && parts != nil {
			return apierr.Milvus(apierr.LoadReplicaChange, st.Load.Replicas, want)
		}
		if st.Load == nil {
			// Milvus checks the node count at the first load only; a later change of the
			// replica number waits for nodes.
			live, err := s.nodes.Live(ctx)
			if err != nil {
				return apierr.Wrap(apierr.Unavailable, err, "list query nodes")
			}
			if want > len(live) {
				return apierr.Milvus(apierr.LoadNotEnoughNodes, want, len(live), want)
			}
		}
		l := &meta.Load{Replicas: want}
		switch {
		case st.Load == nil:
			l.Partitions = parts
		case st.Load.Whole() && st.Load.Replicas == want:
			return nil // loaded already: nothing more to load
		case st.Load.Whole():
			// A LoadCollection with another replica number changes the load, as in Milvus.
		case parts == nil:
			// The whole collection, after some partitions: every partition now.
		default:
			l.Partitions = slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(st.Load.Partitions), parts...))))
			if len(l.Partitions) == len(st.Load.Partitions) {
				return nil
			}
		}
		if st.Load != nil {
			l.CreatedAt = st.Load.CreatedAt
		}
		err = s.catalog.SaveLoad(ctx, st, l)
		if !errors.Is(err, meta.ErrLoadConflict) {
			return err
		}
	}
	return apierr.New(apierr.Unavailable, "load collection %q: it keeps changing", coll.Name)
}

// checkIndexed refuses a load of a collection with a vector field that has no index, with
// Milvus's text.
func checkIndexed(st *meta.LoadState) error {
	indexed := map[int64]bool{}
	for _, idx := range st.Indexes {
		indexed[idx.FieldID] = true
	}
	var missing []string
	for _, f := range st.Collection.Schema.GetFields() {
		if schema.IsVector(f.GetDataType()) && !indexed[f.GetFieldID()] {
			missing = append(missing, f.GetName())
		}
	}
	switch {
	case len(missing) > 0 && len(st.Indexes) == 0:
		return apierr.Milvus(apierr.LoadNoIndexAtAll, st.Collection.Name)
	case len(missing) > 0:
		return apierr.Milvus(apierr.LoadNoIndex, "["+strings.Join(missing, " ")+"]")
	}
	return nil
}

// partitionIDs resolves partition names of a collection, with Milvus's text for an unknown one.
func (s *Service) partitionIDs(ctx context.Context, coll *meta.Collection, names []string) ([]int64, error) {
	return s.namedPartitions(ctx, coll, names, apierr.NoPartition)
}

// namedPartitions resolves partition names, refusing an unknown one with the text missing.
func (s *Service) namedPartitions(ctx context.Context, coll *meta.Collection, names []string, missing apierr.Text) ([]int64, error) {
	parts, err := s.catalog.ListPartitions(ctx, coll.ID)
	if err != nil {
		return nil, err
	}
	byName := map[string]int64{}
	for _, p := range parts {
		byName[p.Name] = p.ID
	}
	out := make([]int64, 0, len(names))
	for _, n := range names {
		id, ok := byName[n]
		if !ok {
			return nil, apierr.Milvus(missing, n)
		}
		out = append(out, id)
	}
	return out, nil
}

// ReleaseCollection deletes the load record and the collection's shard assignments; query
// nodes stop serving it at their next check. Releasing a collection not loaded succeeds.
func (s *Service) ReleaseCollection(ctx context.Context, req *milvuspb.ReleaseCollectionRequest) (*commonpb.Status, error) {
	coll, err := s.lookup(ctx, req.GetDbName(), req.GetCollectionName())
	if err != nil {
		return apierr.Status(err), nil
	}
	return apierr.Status(s.release(ctx, coll, nil)), nil
}

// ReleasePartitions removes partitions from the load; releasing the last loaded partition
// releases the collection.
func (s *Service) ReleasePartitions(ctx context.Context, req *milvuspb.ReleasePartitionsRequest) (*commonpb.Status, error) {
	coll, err := s.lookup(ctx, req.GetDbName(), req.GetCollectionName())
	if err != nil {
		return apierr.Status(err), nil
	}
	if len(req.GetPartitionNames()) == 0 {
		return apierr.Status(apierr.New(apierr.ParameterInvalid, "release partitions: no partition named")), nil
	}
	parts, err := s.partitionIDs(ctx, coll, req.GetPartitionNames())
	if err != nil {
		return apierr.Status(err), nil
	}
	return apierr.Status(s.release(ctx, coll, parts)), nil
}

func (s *Service) release(ctx context.Context, coll *meta.Collection, parts []int64) error {
	for range 5 {
		st, err := s.catalog.ReadLoad(ctx, coll.ID)
		if err != nil {
			return err
		}
		if st.Load == nil {
			return nil
		}
		if parts == nil {
			err = s.catalog.Release(ctx, st)
		} else {
			keep := st.Load.Partitions
			if st.Load.Whole() {
				all, err := s.catalog.ListPartitions(ctx, coll.ID)
				if err != nil {
					return err
				}
				keep = nil
				for _, p := range all {
					keep = append(keep, p.ID)
				}
			}
			keep = slices.DeleteFunc(slices.Clone(keep), func(id int64) bool { return slices.Contains(parts, id) })
			if len(keep) == 0 {
				err = s.catalog.Release(ctx, st)
			} else {
				l := *st.Load
				l.Partitions = keep
				err = s.catalog.SaveLoad(ctx, st, &l)
			}
		}
		if !errors.Is(err, meta.ErrLoadConflict) {
			return err
		}
	}
	return apierr.New(apierr.Unavailable, "release collection %q: it keeps changing", coll.Name)
}

// progress is how far a collection's load has come: the percentage of its shards' replicas
// loaded (a shard in progress counts its own percentage), and whether every one serves.
type progress struct {
	loaded  bool // a load record exists
	percent int64
	serving bool
	load    *meta.Load
	// failure is why a shard's load failed, when one did.
	failure string
}

func (s *Service) progress(ctx context.Context, coll *meta.Collection) (progress, error) {
	l, err := s.catalog.GetLoad(ctx, coll.ID)
	if errors.Is(err, metastore.ErrNotFound) {
		return progress{}, nil
	}
	if err != nil {
		return progress{}, err
	}
	assigned, err := s.catalog.ListShardAssignments(ctx, coll.ID)
	if err != nil {
		return progress{}, err
	}
	states, err := s.catalog.ListShardStates(ctx, coll.ID)
	if err != nil {
		return progress{}, err
	}
	current := map[string]int64{}
	for _, a := range assigned {
		current[fmt.Sprintf("%s/%d", a.Channel, a.Replica)] = a.ModRevision
	}
	got := map[string]meta.ShardState{}
	for _, st := range states {
		k := fmt.Sprintf("%s/%d", st.Channel, st.Replica)
		if current[k] == st.Assignment {
			got[k] = st
		}
	}
	p := progress{loaded: true, serving: true, load: l}
	for _, st := range got {
		if st.Error != "" && !st.Serving {
			p.failure = fmt.Sprintf("load of channel %s on query node %d failed: %s", st.Channel, st.NodeID, st.Error)
		}
	}
	total := len(coll.VChannels) * max(l.Replicas, 1)
	sum := 0
	for _, ch := range coll.VChannels {
		for r := range max(l.Replicas, 1) {
			st, ok := got[fmt.Sprintf("%s/%d", ch, r)]
			switch {
			case ok && st.Serving:
				sum += 100
			case ok:
				sum += min(st.Progress, 99)
				p.serving = false
			default:
				p.serving = false
			}
		}
	}
	p.percent = int64(sum / max(total, 1))
	if p.serving {
		p.percent = 100
	}
	return p, nil
}

// GetLoadState reports NotLoad, Loading or Loaded for a collection or some of its partitions.
func (s *Service) GetLoadState(ctx context.Context, req *milvuspb.GetLoadStateRequest) (*milvuspb.GetLoadStateResponse, error) {
	coll, err := s.lookup(ctx, req.GetDbName(), req.GetCollectionName())
	if apierr.KindOf(err) == apierr.CollectionNotFound {
		return &milvuspb.GetLoadStateResponse{Status: apierr.OK(), State: commonpb.LoadState_LoadStateNotExist}, nil
	}
	if err != nil {
		return &milvuspb.GetLoadStateResponse{Status: apierr.Status(err)}, nil
	}
	parts, err := s.partitionIDs(ctx, coll, req.GetPartitionNames())
	if err != nil {
		return &milvuspb.GetLoadStateResponse{Status: apierr.Status(err)}, nil
	}
	p, err := s.progress(ctx, coll)
	if err != nil {
		return &milvuspb.GetLoadStateResponse{Status: apierr.Status(err)}, nil
	}
	state := commonpb.LoadState_LoadStateNotLoad
	switch {
	case !p.loaded || !coversAll(p.load, parts):
	case p.serving:
		state = commonpb.LoadState_LoadStateLoaded
	default:
		state = commonpb.LoadState_LoadStateLoading
	}
	return &milvuspb.GetLoadStateResponse{Status: apierr.OK(), State: state}, nil
}

func coversAll(l *meta.Load, parts []int64) bool {
	for _, p := range parts {
		if !l.Covers(p) {
			return false
		}
	}
	return true
}

// GetLoadingProgress reports the percentage loaded.
func (s *Service) GetLoadingProgress(ctx context.Context, req *milvuspb.GetLoadingProgressRequest) (*milvuspb.GetLoadingProgressResponse, error) {
	coll, err := s.lookup(ctx, req.GetDbName(), req.GetCollectionName())
	if err != nil {
		return &milvuspb.GetLoadingProgressResponse{Status: apierr.Status(err)}, nil
	}
	parts, err := s.partitionIDs(ctx, coll, req.GetPartitionNames())
	if err != nil {
		return &milvuspb.GetLoadingProgressResponse{Status: apierr.Status(err)}, nil
	}
	p, err := s.progress(ctx, coll)
	if err != nil {
		return &milvuspb.GetLoadingProgressResponse{Status: apierr.Status(err)}, nil
	}
	if !p.loaded || !coversAll(p.load, parts) {
		return &milvuspb.GetLoadingProgressResponse{Status: apierr.Status(apierr.Milvus(apierr.CollectionNotLoadedID, coll.ID))}, nil
	}
	if p.failure != "" {
		return &milvuspb.GetLoadingProgressResponse{Status: apierr.Status(apierr.Milvus(apierr.LoadFailed, p.failure, coll.ID))}, nil
	}
	return &milvuspb.GetLoadingProgressResponse{Status: apierr.OK(), Progress: p.percent, RefreshProgress: p.percent}, nil
}

// LoadPercent reports a collection's load percentage, whether every shard serves, and whether
// it is loaded at all, for ShowCollections.
func (s *Service) LoadPercent(ctx context.Context, coll *meta.Collection) (percent int64, serving, loaded bool, err error) {
	p, err := s.progress(ctx, coll)
	return p.percent, p.loaded && p.serving, p.loaded, err
}

// PartitionLoaded reports whether the collection's partition called name is loaded (false for a
// partition that does not exist).
func (s *Service) PartitionLoaded(ctx context.Context, coll *meta.Collection, name string) (bool, error) {
	l, err := s.catalog.GetLoad(ctx, coll.ID)
	if errors.Is(err, metastore.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	ids, err := s.partitionIDs(ctx, coll, []string{name})
	if apierr.KindOf(err) == apierr.PartitionNotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return l.Covers(ids[0]), nil
}
