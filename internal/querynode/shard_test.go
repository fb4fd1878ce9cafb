package querynode

import (
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"pgregory.net/rapid"

	"github.com/weir-db/weir/internal/batch"
	"github.com/weir-db/weir/internal/dml"
	"github.com/weir-db/weir/internal/expr"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/schema"
)

func testCollection(t interface{ Fatal(...any) }) *meta.Collection {
	s, err := schema.Normalize("books", &schemapb.CollectionSchema{Fields: []*schemapb.FieldSchema{
		{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
		{Name: "vec", DataType: schemapb.DataType_FloatVector, TypeParams: []*commonpb.KeyValuePair{{Key: "dim", Value: "2"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return &meta.Collection{ID: 1, Schema: s}
}

// TestShardMarksMatchTheRule is R4 on the shard's own code: rows in pieces of two partitions
// (several rows of one message sharing a timestamp, keys repeated across and within pieces)
// and deletes scoped to a partition or to all of them arrive in a random order through
// addPiece and addDelete; at every read timestamp, count(*)'s and search's visibility of each
// row equals the rule computed from scratch — a row stamped ts is seen at t when ts ≤ t and no
// delete of its key in its scope is stamped in (ts, t]; search and query keep, per key and
// partition, the newest seen row (of one message, the later row).
func TestShardMarksMatchTheRule(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		coll := testCollection(t)
		sh, err := newShard(coll, "ch")
		if err != nil {
			t.Fatal(err)
		}
		type rowRef struct {
			p    *piece
			r    int
			part int64
			key  int64
			ts   uint64
			msg  int
		}
		type del struct {
			scope int64
			key   int64
			ts    uint64
		}
		nPieces := rapid.IntRange(1, 6).Draw(t, "pieces")
		var pieces []*piece
		var rows []rowRef
		for m := range nPieces {
			n := rapid.IntRange(1, 4).Draw(t, "rows")
			ids := make([]int64, n)
			for i := range ids {
				ids[i] = rapid.Int64Range(0, 3).Draw(t, "key")
			}
			part := rapid.Int64Range(1, 2).Draw(t, "partition")
			ts := uint64(10 * (m + 1)) // one timestamp per message, increasing with position
			r, err := batch.FromFieldData(coll.Schema, []*schemapb.FieldData{
				{FieldName: "id", Type: schemapb.DataType_Int64, Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: ids}}}}},
				{FieldName: "vec", Type: schemapb.DataType_FloatVector, Field: &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{Dim: 2, Data: &schemapb.VectorField_FloatVector{FloatVector: &schemapb.FloatArray{Data: make([]float32, 2*n)}}}}},
			}, uint32(n), batch.FromOptions{})
			if err != nil {
				t.Fatal(err)
			}
			p, err := sh.newPiece(r.Record(ts), part, 0, uint64(m+1))
			r.Release()
			if err != nil {
				t.Fatal(err)
			}
			pieces = append(pieces, p)
			for i, k := range ids {
				rows = append(rows, rowRef{p, i, part, k, ts, m})
			}
		}
		dels := rapid.SliceOfN(rapid.Custom(func(t *rapid.T) del {
			return del{rapid.SampledFrom([]int64{1, 2, dml.AllPartitions}).Draw(t, "scope"), rapid.Int64Range(0, 3).Draw(t, "dkey"),
				uint64(rapid.IntRange(1, 70).Draw(t, "dts"))}
		}), 0, 8).Draw(t, "deletes")
		order := rapid.Permutation(seqN(len(pieces)+len(dels))).Draw(t, "arrival")
		for _, i := range order {
			if i < len(pieces) {
				sh.addPiece(pieces[i])
			} else {
				d := dels[i-len(pieces)]
				sh.addDelete(d.scope, key{i: d.key}, d.ts)
			}
		}
		seen := func(x rowRef, at uint64) bool {
			if x.ts > at {
				return false
			}
			for _, d := range dels {
				if d.key == x.key && (d.scope == dml.AllPartitions || d.scope == x.part) && x.ts < d.ts && d.ts <= at {
					return false
				}
			}
			return true
		}
		for at := uint64(0); at <= 75; at += 5 {
			for _, x := range rows {
				m := x.p.marks[x.r]
				if got, want := m.Sees(x.ts, at), seen(x, at); got != want {
					t.Fatalf("row %d of message %d (key %d, partition %d, ts %d) at %d: seen %v, rule %v", x.r, x.msg, x.key, x.part, x.ts, at, got, want)
				}
				latest := seen(x, at)
				for _, y := range rows {
					if y.key != x.key || y.part != x.part || !seen(y, at) || (y.p == x.p && y.r == x.r) {
						continue
					}
					if y.ts > x.ts || (y.ts == x.ts && y.p == x.p && y.r > x.r) {
						latest = false
					}
				}
				if got := m.Latest(x.ts, at); got != latest {
					t.Fatalf("row %d of message %d (key %d, partition %d, ts %d) at %d: latest %v, rule %v", x.r, x.msg, x.key, x.part, x.ts, at, got, latest)
				}
			}
		}
	})
}

func seqN(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// TestOneMessageSplitAcrossChunksOfAFile: the rows of one message share a timestamp; of two
// with one key the later wins, also when the file they were read from is cut into chunks
// between them.
func TestOneMessageSplitAcrossChunksOfAFile(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		coll := testCollection(t)
		sh, err := newShard(coll, "ch")
		if err != nil {
			t.Fatal(err)
		}
		mk := func(ids ...int64) *piece {
			r, err := batch.FromFieldData(coll.Schema, []*schemapb.FieldData{
				{FieldName: "id", Type: schemapb.DataType_Int64, Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: ids}}}}},
				{FieldName: "vec", Type: schemapb.DataType_FloatVector, Field: &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{Dim: 2, Data: &schemapb.VectorField_FloatVector{FloatVector: &schemapb.FloatArray{Data: make([]float32, 2*len(ids))}}}}},
			}, uint32(len(ids)), batch.FromOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Release()
			p, err := sh.newPiece(r.Record(10), 1, 77, 5)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		first, second := mk(1, 2), mk(3, 1)
		first.seq, second.seq = 0, 1
		if rapid.Bool().Draw(t, "second first") {
			sh.addPiece(second)
			sh.addPiece(first)
		} else {
			sh.addPiece(first)
			sh.addPiece(second)
		}
		if first.marks[0].Latest(10, 10) || !second.marks[1].Latest(10, 10) {
			t.Fatalf("key 1: the earlier chunk's row is latest %v, the later's %v", first.marks[0].Latest(10, 10), second.marks[1].Latest(10, 10))
		}
	})
}

// TestPkInIsAnsweredFromTheKeyIndex: a query of `pk in [...]` or `pk == v` reads the key index,
// not the pieces: with the pieces list emptied behind the index's back, it still finds the
// rows, and a filter the index cannot answer finds none.
func TestPkInIsAnsweredFromTheKeyIndex(t *testing.T) {
	coll := testCollection(t)
	sh, err := newShard(coll, "ch")
	if err != nil {
		t.Fatal(err)
	}
	r, err := batch.FromFieldData(coll.Schema, []*schemapb.FieldData{
		{FieldName: "id", Type: schemapb.DataType_Int64, Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: []int64{1, 2, 3}}}}}},
		{FieldName: "vec", Type: schemapb.DataType_FloatVector, Field: &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{Dim: 2, Data: &schemapb.VectorField_FloatVector{FloatVector: &schemapb.FloatArray{Data: make([]float32, 6)}}}}},
	}, 3, batch.FromOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := sh.newPiece(r.Record(10), 1, 0, 1)
	r.Release()
	if err != nil {
		t.Fatal(err)
	}
	sh.addPiece(p)
	sh.pieces = nil // a scan now finds nothing; the key index still holds the rows
	for filter, want := range map[string]int{"id in [1, 3, 9]": 2, "id == 2": 1, "id > 0": 0} {
		f, err := expr.Parse(filter, coll.Schema)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := sh.query(readSpec{t: 10, filter: f}, -1)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != want {
			t.Fatalf("%s: %d rows, want %d", filter, len(rows), want)
		}
	}
}
