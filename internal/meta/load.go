package meta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/weir-db/weir/internal/apierr"
	"github.com/weir-db/weir/internal/metastore"
)

// Load is the record of a loaded collection, written by LoadCollection or LoadPartitions and
// deleted by a release or a drop. Query nodes serve the channels of loaded collections; the
// proxy answers "not loaded" for collections without one.
type Load struct {
	CollectionID int64 `json:"collection_id"`
	Replicas     int   `json:"replicas"`
	// Partitions are the loaded partitions when only some are; empty means the whole
	// collection, its partitions created later included.
	Partitions []int64   `json:"partitions,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	// ModRevision is the record's metastore mod revision when read (not stored).
	ModRevision int64 `json:"-"`
}

// Whole reports whether the load covers every partition of the collection.
func (l *Load) Whole() bool { return len(l.Partitions) == 0 }

// Covers reports whether partition part is loaded.
func (l *Load) Covers(part int64) bool { return l.Whole() || slices.Contains(l.Partitions, part) }

// ShardAssignment gives one replica of one channel of a loaded collection to a query node. Its
// mod revision identifies the assignment: a query node reports its progress against it, and a
// report for an older assignment is refused.
type ShardAssignment struct {
	CollectionID int64     `json:"collection_id"`
	Channel      string    `json:"channel"`
	Replica      int       `json:"replica"`
	NodeID       int64     `json:"node_id"`
	AssignedAt   time.Time `json:"assigned_at"`
	ModRevision  int64     `json:"-"`
}

// ShardState is what a query node reports about a shard it was assigned.
type ShardState struct {
	CollectionID int64  `json:"collection_id"`
	Channel      string `json:"channel"`
	Replica      int    `json:"replica"`
	NodeID       int64  `json:"node_id"`
	// Assignment is the mod revision of the assignment this report is for.
	Assignment int64 `json:"assignment"`
	// Serving is true once the shard answers requests; Progress is the percentage loaded.
	Serving  bool `json:"serving"`
	Progress int  `json:"progress"`
	// Error is why the shard's load failed (it is retried), empty otherwise.
	Error     string    `json:"error,omitempty"`
	Rows      int64     `json:"rows"`
	UpdatedAt time.Time `json:"updated_at"`
}

func (k keys) loads() string { return k.root + "/meta/loads/" }

func (k keys) load(coll int64) string { return k.loads() + strconv.FormatInt(coll, 10) }

func (k keys) queryShards() string { return k.root + "/meta/query-shards/" }

func (k keys) collectionQueryShards(coll int64) string {
	return k.queryShards() + strconv.FormatInt(coll, 10) + "/"
}

func (k keys) queryShard(coll int64, ch string, replica int) string {
	return fmt.Sprintf("%s%s/%d", k.collectionQueryShards(coll), ch, replica)
}

func (k keys) shardStates() string { return k.root + "/meta/query-serving/" }

func (k keys) collectionShardStates(coll int64) string {
	return k.shardStates() + strconv.FormatInt(coll, 10) + "/"
}

func (k keys) shardState(coll int64, ch string, replica int) string {
	return fmt.Sprintf("%s%s/%d", k.collectionShardStates(coll), ch, replica)
}

// ErrLoadConflict reports a load that no longer matches what its writer read: the collection,
// its load record or one of its indexes changed meanwhile.
var ErrLoadConflict = errors.New("meta: load changed concurrently")

// LoadState is what a load decision reads: the live collection, its indexes and its current
// load record (nil when not loaded), each with the revision the write will compare.
type LoadState struct {
	Collection *Collection
	Indexes    []*Index
	Load       *Load
	collRev    int64
	indexRevs  map[string]int64
}

// ReadLoad reads the state a load or release of collection collID decides on.
func (c *Catalog) ReadLoad(ctx context.Context, collID int64) (*LoadState, error) {
	coll, rev, err := c.getCollection(ctx, collID)
	if err != nil {
		return nil, err
	}
	if coll.State != Created {
		return nil, apierr.Milvus(apierr.NoCollection, coll.DB, coll.Name).With("dropped")
	}
	st := &LoadState{Collection: coll, collRev: rev, indexRevs: map[string]int64{}}
	kvs, _, err := c.kv.Range(ctx, c.keys.indexes(collID))
	if err != nil {
		return nil, apierr.Wrap(apierr.Unavailable, err, "list indexes")
	}
	for _, kv := range kvs {
		idx, err := decodeIndex(kv.Value)
		if err != nil {
			return nil, err
		}
		st.Indexes = append(st.Indexes, idx)
		st.indexRevs[kv.Key] = kv.ModRevision
	}
	if st.Load, err = c.GetLoad(ctx, collID); err != nil && !errors.Is(err, metastore.ErrNotFound) {
		return nil, err
	}
	return st, nil
}

// SaveLoad writes l as the load record of the collection st was read for, if nothing st holds
// changed since: the collection is still the same live record, its indexes are the ones read
// (a load needs its vector fields indexed, and an index dropped meanwhile must fail it), and the
// load record is still the one read. Otherwise it returns ErrLoadConflict and writes nothing.
func (c *Catalog) SaveLoad(ctx context.Context, st *LoadState, l *Load) error {
	cmps := c.loadCmps(st)
	out := *l
	out.CollectionID = st.Collection.ID
	if out.CreatedAt.IsZero() {
		out.CreatedAt = c.now().UTC()
	}
	slices.Sort(out.Partitions)
	b, err := json.Marshal(&out)
	if err != nil {
		return err
	}
	return c.loadTxn(ctx, cmps, []metastore.Op{metastore.Put(c.keys.load(st.Collection.ID), b)})
}

// Release deletes the load record of the collection st was read for, with its shard
// assignments and states, if the record is still the one read.
func (c *Catalog) Release(ctx context.Context, st *LoadState) error {
	if st.Load == nil {
		return nil
	}
	return c.loadTxn(ctx, []metastore.Cmp{metastore.ModRevisionEquals(c.keys.load(st.Collection.ID), st.Load.ModRevision)},
		c.releaseLoadOps(st.Collection.ID))
}

// releaseLoadOps delete a collection's load record, shard assignments and shard states.
func (c *Catalog) releaseLoadOps(coll int64) []metastore.Op {
	return []metastore.Op{
		metastore.Delete(c.keys.load(coll)),
		metastore.DeletePrefix(c.keys.collectionQueryShards(coll)),
		metastore.DeletePrefix(c.keys.collectionShardStates(coll)),
	}
}

func (c *Catalog) loadCmps(st *LoadState) []metastore.Cmp {
	cmps := []metastore.Cmp{metastore.ModRevisionEquals(c.keys.collection(st.Collection.ID), st.collRev)}
	for key, rev := range st.indexRevs {
		cmps = append(cmps, metastore.ModRevisionEquals(key, rev))
	}
	loadKey := c.keys.load(st.Collection.ID)
	if st.Load == nil {
		cmps = append(cmps, metastore.KeyAbsent(loadKey))
	} else {
		cmps = append(cmps, metastore.ModRevisionEquals(loadKey, st.Load.ModRevision))
	}
	return cmps
}

func (c *Catalog) loadTxn(ctx context.Context, cmps []metastore.Cmp, ops []metastore.Op) error {
	_, err := c.kv.Txn(ctx, cmps, ops)
	if errors.Is(err, metastore.ErrPredicateFailed) {
		return ErrLoadConflict
	}
	if err != nil {
		return writeErr(err, "write load record")
	}
	return nil
}

// GetLoad returns the load record of a collection, or metastore.ErrNotFound when it is not
// loaded.
func (c *Catalog) GetLoad(ctx context.Context, collID int64) (*Load, error) {
	kv, err := c.kv.Get(ctx, c.keys.load(collID))
	if errors.Is(err, metastore.ErrNotFound) {
		return nil, err
	}
	if err != nil {
		return nil, apierr.Wrap(apierr.Unavailable, err, "read load record")
	}
	return decodeLoad(kv)
}

func decodeLoad(kv metastore.KV) (*Load, error) {
	l := &Load{}
	if err := json.Unmarshal(kv.Value, l); err != nil {
		return nil, fmt.Errorf("meta: decode load %s: %w", kv.Key, err)
	}
	l.ModRevision = kv.ModRevision
	return l, nil
}

// ListLoads returns every load record.
func (c *Catalog) ListLoads(ctx context.Context) ([]*Load, error) {
	kvs, _, err := c.kv.Range(ctx, c.keys.loads())
	if err != nil {
		return nil, apierr.Wrap(apierr.Unavailable, err, "list loads")
	}
	out := make([]*Load, 0, len(kvs))
	for _, kv := range kvs {
		l, err := decodeLoad(kv)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

// AssignShard writes a shard assignment, if the collection's load record is still the one at
// loadRev and the assignment is still the one at prev (0: none). A release or drop racing the
// assignment wins: nothing is written.
func (c *Catalog) AssignShard(ctx context.Context, a ShardAssignment, loadRev, prev int64) (int64, error) {
	a.AssignedAt = c.now().UTC()
	b, err := json.Marshal(&a)
	if err != nil {
		return 0, err
	}
	key := c.keys.queryShard(a.CollectionID, a.Channel, a.Replica)
	cmps := []metastore.Cmp{metastore.ModRevisionEquals(c.keys.load(a.CollectionID), loadRev)}
	if prev == 0 {
		cmps = append(cmps, metastore.KeyAbsent(key))
	} else {
		cmps = append(cmps, metastore.ModRevisionEquals(key, prev))
	}
	rev, err := c.kv.Txn(ctx, cmps, []metastore.Op{metastore.Put(key, b)})
	if errors.Is(err, metastore.ErrPredicateFailed) {
		return 0, ErrLoadConflict
	}
	if err != nil {
		return 0, fmt.Errorf("assign shard %s/%d: %w", a.Channel, a.Replica, err)
	}
	return rev, nil
}

// UnassignShard deletes a shard assignment (a replica no longer wanted), if it is still the one
// at rev.
func (c *Catalog) UnassignShard(ctx context.Context, a ShardAssignment) error {
	_, err := c.kv.Txn(ctx, []metastore.Cmp{metastore.ModRevisionEquals(c.keys.queryShard(a.CollectionID, a.Channel, a.Replica), a.ModRevision)},
		[]metastore.Op{metastore.Delete(c.keys.queryShard(a.CollectionID, a.Channel, a.Replica)),
			metastore.Delete(c.keys.shardState(a.CollectionID, a.Channel, a.Replica))})
	if errors.Is(err, metastore.ErrPredicateFailed) {
		return ErrLoadConflict
	}
	return err
}

// ListShardAssignments returns every shard assignment, of collection coll only when coll is
// not 0.
func (c *Catalog) ListShardAssignments(ctx context.Context, coll int64) ([]ShardAssignment, error) {
	prefix := c.keys.queryShards()
	if coll != 0 {
		prefix = c.keys.collectionQueryShards(coll)
	}
	kvs, _, err := c.kv.Range(ctx, prefix)
	if err != nil {
		return nil, apierr.Wrap(apierr.Unavailable, err, "list shard assignments")
	}
	out := make([]ShardAssignment, 0, len(kvs))
	for _, kv := range kvs {
		var a ShardAssignment
		if err := json.Unmarshal(kv.Value, &a); err != nil {
			return nil, fmt.Errorf("meta: decode shard assignment %s: %w", kv.Key, err)
		}
		a.ModRevision = kv.ModRevision
		out = append(out, a)
	}
	return out, nil
}

// ReportShard records a query node's state of a shard, if the shard is still assigned to it
// under s.Assignment: a node whose shard moved cannot report it serving.
func (c *Catalog) ReportShard(ctx context.Context, s ShardState) error {
	s.UpdatedAt = c.now().UTC()
	b, err := json.Marshal(&s)
	if err != nil {
		return err
	}
	_, err = c.kv.Txn(ctx, []metastore.Cmp{metastore.ModRevisionEquals(c.keys.queryShard(s.CollectionID, s.Channel, s.Replica), s.Assignment)},
		[]metastore.Op{metastore.Put(c.keys.shardState(s.CollectionID, s.Channel, s.Replica), b)})
	if errors.Is(err, metastore.ErrPredicateFailed) {
		return ErrLoadConflict
	}
	return err
}

// ListShardStates returns the shard states of collection coll (every collection for 0).
func (c *Catalog) ListShardStates(ctx context.Context, coll int64) ([]ShardState, error) {
	prefix := c.keys.shardStates()
	if coll != 0 {
		prefix = c.keys.collectionShardStates(coll)
	}
	kvs, _, err := c.kv.Range(ctx, prefix)
	if err != nil {
		return nil, apierr.Wrap(apierr.Unavailable, err, "list shard states")
	}
	out := make([]ShardState, 0, len(kvs))
	for _, kv := range kvs {
		if strings.HasSuffix(kv.Key, "/") {
			continue
		}
		var s ShardState
		if err := json.Unmarshal(kv.Value, &s); err != nil {
			return nil, fmt.Errorf("meta: decode shard state %s: %w", kv.Key, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// DroppedPartitions returns the IDs of a collection's dropped partitions: query nodes stop
// serving their rows, whose files stay until garbage collection.
func (c *Catalog) DroppedPartitions(ctx context.Context, collID int64) (map[int64]bool, error) {
	kvs, _, err := c.kv.Range(ctx, c.keys.partitions(collID))
	if err != nil {
		return nil, apierr.Wrap(apierr.Unavailable, err, "list partitions")
	}
	out := map[int64]bool{}
	for _, kv := range kvs {
		var p Partition
		if err := json.Unmarshal(kv.Value, &p); err != nil {
			return nil, fmt.Errorf("meta: decode partition %s: %w", kv.Key, err)
		}
		if p.State == Dropped {
			out[p.ID] = true
		}
	}
	return out, nil
}
