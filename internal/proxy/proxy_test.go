package proxy_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/weir-db/weir/internal/metastore"
	"github.com/weir-db/weir/internal/standalone"
)

type env struct {
	c     milvuspb.MilvusServiceClient
	store *metastore.Etcd
}

// start runs a standalone Weir (real embedded etcd and NATS) and connects a raw client.
func start(t *testing.T) *env {
	t.Helper()
	cfg := standalone.Defaults()
	cfg.DataDir, cfg.Listen, cfg.HTTPListen = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := standalone.Start(ctx, cfg, "test", slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	conn, err := grpc.NewClient(s.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	store, err := metastore.Dial(ctx, metastore.Config{Endpoints: s.EtcdEndpoints()})
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	return &env{c: milvuspb.NewMilvusServiceClient(conn), store: store}
}

// waitClaimed waits until n channels are leased and claimed by the standalone's data node: the
// coordinator's assignment and the node's claim are metastore writes of their own, and tests
// that check a request wrote nothing compare revisions once those are done.
func (e *env) waitClaimed(t *testing.T, n int) {
	require.Eventually(t, func() bool {
		kvs, _, err := e.store.Range(context.Background(), "weir/meta/channels/")
		require.NoError(t, err)
		leases, epochs := 0, 0
		for _, kv := range kvs {
			switch {
			case strings.HasSuffix(kv.Key, "/lease"):
				leases++
			case strings.HasSuffix(kv.Key, "/epoch"):
				epochs++
			}
		}
		return leases >= n && epochs >= n
	}, 10*time.Second, 5*time.Millisecond)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func kv(k, v string) *commonpb.KeyValuePair { return &commonpb.KeyValuePair{Key: k, Value: v} }

func schemaBytes(t *testing.T, name string, fields ...*schemapb.FieldSchema) []byte {
	b, err := proto.Marshal(&schemapb.CollectionSchema{Name: name, Fields: fields})
	require.NoError(t, err)
	return b
}

var (
	pk    = &schemapb.FieldSchema{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true}
	vec32 = &schemapb.FieldSchema{Name: "vec", DataType: schemapb.DataType_FloatVector, TypeParams: []*commonpb.KeyValuePair{kv("dim", "32")}}
	title = &schemapb.FieldSchema{Name: "title", DataType: schemapb.DataType_VarChar, TypeParams: []*commonpb.KeyValuePair{kv("max_length", "256")}}
)

func TestCollectionLifecycle(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	st, err := e.c.CreateCollection(ctx, &milvuspb.CreateCollectionRequest{
		CollectionName: "books", Schema: schemaBytes(t, "books", pk, vec32, title), ShardsNum: 2,
		ConsistencyLevel: commonpb.ConsistencyLevel_Strong, Properties: []*commonpb.KeyValuePair{kv("collection.ttl.seconds", "60")},
	})
	require.NoError(t, err)
	require.Zero(t, st.GetCode(), st.GetReason())

	d, err := e.c.DescribeCollection(ctx, &milvuspb.DescribeCollectionRequest{CollectionName: "books"})
	require.NoError(t, err)
	require.Zero(t, d.GetStatus().GetCode())
	require.Equal(t, "books", d.GetSchema().GetName())
	require.Len(t, d.GetSchema().GetFields(), 3)
	require.Equal(t, int64(100), d.GetSchema().GetFields()[0].GetFieldID())
	require.Equal(t, int32(2), d.GetShardsNum())
	require.Len(t, d.GetVirtualChannelNames(), 2)
	require.Equal(t, commonpb.ConsistencyLevel_Strong, d.GetConsistencyLevel())
	require.Equal(t, []*commonpb.KeyValuePair{kv("collection.ttl.seconds", "60")}, d.GetProperties())
	require.Equal(t, "default", d.GetDbName())
	require.Equal(t, d.GetCreatedUtcTimestamp(), d.GetCreatedTimestamp()>>18)
	require.Equal(t, int64(1), d.GetNumPartitions())

	byID, err := e.c.DescribeCollection(ctx, &milvuspb.DescribeCollectionRequest{CollectionID: d.GetCollectionID()})
	require.NoError(t, err)
	require.Equal(t, "books", byID.GetCollectionName())

	// Identical create succeeds and changes nothing.
	e.waitClaimed(t, 2)
	rev, err := e.store.Revision(ctx)
	require.NoError(t, err)
	st, err = e.c.CreateCollection(ctx, &milvuspb.CreateCollectionRequest{
		CollectionName: "books", Schema: schemaBytes(t, "books", pk, vec32, title), ShardsNum: 2,
		Properties: []*commonpb.KeyValuePair{kv("collection.ttl.seconds", "60")},
	})
	require.NoError(t, err)
	require.Zero(t, st.GetCode(), st.GetReason())
	rev2, err := e.store.Revision(ctx)
	require.NoError(t, err)
	require.Equal(t, rev, rev2)

	show, err := e.c.ShowCollections(ctx, &milvuspb.ShowCollectionsRequest{})
	require.NoError(t, err)
	require.Equal(t, []string{"books"}, show.GetCollectionNames())
	require.Equal(t, []int32{2}, show.GetShardsNum())
	filtered, err := e.c.ShowCollections(ctx, &milvuspb.ShowCollectionsRequest{CollectionNames: []string{"other"}})
	require.NoError(t, err)
	require.Empty(t, filtered.GetCollectionNames())

	has, err := e.c.HasCollection(ctx, &milvuspb.HasCollectionRequest{CollectionName: "books"})
	require.NoError(t, err)
	require.True(t, has.GetValue())

	stats, err := e.c.GetCollectionStatistics(ctx, &milvuspb.GetCollectionStatisticsRequest{CollectionName: "books"})
	require.NoError(t, err)
	require.Equal(t, []*commonpb.KeyValuePair{kv("row_count", "0")}, stats.GetStats())

	// Partitions.
	for i := 0; i < 2; i++ { // the second create is a no-op
		st, err = e.c.CreatePartition(ctx, &milvuspb.CreatePartitionRequest{CollectionName: "books", PartitionName: "p-1"})
		require.NoError(t, err)
		require.Zero(t, st.GetCode(), st.GetReason())
	}
	parts, err := e.c.ShowPartitions(ctx, &milvuspb.ShowPartitionsRequest{CollectionName: "books"})
	require.NoError(t, err)
	require.Equal(t, []string{"_default", "p-1"}, parts.GetPartitionNames())
	pstats, err := e.c.GetPartitionStatistics(ctx, &milvuspb.GetPartitionStatisticsRequest{CollectionName: "books", PartitionName: "p-1"})
	require.NoError(t, err)
	require.Equal(t, []*commonpb.KeyValuePair{kv("row_count", "0")}, pstats.GetStats())
	hasP, err := e.c.HasPartition(ctx, &milvuspb.HasPartitionRequest{CollectionName: "books", PartitionName: "p-1"})
	require.NoError(t, err)
	require.True(t, hasP.GetValue())
	for i := 0; i < 2; i++ { // dropping a missing partition succeeds, as in Milvus
		st, err = e.c.DropPartition(ctx, &milvuspb.DropPartitionRequest{CollectionName: "books", PartitionName: "p-1"})
		require.NoError(t, err)
		require.Zero(t, st.GetCode(), st.GetReason())
	}
	hasP, err = e.c.HasPartition(ctx, &milvuspb.HasPartitionRequest{CollectionName: "books", PartitionName: "p-1"})
	require.NoError(t, err)
	require.False(t, hasP.GetValue())

	for i := 0; i < 2; i++ { // dropping a missing collection succeeds, as in Milvus
		st, err = e.c.DropCollection(ctx, &milvuspb.DropCollectionRequest{CollectionName: "books"})
		require.NoError(t, err)
		require.Zero(t, st.GetCode(), st.GetReason())
	}
	has, err = e.c.HasCollection(ctx, &milvuspb.HasCollectionRequest{CollectionName: "books"})
	require.NoError(t, err)
	require.False(t, has.GetValue())
}

func TestHandshakeAndHealth(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	conn, err := e.c.Connect(ctx, &milvuspb.ConnectRequest{ClientInfo: &commonpb.ClientInfo{SdkType: "test"}})
	require.NoError(t, err)
	require.Zero(t, conn.GetStatus().GetCode())
	require.NotZero(t, conn.GetIdentifier())
	require.Contains(t, conn.GetServerInfo().GetBuildTags(), "+weir.")
	conn2, err := e.c.Connect(ctx, &milvuspb.ConnectRequest{})
	require.NoError(t, err)
	require.NotEqual(t, conn.GetIdentifier(), conn2.GetIdentifier())

	v, err := e.c.GetVersion(ctx, &milvuspb.GetVersionRequest{})
	require.NoError(t, err)
	require.Regexp(t, `^v2\.6\.0\+weir\.`, v.GetVersion())

	h, err := e.c.CheckHealth(ctx, &milvuspb.CheckHealthRequest{})
	require.NoError(t, err)
	require.True(t, h.GetIsHealthy())

	_, err = e.c.HybridSearch(ctx, &milvuspb.HybridSearchRequest{CollectionName: "x"})
	require.Equal(t, codes.Unimplemented, status.Code(err), "RPCs Weir does not serve yet answer Unimplemented")
}

// TestBadInputIsRejectedAndWritesNothing is invariant 8 for the collection API: every malformed
// request gets the Milvus status code a Milvus client expects, a reason naming what was wrong,
// gRPC OK (Milvus answers in-band), and no metastore write.
func TestBadInputIsRejectedAndWritesNothing(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	st, err := e.c.CreateCollection(ctx, &milvuspb.CreateCollectionRequest{CollectionName: "books", Schema: schemaBytes(t, "books", pk, vec32)})
	require.NoError(t, err)
	require.Zero(t, st.GetCode(), st.GetReason())
	e.waitClaimed(t, 1)

	create := func(name string, shards int32, fields ...*schemapb.FieldSchema) func() (*commonpb.Status, error) {
		return func() (*commonpb.Status, error) {
			return e.c.CreateCollection(ctx, &milvuspb.CreateCollectionRequest{CollectionName: name, Schema: schemaBytes(t, name, fields...), ShardsNum: shards})
		}
	}
	vec64 := &schemapb.FieldSchema{Name: "vec", DataType: schemapb.DataType_FloatVector, TypeParams: []*commonpb.KeyValuePair{kv("dim", "64")}}
	otherDB := metadata.AppendToOutgoingContext(ctx, "dbname", "analytics")
	cases := []struct {
		name   string
		call   func() (*commonpb.Status, error)
		code   int32
		legacy commonpb.ErrorCode
		reason string
	}{
		{"different schema for an existing name", create("books", 1, pk, vec64), 65535, commonpb.ErrorCode_UnexpectedError, `create duplicate collection with different parameters, collection: books: field 1: existing "vec" FloatVector dim=32, requested "vec" FloatVector dim=64`},
		{"different shards for an existing name", create("books", 4, pk, vec32), 65535, commonpb.ErrorCode_UnexpectedError, "create duplicate collection with different parameters, collection: books: existing shards_num 1, requested 4"},
		{"no vector field", create("c1", 1, pk), 1100, commonpb.ErrorCode_IllegalArgument, "schema does not contain vector field: invalid parameter"},
		{"no primary key", create("c2", 1, vec32), 65535, commonpb.ErrorCode_UnexpectedError, "primary key is not specified"},
		{"too many shards", create("c3", 17, pk, vec32), 65535, commonpb.ErrorCode_UnexpectedError, "maximum shards's number should be limited to 16"},
		{"bad collection name", create("3books", 1, pk, vec32), 1100, commonpb.ErrorCode_IllegalArgument, "Invalid collection name: 3books. the first character of a collection name must be an underscore or letter: invalid parameter"},
		{"duplicate field", create("c4", 1, pk, vec32, vec32), 65535, commonpb.ErrorCode_UnexpectedError, "duplicated field name vec found"},
		{"schema bytes garbage", func() (*commonpb.Status, error) {
			return e.c.CreateCollection(ctx, &milvuspb.CreateCollectionRequest{CollectionName: "c5", Schema: []byte{0xff, 0xff, 0xff}})
		}, 65535, commonpb.ErrorCode_UnexpectedError, "cannot parse invalid wire-format data"},
		{"num_partitions without partition key", func() (*commonpb.Status, error) {
			return e.c.CreateCollection(ctx, &milvuspb.CreateCollectionRequest{CollectionName: "c6", Schema: schemaBytes(t, "c6", pk, vec32), NumPartitions: 8})
		}, 65535, commonpb.ErrorCode_UnexpectedError, "num_partitions should only be specified with partition key field enabled"}, // a plain error in Milvus
		{"unknown database", func() (*commonpb.Status, error) {
			return e.c.CreateCollection(otherDB, &milvuspb.CreateCollectionRequest{CollectionName: "c7", Schema: schemaBytes(t, "c7", pk, vec32)})
		}, 800, commonpb.ErrorCode_UnexpectedError, "database not found[database=analytics]"},
		{"partition of unknown collection", func() (*commonpb.Status, error) {
			return e.c.CreatePartition(ctx, &milvuspb.CreatePartitionRequest{CollectionName: "nope", PartitionName: "p"})
		}, 100, commonpb.ErrorCode_CollectionNotExists, "collection not found[database=default][collection=nope]"},
		{"bad partition name", func() (*commonpb.Status, error) {
			return e.c.CreatePartition(ctx, &milvuspb.CreatePartitionRequest{CollectionName: "books", PartitionName: "p!"})
		}, 65535, commonpb.ErrorCode_UnexpectedError, "Invalid partition name: p!. Partition name can only contain numbers, letters and underscores."},
		{"drop default partition", func() (*commonpb.Status, error) {
			return e.c.DropPartition(ctx, &milvuspb.DropPartitionRequest{CollectionName: "books", PartitionName: "_default"})
		}, 65535, commonpb.ErrorCode_UnexpectedError, "default partition cannot be deleted"},
		{"describe unknown collection", func() (*commonpb.Status, error) {
			r, err := e.c.DescribeCollection(ctx, &milvuspb.DescribeCollectionRequest{CollectionName: "nope"})
			return r.GetStatus(), err
		}, 100, commonpb.ErrorCode_CollectionNotExists, "can't find collection[database=default][collection=nope]"},
		{"describe without a name", func() (*commonpb.Status, error) {
			r, err := e.c.DescribeCollection(ctx, &milvuspb.DescribeCollectionRequest{})
			return r.GetStatus(), err
		}, 1100, commonpb.ErrorCode_IllegalArgument, "collection name should not be empty: invalid parameter"},
		{"statistics of unknown collection", func() (*commonpb.Status, error) {
			r, err := e.c.GetCollectionStatistics(ctx, &milvuspb.GetCollectionStatisticsRequest{CollectionName: "nope"})
			return r.GetStatus(), err
		}, 100, commonpb.ErrorCode_CollectionNotExists, "collection not found[database=default][collection=nope]"},
		{"statistics of unknown partition", func() (*commonpb.Status, error) {
			r, err := e.c.GetPartitionStatistics(ctx, &milvuspb.GetPartitionStatisticsRequest{CollectionName: "books", PartitionName: "nope"})
			return r.GetStatus(), err
		}, 200, commonpb.ErrorCode_MetaFailed, "partition not found[partition=nope]"},
		{"show unknown partition", func() (*commonpb.Status, error) {
			r, err := e.c.ShowPartitions(ctx, &milvuspb.ShowPartitionsRequest{CollectionName: "books", PartitionNames: []string{"nope"}})
			return r.GetStatus(), err
		}, 200, commonpb.ErrorCode_MetaFailed, "partition not found[partition=nope]"},
		{"show collections of unknown database", func() (*commonpb.Status, error) {
			r, err := e.c.ShowCollections(ctx, &milvuspb.ShowCollectionsRequest{DbName: "analytics"})
			return r.GetStatus(), err
		}, 800, commonpb.ErrorCode_UnexpectedError, "database not found[database=analytics]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before, err := e.store.Revision(ctx)
			require.NoError(t, err)
			st, err := c.call()
			require.NoError(t, err, "Milvus answers rejections in-band with gRPC OK")
			require.Equal(t, c.code, st.GetCode(), st.GetReason())
			require.Equal(t, c.legacy, st.GetErrorCode())
			require.Contains(t, st.GetReason(), c.reason)
			after, err := e.store.Revision(ctx)
			require.NoError(t, err)
			require.Equal(t, before, after, "a rejected request writes nothing")
		})
	}
	// The original collection is untouched.
	d, err := e.c.DescribeCollection(ctx, &milvuspb.DescribeCollectionRequest{CollectionName: "books"})
	require.NoError(t, err)
	require.Equal(t, "32", d.GetSchema().GetFields()[1].GetTypeParams()[0].GetValue())
	require.Equal(t, int32(1), d.GetShardsNum())
}

// TestWritePathEndToEnd drives the write path through a standalone Weir with its data node:
// insert, upsert and delete, then Flush and GetFlushState the way the SDKs' Flush().Await()
// does, and the row count from the segment meta the data node committed.
func TestWritePathEndToEnd(t *testing.T) {
	e := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := createColl(t, e.c, "books", 2, pk, vec32, title, score)
	for _, from := range []int64{1, 501} {
		res, err := e.c.Insert(ctx, insertReq(c, seq(from, 500), 32))
		require.NoError(t, err)
		requireOK(t, res.GetStatus())
	}
	up := insertReq(c, seq(1, 10), 32)
	ur, err := e.c.Upsert(ctx, &milvuspb.UpsertRequest{CollectionName: "books", NumRows: up.NumRows, FieldsData: up.FieldsData})
	require.NoError(t, err)
	requireOK(t, ur.GetStatus())
	dr, err := e.c.Delete(ctx, &milvuspb.DeleteRequest{CollectionName: "books", Expr: "id in [11,12,13,14,15,16,17,18,19,20]"})
	require.NoError(t, err)
	requireOK(t, dr.GetStatus())
	require.Equal(t, int64(10), dr.GetDeleteCnt())

	flushAndWait := func() {
		t.Helper()
		fl, err := e.c.Flush(ctx, &milvuspb.FlushRequest{CollectionNames: []string{"books"}})
		require.NoError(t, err)
		requireOK(t, fl.GetStatus())
		req := &milvuspb.GetFlushStateRequest{CollectionName: "books", FlushTs: fl.GetCollFlushTs()["books"], SegmentIDs: fl.GetCollSegIDs()["books"].GetData()}
		require.Eventually(t, func() bool {
			r, err := e.c.GetFlushState(ctx, req)
			require.NoError(t, err)
			requireOK(t, r.GetStatus())
			return r.GetFlushed()
		}, 45*time.Second, 50*time.Millisecond, "flush never completed")
	}
	flushAndWait()

	// 1,000 inserted + 10 upserted rows; deletes are not subtracted before compaction.
	stats, err := e.c.GetCollectionStatistics(ctx, &milvuspb.GetCollectionStatisticsRequest{CollectionName: "books"})
	require.NoError(t, err)
	require.Equal(t, []*commonpb.KeyValuePair{kv("row_count", "1010")}, stats.GetStats())
	info, err := e.c.GetPersistentSegmentInfo(ctx, &milvuspb.GetPersistentSegmentInfoRequest{CollectionName: "books"})
	require.NoError(t, err)
	requireOK(t, info.GetStatus())
	var rows int64
	for _, in := range info.GetInfos() {
		require.Equal(t, commonpb.SegmentState_Flushed, in.GetState(), "segment %d", in.GetSegmentID())
		rows += in.GetNumRows()
	}
	require.Equal(t, int64(1010), rows)

	// A flush with nothing new to write completes too.
	flushAndWait()
}
