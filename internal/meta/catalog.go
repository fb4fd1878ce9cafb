package meta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/weir-db/weir/internal/apierr"
	"github.com/weir-db/weir/internal/metastore"
)

// Store is the part of the metastore the catalog uses.
type Store interface {
	Get(ctx context.Context, key string) (metastore.KV, error)
	Range(ctx context.Context, prefix string, opts ...metastore.RangeOption) ([]metastore.KV, int64, error)
	Txn(ctx context.Context, cmps []metastore.Cmp, ops []metastore.Op) (int64, error)
}

// Names and limits shared with Milvus clients.
const (
	DefaultDatabase  = "default"
	DefaultPartition = "_default"
	MaxCollections   = 65536 // Milvus rootCoord.maxCollectionNum... per cluster
	MaxPartitions    = 1024  // Milvus rootCoord.maxPartitionNum
)

// State is the lifecycle state of a collection or partition record.
type State string

// Records are Created until dropped; Dropped records stay until garbage collection has removed
// what they describe.
const (
	Created State = "created"
	Dropped State = "dropped"
)

// Collection is a collection's catalog record.
type Collection struct {
	ID               int64
	DB               string
	Name             string
	Schema           *schemapb.CollectionSchema // normalised (see package schema)
	Shards           int
	VChannels        []string // one DML channel per shard, in shard order
	ConsistencyLevel int32
	CreatedAt        time.Time
	State            State
	DroppedAt        time.Time
	// CollectedAt is when garbage collection finished removing a dropped collection's
	// channels, files and segment meta (zero until then).
	CollectedAt time.Time
	// KeyPartitions is the partition count of a collection with a partition key, 0 for any
	// other. Its partitions are KeyPartitionName(i) with ID FirstKeyPartition+i, fixed for the
	// collection's life and described by this record alone (see keyPartitions).
	KeyPartitions     int
	FirstKeyPartition int64
}

// Partition is a partition's catalog record.
type Partition struct {
	ID           int64     `json:"id"`
	CollectionID int64     `json:"collection_id"`
	Name         string    `json:"name"`
	CreatedAt    time.Time `json:"created_at"`
	State        State     `json:"state"`
	DroppedAt    time.Time `json:"dropped_at,omitzero"`
}

// collectionRecord is Collection's stored form: JSON, with the schema as protobuf JSON so that
// `weir inspect` and etcdctl show it readably.
type collectionRecord struct {
	ID                int64           `json:"id"`
	DB                string          `json:"db"`
	Name              string          `json:"name"`
	Schema            json.RawMessage `json:"schema"`
	Shards            int             `json:"shards"`
	VChannels         []string        `json:"vchannels"`
	ConsistencyLevel  int32           `json:"consistency_level"`
	CreatedAt         time.Time       `json:"created_at"`
	State             State           `json:"state"`
	DroppedAt         time.Time       `json:"dropped_at,omitzero"`
	CollectedAt       time.Time       `json:"collected_at,omitzero"`
	KeyPartitions     int             `json:"key_partitions,omitempty"`
	FirstKeyPartition int64           `json:"first_key_partition,omitempty"`
}

func encodeCollection(c *Collection) ([]byte, error) {
	s, err := protojson.Marshal(c.Schema)
	if err != nil {
		return nil, fmt.Errorf("meta: encode schema of collection %d: %w", c.ID, err)
	}
	return json.Marshal(collectionRecord{
		ID: c.ID, DB: c.DB, Name: c.Name, Schema: s, Shards: c.Shards, VChannels: c.VChannels,
		ConsistencyLevel: c.ConsistencyLevel, CreatedAt: c.CreatedAt, State: c.State, DroppedAt: c.DroppedAt,
		CollectedAt: c.CollectedAt, KeyPartitions: c.KeyPartitions, FirstKeyPartition: c.FirstKeyPartition,
	})
}

func decodeCollection(b []byte) (*Collection, error) {
	var r collectionRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("meta: decode collection: %w", err)
	}
	s := &schemapb.CollectionSchema{}
	if err := protojson.Unmarshal(r.Schema, s); err != nil {
		return nil, fmt.Errorf("meta: decode schema of collection %d: %w", r.ID, err)
	}
	return &Collection{
		ID: r.ID, DB: r.DB, Name: r.Name, Schema: s, Shards: r.Shards, VChannels: r.VChannels,
		ConsistencyLevel: r.ConsistencyLevel, CreatedAt: r.CreatedAt, State: r.State, DroppedAt: r.DroppedAt,
		CollectedAt: r.CollectedAt, KeyPartitions: r.KeyPartitions, FirstKeyPartition: r.FirstKeyPartition,
	}, nil
}

// VChannelName is the DML channel of shard i of collection id.
func VChannelName(collectionID int64, shard int) string {
	return fmt.Sprintf("dml_%d_v%d", collectionID, shard)
}

// Catalog reads and changes collections and partitions in the metastore.
type Catalog struct {
	kv     Store
	keys   keys
	ids    *IDAllocator
	now    func() time.Time
	logger *slog.Logger
}

// NewCatalog returns a catalog over kv under root, allocating IDs from ids.
func NewCatalog(kv Store, root string, ids *IDAllocator, logger *slog.Logger) *Catalog {
	return &Catalog{kv: kv, keys: keys{root}, ids: ids, now: time.Now, logger: logger}
}

// CreateCollection stores a new collection and its default partition, or, when KeyPartitions is
// set (a collection with a partition key), its KeyPartitions partitions. c.Schema must be
// normalised; ID, VChannels, CreatedAt, State and FirstKeyPartition are filled in. When a live
// collection of that name already exists, nothing is written and the existing record is
// returned with exists == true: the caller decides whether the request matches it.
func (c *Catalog) CreateCollection(ctx context.Context, coll *Collection) (_ *Collection, exists bool, err error) {
	nameKey := c.keys.collectionName(coll.DB, coll.Name)
	if existing, err := c.GetCollectionByName(ctx, coll.DB, coll.Name); err == nil {
		return existing, true, nil
	} else if apierr.KindOf(err) != apierr.CollectionNotFound {
		return nil, false, err
	}
	live, _, err := c.kv.Range(ctx, c.keys.root+"/meta/collection-names/", metastore.WithKeysOnly())
	if err != nil {
		return nil, false, fmt.Errorf("count collections: %w", err)
	}
	if len(live) >= MaxCollections {
		return nil, false, apierr.Milvus(apierr.CollectionLimit, coll.DB, MaxCollections).With("the cluster has %d collections", len(live))
	}

	if coll.KeyPartitions < 0 || coll.KeyPartitions > MaxPartitions {
		return nil, false, fmt.Errorf("meta: collection %q with %d partitions, want 0..%d", coll.Name, coll.KeyPartitions, MaxPartitions)
	}
	// The collection's ID, then its partitions' IDs, consecutive as in Milvus.
	first, err := c.ids.Alloc(ctx, 1+max(1, int64(coll.KeyPartitions)))
	if err != nil {
		return nil, false, apierr.Wrap(apierr.Unavailable, err, "allocate collection id")
	}
	out := *coll
	out.ID, out.State, out.CreatedAt = first, Created, c.now().UTC()
	out.VChannels = make([]string, out.Shards)
	for i := range out.VChannels {
		out.VChannels[i] = VChannelName(out.ID, i)
	}
	if out.KeyPartitions > 0 {
		out.FirstKeyPartition = first + 1
	}
	rec, err := encodeCollection(&out)
	if err != nil {
		return nil, false, err
	}
	id := []byte(strconv.FormatInt(out.ID, 10))
	ops := []metastore.Op{metastore.Put(nameKey, id), metastore.Put(c.keys.collection(out.ID), rec)}
	// A collection with a partition key gets no partition keys: its record names its
	// partitions (keyPartitions), since up to 1024 of them could not each have keys written in
	// the one transaction that creates the collection (etcd takes 128 operations). Any other
	// collection gets its default partition.
	if out.KeyPartitions == 0 {
		part := Partition{ID: first + 1, CollectionID: out.ID, Name: DefaultPartition, CreatedAt: out.CreatedAt, State: Created}
		prec, err := json.Marshal(part)
		if err != nil {
			return nil, false, err
		}
		ops = append(ops,
			metastore.Put(c.keys.partition(out.ID, part.ID), prec),
			metastore.Put(c.keys.partitionName(out.ID, part.Name), []byte(strconv.FormatInt(part.ID, 10))))
	}
	_, err = c.kv.Txn(ctx, []metastore.Cmp{metastore.KeyAbsent(nameKey)}, ops)
	if errors.Is(err, metastore.ErrPredicateFailed) {
		// Another request created the name between our read and our write.
		existing, gerr := c.GetCollectionByName(ctx, coll.DB, coll.Name)
		if gerr != nil {
			return nil, false, gerr
		}
		return existing, true, nil
	}
	if err != nil {
		return nil, false, writeErr(err, "create collection %q", coll.Name)
	}
	return &out, false, nil
}

// writeErr classifies a metastore write error for the client. An unknown outcome is reported
// as retriable: the write may have happened, and every catalog write is safe to repeat.
func writeErr(err error, format string, args ...any) error {
	return apierr.Wrap(apierr.Unavailable, err, format, args...)
}

// GetCollectionByName returns the live collection called name in database db.
func (c *Catalog) GetCollectionByName(ctx context.Context, db, name string) (*Collection, error) {
	kv, err := c.kv.Get(ctx, c.keys.collectionName(db, name))
	if errors.Is(err, metastore.ErrNotFound) {
		return nil, apierr.Milvus(apierr.NoCollection, db, name)
	}
	if err != nil {
		return nil, apierr.Wrap(apierr.Unavailable, err, "read collection %q", name)
	}
	id, err := strconv.ParseInt(string(kv.Value), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("meta: corrupt collection name key %s: %w", kv.Key, err)
	}
	coll, _, err := c.getCollection(ctx, id)
	if err != nil {
		return nil, err
	}
	return coll, nil
}

// GetCollection returns the collection with the given ID, live or dropped.
func (c *Catalog) GetCollection(ctx context.Context, id int64) (*Collection, error) {
	coll, _, err := c.getCollection(ctx, id)
	return coll, err
}

func (c *Catalog) getCollection(ctx context.Context, id int64) (*Collection, int64, error) {
	kv, err := c.kv.Get(ctx, c.keys.collection(id))
	if errors.Is(err, metastore.ErrNotFound) {
		return nil, 0, apierr.Milvus(apierr.NoCollectionID, id)
	}
	if err != nil {
		return nil, 0, apierr.Wrap(apierr.Unavailable, err, "read collection %d", id)
	}
	coll, err := decodeCollection(kv.Value)
	if err != nil {
		return nil, 0, err
	}
	return coll, kv.ModRevision, nil
}

// ListCollections returns the live collections of database db in name order.
func (c *Catalog) ListCollections(ctx context.Context, db string) ([]*Collection, error) {
	names, rev, err := c.kv.Range(ctx, c.keys.collectionNames(db))
	if err != nil {
		return nil, apierr.Wrap(apierr.Unavailable, err, "list collections")
	}
	if len(names) == 0 {
		return nil, nil
	}
	// Read the records at the same revision as the names, so a concurrent drop cannot make
	// the two disagree.
	recs, _, err := c.kv.Range(ctx, c.keys.collections(), metastore.AtRevision(rev))
	if err != nil {
		return nil, apierr.Wrap(apierr.Unavailable, err, "list collections")
	}
	byID := make(map[string][]byte, len(recs))
	for _, kv := range recs {
		byID[strings.TrimPrefix(kv.Key, c.keys.collections())] = kv.Value
	}
	out := make([]*Collection, 0, len(names))
	for _, kv := range names {
		rec, ok := byID[string(kv.Value)]
		if !ok {
			return nil, fmt.Errorf("meta: collection name %s names missing record %s", kv.Key, kv.Value)
		}
		coll, err := decodeCollection(rec)
		if err != nil {
			return nil, err
		}
		out = append(out, coll)
	}
	return out, nil
}

// DropCollection marks the live collection called name as Dropped, frees its name and
// releases its channels: their lease and epoch keys go in the same transaction, so no data node
// write for the collection (every one is fenced by a channel's lease) can land after the drop,
// and the channels' pipelines stop at their next lease check. Its records stay for garbage
// collection.
func (c *Catalog) DropCollection(ctx context.Context, db, name string) (*Collection, error) {
	nameKey := c.keys.collectionName(db, name)
	coll, err := c.GetCollectionByName(ctx, db, name)
	if err != nil {
		return nil, err
	}
	coll.State, coll.DroppedAt = Dropped, c.now().UTC()
	rec, err := encodeCollection(coll)
	if err != nil {
		return nil, err
	}
	ops := []metastore.Op{
		metastore.Delete(nameKey),
		metastore.Put(c.keys.collection(coll.ID), rec),
		metastore.DeletePrefix(c.keys.partitionNames(coll.ID)),
		// Index definitions go with the collection, as in Milvus.
		metastore.DeletePrefix(c.keys.indexes(coll.ID)),
		metastore.DeletePrefix(c.keys.indexNames(coll.ID)),
		metastore.DeletePrefix(c.keys.segmentIndexes(coll.ID)),
		metastore.DeletePrefix(c.keys.corruptIndexes(coll.ID)),
	}
	// Dropping a collection releases it: its query nodes stop serving it.
	ops = append(ops, c.releaseLoadOps(coll.ID)...)
	ops = append(ops, c.releaseOps(coll.VChannels)...)
	_, err = c.kv.Txn(ctx,
		[]metastore.Cmp{metastore.ValueEquals(nameKey, []byte(strconv.FormatInt(coll.ID, 10)))}, ops)
	if errors.Is(err, metastore.ErrPredicateFailed) {
		return nil, apierr.Milvus(apierr.NoCollection, db, name).With("dropped concurrently")
	}
	if err != nil {
		return nil, writeErr(err, "drop collection %q", name)
	}
	return coll, nil
}

// CreatePartition adds a partition to a live collection. Creating a partition that exists
// succeeds and returns it, so that a retried request is harmless.
func (c *Catalog) CreatePartition(ctx context.Context, collID int64, name string) (*Partition, error) {
	coll, rev, err := c.getCollection(ctx, collID)
	if err != nil {
		return nil, err
	}
	if coll.State != Created {
		return nil, apierr.Milvus(apierr.NoCollection, coll.DB, coll.Name).With("dropped")
	}
	if coll.KeyPartitions > 0 {
		// Fixed at creation: the record alone describes them.
		return nil, apierr.Milvus(apierr.KeyPartitionCreate)
	}
	parts, err := c.ListPartitions(ctx, collID)
	if err != nil {
		return nil, err
	}
	for _, p := range parts {
		if p.Name == name {
			return p, nil
		}
	}
	if len(parts) >= MaxPartitions {
		return nil, apierr.Milvus(apierr.PartitionLimit, len(parts), MaxPartitions, coll.Name)
	}
	id, err := c.ids.Alloc(ctx, 1)
	if err != nil {
		return nil, apierr.Wrap(apierr.Unavailable, err, "allocate partition id")
	}
	p := &Partition{ID: id, CollectionID: collID, Name: name, CreatedAt: c.now().UTC(), State: Created}
	rec, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	nameKey := c.keys.partitionName(collID, name)
	_, err = c.kv.Txn(ctx,
		[]metastore.Cmp{metastore.ModRevisionEquals(c.keys.collection(collID), rev), metastore.KeyAbsent(nameKey)},
		[]metastore.Op{metastore.Put(c.keys.partition(collID, id), rec), metastore.Put(nameKey, []byte(strconv.FormatInt(id, 10)))})
	if errors.Is(err, metastore.ErrPredicateFailed) {
		// The collection changed (dropped) or the name was taken meanwhile: decide again
		// from the current state.
		return c.CreatePartition(ctx, collID, name)
	}
	if err != nil {
		return nil, writeErr(err, "create partition %q", name)
	}
	return p, nil
}

// ListPartitions returns the live partitions of a collection in ID (creation) order.
func (c *Catalog) ListPartitions(ctx context.Context, collID int64) ([]*Partition, error) {
	names, rev, err := c.kv.Range(ctx, c.keys.partitionNames(collID))
	if err != nil {
		return nil, apierr.Wrap(apierr.Unavailable, err, "list partitions")
	}
	// A collection with a partition key has the partitions its record names, whatever name
	// keys there are: a process of an earlier release may have added one (it sees no
	// partitions), and that must not hide them.
	if keyed, err := c.keyPartitions(ctx, collID, rev); err != nil || keyed != nil || len(names) == 0 {
		return keyed, err
	}
	live := make(map[int64]bool, len(names))
	for _, kv := range names {
		id, err := strconv.ParseInt(string(kv.Value), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("meta: corrupt partition name key %s: %w", kv.Key, err)
		}
		live[id] = true
	}
	recs, _, err := c.kv.Range(ctx, c.keys.partitions(collID), metastore.AtRevision(rev))
	if err != nil {
		return nil, apierr.Wrap(apierr.Unavailable, err, "list partitions")
	}
	var out []*Partition
	for _, kv := range recs {
		p := &Partition{}
		if err := json.Unmarshal(kv.Value, p); err != nil {
			return nil, fmt.Errorf("meta: decode partition %s: %w", kv.Key, err)
		}
		if live[p.ID] {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b *Partition) int { return cmpInt(a.ID, b.ID) })
	return out, nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// DropPartition marks a partition Dropped and frees its name. The default partition cannot be
// dropped.
func (c *Catalog) DropPartition(ctx context.Context, collID int64, name string) error {
	if name == DefaultPartition {
		return apierr.Milvus(apierr.PartitionDefaultDrop)
	}
	nameKey := c.keys.partitionName(collID, name)
	kv, err := c.kv.Get(ctx, nameKey)
	if errors.Is(err, metastore.ErrNotFound) {
		return apierr.Milvus(apierr.NoPartition, name)
	}
	if err != nil {
		return apierr.Wrap(apierr.Unavailable, err, "read partition %q", name)
	}
	id, err := strconv.ParseInt(string(kv.Value), 10, 64)
	if err != nil {
		return fmt.Errorf("meta: corrupt partition name key %s: %w", kv.Key, err)
	}
	pkv, err := c.kv.Get(ctx, c.keys.partition(collID, id))
	if err != nil {
		return apierr.Wrap(apierr.Unavailable, err, "read partition %q", name)
	}
	p := &Partition{}
	if err := json.Unmarshal(pkv.Value, p); err != nil {
		return fmt.Errorf("meta: decode partition %s: %w", pkv.Key, err)
	}
	p.State, p.DroppedAt = Dropped, c.now().UTC()
	rec, err := json.Marshal(p)
	if err != nil {
		return err
	}
	_, err = c.kv.Txn(ctx,
		[]metastore.Cmp{metastore.ModRevisionEquals(nameKey, kv.ModRevision)},
		[]metastore.Op{metastore.Delete(nameKey), metastore.Put(pkv.Key, rec)})
	if errors.Is(err, metastore.ErrPredicateFailed) {
		return apierr.Milvus(apierr.NoPartition, name).With("dropped concurrently")
	}
	if err != nil {
		return writeErr(err, "drop partition %q", name)
	}
	return nil
}

// ListCollectionRecords returns every collection record, live or dropped, in ID order: what the
// coordinator assigns channels for and garbage-collects.
func (c *Catalog) ListCollectionRecords(ctx context.Context) ([]*Collection, error) {
	kvs, _, err := c.kv.Range(ctx, c.keys.collections())
	if err != nil {
		return nil, fmt.Errorf("list collection records: %w", err)
	}
	out := make([]*Collection, 0, len(kvs))
	for _, kv := range kvs {
		coll, err := decodeCollection(kv.Value)
		if err != nil {
			return nil, err
		}
		out = append(out, coll)
	}
	slices.SortFunc(out, func(a, b *Collection) int { return cmpInt(a.ID, b.ID) })
	return out, nil
}

// MarkCollected records that garbage collection removed everything of dropped collection id
// but its record, so that later rounds skip it.
func (c *Catalog) MarkCollected(ctx context.Context, id int64) error {
	coll, rev, err := c.getCollection(ctx, id)
	if err != nil {
		return err
	}
	if coll.State != Dropped {
		return fmt.Errorf("meta: mark collection %d collected: it is %s", id, coll.State)
	}
	coll.CollectedAt = c.now().UTC()
	rec, err := encodeCollection(coll)
	if err != nil {
		return err
	}
	_, err = c.kv.Txn(ctx, []metastore.Cmp{metastore.ModRevisionEquals(c.keys.collection(id), rev)},
		[]metastore.Op{metastore.Put(c.keys.collection(id), rec)})
	if err != nil {
		return fmt.Errorf("mark collection %d collected: %w", id, err)
	}
	return nil
}

// DeleteSegmentMeta removes segment records and their file records, after garbage collection
// deleted the files they name. Each transaction stays within etcd's limits.
func (c *Catalog) DeleteSegmentMeta(ctx context.Context, segs []Segment) error {
	var ops []metastore.Op
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		_, err := c.kv.Txn(ctx, nil, ops)
		ops = ops[:0]
		return err
	}
	for _, s := range segs {
		if len(ops)+2 > metastore.MaxTxnOps {
			if err := flush(); err != nil {
				return fmt.Errorf("delete segment meta: %w", err)
			}
		}
		ops = append(ops, metastore.Delete(c.keys.segment(s.CollectionID, s.ID)), metastore.DeletePrefix(c.keys.segmentFiles(s.CollectionID, s.ID)))
	}
	if err := flush(); err != nil {
		return fmt.Errorf("delete segment meta: %w", err)
	}
	return nil
}
