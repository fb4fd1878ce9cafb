// Package indexbuild builds the vector indexes of a data node's channels where the data is: for
// every flushed segment of a channel the node owns and every index definition that needs a file,
// it reads the segment's insert files, builds the index (package vindex), writes the file beside
// the segment's files under a unique key, reads it back, and commits the segment index record
// through the channel's fence (meta.Fence.SegmentIndexTxn): the segment still flushed, the
// definition unchanged, no record yet. Builds run in the background on at most --index-workers
// goroutines and never take a lock the channel's pipeline takes, so ingestion goes on beside
// them; a build lost to a crash or a lease move is simply not committed, and the channel's next
// owner builds it again (its file, unreferenced, is garbage collected).
package indexbuild

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/weir-db/weir/internal/batch"
	"github.com/weir-db/weir/internal/distance"
	"github.com/weir-db/weir/internal/failpoint"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/metastore"
	"github.com/weir-db/weir/internal/segment"
	"github.com/weir-db/weir/internal/vindex"
)

// Catalog is what the builder reads from the metastore.
type Catalog interface {
	GetCollection(ctx context.Context, id int64) (*meta.Collection, error)
	IndexRevisions(ctx context.Context, coll int64) (map[int64]*meta.Index, map[int64]int64, error)
	ListChannelSegments(ctx context.Context, coll int64, ch string) ([]*meta.Segment, error)
	ListFiles(ctx context.Context, coll, seg int64) ([]meta.File, error)
	ListSegmentIndexes(ctx context.Context, coll int64) ([]*meta.SegmentIndex, error)
	GetSegmentIndex(ctx context.Context, coll, index, seg int64) (*meta.SegmentIndex, error)
	CorruptIndexes(ctx context.Context, coll int64) (map[[2]int64]int64, error)
}

// Bucket is where segment and index files are.
type Bucket interface {
	Get(ctx context.Context, key string) ([]byte, error)
	PutStream(ctx context.Context, key string, write func(w io.Writer) error) error
	Delete(ctx context.Context, key string) error
}

// IDAllocator hands out unique IDs (an index file's sequence number).
type IDAllocator interface {
	Alloc(ctx context.Context, n int64) (int64, error)
}

// Owned is a channel the node owns and writes under its own fence (a pipeline of the current
// protocol): the builder commits that channel's records through the same fence, and names its
// files by the same token.
type Owned struct {
	Channel    string
	Collection int64
	Fence      *meta.Fence
	Token      int64
}

// Config holds the builder's settings.
type Config struct {
	NodeID int64
	Root   string // object root, as the data node's
	// Workers is how many builds run at once (--index-workers).
	Workers int
	// Interval is how often the owned channels are looked at for segments to index.
	Interval time.Duration
	// MinRows is the fewest rows a segment needs to get an index file: below it an exact search
	// costs about what an index search does (Milvus: minSegmentNumRowsToEnableIndex, 1024).
	MinRows int64
	// MemoryLimit bounds the memory the builds running hold together (estimate); a build that
	// alone would pass it is refused and its segment searched exactly (--index-memory-limit).
	MemoryLimit int64
	// Busy, when set, reports whether the node is ingesting now: builds then pace themselves
	// (see pacer).
	Busy func() bool
}

// Defaults are the builder's default settings.
func Defaults() Config {
	return Config{NodeID: 1, Root: "weir", Workers: 1, Interval: time.Second, MinRows: MinRows, MemoryLimit: 4 << 30}
}

// MinRows is Milvus's minSegmentNumRowsToEnableIndex: smaller segments are searched exactly and
// count as indexed.
const MinRows = 1024

// Needs reports whether an index of these parameters has files to build (FLAT has none), and
// its spec.
func Needs(params []meta.Param) (vindex.Spec, bool) {
	spec, err := SpecOf(params)
	return spec, err == nil && spec.Built()
}

// SpecOf is the spec of an index definition's parameters (its "params" object flattened).
func SpecOf(params []meta.Param) (vindex.Spec, error) {
	m := make(map[string]string, len(params))
	for _, p := range params {
		m[p.Key] = p.Value
	}
	return vindex.ParseBuild(vindex.Flatten(m))
}

// Builder builds a node's channels' indexes.
type Builder struct {
	cfg      Config
	catalog  Catalog
	bucket   Bucket
	ids      IDAllocator
	channels func() []Owned
	logger   *slog.Logger
	m        *metrics
	nudge    chan struct{}

	mu       sync.Mutex
	inFlight map[job]context.CancelFunc
	building int64        // estimated bytes of the builds running
	tooLarge map[job]bool // builds refused for their size (logged once)
	sem      chan struct{}
	wg       sync.WaitGroup
}

// job is one segment's index to build.
type job struct {
	coll, seg, index int64
}

// New returns a builder over the channels channels() reports as owned.
func New(cfg Config, catalog Catalog, bucket Bucket, ids IDAllocator, channels func() []Owned, reg prometheus.Registerer, logger *slog.Logger) *Builder {
	if cfg.Workers < 1 {
		cfg.Workers = 1
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	return &Builder{cfg: cfg, catalog: catalog, bucket: bucket, ids: ids, channels: channels, logger: logger,
		m: newMetrics(reg), nudge: make(chan struct{}, 1), inFlight: map[job]context.CancelFunc{}, tooLarge: map[job]bool{}, sem: make(chan struct{}, cfg.Workers)}
}

// Nudge asks for a look at the channels now (a segment was just flushed).
func (b *Builder) Nudge() {
	select {
	case b.nudge <- struct{}{}:
	default:
	}
}

// Run looks for segments to index every Interval (or when nudged) until ctx ends, then waits for
// the builds it started.
func (b *Builder) Run(ctx context.Context) {
	t := time.NewTicker(b.cfg.Interval)
	defer t.Stop()
	defer b.wg.Wait()
	for {
		if err := b.Scan(ctx); err != nil && ctx.Err() == nil {
			b.logger.Warn("index builds: scan failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-b.nudge:
		}
	}
}

// work is what a build needs, as read by the scan that found it.
type work struct {
	job
	own      Owned
	coll     *meta.Collection
	seg      *meta.Segment
	def      *meta.Index
	defRev   int64
	spec     vindex.Spec
	replaces int64
	// replacedKey is the file of the record replaces names (reported damaged).
	replacedKey string
	bytes       int64 // what the build is estimated to hold in memory
}

// Scan looks once at every owned channel, starts the builds it finds missing (at most Workers
// run; the rest wait for a later scan) and cancels those whose index or segment is gone.
func (b *Builder) Scan(ctx context.Context) error {
	alive := map[job]bool{}
	var todo []work
	var errs []error
	byColl := map[int64][]Owned{}
	for _, o := range b.channels() {
		byColl[o.Collection] = append(byColl[o.Collection], o)
	}
	for collID, owned := range byColl {
		w, err := b.scanCollection(ctx, collID, owned, alive)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		todo = append(todo, w...)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(errs) == 0 {
		for j, cancel := range b.inFlight {
			if !alive[j] {
				cancel() // its index, segment or channel is gone: the build stops
			}
		}
	}
	b.m.pending.Set(float64(len(todo)))
	for _, w := range todo {
		if _, running := b.inFlight[w.job]; running {
			continue
		}
		if w.bytes > b.cfg.MemoryLimit {
			if !b.tooLarge[w.job] {
				b.tooLarge[w.job] = true
				b.m.builds.WithLabelValues("too_large").Inc()
				b.logger.Error("index build refused: it would hold more memory than --index-memory-limit; the segment is searched exactly",
					"collection", w.coll.ID, "segment", w.seg.ID, "index", w.def.Name, "estimated_bytes", w.bytes, "limit", b.cfg.MemoryLimit)
			}
			continue
		}
		if b.building+w.bytes > b.cfg.MemoryLimit {
			continue // a later scan, once builds running now have finished
		}
		select {
		case b.sem <- struct{}{}:
		default:
			return errors.Join(errs...) // every worker busy: a later scan starts the rest
		}
		b.building += w.bytes
		bctx, cancel := context.WithCancel(ctx)
		b.inFlight[w.job] = cancel
		b.wg.Go(func() {
			defer func() {
				<-b.sem
				cancel()
				b.mu.Lock()
				delete(b.inFlight, w.job)
				b.building -= w.bytes
				b.mu.Unlock()
				b.Nudge() // a worker is free
			}()
			b.build(bctx, w)
		})
	}
	return errors.Join(errs...)
}

func (b *Builder) scanCollection(ctx context.Context, collID int64, owned []Owned, alive map[job]bool) ([]work, error) {
	defs, revs, err := b.catalog.IndexRevisions(ctx, collID)
	if err != nil || len(defs) == 0 {
		return nil, err
	}
	type built struct {
		def  *meta.Index
		spec vindex.Spec
	}
	var needed []built
	for _, def := range defs {
		if spec, ok := Needs(def.Params); ok {
			needed = append(needed, built{def, spec})
		}
	}
	if len(needed) == 0 {
		return nil, nil
	}
	slices.SortFunc(needed, func(a, b built) int { return int(a.def.ID - b.def.ID) })
	coll, err := b.catalog.GetCollection(ctx, collID)
	if err != nil {
		return nil, err
	}
	recs, err := b.catalog.ListSegmentIndexes(ctx, collID)
	if err != nil {
		return nil, err
	}
	have := map[[2]int64]*meta.SegmentIndex{}
	for _, r := range recs {
		have[[2]int64{r.IndexID, r.SegmentID}] = r
	}
	corrupt, err := b.catalog.CorruptIndexes(ctx, collID)
	if err != nil {
		return nil, err
	}
	var out []work
	for _, o := range owned {
		segs, err := b.catalog.ListChannelSegments(ctx, collID, o.Channel)
		if err != nil {
			return nil, err
		}
		for _, s := range segs {
			if s.State != meta.Flushed || s.Level == meta.L0 || s.Rows < b.cfg.MinRows {
				continue
			}
			for _, n := range needed {
				k := [2]int64{n.def.ID, s.ID}
				rec := have[k]
				j := job{coll: collID, seg: s.ID, index: n.def.ID}
				alive[j] = true // a build of it may go on (its own commit may be landing)
				var replaces int64
				var replacedKey string
				if rec != nil {
					if rev, bad := corrupt[k]; !bad || rev != rec.ModRevision {
						continue // built
					}
					replaces, replacedKey = rec.ModRevision, rec.Key
				}
				out = append(out, work{job: j, own: o, coll: coll, seg: s, def: n.def, defRev: revs[n.def.FieldID], spec: n.spec,
					replaces: replaces, replacedKey: replacedKey, bytes: estimate(n.spec, s.Rows, coll, n.def.FieldID)})
			}
		}
	}
	return out, nil
}

// build builds one segment's index and commits its record; every failure is logged and left
// for a later scan (which finds the record still missing).
func (b *Builder) build(ctx context.Context, w work) {
	start := time.Now()
	err := b.buildOne(ctx, w)
	switch {
	case err == nil:
		b.m.builds.WithLabelValues("committed").Inc()
		b.m.seconds.Observe(time.Since(start).Seconds())
		b.logger.Info("index built", "collection", w.coll.ID, "segment", w.seg.ID, "index", w.def.Name, "type", w.spec.Type,
			"rows", w.seg.Rows, "seconds", time.Since(start).Seconds())
	case errors.Is(err, meta.ErrLeaseLost):
		b.m.builds.WithLabelValues("lease_lost").Inc()
		b.logger.Info("index build not committed: the channel's lease moved", "segment", w.seg.ID, "index", w.def.Name)
	case ctx.Err() != nil:
		b.m.builds.WithLabelValues("stopped").Inc()
	case errors.Is(err, metastore.ErrPredicateFailed):
		b.m.builds.WithLabelValues("superseded").Inc()
		b.logger.Info("index build not committed: the segment, the index or its record changed meanwhile", "segment", w.seg.ID, "index", w.def.Name)
	default:
		b.m.builds.WithLabelValues("failed").Inc()
		b.logger.Warn("index build failed", "segment", w.seg.ID, "index", w.def.Name, "err", err)
	}
}

func (b *Builder) buildOne(ctx context.Context, w work) error {
	field, col, dim, err := vectorField(w.coll, w.def.FieldID)
	if err != nil {
		return err
	}
	vecs, err := b.readVectors(ctx, w.seg, field, col, dim)
	if err != nil {
		return err
	}
	if int64(len(vecs)/dim) != w.seg.Rows {
		return fmt.Errorf("segment %d: %d rows in its files, %d in its record", w.seg.ID, len(vecs)/dim, w.seg.Rows)
	}
	seed := Seed(w.seg.ID, w.def.ID)
	start := time.Now()
	ix, err := buildLowPriority(ctx, w.spec, vecs, dim, seed, newPacer(ctx, b.cfg.Busy))
	if err != nil {
		return err
	}
	took := time.Since(start)
	file, err := vindex.Encode(vindex.Header{Collection: w.coll.ID, Segment: w.seg.ID, Field: w.def.FieldID, IndexID: w.def.ID,
		Seed: seed, Kernel: distance.Kernel}, ix)
	if err != nil {
		return err
	}
	seq, err := b.ids.Alloc(ctx, 1)
	if err != nil {
		return err
	}
	key := vindex.FileKey{Root: b.cfg.Root, Collection: w.coll.ID, Partition: w.seg.PartitionID, Segment: w.seg.ID, Index: w.def.ID,
		Token: w.own.Token, Seq: uint64(seq)}.Key()
	if err := b.bucket.PutStream(ctx, key, func(wr io.Writer) error { _, err := wr.Write(file); return err }); err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	// Read back before the record points at it: what a query node will load must check out.
	back, err := b.bucket.Get(ctx, key)
	if err == nil && !bytes.Equal(back, file) {
		err = fmt.Errorf("read back %d bytes, wrote %d", len(back), len(file))
	}
	if err == nil {
		_, _, err = vindex.ReadHeader(back)
	}
	if err != nil {
		b.forget(key)
		return fmt.Errorf("index file %s: %w", key, err)
	}
	rec := &meta.SegmentIndex{CollectionID: w.coll.ID, SegmentID: w.seg.ID, PartitionID: w.seg.PartitionID, Channel: w.own.Channel,
		IndexID: w.def.ID, FieldID: w.def.FieldID, Key: key, Bytes: int64(len(file)), Rows: w.seg.Rows, IndexBytes: ix.Bytes(),
		Type: string(w.spec.Type), Seed: seed, BuildTime: took.Seconds(), Node: b.cfg.NodeID, CreatedAt: time.Now().UTC()}
	if err := failpoint.Hit("indexbuild/before-commit"); err != nil {
		return err
	}
	cmps, ops, err := w.own.Fence.SegmentIndexTxn(rec, meta.IndexBuilt{Segment: w.seg, IndexRev: w.defRev, Replaces: w.replaces})
	if err != nil {
		return err
	}
	_, err = w.own.Fence.Commit(ctx, cmps, ops)
	switch {
	case err == nil:
		if w.replacedKey != "" {
			b.forget(w.replacedKey) // the damaged file the new record replaced
		}
		return nil
	case errors.Is(err, metastore.ErrOutcomeUnknown):
		// Applied or not: the record says, read with a context of its own (the build's may be
		// what ended). Ours: the file is referenced. Another, or none: it is not. No answer: the
		// file stays for garbage collection to decide.
		mine, known := b.committed(w, key)
		if known && mine {
			return nil
		}
		if known {
			b.forget(key)
		}
		return err
	case errors.Is(err, meta.ErrLeaseLost):
		return err // a later owner's claim: garbage collection deletes the file
	}
	b.forget(key) // not applied (a failed compare is certain): nothing will reference the file
	return err
}

// committed re-reads the record a commit of unknown outcome would have written: whether it names
// key, and whether the metastore answered at all.
func (b *Builder) committed(w work, key string) (mine, known bool) {
	for attempt := range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got, err := b.catalog.GetSegmentIndex(ctx, w.coll.ID, w.def.ID, w.seg.ID)
		cancel()
		switch {
		case err == nil:
			return got.Key == key, true
		case errors.Is(err, metastore.ErrNotFound):
			return false, true
		}
		time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
	}
	return false, false
}

// buildLowPriority builds on a goroutine of its own whose OS thread runs at the lowest
// priority: only the CPU-bound build, not the metastore or storage calls around it, which take
// locks ingestion shares (a starved thread holding one would hold ingestion up).
func buildLowPriority(ctx context.Context, spec vindex.Spec, vecs []float32, dim int, seed uint64, p *pacer) (*vindex.Index, error) {
	type result struct {
		ix  *vindex.Index
		err error
	}
	done := make(chan result, 1)
	go func() {
		lowerPriority()
		ix, err := vindex.BuildPaced(ctx, spec, vecs, dim, seed, p.pace)
		done <- result{ix, err}
	}()
	r := <-done
	return r.ix, r.err
}

// PaceFactor is how much longer a build sleeps than it worked while the node ingests: a build
// then takes at most a fifth of a core from ingestion. A low priority alone does not keep a build
// out of ingestion's way: on two cores, ingesting 2,000,000 rows beside a 600,000-row HNSW build
// at nice 10 kept 0.60 of the rate alone (`weir bench builds`), at nice 19 0.71; the build's
// memory traffic, and its goroutine holding one of the runtime's Ps whatever its thread's nice,
// cost ingestion as much as its CPU did.
const PaceFactor = 4

// maxPace bounds one sleep of a paced build: a long step (an IVF iteration at a million rows
// takes seconds) then sleeps in turns, each ending early if the build is cancelled or the node
// stops ingesting.
const maxPace = time.Second

// pacer slows a build down while the node ingests: called between steps of a build, it sleeps
// PaceFactor times the time worked since the last call when busy says the node is ingesting, and
// not at all otherwise, so an idle node builds at full speed. Its sleeps end when ctx does, so a
// dropped index, a lost lease or a stopping node cancels a paced build at once.
type pacer struct {
	ctx  context.Context
	busy func() bool
	last time.Time
	// sleep waits d or until ctx ends; tests replace it.
	sleep func(ctx context.Context, d time.Duration)
}

func newPacer(ctx context.Context, busy func() bool) *pacer {
	return &pacer{ctx: ctx, busy: busy, last: time.Now(), sleep: sleepCtx}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func (p *pacer) pace() {
	if p == nil || p.busy == nil {
		return
	}
	owed := PaceFactor * time.Since(p.last)
	for owed > 0 && p.ctx.Err() == nil && p.busy() {
		d := min(owed, maxPace)
		p.sleep(p.ctx, d)
		owed -= d
	}
	p.last = time.Now()
}

// estimate is the memory a build of spec over rows of the field holds at its peak: the
// segment's vectors, the raw file being read, and the index (vindex.Estimate).
func estimate(spec vindex.Spec, rows int64, coll *meta.Collection, field int64) int64 {
	dim := 0
	if _, _, d, err := vectorField(coll, field); err == nil {
		dim = d
	}
	return 2*rows*int64(4*dim) + vindex.Estimate(spec, rows, dim)
}

// forget deletes a file no record will reference; if that fails, garbage collection does it.
func (b *Builder) forget(key string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.bucket.Delete(ctx, key); err != nil {
		b.logger.Debug("index file left for garbage collection", "key", key, "err", err)
	}
}

// Seed is the build seed of a segment's index: fixed by the segment and the index definition, so
// that any node building it again builds the same index.
func Seed(seg, index int64) uint64 {
	h := fnv.New64a()
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:], uint64(seg))
	binary.LittleEndian.PutUint64(b[8:], uint64(index))
	h.Write(b[:])
	return h.Sum64()
}

// vectorField returns the float vector field fieldID of coll, its column in the collection's
// Arrow rows and its dimension.
func vectorField(coll *meta.Collection, fieldID int64) (*schemapb.FieldSchema, int, int, error) {
	for i, f := range coll.Schema.GetFields() {
		if f.GetFieldID() != fieldID {
			continue
		}
		if f.GetDataType() != schemapb.DataType_FloatVector {
			return nil, 0, 0, fmt.Errorf("field %s is %s: Weir builds vector indexes of float vectors", f.GetName(), f.GetDataType())
		}
		dim, err := batch.Dim(f)
		return f, i, dim, err
	}
	return nil, 0, 0, fmt.Errorf("collection %d has no field %d", coll.ID, fieldID)
}

// readVectors reads the field's vectors from the segment's insert files, in file ID order and
// each file's row order: the order the query node holds the segment's rows in (a segment index
// names rows by that order).
func (b *Builder) readVectors(ctx context.Context, seg *meta.Segment, f *schemapb.FieldSchema, col, dim int) ([]float32, error) {
	files, err := b.catalog.ListFiles(ctx, seg.CollectionID, seg.ID)
	if err != nil {
		return nil, err
	}
	files = slices.DeleteFunc(files, func(f meta.File) bool { return f.Kind != meta.InsertFile })
	slices.SortFunc(files, func(a, b meta.File) int { return int(a.ID - b.ID) })
	vecs := make([]float32, 0, seg.Rows*int64(dim))
	for _, fl := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		data, err := b.bucket.Get(ctx, fl.Key)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", fl.Key, err)
		}
		tbl, err := segment.ReadInsert(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", fl.Key, err)
		}
		for _, chunk := range tbl.Column(col).Data().Chunks() {
			fsb, ok := chunk.(*array.FixedSizeBinary)
			if !ok {
				tbl.Release()
				return nil, fmt.Errorf("%s: vector column %s of type %s", fl.Key, f.GetName(), chunk.DataType())
			}
			for r := range fsb.Len() {
				v := fsb.Value(r)
				for j := range dim {
					vecs = append(vecs, math.Float32frombits(binary.LittleEndian.Uint32(v[4*j:])))
				}
			}
		}
		tbl.Release()
	}
	return vecs, nil
}

type metrics struct {
	builds  *prometheus.CounterVec
	seconds prometheus.Histogram
	pending prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		builds: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weir_datanode_index_builds_total",
			Help: "Segment index builds by outcome: committed, lease_lost, superseded, stopped, failed."}, []string{"outcome"}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "weir_datanode_index_build_seconds",
			Help: "Time to build, write and commit one segment's index.", Buckets: prometheus.ExponentialBuckets(0.05, 2, 14)}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "weir_datanode_index_builds_pending",
			Help: "Segment indexes of this node's channels found missing by the last scan."}),
	}
	if reg != nil {
		reg.MustRegister(m.builds, m.seconds, m.pending)
	}
	return m
}

// Builds is how many builds ended with outcome (committed, lease_lost, superseded, stopped,
// failed) since the builder started.
func (b *Builder) Builds(outcome string) int {
	return int(testutil.ToFloat64(b.m.builds.WithLabelValues(outcome)))
}
