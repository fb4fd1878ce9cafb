package proxy

import (
	"context"
	"slices"
	"strconv"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"google.golang.org/protobuf/proto"

	"github.com/weir-db/weir/internal/apierr"
	"github.com/weir-db/weir/internal/dml"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/schema"
	"github.com/weir-db/weir/internal/tso"
)

// CreateCollection validates the schema, creates the collection's DML channels and stores the
// collection. A second create of the same name succeeds when the schema and shard count are
// the same, and fails otherwise, as in Milvus.
func (s *Server) CreateCollection(ctx context.Context, req *milvuspb.CreateCollectionRequest) (*commonpb.Status, error) {
	return apierr.Status(s.createCollection(ctx, req)), nil
}

func (s *Server) createCollection(ctx context.Context, req *milvuspb.CreateCollectionRequest) error {
	db, err := database(ctx, req.GetDbName())
	if err != nil {
		return err
	}
	in := &schemapb.CollectionSchema{}
	if err := proto.Unmarshal(req.GetSchema(), in); err != nil {
		return apierr.Milvus(apierr.PlainError, err) // Milvus answers with the decoder's words
	}
	// Collection properties (TTL, mmap, ...) are kept with the schema, so that Describe returns
	// them and a repeated create must match them too.
	in.Properties = append(in.Properties, req.GetProperties()...)
	// Milvus checks the shard count before the schema.
	shards, err := schema.Shards(req.GetShardsNum())
	if err != nil {
		return err
	}
	norm, err := schema.Normalize(req.GetCollectionName(), in)
	if err != nil {
		return err
	}
	if in.GetName() == "" {
		// Milvus validates the schema's name, which every SDK sets to the collection's.
		return apierr.Milvus(apierr.CollectionNameEmpty)
	}
	keyParts, err := schema.NumPartitions(norm, req.GetNumPartitions())
	if err != nil {
		return err
	}
	coll := &meta.Collection{
		DB: db, Name: req.GetCollectionName(), Schema: norm, Shards: shards,
		ConsistencyLevel: int32(req.GetConsistencyLevel()), KeyPartitions: keyParts,
	}
	created, exists, err := s.catalog.CreateCollection(ctx, coll)
	if err != nil {
		return err
	}
	if exists {
		if !schema.Equal(created.Schema, norm) {
			return apierr.Milvus(apierr.CollectionDifferent, coll.Name).With("%s", schema.Diff(created.Schema, norm))
		}
		if created.Shards != shards {
			return apierr.Milvus(apierr.CollectionDifferent, coll.Name).With("existing shards_num %d, requested %d", created.Shards, shards)
		}
		if created.KeyPartitions != keyParts {
			return apierr.Milvus(apierr.CollectionDifferent, coll.Name).With("existing num_partitions %d, requested %d", created.KeyPartitions, keyParts)
		}
		return nil
	}
	// The record is committed first and the channels created after: a crash in between
	// leaves a collection whose channels the next DDL or the data node creates (CreateChannel
	// is idempotent), never channels no record points to.
	for _, ch := range created.VChannels {
		if err := s.channels.CreateChannel(ctx, ch); err != nil {
			return apierr.Wrap(apierr.Unavailable, err, "create channel %s of collection %q", ch, coll.Name)
		}
	}
	s.logger.Info("collection created", "collection", coll.Name, "id", created.ID, "shards", shards, "key_partitions", keyParts)
	return nil
}

// DropCollection drops a collection. Dropping a collection that does not exist succeeds, as in
// Milvus, so that a retried drop is harmless.
func (s *Server) DropCollection(ctx context.Context, req *milvuspb.DropCollectionRequest) (*commonpb.Status, error) {
	db, err := database(ctx, req.GetDbName())
	if err != nil {
		return apierr.Status(err), nil
	}
	defer s.cache.invalidate(db, req.GetCollectionName())
	coll, err := s.catalog.DropCollection(ctx, db, req.GetCollectionName())
	if apierr.KindOf(err) == apierr.CollectionNotFound {
		return apierr.OK(), nil
	}
	if err != nil {
		return apierr.Status(err), nil
	}
	// The drop released the collection's channels (their leases went with it), so data
	// nodes stop their pipelines at their next lease check and nothing more is committed;
	// garbage collection deletes the streams, files and segment meta.
	s.logger.Info("collection dropped", "collection", coll.Name, "id", coll.ID)
	return apierr.OK(), nil
}

// lookup finds a live collection by name, or by ID when the request has one.
func (s *Server) lookup(ctx context.Context, reqDB, name string, id int64) (*meta.Collection, error) {
	db, err := database(ctx, reqDB)
	if err != nil {
		return nil, err
	}
	if name == "" && id != 0 {
		coll, err := s.catalog.GetCollection(ctx, id)
		if err != nil {
			return nil, err
		}
		if coll.State != meta.Created || coll.DB != db {
			return nil, apierr.Milvus(apierr.NoCollectionID, id)
		}
		return coll, nil
	}
	if err := schema.ValidateCollectionName(name); err != nil {
		return nil, err
	}
	return s.catalog.GetCollectionByName(ctx, db, name)
}

// HasCollection reports whether a live collection has the given name.
func (s *Server) HasCollection(ctx context.Context, req *milvuspb.HasCollectionRequest) (*milvuspb.BoolResponse, error) {
	_, err := s.lookup(ctx, req.GetDbName(), req.GetCollectionName(), 0)
	switch {
	case err == nil:
		return &milvuspb.BoolResponse{Status: apierr.OK(), Value: true}, nil
	case apierr.KindOf(err) == apierr.CollectionNotFound:
		return &milvuspb.BoolResponse{Status: apierr.OK(), Value: false}, nil
	default:
		return &milvuspb.BoolResponse{Status: apierr.Status(err)}, nil
	}
}

// DescribeCollection returns a collection's schema and settings as Milvus does: user fields
// only (IDs from 100), shard and channel names, timestamps.
func (s *Server) DescribeCollection(ctx context.Context, req *milvuspb.DescribeCollectionRequest) (*milvuspb.DescribeCollectionResponse, error) {
	coll, err := s.lookup(ctx, req.GetDbName(), req.GetCollectionName(), req.GetCollectionID())
	if apierr.KindOf(err) == apierr.CollectionNotFound && req.GetCollectionName() != "" {
		// Milvus's proxy words a missing collection this way here; the Go SDK describes a
		// collection before every insert and upsert, so its users see these words there too.
		db, _ := database(ctx, req.GetDbName())
		err = apierr.Milvus(apierr.CantFindCollection, db, req.GetCollectionName())
	}
	if err != nil {
		return &milvuspb.DescribeCollectionResponse{Status: apierr.Status(err)}, nil
	}
	parts, err := s.catalog.ListPartitions(ctx, coll.ID)
	if err != nil {
		return &milvuspb.DescribeCollectionResponse{Status: apierr.Status(err)}, nil
	}
	sc := proto.Clone(coll.Schema).(*schemapb.CollectionSchema)
	props := sc.GetProperties()
	sc.DbName = coll.DB
	return &milvuspb.DescribeCollectionResponse{
		Status:               apierr.OK(),
		Schema:               sc,
		CollectionID:         coll.ID,
		VirtualChannelNames:  coll.VChannels,
		PhysicalChannelNames: coll.VChannels, // each virtual channel is its own physical log
		CreatedTimestamp:     tso.Compose(coll.CreatedAt, 0),
		CreatedUtcTimestamp:  uint64(coll.CreatedAt.UnixMilli()),
		ShardsNum:            int32(coll.Shards),
		ConsistencyLevel:     commonpb.ConsistencyLevel(coll.ConsistencyLevel),
		CollectionName:       coll.Name,
		Properties:           props,
		DbName:               coll.DB,
		NumPartitions:        int64(len(parts)),
		UpdateTimestamp:      tso.Compose(coll.CreatedAt, 0),
	}, nil
}

// ShowCollections lists the live collections of the database.
func (s *Server) ShowCollections(ctx context.Context, req *milvuspb.ShowCollectionsRequest) (*milvuspb.ShowCollectionsResponse, error) {
	db, err := database(ctx, req.GetDbName())
	if err != nil {
		return &milvuspb.ShowCollectionsResponse{Status: apierr.Status(err)}, nil
	}
	colls, err := s.catalog.ListCollections(ctx, db)
	if err != nil {
		return &milvuspb.ShowCollectionsResponse{Status: apierr.Status(err)}, nil
	}
	want := map[string]bool{}
	for _, n := range req.GetCollectionNames() {
		want[n] = true
	}
	resp := &milvuspb.ShowCollectionsResponse{Status: apierr.OK()}
	inMemory := req.GetType() == milvuspb.ShowType_InMemory
	for _, c := range colls {
		if len(want) > 0 && !want[c.Name] {
			continue
		}
		var percent int64
		var serving bool
		if inMemory {
			// As Milvus: only loaded collections, with their load percentage (older Node SDKs
			// poll it to wait for a load); one named but not loaded is an error.
			loaded := false
			if percent, serving, loaded, err = s.Service.LoadPercent(ctx, c); err != nil {
				return &milvuspb.ShowCollectionsResponse{Status: apierr.Status(err)}, nil
			}
			if !loaded {
				if want[c.Name] {
					return &milvuspb.ShowCollectionsResponse{Status: apierr.Status(apierr.Milvus(apierr.ShowNotLoaded, c.Name))}, nil
				}
				continue
			}
		}
		resp.CollectionNames = append(resp.CollectionNames, c.Name)
		resp.CollectionIds = append(resp.CollectionIds, c.ID)
		resp.CreatedTimestamps = append(resp.CreatedTimestamps, tso.Compose(c.CreatedAt, 0))
		resp.CreatedUtcTimestamps = append(resp.CreatedUtcTimestamps, uint64(c.CreatedAt.UnixMilli()))
		resp.ShardsNum = append(resp.ShardsNum, int32(c.Shards))
		if inMemory {
			resp.InMemoryPercentages = append(resp.InMemoryPercentages, percent)
			resp.QueryServiceAvailable = append(resp.QueryServiceAvailable, serving)
		}
	}
	return resp, nil
}

// GetCollectionStatistics reports the collection's row count: the rows in its segments'
// committed meta (see rowCount).
func (s *Server) GetCollectionStatistics(ctx context.Context, req *milvuspb.GetCollectionStatisticsRequest) (*milvuspb.GetCollectionStatisticsResponse, error) {
	coll, err := s.lookup(ctx, req.GetDbName(), req.GetCollectionName(), 0)
	if err != nil {
		return &milvuspb.GetCollectionStatisticsResponse{Status: apierr.Status(err)}, nil
	}
	n, err := s.rowCount(ctx, coll, dml.AllPartitions)
	if err != nil {
		return &milvuspb.GetCollectionStatisticsResponse{Status: apierr.Status(err)}, nil
	}
	return &milvuspb.GetCollectionStatisticsResponse{
		Status: apierr.OK(),
		Stats:  []*commonpb.KeyValuePair{{Key: "row_count", Value: strconv.FormatInt(n, 10)}},
	}, nil
}

// CreatePartition adds a partition. Creating one that exists succeeds, as in Milvus. The
// partitions of a collection with a partition key are fixed.
func (s *Server) CreatePartition(ctx context.Context, req *milvuspb.CreatePartitionRequest) (*commonpb.Status, error) {
	// Milvus's order: the collection, its partition key, then the partition name.
	coll, err := s.lookup(ctx, req.GetDbName(), req.GetCollectionName(), 0)
	if err != nil {
		return apierr.Status(err), nil
	}
	if coll.KeyPartitions > 0 {
		return apierr.Status(apierr.Milvus(apierr.KeyPartitionCreate)), nil
	}
	if err := schema.ValidatePartitionName(req.GetPartitionName()); err != nil {
		return apierr.Status(err), nil
	}
	defer s.cache.invalidate(coll.DB, coll.Name)
	_, err = s.catalog.CreatePartition(ctx, coll.ID, req.GetPartitionName())
	return apierr.Status(err), nil
}

// DropPartition drops a partition. Dropping one that does not exist succeeds, as in Milvus; the
// default partition cannot be dropped, nor any of a collection with a partition key.
func (s *Server) DropPartition(ctx context.Context, req *milvuspb.DropPartitionRequest) (*commonpb.Status, error) {
	// Milvus's order: the collection, its partition key, then the partition name.
	coll, err := s.lookup(ctx, req.GetDbName(), req.GetCollectionName(), 0)
	if err != nil {
		return apierr.Status(err), nil
	}
	if coll.KeyPartitions > 0 {
		return apierr.Status(apierr.Milvus(apierr.KeyPartitionDrop)), nil
	}
	if err := schema.ValidatePartitionName(req.GetPartitionName()); err != nil {
		return apierr.Status(err), nil
	}
	// As Milvus: a loaded partition cannot be dropped. (Query nodes also stop serving the
	// rows of a dropped partition, should a load race the drop.)
	if loaded, err := s.Service.PartitionLoaded(ctx, coll, req.GetPartitionName()); err != nil {
		return apierr.Status(err), nil
	} else if loaded {
		return apierr.Status(apierr.Milvus(apierr.PartitionDropLoaded)), nil
	}
	defer s.cache.invalidate(coll.DB, coll.Name)
	err = s.catalog.DropPartition(ctx, coll.ID, req.GetPartitionName())
	if apierr.KindOf(err) == apierr.PartitionNotFound {
		return apierr.OK(), nil
	}
	return apierr.Status(err), nil
}

// HasPartition reports whether the collection has a live partition of that name.
func (s *Server) HasPartition(ctx context.Context, req *milvuspb.HasPartitionRequest) (*milvuspb.BoolResponse, error) {
	// Milvus checks both names before it looks the collection up.
	if err := schema.ValidateCollectionName(req.GetCollectionName()); err != nil {
		return &milvuspb.BoolResponse{Status: apierr.Status(err)}, nil
	}
	if err := schema.ValidatePartitionName(req.GetPartitionName()); err != nil {
		return &milvuspb.BoolResponse{Status: apierr.Status(err)}, nil
	}
	coll, err := s.lookup(ctx, req.GetDbName(), req.GetCollectionName(), 0)
	if err != nil {
		return &milvuspb.BoolResponse{Status: apierr.Status(err)}, nil
	}
	parts, err := s.catalog.ListPartitions(ctx, coll.ID)
	if err != nil {
		return &milvuspb.BoolResponse{Status: apierr.Status(err)}, nil
	}
	for _, p := range parts {
		if p.Name == req.GetPartitionName() {
			return &milvuspb.BoolResponse{Status: apierr.OK(), Value: true}, nil
		}
	}
	return &milvuspb.BoolResponse{Status: apierr.OK(), Value: false}, nil
}

// ShowPartitions lists a collection's live partitions in creation order.
func (s *Server) ShowPartitions(ctx context.Context, req *milvuspb.ShowPartitionsRequest) (*milvuspb.ShowPartitionsResponse, error) {
	coll, err := s.lookup(ctx, req.GetDbName(), req.GetCollectionName(), req.GetCollectionID())
	if err != nil {
		return &milvuspb.ShowPartitionsResponse{Status: apierr.Status(err)}, nil
	}
	parts, err := s.catalog.ListPartitions(ctx, coll.ID)
	if err != nil {
		return &milvuspb.ShowPartitionsResponse{Status: apierr.Status(err)}, nil
	}
	want := map[string]bool{}
	for _, n := range req.GetPartitionNames() {
		want[n] = true
	}
	resp := &milvuspb.ShowPartitionsResponse{Status: apierr.OK()}
	for _, p := range parts {
		if len(want) > 0 && !want[p.Name] {
			continue
		}
		resp.PartitionNames = append(resp.PartitionNames, p.Name)
		resp.PartitionIDs = append(resp.PartitionIDs, p.ID)
		resp.CreatedTimestamps = append(resp.CreatedTimestamps, tso.Compose(p.CreatedAt, 0))
		resp.CreatedUtcTimestamps = append(resp.CreatedUtcTimestamps, uint64(p.CreatedAt.UnixMilli()))
		resp.InMemoryPercentages = append(resp.InMemoryPercentages, 0)
	}
	if len(want) > len(resp.PartitionNames) {
		for n := range want {
			if !slices.Contains(resp.PartitionNames, n) {
				err := apierr.Milvus(apierr.NoPartition, n)
				return &milvuspb.ShowPartitionsResponse{Status: apierr.Status(err)}, nil
			}
		}
	}
	return resp, nil
}

// GetPartitionStatistics reports a partition's row count.
func (s *Server) GetPartitionStatistics(ctx context.Context, req *milvuspb.GetPartitionStatisticsRequest) (*milvuspb.GetPartitionStatisticsResponse, error) {
	coll, err := s.lookup(ctx, req.GetDbName(), req.GetCollectionName(), 0)
	if err != nil {
		return &milvuspb.GetPartitionStatisticsResponse{Status: apierr.Status(err)}, nil
	}
	// An empty name would mean the default partition to s.partition; here it is a mistake.
	if req.GetPartitionName() == "" {
		err := apierr.New(apierr.ParameterMissing, "partition name should not be empty")
		return &milvuspb.GetPartitionStatisticsResponse{Status: apierr.Status(err)}, nil
	}
	part, err := s.partition(ctx, coll, req.GetPartitionName())
	if err != nil {
		return &milvuspb.GetPartitionStatisticsResponse{Status: apierr.Status(err)}, nil
	}
	n, err := s.rowCount(ctx, coll, part.ID)
	if err != nil {
		return &milvuspb.GetPartitionStatisticsResponse{Status: apierr.Status(err)}, nil
	}
	return &milvuspb.GetPartitionStatisticsResponse{
		Status: apierr.OK(),
		Stats:  []*commonpb.KeyValuePair{{Key: "row_count", Value: strconv.FormatInt(n, 10)}},
	}, nil
}
