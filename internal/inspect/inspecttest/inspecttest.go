// Package inspecttest builds cluster states for the tests of inspect and of `weir inspect`:
// meta written through meta.Catalog and meta.Fence exactly as a data node writes it, real
// segment files, and DML messages, so that a test can break one thing on purpose.
package inspecttest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/batch"
	"github.com/weir-db/weir/internal/dml"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/metastore"
	"github.com/weir-db/weir/internal/objstore"
	"github.com/weir-db/weir/internal/schema"
	"github.com/weir-db/weir/internal/segment"
	"github.com/weir-db/weir/internal/session"
	"github.com/weir-db/weir/internal/tso"
)

// Root is the root path the clusters are built under.
const Root = "weir"

// Dim is the dimension of the collection's vector field.
const Dim = 4

// Cluster is a metastore and a bucket holding one collection, "books" (int64 primary key
// "id", a float vector "vec").
type Cluster struct {
	TB      require.TestingT
	Ctx     context.Context
	KV      metastore.Store
	Bucket  objstore.Bucket
	IDs     *meta.IDAllocator
	Catalog *meta.Catalog
	Coll    *meta.Collection
	// Part is the collection's default partition.
	Part int64
	// VarChar is set when the primary key is a VarChar: key n is then the string PK(n).
	VarChar bool
}

// PK is the VarChar primary key standing for n.
func PK(n int64) string { return fmt.Sprintf("pk-%d", n) }

func strPKs(pks []int64) []string {
	out := make([]string, len(pks))
	for i, pk := range pks {
		out[i] = PK(pk)
	}
	return out
}

// New creates the collection "books" with shards channels in kv and returns the cluster.
func New(ctx context.Context, t require.TestingT, kv metastore.Store, bucket objstore.Bucket, shards int) *Cluster {
	c := &Cluster{TB: t, Ctx: ctx, KV: kv, Bucket: bucket}
	c.IDs = meta.NewIDAllocator(kv, Root, 100)
	c.Catalog = meta.NewCatalog(kv, Root, c.IDs, slog.New(slog.DiscardHandler))
	c.create("books", shards, false)
	return c
}

// Another creates one more collection in the same metastore and bucket, with a VarChar
// primary key when varchar is set.
func (c *Cluster) Another(name string, shards int, varchar bool) *Cluster {
	o := &Cluster{TB: c.TB, Ctx: c.Ctx, KV: c.KV, Bucket: c.Bucket, IDs: c.IDs, Catalog: c.Catalog}
	o.create(name, shards, varchar)
	return o
}

func (c *Cluster) create(name string, shards int, varchar bool) {
	c.VarChar = varchar
	pk := &schemapb.FieldSchema{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true}
	if varchar {
		pk = &schemapb.FieldSchema{Name: "id", DataType: schemapb.DataType_VarChar, IsPrimaryKey: true,
			TypeParams: []*commonpb.KeyValuePair{{Key: "max_length", Value: "64"}}}
	}
	s, err := schema.Normalize(name, &schemapb.CollectionSchema{Fields: []*schemapb.FieldSchema{
		pk,
		{Name: "vec", DataType: schemapb.DataType_FloatVector, TypeParams: []*commonpb.KeyValuePair{{Key: "dim", Value: "4"}}},
	}})
	require.NoError(c.TB, err)
	var exists bool
	c.Coll, exists, err = c.Catalog.CreateCollection(c.Ctx, &meta.Collection{DB: meta.DefaultDatabase, Name: name, Schema: s, Shards: shards})
	require.NoError(c.TB, err)
	require.False(c.TB, exists, "collection %q exists", name)
	parts, err := c.Catalog.ListPartitions(c.Ctx, c.Coll.ID)
	require.NoError(c.TB, err)
	c.Part = parts[0].ID
}

// Partition creates a partition and returns its ID.
func (c *Cluster) Partition(name string) int64 {
	p, err := c.Catalog.CreatePartition(c.Ctx, c.Coll.ID, name)
	require.NoError(c.TB, err)
	return p.ID
}

// RegisterDataNode writes a live data node session for node (without an etcd lease: it stays
// until deleted).
func (c *Cluster) RegisterDataNode(node int64) {
	b, err := json.Marshal(session.Info{Role: "datanode", NodeID: node, StartedAt: time.Now().UTC()})
	require.NoError(c.TB, err)
	_, err = c.KV.Put(c.Ctx, session.Key(Root, "datanode", node), b)
	require.NoError(c.TB, err)
}

// Channel is one channel as a data node's pipeline holds it: its lease, claimed.
type Channel struct {
	c     *Cluster
	Name  string
	Fence *meta.Fence
	cp    meta.Checkpoint
}

// Own assigns channel ch to node, as the coordinator does, and claims it as the node's
// pipeline does.
func (c *Cluster) Own(ch string, node int64) *Channel {
	l, err := c.Catalog.AssignChannel(c.Ctx, ch, c.Coll.ID, node)
	require.NoError(c.TB, err)
	f := c.Catalog.Fence(l)
	require.NoError(c.TB, f.Claim(c.Ctx, node))
	cp, err := c.Catalog.ReadCheckpoint(c.Ctx, ch)
	require.NoError(c.TB, err)
	return &Channel{c: c, Name: ch, Fence: f, cp: cp}
}

// Token is what the channel's files are named by, as a data node names them: the revision of
// its claim of the channel.
func (ch *Channel) Token() int64 { return ch.Fence.Epoch() }

// Segment starts a segment of the channel (nothing is written until a sync commits it).
func (ch *Channel) Segment(part int64, level meta.Level) *meta.Segment {
	id, err := ch.c.IDs.Alloc(ch.c.Ctx, 1)
	require.NoError(ch.c.TB, err)
	now := time.Now().UTC()
	return &meta.Segment{ID: id, CollectionID: ch.c.Coll.ID, PartitionID: part, Channel: ch.Name, Level: level,
		State: meta.Growing, CreatedAt: now, UpdatedAt: now}
}

// Timestamp is a hybrid timestamp for logical step i of the current millisecond.
func Timestamp(i uint64) uint64 { return tso.Compose(time.Now(), i) }

// Rows returns an insert record of the collection holding pks, every row stamped ts.
func (c *Cluster) Rows(pks []int64, ts uint64) arrow.RecordBatch {
	vecs := make([]float32, Dim*len(pks))
	for i, pk := range pks {
		for d := range Dim {
			vecs[Dim*i+d] = float32(pk) + float32(d)/10
		}
	}
	id := &schemapb.FieldData{FieldName: "id", Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: pks}}}}}
	if c.VarChar {
		id = &schemapb.FieldData{FieldName: "id", Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_StringData{StringData: &schemapb.StringArray{Data: strPKs(pks)}}}}}
	}
	cols := []*schemapb.FieldData{
		id,
		{FieldName: "vec", Field: &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{Dim: Dim, Data: &schemapb.VectorField_FloatVector{FloatVector: &schemapb.FloatArray{Data: vecs}}}}},
	}
	rows, err := batch.FromFieldData(c.Coll.Schema, cols, uint32(len(pks)), batch.FromOptions{})
	require.NoError(c.TB, err)
	defer rows.Release()
	return rows.Record(ts)
}

// SyncInsert writes the insert and stats files of rows pks (stamped ts, from channel
// positions minPos to maxPos) to an L1 segment and commits its record, fenced, as a data
// node's sync does. It returns the files committed.
func (ch *Channel) SyncInsert(seg *meta.Segment, pks []int64, ts, minPos, maxPos uint64) []meta.File {
	c := ch.c
	rec := c.Rows(pks, ts)
	defer rec.Release()
	var ins bytes.Buffer
	info, err := segment.WriteInsert(&ins, rec.Schema(), []arrow.RecordBatch{rec}, segment.WriteOptions{})
	require.NoError(c.TB, err)
	st, err := segment.BuildStats([]arrow.Array{rec.Column(0)}, 0)
	require.NoError(c.TB, err)
	var stats bytes.Buffer
	_, err = segment.WriteStats(&stats, st)
	require.NoError(c.TB, err)
	first, err := c.IDs.Alloc(c.Ctx, 2)
	require.NoError(c.TB, err)
	lease := ch.Token()
	files := []meta.File{
		ch.put(meta.InsertFile, segment.InsertKey(Root, seg.CollectionID, seg.PartitionID, seg.ID, lease, uint64(first)), first, seg.ID, ins.Bytes(), info.Rows, minPos, maxPos, ts),
		ch.put(meta.StatsFile, segment.StatsKey(Root, seg.CollectionID, seg.PartitionID, seg.ID, lease, uint64(first+1)), first+1, seg.ID, stats.Bytes(), st.Rows, minPos, maxPos, ts),
	}
	ch.commit(seg, files, int64(len(pks)), minPos, maxPos, ts)
	return files
}

// SyncDelete writes a delete file of pks (each stamped ts, at channel position pos) to an L0
// segment and commits its record, fenced.
func (ch *Channel) SyncDelete(seg *meta.Segment, pks []int64, ts, pos uint64) []meta.File {
	c := ch.c
	d := segment.Deletes{IntPKs: pks, TS: make([]uint64, len(pks)), Pos: make([]uint64, len(pks))}
	if c.VarChar {
		d.IntPKs, d.StringPKs = nil, strPKs(pks)
	}
	for i := range pks {
		d.TS[i], d.Pos[i] = ts, pos
	}
	var buf bytes.Buffer
	info, err := segment.WriteDeletes(&buf, d)
	require.NoError(c.TB, err)
	id, err := c.IDs.Alloc(c.Ctx, 1)
	require.NoError(c.TB, err)
	key := segment.DeleteKey(Root, seg.CollectionID, seg.PartitionID, seg.ID, ch.Token(), uint64(id))
	files := []meta.File{ch.put(meta.DeleteFile, key, id, seg.ID, buf.Bytes(), info.Rows, pos, pos, ts)}
	ch.commit(seg, files, int64(len(pks)), pos, pos, ts)
	return files
}

func (ch *Channel) put(kind meta.FileKind, key string, id, seg int64, data []byte, rows int64, minPos, maxPos, ts uint64) meta.File {
	require.NoError(ch.c.TB, ch.c.Bucket.Put(ch.c.Ctx, key, data))
	return meta.File{ID: id, SegmentID: seg, Kind: kind, Key: key, Rows: rows, Bytes: int64(len(data)),
		MinPos: minPos, MaxPos: maxPos, MinTs: ts, MaxTs: ts}
}

// commit adds a sync's files and rows to seg's record and commits it under the fence, with the
// compare on the record's previous mod revision a data node makes.
func (ch *Channel) commit(seg *meta.Segment, files []meta.File, rows int64, minPos, maxPos, ts uint64) {
	if seg.StartPos == 0 {
		seg.StartPos = minPos
	}
	for _, f := range files {
		seg.Bytes += f.Bytes
	}
	seg.Rows += rows
	seg.Files += len(files)
	seg.MaxPos = max(seg.MaxPos, maxPos)
	seg.MaxTs = max(seg.MaxTs, ts)
	seg.UpdatedAt = time.Now().UTC()
	ch.Commit(seg, files)
}

// Commit writes seg's record as it is, with files, in one fenced transaction.
func (ch *Channel) Commit(seg *meta.Segment, files []meta.File) {
	ops, err := ch.Fence.SegmentOps(seg, files)
	require.NoError(ch.c.TB, err)
	rev, err := ch.Fence.Commit(ch.c.Ctx, []metastore.Cmp{ch.Fence.SegmentCmp(seg, seg.ModRevision)}, ops)
	require.NoError(ch.c.TB, err)
	seg.ModRevision = rev
}

// Checkpoint moves the channel's checkpoint to pos, fenced, as the last step of a sync.
func (ch *Channel) Checkpoint(pos, ts uint64) { ch.CheckpointAt(pos, ts, 0) }

// CheckpointAt is Checkpoint recording that the log stored the record at pos at logTime (Unix
// nanoseconds), as a data node does.
func (ch *Channel) CheckpointAt(pos, ts uint64, logTime int64) {
	cp := meta.Checkpoint{Position: pos, Timestamp: ts, LogTime: logTime, UpdatedAt: time.Now().UTC()}
	op, err := ch.Fence.CheckpointOp(cp)
	require.NoError(ch.c.TB, err)
	rev, err := ch.Fence.Commit(ch.c.Ctx, []metastore.Cmp{ch.Fence.CheckpointCmp(ch.cp.ModRevision)}, []metastore.Op{op})
	require.NoError(ch.c.TB, err)
	cp.ModRevision = rev
	ch.cp = cp
}

// InsertMessage is the DML message a proxy appends for rows pks of partition part.
func (c *Cluster) InsertMessage(part int64, pks []int64, ts uint64) []byte {
	return c.rowsMessage(dml.Insert, part, pks, ts)
}

// UpsertMessage is the DML message a proxy appends to upsert rows pks into partition part.
func (c *Cluster) UpsertMessage(part int64, pks []int64, ts uint64) []byte {
	return c.rowsMessage(dml.Upsert, part, pks, ts)
}

// UpsertAllPartitionsMessage is the DML message a proxy appends to upsert rows pks of a
// collection with a partition key into partition part: it deletes the keys in every partition.
func (c *Cluster) UpsertAllPartitionsMessage(part int64, pks []int64, ts uint64) []byte {
	return c.rowsMessage(dml.UpsertAllPartitions, part, pks, ts)
}

func (c *Cluster) rowsMessage(kind dml.Kind, part int64, pks []int64, ts uint64) []byte {
	rec := c.Rows(pks, ts)
	defer rec.Release()
	body, err := batch.EncodeIPC(rec)
	require.NoError(c.TB, err)
	return dml.Encode(dml.Message{Header: dml.Header{Kind: kind, CollectionID: c.Coll.ID, PartitionID: part, Timestamp: ts, Rows: uint32(len(pks))}, Body: body})
}

// DeleteMessage is the DML message a proxy appends to delete pks in scope part (a partition
// or dml.AllPartitions).
func (c *Cluster) DeleteMessage(part int64, pks []int64, ts uint64) []byte {
	keys := dml.PKs{Ints: pks}
	if c.VarChar {
		keys = dml.PKs{Strs: strPKs(pks)}
	}
	return dml.Encode(dml.Message{Header: dml.Header{Kind: dml.Delete, CollectionID: c.Coll.ID, PartitionID: part, Timestamp: ts, Rows: uint32(len(pks))},
		Body: dml.EncodePKs(keys)})
}

// FlushMessage is a flush marker.
func (c *Cluster) FlushMessage(ts uint64) []byte {
	return dml.Encode(dml.Message{Header: dml.Header{Kind: dml.Flush, CollectionID: c.Coll.ID, Timestamp: ts}})
}
