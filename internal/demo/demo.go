// Package demo is `weir demo`: it starts an embedded standalone in a temporary directory, loads
// a generated data set through the same Milvus gRPC API a client uses, deletes some of it,
// flushes, and reports what happened.
package demo

import (
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
	// Dir holds the standalone's data; empty means a temporary directory removed afterwards.
	Dir string
	// Progress, when set, receives a progress bar.
	Progress io.Writer
}

// Defaults returns the demo's default size: 200,000 rows of 128-dim vectors.
func Defaults() Config {
	return Config{Rows: 200_000, Dim: 128, Batch: 1000, Shards: 2, Clients: 2, Deletes: 1000}
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
	return res, report(ctx, c, name, filepath.Join(dir, "objects"), &res)
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
