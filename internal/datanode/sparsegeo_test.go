package datanode

import (
	"bytes"
	"encoding/binary"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/batch"
	"github.com/weir-db/weir/internal/dml"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/schema"
	"github.com/weir-db/weir/internal/segment"
)

// TestSparseVectorsAndGeometries: sparse rows and WKB geometries, binary columns of variable
// length, go through the channel (Arrow IPC), the buffer and two syncs into insert files, and
// read back as the rows the proxy built.
func TestSparseVectorsAndGeometries(t *testing.T) {
	e := newEnv(t, envOpts{})
	s, err := schema.Normalize("places", &schemapb.CollectionSchema{Fields: []*schemapb.FieldSchema{
		{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
		{Name: "vec", DataType: schemapb.DataType_FloatVector, TypeParams: []*commonpb.KeyValuePair{{Key: "dim", Value: "2"}}},
		{Name: "sparse", DataType: schemapb.DataType_SparseFloatVector},
		{Name: "geo", DataType: schemapb.DataType_Geometry},
		// Nullable: odd ids are null, sent compact with valid_data as the SDKs send them.
		{Name: "note", DataType: schemapb.DataType_VarChar, Nullable: true, TypeParams: []*commonpb.KeyValuePair{{Key: "max_length", Value: "8"}}},
	}})
	require.NoError(t, err)
	coll, _, err := e.catalog.CreateCollection(e.ctx, &meta.Collection{DB: meta.DefaultDatabase, Name: "places", Schema: s, Shards: 1})
	require.NoError(t, err)
	ch := coll.VChannels[0]
	require.NoError(t, e.log.CreateChannel(e.ctx, ch))
	_, err = e.catalog.AssignChannel(e.ctx, ch, coll.ID, 1)
	require.NoError(t, err)
	parts, err := e.catalog.ListPartitions(e.ctx, coll.ID)
	require.NoError(t, err)
	node := e.node(testConfig(1))
	require.NoError(t, node.Watch(e.ctx, ch))

	// Two inserts, each flushed on its own, so the segment has two insert files.
	want := map[int64][2]string{}  // id -> sparse row bytes, canonical WKT
	wantNote := map[int64]string{} // id -> note, "null" for a null
	ts := uint64(time.Now().UnixMilli()) << 18
	var last uint64
	for m, from := range []int64{0, 5} {
		var ids []int64
		var vec []float32
		var rows [][]byte
		var geo, notes []string
		var valid []bool
		for id := from; id < from+5; id++ {
			valid = append(valid, id%2 == 0)
			wantNote[id] = "null"
			if id%2 == 0 {
				notes = append(notes, "n"+strconv.FormatInt(id, 10))
				wantNote[id] = notes[len(notes)-1]
			}
			var row []byte
			for k := range id % 3 { // empty rows too
				row = binary.LittleEndian.AppendUint32(row, uint32(id*10+k))
				row = binary.LittleEndian.AppendUint32(row, math.Float32bits(float32(k)+1))
			}
			ids, vec, rows = append(ids, id), append(vec, 1, 2), append(rows, row)
			geo = append(geo, "point("+strconv.FormatInt(id, 10)+" 1)")
			want[id] = [2]string{string(row), "POINT (" + strconv.FormatInt(id, 10) + " 1)"}
		}
		r, err := batch.FromFieldData(s, []*schemapb.FieldData{
			{FieldName: "id", Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: ids}}}}},
			{FieldName: "vec", Field: &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{Dim: 2, Data: &schemapb.VectorField_FloatVector{FloatVector: &schemapb.FloatArray{Data: vec}}}}},
			{FieldName: "sparse", Field: &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{Data: &schemapb.VectorField_SparseFloatVector{SparseFloatVector: &schemapb.SparseFloatArray{Contents: rows}}}}},
			{FieldName: "geo", Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_GeometryWktData{GeometryWktData: &schemapb.GeometryWktArray{Data: geo}}}}},
			{FieldName: "note", ValidData: valid, Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_StringData{StringData: &schemapb.StringArray{Data: notes}}}}},
		}, 5, batch.FromOptions{})
		require.NoError(t, err)
		rec := r.Record(ts + uint64(2*m))
		body, err := batch.EncodeIPC(rec)
		rec.Release()
		r.Release()
		require.NoError(t, err)
		e.append(ch, dml.Message{Header: dml.Header{Kind: dml.Insert, CollectionID: coll.ID, PartitionID: parts[0].ID, Timestamp: ts + uint64(2*m), Rows: 5}, Body: body})
		last = e.append(ch, dml.Message{Header: dml.Header{Kind: dml.Flush, CollectionID: coll.ID, Timestamp: ts + uint64(2*m) + 1}})
	}
	e.waitCheckpoint(ch, last)

	segs, err := e.catalog.ListSegments(e.ctx, coll.ID)
	require.NoError(t, err)
	got := map[int64][2]string{}
	gotNote := map[int64]string{}
	insertFiles := 0
	for _, sg := range segs {
		files, err := e.catalog.ListFiles(e.ctx, coll.ID, sg.ID)
		require.NoError(t, err)
		for _, f := range files {
			if f.Kind != meta.InsertFile {
				continue
			}
			insertFiles++
			data, err := e.bucket.Get(e.ctx, f.Key)
			require.NoError(t, err)
			tbl, err := segment.ReadInsert(bytes.NewReader(data), int64(len(data)))
			require.NoError(t, err)
			rd := array.NewTableReader(tbl, tbl.NumRows())
			for rd.Next() {
				cols, err := batch.ToFieldData(rd.RecordBatch(), s)
				require.NoError(t, err)
				for i, id := range cols[0].GetScalars().GetLongData().GetData() {
					got[id] = [2]string{
						string(cols[2].GetVectors().GetSparseFloatVector().GetContents()[i]),
						cols[3].GetScalars().GetGeometryWktData().GetData()[i],
					}
					gotNote[id] = "null"
					if cols[4].GetValidData()[i] {
						gotNote[id] = cols[4].GetScalars().GetStringData().GetData()[i]
					}
				}
			}
			rd.Release()
			tbl.Release()
		}
	}
	require.Equal(t, 2, insertFiles)
	require.Equal(t, want, got)
	require.Equal(t, wantNote, gotNote, "nulls survive the channel, the buffer and the Parquet files")
}
