// Package demo is `weir demo`: it starts an embedded standalone in a temporary directory, loads
// a generated data set through the same Milvus gRPC API a client uses, deletes some of it,
// flushes, and reports what happened.
package demo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/weir-db/weir/internal/readapi"
	"github.com/weir-db/weir/internal/standalone"
)

// Config sets the size of the demo.
type Config struct {
	Rows    int
	Dim     int
	Batch   int
	Shards  int
	Clients int
	Deletes int
	// Searches is how many top-10 searches run after the load.
	Searches int
	// Dir holds the standalone's data; empty means a temporary directory removed afterwards.
	Dir string
	// Progress, when set, receives a progress bar.
	Progress io.Writer
}

// Defaults returns the demo's default size: 200,000 rows of 128-dim vectors.
func Defaults() Config {
	return Config{Rows: 200_000, Dim: 128, Batch: 1000, Shards: 2, Clients: 2, Deletes: 1000, Searches: 300}
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	switch {
	case c.Rows <= 0, c.Batch <= 0, c.Shards <= 0, c.Clients <= 0:
		return errors.New("demo: rows, batch, shards and clients must be positive")
	case c.Dim < 2 || c.Dim > 32768:
		return fmt.Errorf("demo: dim must be in 2..32768, got %d", c.Dim)
	case c.Deletes < 0 || c.Deletes > c.Rows:
		return fmt.Errorf("demo: deletes must be in 0..rows, got %d", c.Deletes)
	case c.Searches < 0:
		return fmt.Errorf("demo: searches must not be negative, got %d", c.Searches)
	}
	return nil
}

// Result is what the demo measured.
type Result struct {
	Rows, Deleted         int
	Dim, Shards           int
	InsertTime            time.Duration
	P50, P99              time.Duration
	VectorBytes           int64
	DeleteTime, FlushTime time.Duration
	RowCount              string
	Segments, L0Segments  int
	Files                 int
	DiskBytes             int64
	StartupTime           time.Duration
	// The read path: index, load, searches (top-10, one vector each, Strong) and count(*).
	IndexTime, LoadTime  time.Duration
	Searches             int
	SearchTime           time.Duration
	SearchP50, SearchP99 time.Duration
	Recall               float64
	Count                int64
	CountTime            time.Duration
	// order is the first row of each batch each client sent, in order (to regenerate the
	// vectors for the exact search).
	order [][]int
}

// RowsPerSecond is the insert rate.
func (r Result) RowsPerSecond() float64 { return float64(r.Rows) / r.InsertTime.Seconds() }

// VectorMBPerSecond is the insert rate in MB/s of vector data.
func (r Result) VectorMBPerSecond() float64 {
	return float64(r.VectorBytes) / 1e6 / r.InsertTime.Seconds()
}

// Print writes the report.
func (r Result) Print(w io.Writer) {
	fmt.Fprintf(w, "weir demo: %d rows of %d-dim float vectors into a %d-shard collection\n", r.Rows, r.Dim, r.Shards)
	fmt.Fprintf(w, "  start      standalone ready in %s\n", r.StartupTime.Round(time.Millisecond))
	fmt.Fprintf(w, "  insert     %d rows in %s: %.0f rows/s, %.1f MB/s of vectors (per batch p50 %s, p99 %s)\n",
		r.Rows, r.InsertTime.Round(time.Millisecond), r.RowsPerSecond(), r.VectorMBPerSecond(),
		r.P50.Round(100*time.Microsecond), r.P99.Round(100*time.Microsecond))
	fmt.Fprintf(w, "  delete     %d keys in %s\n", r.Deleted, r.DeleteTime.Round(time.Millisecond))
	fmt.Fprintf(w, "  flush      %s until GetFlushState reported flushed\n", r.FlushTime.Round(time.Millisecond))
	fmt.Fprintf(w, "  stored     row_count %s in %d segments, %d files, %.1f MB on disk\n",
		r.RowCount, r.Segments, r.Files, float64(r.DiskBytes)/1e6)
	if r.Searches == 0 {
		return
	}
	fmt.Fprintf(w, "  index      FLAT (exact, L2) defined in %s\n", r.IndexTime.Round(time.Millisecond))
	fmt.Fprintf(w, "  load       %s until GetLoadState reported loaded\n", r.LoadTime.Round(time.Millisecond))
	fmt.Fprintf(w, "  search     %d top-10 searches at Strong: %.0f/s, p50 %s, p99 %s, recall@10 %.4f against the demo's own exact search\n",
		r.Searches, float64(r.Searches)/r.SearchTime.Seconds(), r.SearchP50.Round(10*time.Microsecond), r.SearchP99.Round(10*time.Microsecond), r.Recall)
	fmt.Fprintf(w, "  count(*)   %d rows (inserted − deleted) in %s\n", r.Count, r.CountTime.Round(100*time.Microsecond))
}

// Run runs the demo.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	res := Result{Rows: cfg.Rows, Dim: cfg.Dim, Shards: cfg.Shards}
	dir := cfg.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "weir-demo-")
		if err != nil {
			return res, err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	scfg := standalone.Defaults()
	scfg.DataDir, scfg.Listen, scfg.HTTPListen = dir, "127.0.0.1:0", "127.0.0.1:0"
	t0 := time.Now()
	s, err := standalone.Start(ctx, scfg, "demo", logger)
	if err != nil {
		return res, err
	}
	defer s.Close()
	res.StartupTime = time.Since(t0)

	conn, err := grpc.NewClient(s.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(256<<20), grpc.MaxCallRecvMsgSize(256<<20)))
	if err != nil {
		return res, err
	}
	defer conn.Close()
	c := milvuspb.NewMilvusServiceClient(conn)
	const name = "demo"
	if err := createCollection(ctx, c, name, cfg); err != nil {
		return res, err
	}
	if err := insertAll(ctx, c, name, cfg, &res); err != nil {
		return res, err
	}
	t1 := time.Now()
	if err := deleteSome(ctx, c, name, cfg); err != nil {
		return res, err
	}
	res.Deleted, res.DeleteTime = cfg.Deletes, time.Since(t1)
	t2 := time.Now()
	if err := flush(ctx, c, name); err != nil {
		return res, err
	}
	res.FlushTime = time.Since(t2)
	if err := report(ctx, c, name, filepath.Join(dir, "objects"), &res); err != nil {
		return res, err
	}
	if cfg.Searches == 0 {
		return res, nil
	}
	return res, searchAll(ctx, c, name, cfg, &res)
}

// regenerate returns the vectors the demo inserted: each client's generator is seeded, and each
// batch takes the generator's next values in the order that client sent its batches, which
// insertAll records. deleted rows are left out of the result (nil).
func regenerate(cfg Config, order [][]int) [][]float32 {
	out := make([][]float32, cfg.Rows)
	for w, firsts := range order {
		rng := rand.New(rand.NewPCG(uint64(w), 42))
		for _, first := range firsts {
			n := min(cfg.Batch, cfg.Rows-first)
			req := batchRequest("", cfg.Dim, first, n, rng)
			vecs := req.GetFieldsData()[1].GetVectors().GetFloatVector().GetData()
			for i := range n {
				out[first+i] = vecs[i*cfg.Dim : (i+1)*cfg.Dim]
			}
		}
	}
	if cfg.Deletes > 0 {
		step := cfg.Rows / cfg.Deletes
		for i := range cfg.Deletes {
			out[i*step] = nil
		}
	}
	return out
}

// searchAll indexes and loads the collection, then runs cfg.Searches top-10 searches of random
// vectors at Strong consistency, each checked against an exact search the demo runs itself,
// and a count(*).
func searchAll(ctx context.Context, c milvuspb.MilvusServiceClient, name string, cfg Config, res *Result) error {
	t0 := time.Now()
	st, err := c.CreateIndex(ctx, &milvuspb.CreateIndexRequest{CollectionName: name, FieldName: "embedding",
		ExtraParams: []*commonpb.KeyValuePair{{Key: "index_type", Value: "FLAT"}, {Key: "metric_type", Value: "L2"}}})
	if err := check(st, err, "create index"); err != nil {
		return err
	}
	res.IndexTime = time.Since(t0)
	t1 := time.Now()
	if err := load(ctx, c, name, cfg); err != nil {
		return err
	}
	res.LoadTime = time.Since(t1)

	stored := regenerate(cfg, res.order)
	bar := progressbar.NewOptions(cfg.Searches, progressbar.OptionSetWriter(progressWriter(cfg.Progress)),
		progressbar.OptionSetDescription("searching"), progressbar.OptionShowCount(), progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("searches"), progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetVisibility(cfg.Progress != nil), progressbar.OptionClearOnFinish())
	rng := rand.New(rand.NewPCG(7, 7))
	var lat []time.Duration
	hits, total := 0, 0
	for range cfg.Searches {
		q := make([]float32, cfg.Dim)
		for i := range q {
			q[i] = rng.Float32()
		}
		want := exactTop(stored, q, 10)
		t := time.Now()
		got, err := search(ctx, c, name, q, 10)
		if err != nil {
			return err
		}
		lat = append(lat, time.Since(t))
		in := map[int64]bool{}
		for _, id := range got {
			in[id] = true
		}
		for _, id := range want {
			if in[id] {
				hits++
			}
		}
		total += len(want)
		_ = bar.Add(1)
	}
	_ = bar.Finish()
	for _, l := range lat {
		res.SearchTime += l
	}
	slices.Sort(lat)
	res.Searches = cfg.Searches
	res.SearchP50, res.SearchP99 = lat[len(lat)/2], lat[len(lat)*99/100]
	res.Recall = float64(hits) / float64(max(total, 1))

	t2 := time.Now()
	qr, err := c.Query(ctx, &milvuspb.QueryRequest{CollectionName: name, OutputFields: []string{"count(*)"}, ConsistencyLevel: commonpb.ConsistencyLevel_Strong})
	if err := check(qr.GetStatus(), err, "count(*)"); err != nil {
		return err
	}
	res.CountTime = time.Since(t2)
	res.Count = qr.GetFieldsData()[0].GetScalars().GetLongData().GetData()[0]
	if want := int64(cfg.Rows - cfg.Deletes); res.Count != want {
		return fmt.Errorf("count(*) is %d, %d rows were inserted and not deleted", res.Count, want)
	}
	return nil
}

// load loads the collection and waits, with a progress bar of GetLoadingProgress, until
// GetLoadState says it is loaded.
func load(ctx context.Context, c milvuspb.MilvusServiceClient, name string, cfg Config) error {
	st, err := c.LoadCollection(ctx, &milvuspb.LoadCollectionRequest{CollectionName: name})
	if err := check(st, err, "load"); err != nil {
		return err
	}
	bar := progressbar.NewOptions(100, progressbar.OptionSetWriter(progressWriter(cfg.Progress)),
		progressbar.OptionSetDescription("loading"), progressbar.OptionSetVisibility(cfg.Progress != nil), progressbar.OptionClearOnFinish())
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ls, err := c.GetLoadState(ctx, &milvuspb.GetLoadStateRequest{CollectionName: name})
		if err := check(ls.GetStatus(), err, "get load state"); err != nil {
			return err
		}
		if ls.GetState() == commonpb.LoadState_LoadStateLoaded {
			_ = bar.Finish()
			return nil
		}
		p, err := c.GetLoadingProgress(ctx, &milvuspb.GetLoadingProgressRequest{CollectionName: name})
		if err := check(p.GetStatus(), err, "get loading progress"); err != nil {
			return err
		}
		_ = bar.Set(int(p.GetProgress()))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// search runs one top-k search at Strong consistency and returns the keys found.
func search(ctx context.Context, c milvuspb.MilvusServiceClient, name string, q []float32, k int) ([]int64, error) {
	req, err := readapi.FloatSearch(name, q, k, "embedding", "L2", commonpb.ConsistencyLevel_Strong)
	if err != nil {
		return nil, err
	}
	r, err := c.Search(ctx, req)
	if err := check(r.GetStatus(), err, "search"); err != nil {
		return nil, err
	}
	return r.GetResults().GetIds().GetIntId().GetData(), nil
}

// exactTop is the demo's own exact search: the k stored vectors nearest q by L2.
func exactTop(stored [][]float32, q []float32, k int) []int64 {
	type hit struct {
		id int64
		d  float32
	}
	var top []hit
	for id, v := range stored {
		if v == nil {
			continue
		}
		var d float32
		for i, x := range v {
			e := x - q[i]
			d += e * e
		}
		if len(top) < k || d < top[len(top)-1].d {
			top = append(top, hit{int64(id), d})
			slices.SortFunc(top, func(a, b hit) int { return cmp.Compare(a.d, b.d) })
			if len(top) > k {
				top = top[:k]
			}
		}
	}
	out := make([]int64, len(top))
	for i, h := range top {
		out[i] = h.id
	}
	return out
}

func check(st *commonpb.Status, err error, what string) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if st.GetCode() != 0 || st.GetErrorCode() != commonpb.ErrorCode_Success {
		return fmt.Errorf("%s: %s (code %d)", what, st.GetReason(), st.GetCode())
	}
	return nil
}

func createCollection(ctx context.Context, c milvuspb.MilvusServiceClient, name string, cfg Config) error {
	b, err := proto.Marshal(&schemapb.CollectionSchema{Name: name, Fields: []*schemapb.FieldSchema{
		{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
		{Name: "embedding", DataType: schemapb.DataType_FloatVector, TypeParams: []*commonpb.KeyValuePair{{Key: "dim", Value: fmt.Sprint(cfg.Dim)}}},
		{Name: "title", DataType: schemapb.DataType_VarChar, TypeParams: []*commonpb.KeyValuePair{{Key: "max_length", Value: "64"}}},
		{Name: "score", DataType: schemapb.DataType_Float},
	}})
	if err != nil {
		return err
	}
	st, err := c.CreateCollection(ctx, &milvuspb.CreateCollectionRequest{CollectionName: name, Schema: b, ShardsNum: int32(cfg.Shards)})
	return check(st, err, "create collection")
}

// batchRequest builds the insert request of rows [first, first+n).
func batchRequest(name string, dim, first, n int, rng *rand.Rand) *milvuspb.InsertRequest {
	ids := make([]int64, n)
	vecs := make([]float32, n*dim)
	titles := make([]string, n)
	scores := make([]float32, n)
	for i := range ids {
		ids[i] = int64(first + i)
		titles[i] = fmt.Sprintf("row %d", first+i)
		scores[i] = rng.Float32()
	}
	for i := range vecs {
		vecs[i] = rng.Float32()
	}
	return &milvuspb.InsertRequest{CollectionName: name, NumRows: uint32(n), FieldsData: []*schemapb.FieldData{
		{FieldName: "id", Type: schemapb.DataType_Int64, Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: ids}}}}},
		{FieldName: "embedding", Type: schemapb.DataType_FloatVector, Field: &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{Dim: int64(dim), Data: &schemapb.VectorField_FloatVector{FloatVector: &schemapb.FloatArray{Data: vecs}}}}},
		{FieldName: "title", Type: schemapb.DataType_VarChar, Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_StringData{StringData: &schemapb.StringArray{Data: titles}}}}},
		{FieldName: "score", Type: schemapb.DataType_Float, Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_FloatData{FloatData: &schemapb.FloatArray{Data: scores}}}}},
	}}
}

func insertAll(ctx context.Context, c milvuspb.MilvusServiceClient, name string, cfg Config, res *Result) error {
	bar := progressbar.NewOptions(cfg.Rows, progressbar.OptionSetWriter(progressWriter(cfg.Progress)),
		progressbar.OptionSetDescription("inserting"), progressbar.OptionShowCount(), progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("rows"), progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetVisibility(cfg.Progress != nil), progressbar.OptionClearOnFinish())
	var (
		mu        sync.Mutex
		latencies []time.Duration
		next      int
	)
	// Requests are generated before the clock starts for each batch: the figure is Weir's
	// insert path, not the demo's random number generator.
	g, gctx := errgroup.WithContext(ctx)
	res.order = make([][]int, cfg.Clients)
	start := time.Now()
	for w := 0; w < cfg.Clients; w++ {
		rng := rand.New(rand.NewPCG(uint64(w), 42))
		g.Go(func() error {
			for {
				mu.Lock()
				first := next
				next += cfg.Batch
				mu.Unlock()
				if first >= cfg.Rows {
					return nil
				}
				n := min(cfg.Batch, cfg.Rows-first)
				req := batchRequest(name, cfg.Dim, first, n, rng)
				mu.Lock()
				res.order[w] = append(res.order[w], first)
				mu.Unlock()
				t := time.Now()
				resp, err := c.Insert(gctx, req)
				if err := check(resp.GetStatus(), err, "insert"); err != nil {
					return err
				}
				if got := resp.GetInsertCnt(); got != int64(n) {
					return fmt.Errorf("insert: %d rows acknowledged, sent %d", got, n)
				}
				mu.Lock()
				latencies = append(latencies, time.Since(t))
				mu.Unlock()
				_ = bar.Add(n)
			}
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	res.InsertTime = time.Since(start)
	_ = bar.Finish()
	slices.Sort(latencies)
	res.P50 = latencies[len(latencies)/2]
	res.P99 = latencies[len(latencies)*99/100]
	res.VectorBytes = int64(cfg.Rows) * int64(cfg.Dim) * 4
	return nil
}

func progressWriter(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

func deleteSome(ctx context.Context, c milvuspb.MilvusServiceClient, name string, cfg Config) error {
	if cfg.Deletes == 0 {
		return nil
	}
	keys := make([]string, cfg.Deletes)
	step := cfg.Rows / cfg.Deletes
	for i := range keys {
		keys[i] = fmt.Sprint(i * step)
	}
	resp, err := c.Delete(ctx, &milvuspb.DeleteRequest{CollectionName: name, Expr: "id in [" + strings.Join(keys, ",") + "]"})
	if err := check(resp.GetStatus(), err, "delete"); err != nil {
		return err
	}
	if resp.GetDeleteCnt() != int64(cfg.Deletes) {
		return fmt.Errorf("delete: %d keys acknowledged, sent %d", resp.GetDeleteCnt(), cfg.Deletes)
	}
	return nil
}

func flush(ctx context.Context, c milvuspb.MilvusServiceClient, name string) error {
	resp, err := c.Flush(ctx, &milvuspb.FlushRequest{CollectionNames: []string{name}})
	if err := check(resp.GetStatus(), err, "flush"); err != nil {
		return err
	}
	ts := resp.GetCollFlushTs()[name]
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := c.GetFlushState(ctx, &milvuspb.GetFlushStateRequest{CollectionName: name, FlushTs: ts})
		if err := check(st.GetStatus(), err, "get flush state"); err != nil {
			return err
		}
		if st.GetFlushed() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func report(ctx context.Context, c milvuspb.MilvusServiceClient, name, objects string, res *Result) error {
	stats, err := c.GetCollectionStatistics(ctx, &milvuspb.GetCollectionStatisticsRequest{CollectionName: name})
	if err := check(stats.GetStatus(), err, "statistics"); err != nil {
		return err
	}
	for _, kv := range stats.GetStats() {
		if kv.GetKey() == "row_count" {
			res.RowCount = kv.GetValue()
		}
	}
	segs, err := c.GetPersistentSegmentInfo(ctx, &milvuspb.GetPersistentSegmentInfoRequest{CollectionName: name})
	if err := check(segs.GetStatus(), err, "segment info"); err != nil {
		return err
	}
	res.Segments = len(segs.GetInfos())
	return filepath.WalkDir(objects, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.Contains(path, ".objstore-tmp") {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		res.Files++
		res.DiskBytes += info.Size()
		return nil
	})
}
