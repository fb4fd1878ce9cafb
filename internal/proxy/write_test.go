package proxy_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/metadata"

	"github.com/weir-db/weir/internal/batch"
	"github.com/weir-db/weir/internal/dml"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/proxy"
	"github.com/weir-db/weir/internal/wal"
)

func insertReq(c coll, keys []int64, dim int) *milvuspb.InsertRequest {
	titles := make([]string, len(keys))
	scores := make([]float32, len(keys))
	for i, k := range keys {
		titles[i] = fmt.Sprintf("t%d", k)
		scores[i] = float32(k) / 2
	}
	return &milvuspb.InsertRequest{CollectionName: c.name, NumRows: uint32(len(keys)), FieldsData: []*schemapb.FieldData{
		int64Col("id", keys), vecCol("vec", dim, vectors(keys, dim)), strCol("title", titles), floatCol("score", scores),
	}}
}

func requireOK(t testing.TB, st *commonpb.Status) {
	t.Helper()
	require.Zero(t, st.GetCode(), st.GetReason())
	require.Equal(t, commonpb.ErrorCode_Success, st.GetErrorCode(), st.GetReason())
}

// TestInsertRoutesRowsToTheirChannels checks what an insert appends: each row on the channel
// its key hashes to (Milvus's hash), each channel's messages stamped as they are appended, the
// default partition, and the rows themselves; and what it answers: the latest stamp.
func TestInsertRoutesRowsToTheirChannels(t *testing.T) {
	e := startProxy(t)
	ctx := ctxT(t)
	c := createColl(t, e.c, "books", 2, pk, vec32, title, score)
	keys := seq(1, 200)
	res, err := e.c.Insert(ctx, insertReq(c, keys, 32))
	require.NoError(t, err)
	requireOK(t, res.GetStatus())
	require.Equal(t, int64(200), res.GetInsertCnt())
	require.Equal(t, keys, res.GetIDs().GetIntId().GetData(), "IDs in request order")
	require.Len(t, res.GetSuccIndex(), 200)
	require.Equal(t, uint32(199), res.GetSuccIndex()[199])
	require.NotZero(t, res.GetTimestamp())

	var got []int64
	var stamps []uint64
	for ch, name := range c.chans {
		msgs := readChannel(t, e.log, name)
		require.Len(t, msgs, 1, "a small batch is one message per channel")
		m := msgs[0]
		stamps = append(stamps, m.hdr.Timestamp)
		require.Equal(t, dml.Header{Kind: dml.Insert, CollectionID: c.id, PartitionID: c.defaultP, Timestamp: m.hdr.Timestamp, Rows: m.hdr.Rows}, m.hdr)
		ids := int64s(t, m.rec, "id")
		for i, id := range ids {
			require.Equal(t, ch, int(batch.HashInt64(id)%2), "key %d on channel %d", id, ch)
			require.Equal(t, fmt.Sprintf("t%d", id), strings_(t, m.rec, "title")[i])
			vec := m.rec.Column(1).(*array.FixedSizeBinary).Value(i)
			require.Equal(t, float32(id)+0.31, math.Float32frombits(binary.LittleEndian.Uint32(vec[31*4:])))
		}
		require.True(t, slices.IsSorted(ids), "a channel keeps the request's row order")
		got = append(got, ids...)
	}
	slices.Sort(got)
	require.Equal(t, keys, got, "every row once")
	require.Equal(t, slices.Max(stamps), res.GetTimestamp(), "the client gets the latest stamp")

	// A later request gets a later timestamp.
	res2, err := e.c.Insert(ctx, insertReq(c, seq(1000, 3), 32))
	require.NoError(t, err)
	requireOK(t, res2.GetStatus())
	require.Greater(t, res2.GetTimestamp(), res.GetTimestamp())
}

func TestInsertIntoPartitionVarCharAndAutoID(t *testing.T) {
	e := startProxy(t)
	ctx := ctxT(t)

	t.Run("partition", func(t *testing.T) {
		c := createColl(t, e.c, "parts", 1, pk, vec32, title, score)
		p1 := createPartition(t, e.c, "parts", "p1")
		req := insertReq(c, seq(1, 5), 32)
		req.PartitionName = "p1"
		res, err := e.c.Insert(ctx, req)
		require.NoError(t, err)
		requireOK(t, res.GetStatus())
		msgs := readChannel(t, e.log, c.chans[0])
		require.Len(t, msgs, 1)
		require.Equal(t, p1, msgs[0].hdr.PartitionID)
	})

	t.Run("varchar key", func(t *testing.T) {
		c := createColl(t, e.c, "named", 3, strPK, vec32)
		keys := []string{"alpha", "beta", "gamma", "delta", "epsilon", "ζήτα"}
		res, err := e.c.Insert(ctx, &milvuspb.InsertRequest{CollectionName: "named", NumRows: 6, FieldsData: []*schemapb.FieldData{
			strCol("key", keys), vecCol("vec", 32, vectors(seq(0, 6), 32)),
		}})
		require.NoError(t, err)
		requireOK(t, res.GetStatus())
		require.Equal(t, keys, res.GetIDs().GetStrId().GetData())
		var got []string
		for ch, name := range c.chans {
			for _, m := range readChannel(t, e.log, name) {
				for _, k := range strings_(t, m.rec, "key") {
					require.Equal(t, ch, int(batch.HashString(k)%3), "key %q", k)
					got = append(got, k)
				}
			}
		}
		require.ElementsMatch(t, keys, got)
	})

	t.Run("auto id", func(t *testing.T) {
		c := createColl(t, e.c, "auto", 2, autoPK, vec32)
		var all []int64
		for range 2 {
			res, err := e.c.Insert(ctx, &milvuspb.InsertRequest{CollectionName: "auto", NumRows: 50, FieldsData: []*schemapb.FieldData{
				vecCol("vec", 32, vectors(seq(0, 50), 32)),
			}})
			require.NoError(t, err)
			requireOK(t, res.GetStatus())
			ids := res.GetIDs().GetIntId().GetData()
			require.Len(t, ids, 50)
			all = append(all, ids...)
		}
		var stored []int64
		for _, name := range c.chans {
			for _, m := range readChannel(t, e.log, name) {
				stored = append(stored, int64s(t, m.rec, "id")...)
			}
		}
		require.ElementsMatch(t, all, stored, "the channels hold the IDs the client was given")
		slices.Sort(all)
		require.Len(t, slices.Compact(all), 100, "allocated IDs are unique")
	})
}

// TestUpsertIntoGeneratedKeys: an upsert into a collection whose keys are generated deletes the
// keys the client sends and inserts the rows under new keys, which it returns, as Milvus 2.6
// does: in each channel the old keys' deletes come before the new rows.
func TestUpsertIntoGeneratedKeys(t *testing.T) {
	e := startProxy(t)
	ctx := ctxT(t)
	c := createColl(t, e.c, "auto", 2, autoPK, vec32)
	old := []int64{11, 12, 13, 14}
	res, err := e.c.Upsert(ctx, &milvuspb.UpsertRequest{CollectionName: "auto", NumRows: 4, FieldsData: []*schemapb.FieldData{
		int64Col("id", old), vecCol("vec", 32, vectors(old, 32)),
	}})
	require.NoError(t, err)
	requireOK(t, res.GetStatus())
	fresh := res.GetIDs().GetIntId().GetData()
	require.Len(t, fresh, 4)
	for _, k := range fresh {
		require.NotContains(t, old, k, "the rows get new keys")
	}
	require.Equal(t, int64(4), res.GetUpsertCnt())

	var deleted, inserted []int64
	for ch, name := range c.chans {
		sawInsert := false
		for _, m := range readChannel(t, e.log, name) {
			switch m.hdr.Kind {
			case dml.Delete:
				require.False(t, sawInsert, "channel %s: a delete after the inserts", name)
				for _, k := range m.keys.Ints {
					require.Equal(t, ch, batch.ChannelOf(2)(batch.HashInt64(k)), "key %d in its channel", k)
				}
				deleted = append(deleted, m.keys.Ints...)
			case dml.Insert:
				sawInsert = true
				inserted = append(inserted, int64s(t, m.rec, "id")...)
			default:
				t.Fatalf("channel %s: unexpected %s message", name, m.hdr.Kind)
			}
		}
	}
	require.ElementsMatch(t, old, deleted, "the client's keys are deleted")
	require.ElementsMatch(t, fresh, inserted, "the rows are stored under the keys returned")
}

// TestOversizeKeyRefusedBeforeAnyAppend: a delete or an upsert into generated keys whose key is
// too large for one message is refused before any channel is appended to (the other channels'
// messages would otherwise be stored while the request fails).
func TestOversizeKeyRefusedBeforeAnyAppend(t *testing.T) {
	const limit = 64 << 10
	e := startProxy(t, func(o *proxyOpts) { o.cfg.MaxMessageBytes = limit })
	ctx := ctxT(t)
	autoStr := &schemapb.FieldSchema{Name: "key", DataType: schemapb.DataType_VarChar, IsPrimaryKey: true, AutoID: true, TypeParams: []*commonpb.KeyValuePair{kv("max_length", "64")}}
	c := createColl(t, e.c, "auto", 2, autoStr, vec32)
	huge := strings.Repeat("k", 2*limit)
	keys := []string{"a", "b", "c", "d", huge}
	before := lastPositions(t, e.log, c.chans)
	res, err := e.c.Upsert(ctx, &milvuspb.UpsertRequest{CollectionName: "auto", NumRows: 5, FieldsData: []*schemapb.FieldData{
		strCol("key", keys), vecCol("vec", 32, make([]float32, 5*32)),
	}})
	require.NoError(t, err)
	require.Equal(t, int32(1102), res.GetStatus().GetCode(), res.GetStatus().GetReason())
	del, err := e.c.Delete(ctx, &milvuspb.DeleteRequest{CollectionName: "auto", Expr: `key in ["a", "b", "c", "` + huge + `"]`})
	require.NoError(t, err)
	require.Equal(t, int32(1102), del.GetStatus().GetCode(), del.GetStatus().GetReason())
	require.Equal(t, before, lastPositions(t, e.log, c.chans), "nothing appended to any channel")
}

// TestLargeBatchesAreSplitIntoMessages checks that a channel's rows are cut into messages no
// larger than MaxMessageBytes, in order, all with the request's timestamp, and that a single
// row too large for a message rejects the request with nothing written.
func TestLargeBatchesAreSplitIntoMessages(t *testing.T) {
	const limit = 64 << 10
	e := startProxy(t, func(o *proxyOpts) { o.cfg.MaxMessageBytes = limit })
	ctx := ctxT(t)
	c := createColl(t, e.c, "big", 2, pk, vec32, title, score)
	keys := seq(1, 3000) // ~170 bytes a row: ~250 KiB per channel
	res, err := e.c.Insert(ctx, insertReq(c, keys, 32))
	require.NoError(t, err)
	requireOK(t, res.GetStatus())

	var got []int64
	for _, name := range c.chans {
		msgs := readChannel(t, e.log, name)
		require.Greater(t, len(msgs), 2, "channel %s", name)
		var ids []int64
		for i, m := range msgs {
			require.Equal(t, uint64(i+1), m.pos, "one request's messages are contiguous")
			if i > 0 {
				require.Greater(t, m.hdr.Timestamp, msgs[i-1].hdr.Timestamp, "each message its own stamp, growing with positions")
			}
			require.LessOrEqual(t, m.hdr.Timestamp, res.GetTimestamp())
			// Sliced columns encode their own rows: the vectors and titles match the keys.
			for i, id := range int64s(t, m.rec, "id") {
				vec := m.rec.Column(1).(*array.FixedSizeBinary).Value(i)
				require.Equal(t, float32(id), math.Float32frombits(binary.LittleEndian.Uint32(vec)))
				require.Equal(t, float32(id)+0.31, math.Float32frombits(binary.LittleEndian.Uint32(vec[31*4:])))
				require.Equal(t, fmt.Sprintf("t%d", id), strings_(t, m.rec, "title")[i])
			}
			ids = append(ids, int64s(t, m.rec, "id")...)
		}
		require.True(t, slices.IsSorted(ids), "messages keep the row order")
		got = append(got, ids...)
	}
	// Every stored message is within the limit, and the messages are not needlessly small.
	for _, name := range c.chans {
		r, err := e.log.Read(ctx, name, 1)
		require.NoError(t, err)
		last := lastPositions(t, e.log, []string{name})[0]
		total := 0
		for {
			m, err := r.Next(ctx)
			require.NoError(t, err)
			require.LessOrEqual(t, len(m.Data), limit)
			total += len(m.Data)
			if m.Pos == last {
				break
			}
		}
		require.NoError(t, r.Close())
		require.LessOrEqual(t, int(last), 2*(total/limit+1), "channel %s: %d bytes in %d messages", name, total, last)
	}
	slices.Sort(got)
	require.Equal(t, keys, got)

	t.Run("rows of uneven size", func(t *testing.T) {
		notes := &schemapb.FieldSchema{Name: "notes", DataType: schemapb.DataType_VarChar, TypeParams: []*commonpb.KeyValuePair{kv("max_length", "65535")}}
		uc := createColl(t, e.c, "uneven", 1, pk, vec32, notes)
		keys := seq(1, 40)
		texts := make([]string, len(keys))
		for i := range texts {
			texts[i] = "short"
			if i < 10 { // the first rows are far larger than the rest: an equal cut overflows
				texts[i] = strings.Repeat(string(rune('a'+i)), 12000)
			}
		}
		res, err := e.c.Insert(ctx, &milvuspb.InsertRequest{CollectionName: "uneven", NumRows: 40, FieldsData: []*schemapb.FieldData{
			int64Col("id", keys), vecCol("vec", 32, vectors(keys, 32)), strCol("notes", texts),
		}})
		require.NoError(t, err)
		requireOK(t, res.GetStatus())
		msgs := readChannel(t, e.log, uc.chans[0])
		require.Greater(t, len(msgs), 3)
		var gotKeys []int64
		var gotTexts []string
		for _, m := range msgs {
			gotKeys = append(gotKeys, int64s(t, m.rec, "id")...)
			gotTexts = append(gotTexts, strings_(t, m.rec, "notes")...)
		}
		require.Equal(t, keys, gotKeys)
		require.Equal(t, texts, gotTexts)
		r, err := e.log.Read(ctx, uc.chans[0], 1)
		require.NoError(t, err)
		defer func() { require.NoError(t, r.Close()) }()
		for range msgs {
			m, err := r.Next(ctx)
			require.NoError(t, err)
			require.LessOrEqual(t, len(m.Data), limit)
		}
	})

	t.Run("a row larger than a message", func(t *testing.T) {
		big := createColl(t, e.c, "wide", 1, pk, vecField("32768"))
		before := lastPositions(t, e.log, big.chans)
		res, err := e.c.Insert(ctx, &milvuspb.InsertRequest{CollectionName: "wide", NumRows: 2, FieldsData: []*schemapb.FieldData{
			int64Col("id", []int64{1, 2}), vecCol("vec", 32768, make([]float32, 2*32768)),
		}})
		require.NoError(t, err)
		require.Equal(t, int32(1102), res.GetStatus().GetCode(), res.GetStatus().GetReason())
		require.Contains(t, res.GetStatus().GetReason(), "the row with primary key 1 encodes to")
		require.Equal(t, before, lastPositions(t, e.log, big.chans))
	})
}

// TestUpsertIsOneMessage checks the upsert layout: per channel, upsert messages holding that
// channel's rows, in the target partition, at the timestamp the client is given (the message
// deletes its rows' keys and inserts the rows at that one timestamp; see package dml).
func TestUpsertIsOneMessage(t *testing.T) {
	e := startProxy(t)
	ctx := ctxT(t)
	c := createColl(t, e.c, "books", 2, pk, vec32, title, score)
	p1 := createPartition(t, e.c, "books", "p1")
	keys := seq(10, 10)
	req := insertReq(c, keys, 32)
	res, err := e.c.Upsert(ctx, &milvuspb.UpsertRequest{CollectionName: "books", PartitionName: "p1", NumRows: req.NumRows, FieldsData: req.FieldsData})
	require.NoError(t, err)
	requireOK(t, res.GetStatus())
	require.Equal(t, int64(10), res.GetUpsertCnt())
	require.Equal(t, keys, res.GetIDs().GetIntId().GetData())

	var upserted []int64
	for ch, name := range c.chans {
		msgs := readChannel(t, e.log, name)
		require.Len(t, msgs, 1, "channel %d: one upsert message", ch)
		m := msgs[0]
		require.Equal(t, dml.Upsert, m.hdr.Kind)
		require.Equal(t, p1, m.hdr.PartitionID, "the upsert targets its partition")
		require.LessOrEqual(t, m.hdr.Timestamp, res.GetTimestamp())
		for _, k := range int64s(t, m.rec, "id") {
			require.Equal(t, ch, int(batch.HashInt64(k)%2))
		}
		upserted = append(upserted, int64s(t, m.rec, "id")...)
	}
	require.ElementsMatch(t, keys, upserted)

	t.Run("varchar keys", func(t *testing.T) {
		sc := createColl(t, e.c, "named", 2, strPK, vec32)
		keys := []string{"a", "b", "c", "d"}
		res, err := e.c.Upsert(ctx, &milvuspb.UpsertRequest{CollectionName: "named", NumRows: 4, FieldsData: []*schemapb.FieldData{
			strCol("key", keys), vecCol("vec", 32, vectors(seq(0, 4), 32)),
		}})
		require.NoError(t, err)
		requireOK(t, res.GetStatus())
		require.Equal(t, keys, res.GetIDs().GetStrId().GetData())
		var upserted []string
		for _, name := range sc.chans {
			for _, m := range readChannel(t, e.log, name) {
				require.Equal(t, dml.Upsert, m.hdr.Kind)
				require.Equal(t, sc.defaultP, m.hdr.PartitionID, "no partition name: the default partition")
				upserted = append(upserted, strings_(t, m.rec, "key")...)
			}
		}
		require.ElementsMatch(t, keys, upserted)
	})
}

// TestDeleteAppendsKeysToTheirChannels checks the delete messages for the expressions the SDKs
// generate.
func TestDeleteAppendsKeysToTheirChannels(t *testing.T) {
	e := startProxy(t)
	ctx := ctxT(t)
	c := createColl(t, e.c, "books", 2, pk, vec32)
	p1 := createPartition(t, e.c, "books", "p1")
	sc := createColl(t, e.c, "named", 2, strPK, vec32)

	cases := []struct {
		name  string
		coll  coll
		part  string
		expr  string
		ints  []int64
		strs  []string
		parts int64
	}{
		{"go sdk int64 list", c, "", "id in [1,2,3,4,5,6,7,8]", seq(1, 8), nil, dml.AllPartitions},
		{"spaces, IN, trailing comma", c, "p1", "  id IN [ -3 , 0x10,\n 7, ] ", []int64{-3, 16, 7}, nil, p1},
		{"equality", c, "", "id == 42", []int64{42}, nil, dml.AllPartitions},
		{"parenthesised", c, "", "(id in [5])", []int64{5}, nil, dml.AllPartitions},
		{"duplicates are kept", c, "", "id in [9, 9]", []int64{9, 9}, nil, dml.AllPartitions},
		{"go sdk string list", sc, "", `key in ["a","b","c"]`, nil, []string{"a", "b", "c"}, dml.AllPartitions},
		{"pymilvus string list", sc, "", `key in ['x', 'it\'s', "q\"d"]`, nil, []string{"x", "it's", `q"d`}, dml.AllPartitions},
		{"string equality", sc, "", `key == "only"`, nil, []string{"only"}, dml.AllPartitions},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := lastPositions(t, e.log, tc.coll.chans)
			res, err := e.c.Delete(ctx, &milvuspb.DeleteRequest{CollectionName: tc.coll.name, PartitionName: tc.part, Expr: tc.expr})
			require.NoError(t, err)
			requireOK(t, res.GetStatus())
			n := len(tc.ints) + len(tc.strs)
			require.Equal(t, int64(n), res.GetDeleteCnt())
			var gotInts []int64
			var gotStrs []string
			for ch, name := range tc.coll.chans {
				msgs := readChannel(t, e.log, name)
				msgs = slices.DeleteFunc(msgs, func(m walMsg) bool { return m.pos <= before[ch] })
				require.LessOrEqual(t, len(msgs), 1, "one delete message per channel")
				for _, m := range msgs {
					require.Equal(t, dml.Header{Kind: dml.Delete, CollectionID: tc.coll.id, PartitionID: tc.parts, Timestamp: m.hdr.Timestamp, Rows: uint32(m.keys.Len())}, m.hdr)
					require.LessOrEqual(t, m.hdr.Timestamp, res.GetTimestamp())
					for _, k := range m.keys.Ints {
						require.Equal(t, ch, int(batch.HashInt64(k)%2))
					}
					for _, k := range m.keys.Strs {
						require.Equal(t, ch, int(batch.HashString(k)%2))
					}
					gotInts = append(gotInts, m.keys.Ints...)
					gotStrs = append(gotStrs, m.keys.Strs...)
				}
			}
			if tc.strs != nil {
				require.ElementsMatch(t, tc.strs, gotStrs)
				require.Equal(t, tc.strs, res.GetIDs().GetStrId().GetData())
			} else {
				require.ElementsMatch(t, tc.ints, gotInts)
				require.Equal(t, tc.ints, res.GetIDs().GetIntId().GetData())
			}
		})
	}

	t.Run("empty list deletes nothing", func(t *testing.T) {
		before := lastPositions(t, e.log, c.chans)
		res, err := e.c.Delete(ctx, &milvuspb.DeleteRequest{CollectionName: "books", Expr: "id in []"})
		require.NoError(t, err)
		requireOK(t, res.GetStatus())
		require.Zero(t, res.GetDeleteCnt())
		require.Equal(t, before, lastPositions(t, e.log, c.chans))
	})

	t.Run("many keys are split into messages", func(t *testing.T) {
		small := startProxy(t, func(o *proxyOpts) { o.cfg.MaxMessageBytes = 1024 })
		bc := createColl(t, small.c, "books", 1, pk, vec32)
		keys := seq(1, 1000)
		var b strings.Builder
		b.WriteString("id in [")
		for _, k := range keys {
			fmt.Fprintf(&b, "%d,", k)
		}
		b.WriteString("]")
		res, err := small.c.Delete(ctx, &milvuspb.DeleteRequest{CollectionName: "books", Expr: b.String()})
		require.NoError(t, err)
		requireOK(t, res.GetStatus())
		msgs := readChannel(t, small.log, bc.chans[0])
		require.Greater(t, len(msgs), 5)
		var got []int64
		for i, m := range msgs {
			if i > 0 {
				require.Greater(t, m.hdr.Timestamp, msgs[i-1].hdr.Timestamp, "each message its own stamp")
			}
			got = append(got, m.keys.Ints...)
		}
		require.Equal(t, msgs[len(msgs)-1].hdr.Timestamp, res.GetTimestamp(), "the client gets the last stamp")
		require.Equal(t, keys, got)

		sb := createColl(t, small.c, "named", 1, strPK, vec32)
		skeys := make([]string, 300)
		b.Reset()
		b.WriteString("key in [")
		for i := range skeys {
			skeys[i] = fmt.Sprintf("key-%04d", i)
			fmt.Fprintf(&b, "%q,", skeys[i])
		}
		b.WriteString("]")
		res, err = small.c.Delete(ctx, &milvuspb.DeleteRequest{CollectionName: "named", Expr: b.String()})
		require.NoError(t, err)
		requireOK(t, res.GetStatus())
		msgs = readChannel(t, small.log, sb.chans[0])
		require.Greater(t, len(msgs), 2)
		var gotS []string
		for _, m := range msgs {
			gotS = append(gotS, m.keys.Strs...)
		}
		require.Equal(t, skeys, gotS)
	})
}

// TestRejectedWritesAppendNothing is invariant 8 for the write path: every malformed insert,
// upsert or delete gets the Milvus code a client expects, a reason naming what was wrong, gRPC
// OK, and neither a channel append nor a metastore write (no ID was allocated either).
func TestRejectedWritesAppendNothing(t *testing.T) {
	e := startProxy(t)
	ctx := ctxT(t)
	c := createColl(t, e.c, "books", 2, pk, vec32, shortTi, score)
	ac := createColl(t, e.c, "auto", 2, autoPK, vec32)
	sc := createColl(t, e.c, "named", 2, strPK, vec32)
	hc := createColl(t, e.c, "huge", 1, pk, vecField("32768"))
	chans := slices.Concat(c.chans, ac.chans, sc.chans, hc.chans)

	good := func() *milvuspb.InsertRequest {
		keys := []int64{1, 2}
		return &milvuspb.InsertRequest{CollectionName: "books", NumRows: 2, FieldsData: []*schemapb.FieldData{
			int64Col("id", keys), vecCol("vec", 32, vectors(keys, 32)), strCol("title", []string{"a", "b"}), floatCol("score", []float32{1, 2}),
		}}
	}
	insert := func(edit func(r *milvuspb.InsertRequest)) func() (*commonpb.Status, error) {
		return func() (*commonpb.Status, error) {
			r := good()
			edit(r)
			res, err := e.c.Insert(ctx, r)
			return res.GetStatus(), err
		}
	}
	upsert := func(edit func(r *milvuspb.UpsertRequest)) func() (*commonpb.Status, error) {
		return func() (*commonpb.Status, error) {
			g := good()
			r := &milvuspb.UpsertRequest{CollectionName: g.CollectionName, NumRows: g.NumRows, FieldsData: g.FieldsData}
			edit(r)
			res, err := e.c.Upsert(ctx, r)
			return res.GetStatus(), err
		}
	}
	del := func(r *milvuspb.DeleteRequest) func() (*commonpb.Status, error) {
		return func() (*commonpb.Status, error) {
			res, err := e.c.Delete(ctx, r)
			return res.GetStatus(), err
		}
	}
	otherDB := metadata.AppendToOutgoingContext(ctx, "dbname", "analytics")
	d, err := e.c.DescribeCollection(ctx, &milvuspb.DescribeCollectionRequest{CollectionName: "books"})
	require.NoError(t, err)

	cases := []struct {
		name   string
		call   func() (*commonpb.Status, error)
		code   int32
		reason string
	}{
		{"insert: wrong dimension", insert(func(r *milvuspb.InsertRequest) { r.FieldsData[1] = vecCol("vec", 16, make([]float32, 32)) }), 1100, "dim"},
		{"insert: missing field", insert(func(r *milvuspb.InsertRequest) { r.FieldsData = r.FieldsData[:3] }), 1100, "fieldSchema(score) has no corresponding fieldData pass in: invalid parameter"},
		{"insert: over-long varchar", insert(func(r *milvuspb.InsertRequest) { r.FieldsData[2] = strCol("title", []string{"a", "much too long"}) }), 1100, "title"},
		{"insert: unknown field", insert(func(r *milvuspb.InsertRequest) {
			r.FieldsData = append(r.FieldsData, floatCol("nope", []float32{1, 2}))
		}), 1100, "fieldName nope not exist in collection schema"},
		{"insert: type mismatch", insert(func(r *milvuspb.InsertRequest) { r.FieldsData[3] = strCol("score", []string{"x", "y"}) }), 1100, "score"},
		{"insert: row count mismatch", insert(func(r *milvuspb.InsertRequest) { r.NumRows = 3 }), 1100, "id"},
		{"insert: no rows", insert(func(r *milvuspb.InsertRequest) { r.NumRows = 0 }), 1100, "num_rows should be greater than 0"},
		{"insert: NaN vector", insert(func(r *milvuspb.InsertRequest) {
			v := vectors([]int64{1, 2}, 32)
			v[3] = float32(math.NaN())
			r.FieldsData[1] = vecCol("vec", 32, v)
		}), 65535, "value 'NaN' is not a number or infinity"},
		{"insert: unknown collection", insert(func(r *milvuspb.InsertRequest) { r.CollectionName = "nope" }), 100, "collection=nope]"},
		{"insert: no collection name", insert(func(r *milvuspb.InsertRequest) { r.CollectionName = "" }), 1100, "collection name should not be empty: invalid parameter"},
		{"insert: unknown partition", insert(func(r *milvuspb.InsertRequest) { r.PartitionName = "nope" }), 200, "partition=nope]"},
		{"insert: a missing column before a missing partition", insert(func(r *milvuspb.InsertRequest) {
			r.PartitionName = "nope"
			r.FieldsData = r.FieldsData[:3]
		}), 1100, "fieldSchema(score) has no corresponding fieldData pass in"},
		{"insert: invalid partition name", insert(func(r *milvuspb.InsertRequest) { r.PartitionName = "a b" }), 65535, "Invalid partition name: a b. Partition name can only contain numbers, letters and underscores."},
		{"insert: a partition name fault before a value fault", insert(func(r *milvuspb.InsertRequest) {
			r.PartitionName = "a b"
			v := vectors([]int64{1, 2}, 32)
			v[3] = float32(math.NaN())
			r.FieldsData[1] = vecCol("vec", 32, v)
		}), 65535, "Invalid partition name: a b."},
		{"insert: unknown database", func() (*commonpb.Status, error) {
			res, err := e.c.Insert(otherDB, good())
			return res.GetStatus(), err
		}, 800, "database=analytics]"},
		{"insert: stale schema timestamp", insert(func(r *milvuspb.InsertRequest) { r.SchemaTimestamp = d.GetUpdateTimestamp() - 1 }), 109, "collection schema mismatch[collection=books]"},
		{"insert: namespace", insert(func(r *milvuspb.InsertRequest) { r.Namespace = new("tenant") }), 1100, "namespaces are not supported"},
		{"insert: auto id given", func() (*commonpb.Status, error) {
			res, err := e.c.Insert(ctx, &milvuspb.InsertRequest{CollectionName: "auto", NumRows: 1, FieldsData: []*schemapb.FieldData{
				int64Col("id", []int64{1}), vecCol("vec", 32, make([]float32, 32)),
			}})
			return res.GetStatus(), err
		}, 1100, "more fieldData has pass in: invalid parameter[expected=2][actual=3]"},
		{"insert: batch too large", func() (*commonpb.Status, error) {
			// 520 rows of 128 KiB vectors: 65 MiB, over batch's 64 MiB limit.
			res, err := e.c.Insert(ctx, &milvuspb.InsertRequest{CollectionName: "huge", NumRows: 520, FieldsData: []*schemapb.FieldData{
				int64Col("id", seq(1, 520)), vecCol("vec", 32768, make([]float32, 520*32768)),
			}})
			return res.GetStatus(), err
		}, 1102, "limit is 67108864 bytes"},
		{"upsert: duplicate keys", upsert(func(r *milvuspb.UpsertRequest) { r.FieldsData[0] = int64Col("id", []int64{1, 1}) }), 1100, "duplicate primary keys are not allowed in the same batch"},
		{"upsert: missing key", upsert(func(r *milvuspb.UpsertRequest) { r.FieldsData = r.FieldsData[1:] }), 1100, "must assign pk when upsert, primary field: id: invalid parameter"},
		{"upsert: auto id collection without the keys", func() (*commonpb.Status, error) {
			res, err := e.c.Upsert(ctx, &milvuspb.UpsertRequest{CollectionName: "auto", NumRows: 1, FieldsData: []*schemapb.FieldData{
				vecCol("vec", 32, make([]float32, 32)),
			}})
			return res.GetStatus(), err
		}, 1100, "must assign pk when upsert, primary field: id"},
		{"upsert: partial update", upsert(func(r *milvuspb.UpsertRequest) { r.PartialUpdate = true }), 1100, "partial update is not supported"},
		{"upsert: wrong dimension", upsert(func(r *milvuspb.UpsertRequest) { r.FieldsData[1] = vecCol("vec", 16, make([]float32, 32)) }), 1100, "dim"},
		{"upsert: unknown collection", upsert(func(r *milvuspb.UpsertRequest) { r.CollectionName = "nope" }), 100, "collection=nope]"},
		{"delete: a filter of a collection not loaded", del(&milvuspb.DeleteRequest{CollectionName: "books", Expr: "id > 5"}), 101, "failed to query: collection not loaded[collection="},
		{"delete: two conditions of a collection not loaded", del(&milvuspb.DeleteRequest{CollectionName: "books", Expr: "id in [1] or id in [2]"}), 101, "failed to query: collection not loaded[collection="},
		{"delete: a malformed filter", del(&milvuspb.DeleteRequest{CollectionName: "books", Expr: "id in [1] or"}), 1100, "failed to create delete plan: cannot parse expression: id in [1] or, error: "},
		{"delete: float key", del(&milvuspb.DeleteRequest{CollectionName: "books", Expr: "id in [1.5]"}), 1100, "1.5 is not an integer"},
		{"delete: key out of range", del(&milvuspb.DeleteRequest{CollectionName: "books", Expr: "id in [9223372036854775808]"}), 1100, "out of the Int64 range"},
		{"delete: string for an int key", del(&milvuspb.DeleteRequest{CollectionName: "books", Expr: `id in ["1"]`}), 1100, "is Int64, but \"1\" is a string"},
		{"delete: number for a varchar key", del(&milvuspb.DeleteRequest{CollectionName: "named", Expr: `key in [1]`}), 1100, "is VarChar, but 1 is a number"},
		{"delete: empty expression", del(&milvuspb.DeleteRequest{CollectionName: "books"}), 1100, "delete plan can't be empty or always true"},
		{"delete: template", del(&milvuspb.DeleteRequest{CollectionName: "books", Expr: "id in {ids}", ExprTemplateValues: map[string]*schemapb.TemplateValue{
			"ids": {Val: &schemapb.TemplateValue_Int64Val{Int64Val: 1}}}}), 1100, "expression templates are not supported"},
		{"delete: unknown collection", del(&milvuspb.DeleteRequest{CollectionName: "nope", Expr: "id in [1]"}), 100, "collection=nope]"},
		{"delete: unknown partition", del(&milvuspb.DeleteRequest{CollectionName: "books", PartitionName: "nope", Expr: "id in [1]"}), 200, "partition=nope]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := lastPositions(t, e.log, chans)
			rev, err := e.store.Revision(ctx)
			require.NoError(t, err)
			st, err := tc.call()
			require.NoError(t, err, "Milvus answers rejections in-band with gRPC OK")
			require.Equal(t, tc.code, st.GetCode(), st.GetReason())
			require.NotEqual(t, commonpb.ErrorCode_Success, st.GetErrorCode())
			require.Contains(t, st.GetReason(), tc.reason)
			require.False(t, st.GetRetriable())
			require.Equal(t, before, lastPositions(t, e.log, chans), "a rejected request appends nothing")
			after, err := e.store.Revision(ctx)
			require.NoError(t, err)
			require.Equal(t, rev, after, "a rejected request writes no meta and allocates no IDs")
		})
	}
}

// TestAppendRetriesKeepRecordIDs checks the retry of an append whose outcome is unknown: the
// same record IDs are sent again and JetStream stores each record once; a definite failure is
// not retried; an append that keeps failing answers a retriable Unavailable.
func TestAppendRetriesKeepRecordIDs(t *testing.T) {
	e := startProxy(t)
	ctx := ctxT(t)
	c := createColl(t, e.c, "books", 1, pk, vec32, title, score)

	t.Run("ack lost, then retried", func(t *testing.T) {
		e.faults.setPlan(ackLost)
		res, err := e.c.Insert(ctx, insertReq(c, seq(1, 10), 32))
		require.NoError(t, err)
		requireOK(t, res.GetStatus())
		calls := e.faults.recorded()
		require.Len(t, calls, 2)
		require.Equal(t, calls[0].ids, calls[1].ids, "the retry resends the same record IDs")
		msgs := readChannel(t, e.log, c.chans[0])
		require.Len(t, msgs, 1, "JetStream stored the record once")
		require.Equal(t, seq(1, 10), int64s(t, msgs[0].rec, "id"))
	})

	t.Run("ids are unique per request", func(t *testing.T) {
		e.faults.setPlan()
		for range 2 {
			res, err := e.c.Insert(ctx, insertReq(c, seq(100, 2), 32))
			require.NoError(t, err)
			requireOK(t, res.GetStatus())
		}
		calls := e.faults.recorded()
		require.Len(t, calls, 2)
		require.NotEqual(t, calls[0].ids, calls[1].ids)
		require.Len(t, readChannel(t, e.log, c.chans[0]), 3, "a repeated request is a new write")
	})

	t.Run("unreachable, then recovered", func(t *testing.T) {
		before := lastPositions(t, e.log, c.chans)[0]
		e.faults.setPlan(unreachable, unreachable)
		res, err := e.c.Delete(ctx, &milvuspb.DeleteRequest{CollectionName: "books", Expr: "id in [1, 2]"})
		require.NoError(t, err)
		requireOK(t, res.GetStatus())
		require.Len(t, e.faults.recorded(), 3)
		require.Equal(t, before+1, lastPositions(t, e.log, c.chans)[0])
	})

	t.Run("keeps failing", func(t *testing.T) {
		before := lastPositions(t, e.log, c.chans)
		e.faults.setPlan(unreachable, unreachable, unreachable, unreachable, unreachable)
		res, err := e.c.Insert(ctx, insertReq(c, seq(1, 3), 32))
		require.NoError(t, err)
		st := res.GetStatus()
		require.Equal(t, int32(2), st.GetCode(), st.GetReason())
		require.True(t, st.GetRetriable())
		require.Contains(t, st.GetReason(), "outcome unknown after 4 attempts")
		require.Len(t, e.faults.recorded(), proxy.DefaultAppendAttempts)
		require.Equal(t, before, lastPositions(t, e.log, c.chans))
	})

	t.Run("definite failure is not retried", func(t *testing.T) {
		e.faults.setPlan(tooLarge)
		res, err := e.c.Insert(ctx, insertReq(c, seq(1, 3), 32))
		require.NoError(t, err)
		require.Equal(t, int32(5), res.GetStatus().GetCode(), res.GetStatus().GetReason())
		require.Contains(t, res.GetStatus().GetReason(), "record too large")
		require.Len(t, e.faults.recorded(), 1)
	})

	t.Run("request cancelled while backing off", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		e.faults.setPlan(unreachable, unreachable)
		e.faults.setHook(cancel)
		defer e.faults.setHook(nil)
		res, err := e.srv.Insert(cctx, insertReq(c, seq(1, 3), 32))
		require.NoError(t, err)
		require.Equal(t, int32(2), res.GetStatus().GetCode(), res.GetStatus().GetReason())
		require.Contains(t, res.GetStatus().GetReason(), "context canceled")
		require.Len(t, e.faults.recorded(), 1)
	})

	t.Run("missing channel is created", func(t *testing.T) {
		e.faults.setPlan()
		require.NoError(t, e.log.DeleteChannel(ctx, c.chans[0]))
		res, err := e.c.Insert(ctx, insertReq(c, seq(500, 4), 32))
		require.NoError(t, err)
		requireOK(t, res.GetStatus())
		msgs := readChannel(t, e.log, c.chans[0])
		require.Len(t, msgs, 1)
		require.Equal(t, seq(500, 4), int64s(t, msgs[0].rec, "id"))
	})

	t.Run("a dropped collection's channel is not brought back", func(t *testing.T) {
		// Dropped through another proxy: this one still has it in its cache. Garbage
		// collection deleted its channel; an insert must not create it again, where nothing
		// would ever delete it (found by review).
		e.faults.setPlan()
		g := createColl(t, e.c, "gone", 1, pk, vec32, title, score)
		res, err := e.c.Insert(ctx, insertReq(g, seq(1, 2), 32))
		require.NoError(t, err)
		requireOK(t, res.GetStatus())
		_, err = e.catalog.DropCollection(ctx, meta.DefaultDatabase, "gone")
		require.NoError(t, err)
		require.NoError(t, e.log.DeleteChannel(ctx, g.chans[0]))
		res, err = e.c.Insert(ctx, insertReq(g, seq(3, 2), 32))
		require.NoError(t, err)
		require.Equal(t, int32(100), res.GetStatus().GetCode(), res.GetStatus().GetReason())
		_, err = e.log.LastPosition(ctx, g.chans[0])
		require.ErrorIs(t, err, wal.ErrChannelNotFound)
	})

	t.Run("a collection dropped while its channel is created again", func(t *testing.T) {
		e.faults.setPlan()
		g := createColl(t, e.c, "racing", 1, pk, vec32, title, score)
		res, err := e.c.Insert(ctx, insertReq(g, seq(1, 2), 32))
		require.NoError(t, err)
		requireOK(t, res.GetStatus())
		require.NoError(t, e.log.DeleteChannel(ctx, g.chans[0]))
		e.faults.mu.Lock()
		e.faults.onCreate = func() { // the drop lands between the proxy's check and its create
			_, err := e.catalog.DropCollection(ctx, meta.DefaultDatabase, "racing")
			require.NoError(t, err)
		}
		e.faults.mu.Unlock()
		defer func() { e.faults.mu.Lock(); e.faults.onCreate = nil; e.faults.mu.Unlock() }()
		res, err = e.c.Insert(ctx, insertReq(g, seq(3, 2), 32))
		require.NoError(t, err)
		require.Equal(t, int32(100), res.GetStatus().GetCode(), res.GetStatus().GetReason())
		_, err = e.log.LastPosition(ctx, g.chans[0])
		require.ErrorIs(t, err, wal.ErrChannelNotFound, "the channel it created is taken back")
	})
}

// TestUpsertDeleteNeverLandsAfterItsInsert: the server refuses the first record of an upsert's
// append and stores the rest, and the proxy retries with the same record IDs. Whatever order the
// records end up in, the last thing each upserted key has on its channel must write the row,
// never delete it: the client was told the rows are there.
func TestUpsertDeleteNeverLandsAfterItsInsert(t *testing.T) {
	e := startProxy(t)
	ctx := ctxT(t)
	c := createColl(t, e.c, "books", 1, pk, vec32, title, score)
	keys := seq(0, 20)
	req := insertReq(c, keys, 32)
	e.faults.setPlan(headRefused)
	res, err := e.c.Upsert(ctx, &milvuspb.UpsertRequest{CollectionName: "books", NumRows: req.NumRows, FieldsData: req.FieldsData})
	require.NoError(t, err)
	requireOK(t, res.GetStatus())
	require.Len(t, e.faults.recorded(), 2, "refused once, then retried")

	last := map[int64]dml.Kind{} // key → kind of the last message that names it
	for _, m := range readChannel(t, e.log, c.chans[0]) {
		if m.keys.Len() > 0 {
			for _, k := range m.keys.Ints {
				last[k] = dml.Delete
			}
		}
		if m.rec != nil {
			for _, k := range int64s(t, m.rec, "id") {
				last[k] = m.hdr.Kind
			}
		}
	}
	for _, k := range keys {
		require.NotEqual(t, dml.Delete, last[k], "key %d: its upsert's delete was stored after its insert", k)
		require.Contains(t, last, k)
	}
}

// TestReturnedTimestampCoversTheStoredOne: the timestamp a client gets back must never be below
// the one its rows are stored with, or a read at that timestamp (a Session guarantee) would miss
// them. Request A is stamped first but reaches the channel after request B, whose rows take
// several messages; the data node stores each message at max(its stamp, the previous one's + 1).
// Stamped when the request arrived, A's rows were stored above the timestamp A returned (issue
// 11, item 9); stamped once per request, B's later messages were (found by review).
func TestReturnedTimestampCoversTheStoredOne(t *testing.T) {
	e := startProxy(t, func(o *proxyOpts) { o.cfg.MaxMessageBytes = 8 << 10 }) // B's rows take several messages
	ctx := ctxT(t)
	c := createColl(t, e.c, "books", 1, pk, vec32, title, score)
	aWaits, bDone := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	e.faults.setHook(func() {
		if calls.Add(1) == 1 { // A's append waits until B's is done
			close(aWaits)
			<-bDone
		}
	})
	resA := make(chan *milvuspb.MutationResult, 1)
	go func() {
		res, err := e.c.Insert(ctx, insertReq(c, seq(1, 3), 32))
		require.NoError(t, err)
		resA <- res
	}()
	<-aWaits
	resB, err := e.c.Insert(ctx, insertReq(c, seq(10, 200), 32))
	require.NoError(t, err)
	requireOK(t, resB.GetStatus())
	close(bDone)
	a := <-resA
	requireOK(t, a.GetStatus())

	returned := map[int64]uint64{}
	for _, k := range seq(1, 3) {
		returned[k] = a.GetTimestamp()
	}
	for _, k := range seq(10, 200) {
		returned[k] = resB.GetTimestamp()
	}
	var prev uint64
	for _, m := range readChannel(t, e.log, c.chans[0]) {
		stored := max(m.hdr.Timestamp, prev+1) // the data node's rule
		prev = stored
		for _, k := range int64s(t, m.rec, "id") {
			require.GreaterOrEqual(t, returned[k], stored, "key %d (position %d): returned %d, stored at %d", k, m.pos, returned[k], stored)
		}
	}
}
