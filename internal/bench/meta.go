package bench

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/weir-db/weir/internal/datanode"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/metastore"
	"github.com/weir-db/weir/internal/segment"
	"github.com/weir-db/weir/internal/standalone"
)

// Meta measures what the metastore protocol costs: fenced segment-meta commits against the
// same transaction without the fence, and how many etcd write transactions ingesting a GB of
// vectors takes.
func Meta(ctx context.Context, o Options) (*Report, error) {
	start := time.Now()
	r := newReport("meta", "fenced segment-meta commits vs the same transaction unfenced; etcd transactions per GB", o)
	if err := fencingCost(ctx, o, r); err != nil {
		return nil, err
	}
	if err := txnsPerGB(ctx, o, r); err != nil {
		return nil, err
	}
	r.Seconds = time.Since(start).Seconds()
	return r, nil
}

// startEtcd starts an embedded etcd in a scratch folder and connects to it; stop closes both
// and removes the folder.
func startEtcd(ctx context.Context, o Options, name string) (*metastore.Etcd, func(), error) {
	dir, rm, err := o.scratch(name)
	if err != nil {
		return nil, nil, err
	}
	e, err := metastore.StartEmbedded(ctx, metastore.EmbeddedConfig{Dir: dir, QuotaBackendBytes: 4 << 30, Logger: o.logger()})
	if err != nil {
		rm()
		return nil, nil, err
	}
	// A full range of 100,000 segments is paged, but give each page room on a slow disk.
	kv, err := metastore.Dial(ctx, metastore.Config{Endpoints: e.Endpoints(), RequestTimeout: time.Minute, Logger: o.logger()})
	if err != nil {
		e.Close()
		rm()
		return nil, nil, err
	}
	return kv, func() { kv.Close(); e.Close(); rm() }, nil
}

// fencingCost runs one sync's segment-meta transaction per channel, as fast as etcd takes
// them, with 1 and 16 channels, fenced and unfenced in alternating short rounds.
func fencingCost(ctx context.Context, o Options, r *Report) error {
	rounds, round := 30, 400*time.Millisecond
	if o.Quick {
		rounds, round = 3, 200*time.Millisecond
	}
	kv, stop, err := startEtcd(ctx, o, "meta")
	if err != nil {
		return err
	}
	defer stop()
	c := meta.NewCatalog(kv, benchRoot, meta.NewIDAllocator(kv, benchRoot, 1000), o.logger())
	t := Table{
		Title: fmt.Sprintf("segment-meta commits of one sync (1 record + insert and stats file keys, a compare on the record), "+
			"median of %d alternating rounds of %s", rounds, round),
		Columns: []string{"channels", "fenced commits/s", "unfenced commits/s", "cost of fencing", "middle half of rounds",
			"CPU per commit: fenced", "unfenced"},
	}
	for _, n := range []int{1, 16} {
		ws, err := newSyncWriters(ctx, c, kv, n)
		if err != nil {
			return err
		}
		bar := o.bar(int64(2*rounds), fmt.Sprintf("  %d channel(s), fenced and unfenced", n), " rounds")
		m, err := alternate(ctx, ws, rounds, round, func() { bar.Add(1) })
		bar.Finish()
		if err != nil {
			return err
		}
		costs := m.costs() // before median sorts the rates and loses their pairing
		fenced, unfenced, cost := median(m.fenced), median(m.unfenced), median(costs)
		t.Add(fmt.Sprint(n), f0(fenced), f0(unfenced), fmt.Sprintf("%.1f%%", cost),
			fmt.Sprintf("%.1f%% .. %.1f%%", quantile(costs, 25), quantile(costs, 75)),
			fmt.Sprintf("%.0f µs", median(m.fencedCPU)), fmt.Sprintf("%.0f µs", median(m.unfencedCPU)))
		r.Figures[fmt.Sprintf("meta.fenced_commits_per_s.%d", n)] = fenced
		r.Figures[fmt.Sprintf("meta.unfenced_commits_per_s.%d", n)] = unfenced
		r.Figures[fmt.Sprintf("meta.fencing_cost_pct.%d", n)] = cost
		r.Figures[fmt.Sprintf("meta.fenced_cpu_us_per_commit.%d", n)] = median(m.fencedCPU)
		r.Figures[fmt.Sprintf("meta.unfenced_cpu_us_per_commit.%d", n)] = median(m.unfencedCPU)
		what := "cost of fencing, 1 channel"
		if n > 1 {
			what = fmt.Sprintf("cost of fencing, %d channels", n)
		}
		r.atMost(what, cost, 5, "%")
	}
	r.Tables = append(r.Tables, t)
	if err := compareCost(ctx, o, r, kv.Client()); err != nil {
		return err
	}
	r.Notes = append(r.Notes,
		"fenced: Fence.Commit adds the fence compare (the epoch key's mod revision, after the claim); unfenced: the same "+
			"ops and record compare sent with metastore Txn; on embedded etcd in this process, each channel its own "+
			"goroutine, lease and claim; cost of fencing = median over rounds of (unfenced rate / fenced rate - 1), "+
			"each round's two runs back to back; CPU per commit is this whole process's (client and etcd server)",
		"bare etcd: the same shape of transaction sent with etcd's client alone, to isolate what one compare costs etcd and what an else-branch reading the compared keys adds to it")
	return nil
}

// fencingRounds is what alternate measured in each round: commits per second, and CPU time
// per commit of this process (client and embedded etcd alike) in microseconds.
type fencingRounds struct {
	fenced, unfenced       []float64
	fencedCPU, unfencedCPU []float64
}

// alternate runs rounds of fenced and unfenced commits, swapping which goes first each round,
// so that drift (etcd's backend growing, compaction, another process on the machine) hits
// both alike.
func alternate(ctx context.Context, ws []*syncWriter, rounds int, d time.Duration, progress func()) (fencingRounds, error) {
	var m fencingRounds
	// An untimed round of each first: the rates climb over the first second or two while
	// connections, etcd's caches and the heap warm up.
	for _, f := range []bool{true, false} {
		if _, _, err := commitRound(ctx, ws, f, d); err != nil {
			return m, err
		}
	}
	for i := range rounds {
		for _, f := range []bool{i%2 == 0, i%2 != 0} {
			rate, cpu, err := commitRound(ctx, ws, f, d)
			if err != nil {
				return m, err
			}
			if f {
				m.fenced, m.fencedCPU = append(m.fenced, rate), append(m.fencedCPU, cpu)
			} else {
				m.unfenced, m.unfencedCPU = append(m.unfenced, rate), append(m.unfencedCPU, cpu)
			}
			progress()
		}
	}
	return m, nil
}

// costs returns the cost of fencing in each round, in percent: the unfenced rate over the
// fenced rate of the same round, less one. Each pair ran back to back, so a slow spell of
// the machine that lasts longer than a round cancels out of its ratio, where it would move
// the median of either rate alone.
func (m fencingRounds) costs() []float64 { return pairCosts(m.unfenced, m.fenced) }

// pairCosts returns, per pair of rates, how much faster base ran than with, in percent. A pair
// with a zero rate (a round in which the machine stalled: nothing committed) compares nothing
// and is left out; with every pair left out the result is a single 0, not an infinity that no
// report can encode.
func pairCosts(base, with []float64) []float64 {
	var out []float64
	for i := range base {
		if base[i] > 0 && with[i] > 0 {
			out = append(out, (base[i]/with[i]-1)*100)
		}
	}
	if len(out) == 0 {
		return []float64{0}
	}
	return out
}

// commitRound has every writer commit syncs until d has passed and returns commits per second
// and the process's CPU time per commit in microseconds.
func commitRound(ctx context.Context, ws []*syncWriter, fenced bool, d time.Duration) (rate, cpu float64, err error) {
	var n atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	start, cpu0 := time.Now(), cpuTime()
	deadline := start.Add(d)
	for _, w := range ws {
		g.Go(func() error {
			for time.Now().Before(deadline) {
				if err := w.commit(gctx, fenced); err != nil {
					return err
				}
				n.Add(1)
			}
			return nil
		})
	}
	err = g.Wait()
	commits := float64(max(n.Load(), 1))
	return commits / time.Since(start).Seconds(), float64(cpuTime()-cpu0) / 1e3 / commits, err
}

// quantile returns the p-th percentile (0..100) of xs, which it sorts.
func quantile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	return xs[int(float64(len(xs)-1)*p/100+0.5)]
}

// syncWriter commits one channel's segment meta the way a data node's sync does
// (internal/datanode/sync.go commitSegments): the growing segment's record and the insert and
// stats files the sync wrote, with a compare that the record is as last committed.
type syncWriter struct {
	kv    metastore.Store
	fence *meta.Fence
	seg   meta.Segment
	prev  int64 // the record's mod revision (0: not written yet)
	syncs int   // syncs into seg so far
	file  int64 // last file ID used
	// perSegment is how many syncs fill a segment before it seals.
	perSegment int
}

// newSyncWriters assigns n channels and claims each, as a data node does when it starts a
// channel's pipeline, so that the fenced commits carry the compare a running pipeline's do.
func newSyncWriters(ctx context.Context, c *meta.Catalog, kv metastore.Store, n int) ([]*syncWriter, error) {
	dn := datanode.Defaults()
	ws := make([]*syncWriter, n)
	for i := range ws {
		ch := fmt.Sprintf("bench-meta-%d-%d", n, i)
		l, err := c.AssignChannel(ctx, ch, 1, dn.NodeID)
		if err != nil {
			return nil, err
		}
		f := c.Fence(l)
		if err := f.Claim(ctx, dn.NodeID); err != nil {
			return nil, err
		}
		base := int64(n*1000+i) << 32 // IDs no other writer uses
		ws[i] = &syncWriter{kv: kv, fence: f, file: base, perSegment: int(dn.SealBytes / dn.SyncBufferBytes),
			seg: newGrowing(base, ch)}
	}
	return ws, nil
}

func newGrowing(id int64, ch string) meta.Segment {
	now := time.Now().UTC()
	return meta.Segment{ID: id, CollectionID: 1, PartitionID: 2, Channel: ch, Level: meta.L1, State: meta.Growing,
		CreatedAt: now, UpdatedAt: now}
}

// commit commits the next sync's segment meta, fenced or not. Both build the ops and the
// record compare the same way; only the transaction call differs.
func (w *syncWriter) commit(ctx context.Context, fenced bool) error {
	if w.syncs == w.perSegment {
		// The segment reached its seal size: the next sync starts a new one, as on a data node.
		w.seg, w.prev, w.syncs = newGrowing(w.seg.ID+1, w.seg.Channel), 0, 0
	}
	const rows, vecBytes = 32_000, 32_000 * 512 // about one 16 MB sync of 128-dim vectors
	lease := w.fence.Lease().Revision
	s := &w.seg
	pos := uint64(w.syncs+1) * 100
	files := make([]meta.File, 0, 2)
	for _, kind := range []meta.FileKind{meta.InsertFile, meta.StatsFile} {
		w.file++
		key := segment.InsertKey(benchRoot, s.CollectionID, s.PartitionID, s.ID, lease, uint64(w.file))
		if kind == meta.StatsFile {
			key = segment.StatsKey(benchRoot, s.CollectionID, s.PartitionID, s.ID, lease, uint64(w.file))
		}
		files = append(files, meta.File{ID: w.file, SegmentID: s.ID, Kind: kind, Key: key, Rows: rows, Bytes: vecBytes,
			MinPos: pos - 99, MaxPos: pos, MinTs: pos - 99, MaxTs: pos})
	}
	s.Rows += rows
	s.Bytes += 2 * vecBytes
	s.Files += len(files)
	s.MaxPos, s.MaxTs, s.UpdatedAt = pos, pos, time.Now().UTC()
	if s.StartPos == 0 {
		s.StartPos = 1
	}
	ops, err := w.fence.SegmentOps(s, files)
	if err != nil {
		return err
	}
	cmps := []metastore.Cmp{w.fence.SegmentCmp(s, w.prev)}
	var rev int64
	if fenced {
		rev, err = w.fence.Commit(ctx, cmps, ops)
	} else {
		rev, err = w.kv.Txn(ctx, cmps, ops)
	}
	if err != nil {
		return fmt.Errorf("commit segment %d: %w", s.ID, err)
	}
	w.prev = rev
	w.syncs++
	return nil
}

// txnsPerGB ingests vectors into a standalone's 2-shard collection and counts the etcd write
// transactions it took: every applied write transaction moves etcd's revision by exactly one.
func txnsPerGB(ctx context.Context, o Options, r *Report) error {
	const dim, shards, rows, clients = 128, 2, 1000, 4
	mb := 512
	if o.Quick {
		mb = 16
	}
	dir, rm, err := o.scratch("meta-standalone")
	if err != nil {
		return err
	}
	defer rm()
	cfg := standalone.Defaults()
	cfg.DataDir, cfg.Listen, cfg.HTTPListen = dir, "127.0.0.1:0", "127.0.0.1:0"
	o.step("starting a standalone to count etcd transactions while ingesting %d MB", mb)
	s, err := standalone.Start(ctx, cfg, "bench", o.logger())
	if err != nil {
		return err
	}
	defer s.Close()
	kv, err := metastore.Dial(ctx, metastore.Config{Endpoints: s.EtcdEndpoints(), Logger: o.logger()})
	if err != nil {
		return err
	}
	defer kv.Close()
	cl, err := dial(s.Addr())
	if err != nil {
		return err
	}
	defer cl.Close()

	const name = "bench_meta"
	w := newWorkload(name, dim, rows)
	requests := max(1, int(int64(mb)*1e6/w.vectorBytes()))
	c0, err := countWrites(ctx, kv, s)
	if err != nil {
		return err
	}
	// Set-up: the collection's DDL, the channels' assignment and claims, and one flushed
	// request, after which both channels' pipelines run and hold a growing segment.
	if err := cl.createCollection(ctx, name, dim, shards); err != nil {
		return err
	}
	if _, err := cl.insert(ctx, w, 0, 1, 1, nil); err != nil {
		return err
	}
	if _, err := cl.flushAndWait(ctx, name); err != nil {
		return err
	}
	c1, err := countWrites(ctx, kv, s)
	if err != nil {
		return err
	}
	bar := o.bar(int64(requests), fmt.Sprintf("  inserting %d MB", mb), " requests")
	_, err = cl.insert(ctx, w, 1, requests, clients, func() { bar.Add(1) })
	bar.Finish()
	if err != nil {
		return err
	}
	if _, err := cl.flushAndWait(ctx, name); err != nil {
		return err
	}
	c2, err := countWrites(ctx, kv, s)
	if err != nil {
		return err
	}

	gb := float64(int64(requests)*w.vectorBytes()) / 1e9
	syncBytes := cfg.DataNode.SyncBufferBytes
	expect := 2 * 1e9 / float64(syncBytes)
	perGB := float64(c2.rev-c1.rev) / gb
	t := Table{
		Title:   fmt.Sprintf("etcd write transactions, %d-shard collection of %d-dim vectors", shards, dim),
		Columns: []string{"phase", "vector MB", "data node syncs", "etcd txns", "txns per GB", fmt.Sprintf("2 per %d MB sync", syncBytes>>20)},
	}
	t.Add("create collection, assign, claim, first flush", f1(float64(w.vectorBytes())/1e6), f0(c1.syncs-c0.syncs),
		fmt.Sprint(c1.rev-c0.rev), "-", "-")
	t.Add(fmt.Sprintf("insert %d MB and flush", mb), f1(gb*1e3), f0(c2.syncs-c1.syncs), fmt.Sprint(c2.rev-c1.rev), f0(perGB), f0(expect))
	r.Tables = append(r.Tables, t)
	r.Figures["meta.etcd_txns_setup"] = float64(c1.rev - c0.rev)
	r.Figures["meta.etcd_txns_ingest"] = float64(c2.rev - c1.rev)
	r.Figures["meta.etcd_txns_per_gb"] = perGB
	r.Figures["meta.datanode_syncs_ingest"] = c2.syncs - c1.syncs
	r.Notes = append(r.Notes, fmt.Sprintf("a data node syncs a channel when it buffers %d MB (datanode sync-buffer-bytes); "+
		"a sync commits its segment meta, then the checkpoint when it moved: about 2 × GB / %d MB = %.0f write "+
		"transactions per GB, plus the flush's record and the ID allocator's reservations",
		syncBytes>>20, syncBytes>>20, expect))
	return nil
}

// writeCounts are the standalone's etcd revision and its data node's count of committed syncs
// at one moment.
type writeCounts struct {
	rev   int64
	syncs float64
}

func countWrites(ctx context.Context, kv *metastore.Etcd, s *standalone.Standalone) (writeCounts, error) {
	rev, err := kv.Revision(ctx)
	if err != nil {
		return writeCounts{}, err
	}
	m, err := scrape(ctx, s.HTTPAddr(), "weir_datanode_syncs_total", "")
	if err != nil {
		return writeCounts{}, err
	}
	return writeCounts{rev: rev, syncs: m[""]}, nil
}
