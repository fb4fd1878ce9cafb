package segment

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/stretchr/testify/require"
)

// Each benchmark op writes one file of benchBatches batches of benchRows rows, as a sync of a
// buffer filled by 1,000-row inserts does. SetBytes counts the vector bytes only, so the MB/s
// of BenchmarkWriteInsert* and BenchmarkRawCopy* compare directly: the ratio is what Parquet
// costs over copying the vectors once.
const (
	benchRows    = 1000
	benchBatches = 16
)

func benchData(b *testing.B, dim int) (*arrow.Schema, []arrow.RecordBatch, [][]byte) {
	b.Helper()
	pk := &schemapb.FieldSchema{FieldID: 100, Name: "pk", DataType: schemapb.DataType_Int64, IsPrimaryKey: true}
	vec := &schemapb.FieldSchema{FieldID: 101, Name: "vec", DataType: schemapb.DataType_FloatVector, TypeParams: dimParam(dim)}
	schema := arrowSchema(b, &schemapb.CollectionSchema{Name: "bench", Fields: []*schemapb.FieldSchema{pk, vec}})
	rng := rand.New(rand.NewPCG(1, 2))
	recs := make([]arrow.RecordBatch, benchBatches)
	vecs := make([][]byte, benchBatches)
	for i := range recs {
		recs[i] = randomRecord(schema, benchRows, int64(i*benchRows), uint64(i*benchRows), rng)
		vecs[i] = recs[i].Column(1).Data().Buffers()[1].Bytes()
	}
	b.Cleanup(func() { release(recs) })
	return schema, recs, vecs
}

func benchmarkWriteInsert(b *testing.B, dim int) {
	schema, recs, vecs := benchData(b, dim)
	var vecBytes int64
	for _, v := range vecs {
		vecBytes += int64(len(v))
	}
	var buf bytes.Buffer
	_, err := WriteInsert(&buf, schema, recs, WriteOptions{})
	require.NoError(b, err)
	buf.Grow(buf.Len())
	b.SetBytes(vecBytes)
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if _, err := WriteInsert(&buf, schema, recs, WriteOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(buf.Len())/float64(vecBytes), "file/vector-bytes")
}

func BenchmarkWriteInsert128(b *testing.B) { benchmarkWriteInsert(b, 128) }
func BenchmarkWriteInsert768(b *testing.B) { benchmarkWriteInsert(b, 768) }

// BenchmarkRawCopy copies the same vector bytes into a reused buffer: the floor for any
// writer that produces a file in memory.
func BenchmarkRawCopy(b *testing.B) {
	for _, dim := range []int{128, 768} {
		b.Run(fmt.Sprint(dim), func(b *testing.B) {
			_, _, vecs := benchData(b, dim)
			var n int64
			for _, v := range vecs {
				n += int64(len(v))
			}
			dst := make([]byte, 0, n)
			b.SetBytes(n)
			for b.Loop() {
				dst = dst[:0]
				for _, v := range vecs {
					dst = append(dst, v...)
				}
			}
		})
	}
}
