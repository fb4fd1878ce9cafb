package meta

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/metastore"
)

// BenchmarkReload measures the coordinator's periodic reload against a real embedded etcd
// holding 1,000, 10,000 and 100,000 segments (each with one file key), after 0.1% of them
// changed: a full reload, a revision-gated one (full, but only when the revision advanced —
// which it did), and the changed-keys reload Weir uses. It prints the three times and the
// changed-keys time as a share of the full one.
//
//	go test -run '^$' -bench Reload -benchtime 5x ./internal/meta/
func BenchmarkReload(b *testing.B) {
	ctx := context.Background()
	etcd, err := metastore.StartEmbedded(ctx, metastore.EmbeddedConfig{Dir: b.TempDir(), QuotaBackendBytes: 4 << 30})
	require.NoError(b, err)
	defer etcd.Close()
	kv, err := metastore.Dial(ctx, metastore.Config{Endpoints: etcd.Endpoints(), RequestTimeout: time.Minute})
	require.NoError(b, err)
	defer kv.Close()
	c := NewCatalog(kv, "weir", NewIDAllocator(kv, "weir", 1000), nil)
	l, err := c.AssignChannel(ctx, "ch", 1, 1)
	require.NoError(b, err)
	f := c.Fence(l)

	have := 0
	put := func(from, to int) {
		var ops []metastore.Op
		flush := func() {
			if len(ops) > 0 {
				_, err := f.Commit(ctx, nil, ops)
				require.NoError(b, err)
				ops = ops[:0]
			}
		}
		for id := from; id < to; id++ {
			s := &Segment{ID: int64(id), CollectionID: 1, PartitionID: 2, Channel: "ch", Level: L1, State: Flushed, Rows: 1000, MaxPos: uint64(id)}
			o, err := f.SegmentOps(s, []File{{ID: int64(id), SegmentID: int64(id), Kind: InsertFile, Key: fmt.Sprintf("weir/insert/1/2/%d/1-%d.parquet", id, id), Rows: 1000}})
			require.NoError(b, err)
			if len(ops)+len(o) > 120 {
				flush()
			}
			ops = append(ops, o...)
		}
		flush()
	}
	for _, n := range []int{1_000, 10_000, 100_000} {
		put(have+1, n+1)
		have = n
		times := map[ReloadMode]time.Duration{}
		for _, mode := range []ReloadMode{ReloadFull, ReloadGated, ReloadChanged} {
			b.Run(fmt.Sprintf("segments=%d/%s", n, mode), func(b *testing.B) {
				v := NewView(kv, "weir", mode)
				_, err := v.Reload(ctx) // the view is warm, as in a running coordinator
				require.NoError(b, err)
				var total time.Duration
				for b.Loop() {
					b.StopTimer()
					put(1, n/1000+1) // 0.1% of the segments change
					b.StartTimer()
					st, err := v.Reload(ctx)
					require.NoError(b, err)
					total += st.Duration
				}
				times[mode] = total / time.Duration(b.N)
			})
		}
		if times[ReloadFull] > 0 {
			fmt.Printf("reload at %d segments, 0.1%% changed: full %s, revision-gated %s, changed-keys %s (%.1f%% of full)\n",
				n, times[ReloadFull].Round(time.Microsecond), times[ReloadGated].Round(time.Microsecond),
				times[ReloadChanged].Round(time.Microsecond), 100*float64(times[ReloadChanged])/float64(times[ReloadFull]))
		}
	}
}
