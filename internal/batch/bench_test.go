package batch

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/stretchr/testify/require"
)

// benchColumns returns n rows of an (id, vec) collection with random unit-range vectors, as
// an SDK sends them.
func benchColumns(dim, n int) []*schemapb.FieldData {
	rng := rand.New(rand.NewPCG(1, 2))
	ids := make([]int64, n)
	vec := make([]float32, dim*n)
	for i := range ids {
		ids[i] = int64(i)
	}
	for i := range vec {
		vec[i] = rng.Float32()*2 - 1
	}
	return []*schemapb.FieldData{
		scalarCol("id", schemapb.DataType_Int64, longs(ids...)),
		vectorCol("vec", schemapb.DataType_FloatVector, floatVec(dim, vec)),
	}
}

func benchSchema(dim int) *schemapb.CollectionSchema {
	return collection(false, pkField("id", schemapb.DataType_Int64, false),
		field("vec", schemapb.DataType_FloatVector, "dim", strconv.Itoa(dim)))
}

func benchFromFieldData(b *testing.B, dim int) {
	const n = 1000
	s := benchSchema(dim)
	cols := benchColumns(dim, n)
	b.SetBytes(int64(4 * dim * n))
	b.ReportAllocs()
	for b.Loop() {
		r, err := FromFieldData(s, cols, n, FromOptions{})
		if err != nil {
			b.Fatal(err)
		}
		r.Release()
	}
}

func BenchmarkFromFieldData128(b *testing.B) { benchFromFieldData(b, 128) }
func BenchmarkFromFieldData768(b *testing.B) { benchFromFieldData(b, 768) }

func BenchmarkEncodeIPC(b *testing.B) {
	const n, dim = 1000, 768
	r, err := FromFieldData(benchSchema(dim), benchColumns(dim, n), n, FromOptions{})
	require.NoError(b, err)
	defer r.Release()
	rec := r.Record(1)
	defer rec.Release()
	b.Run("plain", func(b *testing.B) {
		b.SetBytes(int64(4 * dim * n))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := EncodeIPC(rec); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("lz4", func(b *testing.B) { // the alternative EncodeIPC rejects
		b.SetBytes(int64(4 * dim * n))
		b.ReportAllocs()
		for b.Loop() {
			var buf bytes.Buffer
			w := ipc.NewWriter(&buf, ipc.WithSchema(rec.Schema()), ipc.WithLZ4())
			if err := w.Write(rec); err != nil {
				b.Fatal(err)
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
	enc, err := EncodeIPC(rec)
	require.NoError(b, err)
	b.Run("decode", func(b *testing.B) {
		b.SetBytes(int64(len(enc)))
		b.ReportAllocs()
		for b.Loop() {
			back, err := DecodeIPC(enc)
			if err != nil {
				b.Fatal(err)
			}
			back.Release()
		}
	})
}

func BenchmarkSplit(b *testing.B) {
	const n, dim = 1000, 768
	r, err := FromFieldData(benchSchema(dim), benchColumns(dim, n), n, FromOptions{})
	require.NoError(b, err)
	defer r.Release()
	b.SetBytes(int64(4 * dim * n))
	b.ReportAllocs()
	for b.Loop() {
		for _, p := range r.Split(ChannelOf(4), 4) {
			if p != nil {
				p.Release()
			}
		}
	}
}
