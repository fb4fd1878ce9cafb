package bench

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/metastore"
)

// reloadModes are the three ways a coordinator can refresh its view, in table order.
var reloadModes = []meta.ReloadMode{meta.ReloadFull, meta.ReloadGated, meta.ReloadChanged}

// modeKey names a mode in figure keys.
var modeKey = map[meta.ReloadMode]string{meta.ReloadFull: "full", meta.ReloadGated: "gated", meta.ReloadChanged: "changed"}

// Reload measures the coordinator's periodic reload of segment meta from a real embedded etcd
// holding 1,000, 10,000 and 100,000 segments, after 0.1% of them changed and after nothing
// changed: a full reload, a revision-gated one and the changed-keys reload Weir uses. It is
// internal/meta's BenchmarkReload as a report.
func Reload(ctx context.Context, o Options) (*Report, error) {
	start := time.Now()
	r := newReport("reload", "coordinator reload of segment meta: full, revision-gated, changed keys", o)
	sizes, rounds := []int{1_000, 10_000, 100_000}, 5
	if o.Quick {
		sizes, rounds = []int{1_000, 10_000}, 2
	}
	kv, stop, err := startEtcd(ctx, o, "reload")
	if err != nil {
		return nil, err
	}
	defer stop()
	c := meta.NewCatalog(kv, benchRoot, meta.NewIDAllocator(kv, benchRoot, 1000), o.logger())
	l, err := c.AssignChannel(ctx, "bench-reload", 1, 1)
	if err != nil {
		return nil, err
	}
	f := c.Fence(l)

	t := Table{
		Title: fmt.Sprintf("reload time, median of %d rounds (each segment: 1 record + 1 file key)", rounds),
		Columns: []string{"segments", "0.1% changed: full", "revision-gated", "changed-keys", "changed-keys/full",
			"none changed: full", "revision-gated", "changed-keys"},
	}
	have := 0
	for _, n := range sizes {
		bar := o.bar(int64(n-have), fmt.Sprintf("  writing segments %d..%d", have+1, n), " segments")
		err := putSegments(ctx, f, have+1, n+1, func(k int) { bar.Add(k) })
		bar.Finish()
		if err != nil {
			return nil, err
		}
		have = n
		o.step("reloading %d segments: %d rounds of full, revision-gated and changed-keys", n, rounds)
		m, err := measureReload(ctx, kv, f, n, rounds)
		if err != nil {
			return nil, err
		}
		m.record(r, &t, n)
	}
	r.Tables = append(r.Tables, t)
	if share, ok := r.Figures["reload.100000.changed_share"]; ok {
		r.atMost("reload with 0.1% changed at 100,000 segments, share of a full reload", share*100, 10, "%")
	}
	r.Notes = append(r.Notes,
		"revision-gated skips the segment read when the etcd revision did not move since the last reload; "+
			"with 0.1% changed it always moved, so it reads everything and costs what a full reload costs",
		"changed-keys reads the segment keys changed since the view's revision (keys only, from etcd's index), "+
			"then those segments' records and new files: its cost follows the changes, not the number of segments",
		"none changed: full still reads everything; revision-gated and changed-keys read only the channel keys")
	r.Seconds = time.Since(start).Seconds()
	return r, nil
}

// benchRoot is the metastore root the meta benchmarks write under.
const benchRoot = "weir"

// putSegments writes flushed segments from..to-1, each with one insert file, in fenced
// transactions of at most 120 ops, calling progress with the number written by each.
func putSegments(ctx context.Context, f *meta.Fence, from, to int, progress func(int)) error {
	var ops []metastore.Op
	batch := 0
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		if _, err := f.Commit(ctx, nil, ops); err != nil {
			return fmt.Errorf("write segments: %w", err)
		}
		progress(batch)
		ops, batch = ops[:0], 0
		return nil
	}
	for id := from; id < to; id++ {
		s := &meta.Segment{ID: int64(id), CollectionID: 1, PartitionID: 2, Channel: f.Lease().Channel, Level: meta.L1,
			State: meta.Flushed, Rows: 1000, MaxPos: uint64(id)}
		o, err := f.SegmentOps(s, []meta.File{{ID: int64(id), SegmentID: int64(id), Kind: meta.InsertFile,
			Key: fmt.Sprintf("weir/insert/1/2/%d/1-%d.parquet", id, id), Rows: 1000}})
		if err != nil {
			return err
		}
		if len(ops)+len(o) > 120 {
			if err := flush(); err != nil {
				return err
			}
		}
		ops = append(ops, o...)
		batch++
	}
	return flush()
}

// reloadTimes holds the measured reload times of one size, in milliseconds.
type reloadTimes struct {
	changed, unchanged map[meta.ReloadMode][]float64
	// keys is how many segment and file keys a changed-keys reload read.
	keys int
}

// measureReload keeps one warm view per mode, as a running coordinator would, and times
// rounds of reloads after 0.1% of the n segments changed, then rounds with nothing changed.
func measureReload(ctx context.Context, kv *metastore.Etcd, f *meta.Fence, n, rounds int) (reloadTimes, error) {
	m := reloadTimes{changed: map[meta.ReloadMode][]float64{}, unchanged: map[meta.ReloadMode][]float64{}}
	views := map[meta.ReloadMode]*meta.View{}
	for _, mode := range reloadModes {
		views[mode] = meta.NewView(kv, benchRoot, mode)
		if _, err := views[mode].Reload(ctx); err != nil {
			return m, err
		}
	}
	for _, changing := range []bool{true, false} {
		for round := range rounds {
			if changing {
				if err := putSegments(ctx, f, 1, n/1000+1, func(int) {}); err != nil {
					return m, err
				}
			}
			// The modes take turns within a round, and the turn moves each round, instead of
			// one mode's rounds running back to back: noise on a shared machine (another
			// process, etcd's background commit, a GC) then falls on every mode alike, and no
			// mode always goes first after the write.
			for i := range reloadModes {
				mode := reloadModes[(round+i)%len(reloadModes)]
				st, err := timedReload(ctx, views[mode], changing)
				if err != nil {
					return m, err
				}
				d := float64(st.Duration) / 1e6
				if changing {
					m.changed[mode] = append(m.changed[mode], d)
					if mode == meta.ReloadChanged {
						m.keys = st.Keys
					}
				} else {
					m.unchanged[mode] = append(m.unchanged[mode], d)
				}
			}
		}
	}
	return m, nil
}

// timedReload reloads v after a garbage collection, so that one reload's garbage is not
// collected during the next one's timer, and checks that the reload did what the table says.
func timedReload(ctx context.Context, v *meta.View, changed bool) (meta.ReloadStats, error) {
	runtime.GC()
	st, err := v.Reload(ctx)
	if err != nil {
		return st, err
	}
	if want := !changed && st.Mode != meta.ReloadFull; st.Skipped != want {
		return st, fmt.Errorf("%s reload skipped=%v with changes=%v", st.Mode, st.Skipped, changed)
	}
	return st, nil
}

// record adds one size's row and figures.
func (m reloadTimes) record(r *Report, t *Table, n int) {
	row := []string{fmt.Sprint(n)}
	med := map[meta.ReloadMode]float64{}
	for _, mode := range reloadModes {
		med[mode] = median(m.changed[mode])
		r.Figures[fmt.Sprintf("reload.%d.%s_ms", n, modeKey[mode])] = med[mode]
		row = append(row, msCell(med[mode]))
	}
	share := med[meta.ReloadChanged] / med[meta.ReloadFull]
	r.Figures[fmt.Sprintf("reload.%d.changed_share", n)] = share
	r.Figures[fmt.Sprintf("reload.%d.changed_keys_read", n)] = float64(m.keys)
	row = append(row, fmt.Sprintf("%.1f%%", share*100))
	for _, mode := range reloadModes {
		d := median(m.unchanged[mode])
		r.Figures[fmt.Sprintf("reload.%d.unchanged.%s_ms", n, modeKey[mode])] = d
		row = append(row, msCell(d))
	}
	t.Add(row...)
}

// msCell formats milliseconds with two decimals below 10 ms, where reloads that skip the
// segment read land.
func msCell(v float64) string {
	if v < 10 {
		return fmt.Sprintf("%.2f ms", v)
	}
	return fmt.Sprintf("%.1f ms", v)
}
