package proxy_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/apierr"
	"github.com/weir-db/weir/internal/batch"
	"github.com/weir-db/weir/internal/dml"
)

var (
	tenantKey = &schemapb.FieldSchema{Name: "tenant", DataType: schemapb.DataType_Int64, IsPartitionKey: true}
	regionKey = &schemapb.FieldSchema{Name: "region", DataType: schemapb.DataType_VarChar, IsPartitionKey: true,
		TypeParams: []*commonpb.KeyValuePair{kv("max_length", "32")}}
)

// keyedColl creates a collection with a partition key through the API and returns it with its
// partitions' IDs by name.
func keyedColl(t testing.TB, c milvuspb.MilvusServiceClient, name string, shards int32, numPartitions int64, fields ...*schemapb.FieldSchema) (coll, map[int64]string) {
	t.Helper()
	ctx := context.Background()
	st, err := c.CreateCollection(ctx, &milvuspb.CreateCollectionRequest{CollectionName: name, Schema: schemaBytesTB(t, name, fields...), ShardsNum: shards, NumPartitions: numPartitions})
	require.NoError(t, err)
	requireOK(t, st)
	d, err := c.DescribeCollection(ctx, &milvuspb.DescribeCollectionRequest{CollectionName: name})
	require.NoError(t, err)
	parts, err := c.ShowPartitions(ctx, &milvuspb.ShowPartitionsRequest{CollectionName: name})
	require.NoError(t, err)
	requireOK(t, parts.GetStatus())
	names := map[int64]string{}
	for i, id := range parts.GetPartitionIDs() {
		names[id] = parts.GetPartitionNames()[i]
	}
	return coll{name: name, id: d.GetCollectionID(), chans: d.GetVirtualChannelNames()}, names
}

// requireRefused checks a rejection's Milvus status code and text: 65535 (apierr.Unexpected)
// where Milvus raises a plain error, 1100 where it wraps merr's ParameterInvalid.
func requireRefused(t testing.TB, st *commonpb.Status, kind apierr.Kind, msg string) {
	t.Helper()
	require.Equal(t, apierr.Code(kind), st.GetCode(), st.GetReason())
	require.Contains(t, st.GetReason(), msg)
}

// TestPartitionKeyCollections: creating a collection with a partition key gives it Milvus's
// partitions (_default_0 … _default_{n-1}, 16 by default), a repeated create must ask for the
// same count, and the counts Milvus refuses are refused with its texts.
func TestPartitionKeyCollections(t *testing.T) {
	e := startProxy(t)
	ctx := ctxT(t)

	_, names := keyedColl(t, e.c, "tenants", 2, 0, pk, vec32, tenantKey)
	var got []string
	for _, n := range names {
		got = append(got, n)
	}
	want := make([]string, 16)
	for i := range want {
		want[i] = fmt.Sprintf("_default_%d", i)
	}
	require.ElementsMatch(t, want, got, "16 partitions by default, no _default")
	d, err := e.c.DescribeCollection(ctx, &milvuspb.DescribeCollectionRequest{CollectionName: "tenants"})
	require.NoError(t, err)
	require.Equal(t, int64(16), d.GetNumPartitions())
	require.True(t, d.GetSchema().GetFields()[2].GetIsPartitionKey(), "the schema keeps is_partition_key")
	parts, err := e.c.ShowPartitions(ctx, &milvuspb.ShowPartitionsRequest{CollectionName: "tenants"})
	require.NoError(t, err)
	require.Equal(t, want, parts.GetPartitionNames(), "listed in index order")
	require.True(t, slices.IsSorted(parts.GetPartitionIDs()))

	create := func(name string, n int64, fields ...*schemapb.FieldSchema) *commonpb.Status {
		st, err := e.c.CreateCollection(ctx, &milvuspb.CreateCollectionRequest{CollectionName: name, Schema: schemaBytesTB(t, name, fields...), ShardsNum: 2, NumPartitions: n})
		require.NoError(t, err)
		return st
	}
	requireOK(t, create("tenants", 0, pk, vec32, tenantKey))
	requireOK(t, create("tenants", 16, pk, vec32, tenantKey))
	requireRefused(t, create("tenants", 4, pk, vec32, tenantKey), apierr.Unexpected, "create duplicate collection with different parameters, collection: tenants: existing num_partitions 16, requested 4")

	_, four := keyedColl(t, e.c, "four", 2, 4, pk, vec32, regionKey)
	require.Len(t, four, 4)
	requireOK(t, create("four", 4, pk, vec32, regionKey))
	requireRefused(t, create("four", 0, pk, vec32, regionKey), apierr.Unexpected, "existing num_partitions 4, requested 16")

	requireRefused(t, create("neg", -1, pk, vec32, tenantKey), apierr.Unexpected, "the specified partitions should be greater than 0 if partition key is used")
	requireRefused(t, create("big", 1025, pk, vec32, tenantKey), apierr.ParameterInvalid, "partition number (1025) exceeds max configuration (1024): invalid parameter")
	requireRefused(t, create("plain", 4, pk, vec32), apierr.Unexpected, "num_partitions should only be specified with partition key field enabled")
	_, most := keyedColl(t, e.c, "max", 1, 1024, pk, vec32, tenantKey)
	require.Len(t, most, 1024)

	st, err := e.c.CreatePartition(ctx, &milvuspb.CreatePartitionRequest{CollectionName: "tenants", PartitionName: "extra"})
	require.NoError(t, err)
	requireRefused(t, st, apierr.Unexpected, "disable create partition if partition key mode is used")
	st, err = e.c.DropPartition(ctx, &milvuspb.DropPartitionRequest{CollectionName: "tenants", PartitionName: "_default_1"})
	require.NoError(t, err)
	requireRefused(t, st, apierr.Unexpected, "disable drop partition if partition key mode is used")
	has, err := e.c.HasPartition(ctx, &milvuspb.HasPartitionRequest{CollectionName: "tenants", PartitionName: "_default_1"})
	require.NoError(t, err)
	require.True(t, has.GetValue(), "the partition is still there")
}

// TestPartitionKeyRoutesRows: each row goes to the channel its primary key hashes to and to the
// partition its key value hashes to (the research notes' vectors: tenant 0 → _default_12,
// 1 → _default_4, 100 → _default_0, -1 → _default_8; region "a" → _default_3, "abc" →
// _default_2, "parkey" → _default_3), one message per (channel, partition); an upsert deletes
// in every partition; a delete applies to every partition.
func TestPartitionKeyRoutesRows(t *testing.T) {
	e := startProxy(t)
	ctx := ctxT(t)

	t.Run("int64 key", func(t *testing.T) {
		c, names := keyedColl(t, e.c, "tenants", 2, 0, pk, vec32, tenantKey)
		tenantOf := map[int64]int64{}
		keys := seq(1, 40)
		tenants := make([]int64, len(keys))
		for i, k := range keys {
			tenants[i] = []int64{0, 1, 100, -1}[i%4]
			tenantOf[k] = tenants[i]
		}
		res, err := e.c.Insert(ctx, &milvuspb.InsertRequest{CollectionName: "tenants", NumRows: uint32(len(keys)), FieldsData: []*schemapb.FieldData{
			int64Col("id", keys), vecCol("vec", 32, vectors(keys, 32)), int64Col("tenant", tenants),
		}})
		require.NoError(t, err)
		requireOK(t, res.GetStatus())
		require.Equal(t, keys, res.GetIDs().GetIntId().GetData())

		want := map[int64]string{0: "_default_12", 1: "_default_4", 100: "_default_0", -1: "_default_8"}
		var stored []int64
		for ch, name := range c.chans {
			msgs := readChannel(t, e.log, name)
			var seen []string
			for _, m := range msgs {
				require.Equal(t, dml.Insert, m.hdr.Kind)
				part, ok := names[m.hdr.PartitionID]
				require.True(t, ok, "message of channel %d names partition %d", ch, m.hdr.PartitionID)
				seen = append(seen, part)
				ids, ts := int64s(t, m.rec, "id"), int64s(t, m.rec, "tenant")
				require.True(t, slices.IsSorted(ids), "rows keep the request's order")
				for i, id := range ids {
					require.Equal(t, ch, int(batch.HashInt64(id)%2), "key %d routed by its primary key", id)
					require.Equal(t, tenantOf[id], ts[i])
					require.Equal(t, want[ts[i]], part, "tenant %d", ts[i])
				}
				stored = append(stored, ids...)
			}
			require.Len(t, seen, len(slices.Compact(slices.Clone(seen))), "one message per partition on channel %d", ch)
			require.LessOrEqual(t, len(seen), 4)
		}
		require.ElementsMatch(t, keys, stored, "every row once")

		// An upsert moves key 1 from tenant 0 to tenant 1: its messages delete in every
		// partition and insert into the new one.
		before := lastPositions(t, e.log, c.chans)
		up, err := e.c.Upsert(ctx, &milvuspb.UpsertRequest{CollectionName: "tenants", NumRows: 2, FieldsData: []*schemapb.FieldData{
			int64Col("id", []int64{1, 2}), vecCol("vec", 32, vectors([]int64{1, 2}, 32)), int64Col("tenant", []int64{1, 100}),
		}})
		require.NoError(t, err)
		requireOK(t, up.GetStatus())
		var upserted []int64
		for ch, name := range c.chans {
			for _, m := range readChannel(t, e.log, name) {
				if m.pos <= before[ch] {
					continue
				}
				require.Equal(t, dml.UpsertAllPartitions, m.hdr.Kind)
				require.Equal(t, dml.AllPartitions, m.hdr.DeleteScope())
				for i, id := range int64s(t, m.rec, "id") {
					require.Equal(t, want[int64s(t, m.rec, "tenant")[i]], names[m.hdr.PartitionID])
					upserted = append(upserted, id)
				}
			}
		}
		require.ElementsMatch(t, []int64{1, 2}, upserted)

		// A delete applies to every partition.
		before = lastPositions(t, e.log, c.chans)
		del, err := e.c.Delete(ctx, &milvuspb.DeleteRequest{CollectionName: "tenants", Expr: "id in [1, 2, 3]"})
		require.NoError(t, err)
		requireOK(t, del.GetStatus())
		var deleted []int64
		for ch, name := range c.chans {
			for _, m := range readChannel(t, e.log, name) {
				if m.pos <= before[ch] {
					continue
				}
				require.Equal(t, dml.Delete, m.hdr.Kind)
				require.Equal(t, dml.AllPartitions, m.hdr.PartitionID)
				deleted = append(deleted, m.keys.Ints...)
			}
		}
		require.ElementsMatch(t, []int64{1, 2, 3}, deleted)
	})

	t.Run("varchar key", func(t *testing.T) {
		c, names := keyedColl(t, e.c, "regions", 1, 0, pk, vec32, regionKey)
		keys := seq(1, 3)
		regions := []string{"a", "abc", "parkey"}
		res, err := e.c.Insert(ctx, &milvuspb.InsertRequest{CollectionName: "regions", NumRows: 3, FieldsData: []*schemapb.FieldData{
			int64Col("id", keys), vecCol("vec", 32, vectors(keys, 32)), strCol("region", regions),
		}})
		require.NoError(t, err)
		requireOK(t, res.GetStatus())
		msgs := readChannel(t, e.log, c.chans[0])
		require.Len(t, msgs, 2, "two partitions: _default_2 and _default_3")
		got := map[string][]string{}
		for _, m := range msgs {
			got[names[m.hdr.PartitionID]] = append(got[names[m.hdr.PartitionID]], strings_(t, m.rec, "region")...)
		}
		require.Equal(t, map[string][]string{"_default_3": {"a", "parkey"}, "_default_2": {"abc"}}, got)
		require.Equal(t, "_default_2", names[msgs[0].hdr.PartitionID], "a channel's messages in partition order")
	})
}

// TestPartitionKeyRefusesPartitionNames: a write naming a partition of a collection with a
// partition key is refused with Milvus's text and appends nothing.
func TestPartitionKeyRefusesPartitionNames(t *testing.T) {
	e := startProxy(t)
	ctx := ctxT(t)
	c, _ := keyedColl(t, e.c, "tenants", 2, 4, pk, vec32, tenantKey)
	before := lastPositions(t, e.log, c.chans)
	const msg = "not support manually specifying the partition names if partition key mode is used"
	cols := []*schemapb.FieldData{int64Col("id", []int64{1}), vecCol("vec", 32, vectors([]int64{1}, 32)), int64Col("tenant", []int64{7})}
	for _, part := range []string{"_default_0", "nope"} {
		res, err := e.c.Insert(ctx, &milvuspb.InsertRequest{CollectionName: "tenants", PartitionName: part, NumRows: 1, FieldsData: cols})
		require.NoError(t, err)
		requireRefused(t, res.GetStatus(), apierr.Unexpected, msg)
		up, err := e.c.Upsert(ctx, &milvuspb.UpsertRequest{CollectionName: "tenants", PartitionName: part, NumRows: 1, FieldsData: cols})
		require.NoError(t, err)
		requireRefused(t, up.GetStatus(), apierr.Unexpected, msg)
		del, err := e.c.Delete(ctx, &milvuspb.DeleteRequest{CollectionName: "tenants", PartitionName: part, Expr: "id in [1]"})
		require.NoError(t, err)
		requireRefused(t, del.GetStatus(), apierr.Unexpected, msg)
	}
	require.Equal(t, before, lastPositions(t, e.log, c.chans), "nothing appended")

	// Without the name the same insert goes through.
	res, err := e.c.Insert(ctx, &milvuspb.InsertRequest{CollectionName: "tenants", NumRows: 1, FieldsData: cols})
	require.NoError(t, err)
	requireOK(t, res.GetStatus())
}
