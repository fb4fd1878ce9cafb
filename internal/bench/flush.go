package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"

	"github.com/weir-db/weir/internal/standalone"
	"github.com/weir-db/weir/internal/wal"
)

// Flush measures the time from Flush to GetFlushState reporting flushed with 16 MB and 256 MB
// of rows buffered in the data node for each of a collection's 2 channels, beside the same
// run's floor for the same bytes: raw Parquet encoding plus a raw file write with one fsync.
func Flush(ctx context.Context, o Options) (*Report, error) {
	t0 := time.Now()
	r := newReport("flush", "time from Flush to GetFlushState true, 128-dim vectors, 2 channels", o)
	sizes, rounds := []int64{16 << 20, 256 << 20}, 3
	if o.Quick {
		sizes, rounds = []int64{4 << 20}, 1
	}
	const shards, dim = 2, 128
	dir, cleanup, err := o.scratch("flush")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	// The data node must hold everything until the flush: no sync for size, age or memory.
	tgt, err := startStandaloneWith(ctx, o, dir, func(c *standalone.Config) {
		c.DataNode.SyncBufferBytes = 4 << 30
		c.DataNode.MemoryLimit = 8 << 30
		c.DataNode.SealBytes = 8 << 30
		c.DataNode.SyncStaleAge = time.Hour
	})
	if err != nil {
		return nil, err
	}
	defer tgt.Close()
	cl, err := dial(tgt.Addr())
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	log, err := wal.Open(ctx, tgt.NATSURL(), wal.Config{})
	if err != nil {
		return nil, err
	}
	defer log.Close()

	t := Table{Title: fmt.Sprintf("flush (median of %d rounds)", rounds),
		Columns: []string{"buffered per channel", "flush → flushed", "max", "floor: encode + write + fsync", "flush/floor"}}
	for _, size := range sizes {
		name := fmt.Sprintf("flush_%d", size>>20)
		if err := cl.createCollection(ctx, name, dim, shards); err != nil {
			return nil, err
		}
		d, err := cl.DescribeCollection(ctx, &milvuspb.DescribeCollectionRequest{CollectionName: name})
		if err := check(d.GetStatus(), err, "describe "+name); err != nil {
			return nil, err
		}
		w := newWorkload(name, dim, ingestBatch)
		n := int(size * shards / w.vectorBytes())
		var times []float64
		var worst time.Duration
		next := 0
		for round := range rounds {
			o.step("flush %d MB per channel, round %d of %d: inserting", size>>20, round+1, rounds)
			if _, err := cl.insert(ctx, w, next, n, 4, nil); err != nil {
				return nil, err
			}
			next += n
			for _, ch := range d.GetVirtualChannelNames() {
				if err := waitDrained(ctx, log, tgt.DataNodeHTTP(), ch); err != nil {
					return nil, err
				}
			}
			buffered, err := scrape(ctx, tgt.DataNodeHTTP(), "weir_datanode_buffered_bytes", "")
			if err != nil {
				return nil, err
			}
			if b := int64(buffered[""]); b < size*shards*9/10 {
				return nil, fmt.Errorf("data node buffers %d bytes before the flush, want about %d: it synced early", b, size*shards)
			}
			took, err := cl.flushAndWait(ctx, name)
			if err != nil {
				return nil, err
			}
			times = append(times, float64(took))
			worst = max(worst, took)
		}
		med := time.Duration(median(times))
		enc, err := rawParquet(dim, size*shards)
		if err != nil {
			return nil, err
		}
		wr, err := rawFileWrite(dir, dim, size*shards, true)
		if err != nil {
			return nil, err
		}
		bytes := float64(size * shards)
		floor := time.Duration(bytes/1e6/enc*1e9 + bytes/1e6/wr*1e9)
		t.Add(fmt.Sprintf("%d MB", size>>20), ms(med), ms(worst), ms(floor), ratio(float64(med), float64(floor)))
		r.Figures[fmt.Sprintf("flush.%dmb.ms", size>>20)] = float64(med) / 1e6
		r.Figures[fmt.Sprintf("flush.%dmb.floor_ms", size>>20)] = float64(floor) / 1e6
		if size == 16<<20 {
			r.atMost("flush of 16 MB per channel", float64(med)/1e6, 500, " ms")
		}
	}
	r.Tables = append(r.Tables, t)
	r.Notes = append(r.Notes,
		"the data node runs with sync thresholds above the buffered size, so the flush writes everything: one insert file, one stats file per channel's segment, then segment meta and checkpoint commits",
		"floor = raw Parquet encode of the same rows plus one sequential write of the same bytes with a single fsync, measured in the same run")
	r.Seconds = time.Since(t0).Seconds()
	return r, nil
}
