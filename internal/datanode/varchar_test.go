package datanode

import (
	"bytes"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/batch"
	"github.com/weir-db/weir/internal/dml"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/schema"
	"github.com/weir-db/weir/internal/segment"
)

// TestVarCharPrimaryKeys: string keys flow to insert, stats (bloom, min/max) and delete files.
func TestVarCharPrimaryKeys(t *testing.T) {
	e := newEnv(t, envOpts{})
	s, err := schema.Normalize("tags", &schemapb.CollectionSchema{Fields: []*schemapb.FieldSchema{
		{Name: "key", DataType: schemapb.DataType_VarChar, IsPrimaryKey: true, TypeParams: []*commonpb.KeyValuePair{{Key: "max_length", Value: "16"}}},
		{Name: "vec", DataType: schemapb.DataType_BinaryVector, TypeParams: []*commonpb.KeyValuePair{{Key: "dim", Value: "16"}}},
	}})
	require.NoError(t, err)
	coll, _, err := e.catalog.CreateCollection(e.ctx, &meta.Collection{DB: meta.DefaultDatabase, Name: "tags", Schema: s, Shards: 1})
	require.NoError(t, err)
	ch := coll.VChannels[0]
	require.NoError(t, e.log.CreateChannel(e.ctx, ch))
	_, err = e.catalog.AssignChannel(e.ctx, ch, coll.ID, 1)
	require.NoError(t, err)
	parts, err := e.catalog.ListPartitions(e.ctx, coll.ID)
	require.NoError(t, err)
	node := e.node(testConfig(1))
	require.NoError(t, node.Watch(e.ctx, ch))

	keys := []string{"m", "b", "z", "k"}
	rows, err := batch.FromFieldData(s, []*schemapb.FieldData{
		{FieldName: "key", Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_StringData{StringData: &schemapb.StringArray{Data: keys}}}}},
		{FieldName: "vec", Field: &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{Dim: 16, Data: &schemapb.VectorField_BinaryVector{BinaryVector: make([]byte, 8)}}}},
	}, 4, batch.FromOptions{})
	require.NoError(t, err)
	defer rows.Release()
	ts := uint64(time.Now().UnixMilli()) << 18
	rec := rows.Record(ts)
	defer rec.Release()
	body, err := batch.EncodeIPC(rec)
	require.NoError(t, err)
	e.append(ch, dml.Message{Header: dml.Header{Kind: dml.Insert, CollectionID: coll.ID, PartitionID: parts[0].ID, Timestamp: ts, Rows: 4}, Body: body})
	e.append(ch, dml.Message{Header: dml.Header{Kind: dml.Delete, CollectionID: coll.ID, PartitionID: dml.AllPartitions, Timestamp: ts + 1, Rows: 1}, Body: dml.EncodePKs(dml.PKs{Strs: []string{"b"}})})
	last := e.append(ch, dml.Message{Header: dml.Header{Kind: dml.Flush, CollectionID: coll.ID, Timestamp: ts + 2}})
	e.waitCheckpoint(ch, last)

	segs, err := e.catalog.ListSegments(e.ctx, coll.ID)
	require.NoError(t, err)
	require.Len(t, segs, 2)
	var sawStats, sawDeletes bool
	for _, sg := range segs {
		files, err := e.catalog.ListFiles(e.ctx, coll.ID, sg.ID)
		require.NoError(t, err)
		for _, f := range files {
			data, err := e.bucket.Get(e.ctx, f.Key)
			require.NoError(t, err)
			switch f.Kind {
			case meta.StatsFile:
				st, err := segment.ReadStats(bytes.NewReader(data), int64(len(data)))
				require.NoError(t, err)
				require.Equal(t, "b", st.MinString)
				require.Equal(t, "z", st.MaxString)
				for _, k := range keys {
					require.True(t, st.MayContainString(k))
				}
				sawStats = true
			case meta.DeleteFile:
				d, err := segment.ReadDeletes(bytes.NewReader(data), int64(len(data)))
				require.NoError(t, err)
				require.Equal(t, []string{"b"}, d.StringPKs)
				require.Equal(t, []uint64{ts + 1}, d.TS)
				sawDeletes = true
			}
		}
	}
	require.True(t, sawStats)
	require.True(t, sawDeletes)
}

func TestReleaseAndRewatchResumesFromTheCheckpoint(t *testing.T) {
	e := newEnv(t, envOpts{})
	ch := e.coll.VChannels[0]
	e.assign(ch, 1)
	n := e.node(testConfig(1))
	require.NoError(t, n.Watch(e.ctx, ch))
	e.insert(ch, meta.DefaultPartition, 4)
	e.waitCheckpoint(ch, e.flush(ch))
	n.Release(ch)
	require.NoError(t, n.Err("unknown"))
	e.insert(ch, meta.DefaultPartition, 4) // buffered by nobody
	require.NoError(t, n.Watch(e.ctx, ch))
	e.waitCheckpoint(ch, e.flush(ch))
	e.requireExactlyOnce()
}
