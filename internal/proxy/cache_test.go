package proxy_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/apierr"
	"github.com/weir-db/weir/internal/dml"
	"github.com/weir-db/weir/internal/proxy"
)

// otherProxy is a second proxy over the same metastore and WAL, as in a cluster with several.
func otherProxy(e *wenv) *proxy.Server {
	p := proxy.New(proxy.Config{Version: "test", NodeID: 8}, proxy.Deps{Catalog: e.catalog, Channels: e.log, IDs: e.metaF}, slog.New(slog.DiscardHandler))
	p.SetReady(true)
	return p
}

func insertOK(t *testing.T, e *wenv, req *milvuspb.InsertRequest) {
	t.Helper()
	res, err := e.c.Insert(context.Background(), req)
	require.NoError(t, err)
	requireOK(t, res.GetStatus())
}

func requireKind(t *testing.T, kind apierr.Kind, res *milvuspb.MutationResult, err error) {
	t.Helper()
	require.NoError(t, err)
	want := apierr.Status(apierr.New(kind, "x"))
	require.Equal(t, want.GetCode(), res.GetStatus().GetCode(), res.GetStatus().GetReason())
}

// TestInsertsReadTheMetastoreOncePerTTL checks what the target cache is for: repeated inserts
// into one collection resolve it from the metastore once per TTL, not once per request.
func TestInsertsReadTheMetastoreOncePerTTL(t *testing.T) {
	for _, tc := range []struct {
		ttl   time.Duration
		reads int64
	}{{time.Hour, 1}, {-1, 10}} {
		e := startProxy(t, func(o *proxyOpts) { o.cfg.MetaCacheTTL = tc.ttl })
		c := createColl(t, e.c, "cached", 1, pk, vec32, title, score)
		before := e.metaF.reads.Load()
		for i := range 10 {
			insertOK(t, e, insertReq(c, seq(int64(i*10), 10), 32))
		}
		require.Equal(t, tc.reads, e.metaF.reads.Load()-before, "partition lists for 10 inserts with TTL %v", tc.ttl)
	}
}

// TestTargetCacheFollowsDDL checks the bounds on a cached collection's staleness: this proxy's
// own drop is seen at once; another proxy's new partition and re-created collection are seen
// at once (a miss re-reads before rejecting); another proxy's drop within the TTL.
func TestTargetCacheFollowsDDL(t *testing.T) {
	const ttl = 300 * time.Millisecond
	ctx := context.Background()
	e := startProxy(t, func(o *proxyOpts) { o.cfg.MetaCacheTTL = ttl })
	other := otherProxy(e)

	t.Run("own drop", func(t *testing.T) {
		c := createColl(t, e.c, "own", 1, pk, vec32, title, score)
		insertOK(t, e, insertReq(c, seq(1, 5), 32))
		st, err := e.c.DropCollection(ctx, &milvuspb.DropCollectionRequest{CollectionName: "own"})
		require.NoError(t, err)
		requireOK(t, st)
		res, err := e.c.Insert(ctx, insertReq(c, seq(6, 5), 32))
		requireKind(t, apierr.CollectionNotFound, res, err)
	})

	t.Run("partition created through another proxy", func(t *testing.T) {
		c := createColl(t, e.c, "parts", 1, pk, vec32, title, score)
		insertOK(t, e, insertReq(c, seq(1, 5), 32)) // caches the partition list
		st, err := other.CreatePartition(ctx, &milvuspb.CreatePartitionRequest{CollectionName: "parts", PartitionName: "p2"})
		require.NoError(t, err)
		requireOK(t, st)
		req := insertReq(c, seq(6, 5), 32)
		req.PartitionName = "p2"
		insertOK(t, e, req)
	})

	t.Run("collection re-created through another proxy", func(t *testing.T) {
		c := createColl(t, e.c, "again", 1, pk, vec32, title, score)
		insertOK(t, e, insertReq(c, seq(1, 5), 32))
		st, err := other.DropCollection(ctx, &milvuspb.DropCollectionRequest{CollectionName: "again"})
		require.NoError(t, err)
		requireOK(t, st)
		time.Sleep(time.Millisecond) // a new creation time, hence a new schema timestamp
		st, err = other.CreateCollection(ctx, &milvuspb.CreateCollectionRequest{CollectionName: "again", Schema: schemaBytesTB(t, "again", pk, vec32, title, score), ShardsNum: 1})
		require.NoError(t, err)
		requireOK(t, st)
		// A client that described the new collection sends its schema timestamp: the cached
		// old collection does not match, so the proxy re-reads and writes to the new one.
		d, err := e.c.DescribeCollection(ctx, &milvuspb.DescribeCollectionRequest{CollectionName: "again"})
		require.NoError(t, err)
		require.NotEqual(t, c.id, d.GetCollectionID())
		req := insertReq(c, seq(6, 5), 32)
		req.SchemaTimestamp = d.GetUpdateTimestamp()
		insertOK(t, e, req)
		msgs := readChannel(t, e.log, d.GetVirtualChannelNames()[0])
		require.Len(t, msgs, 1)
		require.Equal(t, dml.Insert, msgs[0].hdr.Kind)
		require.Equal(t, d.GetCollectionID(), msgs[0].hdr.CollectionID)
	})

	t.Run("drop through another proxy", func(t *testing.T) {
		c := createColl(t, e.c, "gone", 1, pk, vec32, title, score)
		insertOK(t, e, insertReq(c, seq(1, 5), 32))
		st, err := other.DropCollection(ctx, &milvuspb.DropCollectionRequest{CollectionName: "gone"})
		require.NoError(t, err)
		requireOK(t, st)
		time.Sleep(ttl)
		res, err := e.c.Insert(ctx, insertReq(c, seq(6, 5), 32))
		requireKind(t, apierr.CollectionNotFound, res, err)
	})
}
