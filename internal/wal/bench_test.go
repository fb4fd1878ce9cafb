package wal

import (
	"fmt"
	"testing"
)

// BenchmarkAppend appends batches of 64 records to an embedded server
// under both durability settings; MB/s counts record payload bytes.
func BenchmarkAppend(b *testing.B) {
	for _, sync := range []Durability{SyncInterval, SyncAlways} {
		for _, size := range []int{1 << 10, 64 << 10} {
			b.Run(fmt.Sprintf("%s/%dKiB", sync, size>>10), func(b *testing.B) {
				e := startServer(b, EmbeddedConfig{Sync: sync})
				l := openLog(b, e.ClientURL(), Config{})
				ctx := testCtx(b)
				create(b, l, "bench")
				const batch = 64
				recs := make([]Record, batch)
				for i := range recs {
					recs[i].Data = make([]byte, size)
				}
				b.SetBytes(int64(batch * size))
				for b.Loop() {
					if _, err := l.Append(ctx, "bench", recs); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
