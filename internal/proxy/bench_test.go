package proxy_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/wal"
)

// BenchmarkInsert measures an insert of 1,000 rows (128-dim vectors, a title, a score) into
// two shards through gRPC, from request to acknowledgement by JetStream, for each WAL
// durability setting. No data node consumes the channels.
func BenchmarkInsert(b *testing.B) {
	for _, sync := range []wal.Durability{wal.SyncInterval, wal.SyncAlways} {
		b.Run(string(sync), func(b *testing.B) {
			e := startProxy(b, func(o *proxyOpts) { o.sync = sync })
			c := createColl(b, e.c, "bench", 2, pk, vecField("128"), title, score)
			ctx := context.Background()
			const rows = 1000
			req := insertReq(c, seq(1, rows), 128)
			b.SetBytes(int64(rows * (8 + 128*4 + 8 + 4)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				res, err := e.c.Insert(ctx, req)
				require.NoError(b, err)
				requireOK(b, res.GetStatus())
			}
			b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
