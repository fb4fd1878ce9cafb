package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/weir-db/weir/internal/batch"
	"github.com/weir-db/weir/internal/standalone"
	"github.com/weir-db/weir/internal/wal"
)

// ingestTarget is a running Weir the ingest benchmark inserts into: a standalone in this
// process, or separate processes.
type ingestTarget interface {
	Addr() string    // Milvus gRPC
	NATSURL() string // the WAL's server, for the same-run JetStream baseline
	// DataNodeHTTP is the health address of the data node consuming the collection.
	DataNodeHTTP() string
	// CPU is the CPU time Weir's processes used so far; CPUBy splits it by process, where
	// there is more than one.
	CPU() time.Duration
	CPUBy() map[string]time.Duration
	Close() error
}

// inProcess is a standalone in this process; its CPU time is the process's, which includes
// the benchmark's clients and the embedded servers.
type inProcess struct{ *standalone.Standalone }

func (s inProcess) DataNodeHTTP() string { return s.HTTPAddr() }
func (s inProcess) CPU() time.Duration   { return cpuTime() }

func (s inProcess) CPUBy() map[string]time.Duration { return nil }

// ingestCase is one configuration of the ingest benchmark.
type ingestCase struct {
	dim, clients int
}

// ingestFigures are the medians of one case's rounds.
type ingestFigures struct {
	rowsPerSec, weirMBs, rawMBs float64
	drainedMBs                  float64 // until the data node consumed everything
	rawReadMBs                  float64 // raw appends with a reader, until it read everything
	p50, p99                    time.Duration
	cpuPerMB, rawCPUPerMB       float64            // CPU ms per MB of vectors
	cpuBy                       map[string]float64 // CPU ms per MB by process, medians
}

const ingestBatch = 1000

// Ingest measures inserts of 1,000-row batches through the Milvus gRPC API into a 1-channel
// collection, 128- and 768-dim vectors, 1 and 4 clients, first into a standalone, then into
// Weir's roles as separate processes; and in the same run the physical limits of the same
// bytes: raw JetStream appends with the same durability and concurrency (with and without a
// reader following the stream), raw Parquet encoding of the same rows, and a raw sequential
// file write with an fsync per request's worth of bytes.
func Ingest(ctx context.Context, o Options) (*Report, error) {
	t0 := time.Now()
	r := newReport("ingest", "inserts through the Milvus gRPC API, 1,000-row batches, 1 channel, wal-sync always", o)
	perRound, rounds := int64(256<<20), 3
	if o.Quick {
		perRound, rounds = 8<<20, 1
	}
	main := Table{Title: "ingest (medians of " + strconv.Itoa(rounds) + " alternating rounds of Weir and the raw baselines)",
		Columns: []string{"deployment", "dim", "clients", "rows/s", "MB/s", "p50", "p99", "CPU ms/MB", "raw CPU ms/MB", "raw JetStream MB/s", "ratio", "drained MB/s", "raw append+read MB/s", "ratio"}}
	cpuTable := Table{Title: "CPU ms per MB of vectors by process, Weir as separate processes",
		Columns: []string{"dim", "clients", "proxy", "datanode", "coord", "bench (clients, etcd, NATS)", "all"}}
	raw := Table{Title: "physical limits of the same bytes, same run",
		Columns: []string{"dim", "raw Parquet encode MB/s", "weir/parquet", "raw file write+fsync MB/s", "weir/file"}}
	best := map[int]float64{}
	for _, dep := range []string{"standalone", "processes"} {
		for _, dim := range []int{128, 768} {
			if err := ingestDeployment(ctx, o, r, &main, &cpuTable, dep, dim, perRound, rounds, best); err != nil {
				return nil, fmt.Errorf("ingest into %s, dim %d: %w", dep, dim, err)
			}
		}
	}
	for _, dim := range []int{128, 768} {
		r.atLeast(fmt.Sprintf("dim %d: MB/s of vectors per channel", dim), best[dim], 80, " MB/s")
		pq, err := rawParquet(dim, perRound)
		if err != nil {
			return nil, err
		}
		dir, cleanup, err := o.scratch("ingest-file")
		if err != nil {
			return nil, err
		}
		fw, err := rawFileWrite(dir, dim, perRound, false)
		cleanup()
		if err != nil {
			return nil, err
		}
		r.Figures[fmt.Sprintf("ingest.dim%d.raw_parquet_mb_per_s", dim)] = pq
		r.Figures[fmt.Sprintf("ingest.dim%d.raw_file_fsync_mb_per_s", dim)] = fw
		raw.Add(strconv.Itoa(dim), f1(pq), ratio(best[dim], pq), f1(fw), ratio(best[dim], fw))
	}
	r.Tables = append(r.Tables, main, cpuTable, raw)
	r.Notes = append(r.Notes,
		"standalone: every role in this process; processes: coordinator, data node and proxy as separate `weir run` processes, etcd and NATS embedded in this process",
		"MB/s counts vector data (rows × dim × 4 bytes); raw JetStream publishes the encoded request's bytes with the same clients, stream storage and fsync-per-append",
		"drained MB/s runs until the data node has consumed every appended message (Weir acknowledges after the WAL append; consumption is asynchronous); raw append+read is raw JetStream with a reader following the stream, until it read the last message: the floor of writing the log once and reading it once",
		"CPU ms/MB is the CPU of every process involved (this one, with the clients, etcd and NATS, and the roles' processes) per MB of vectors; raw CPU ms/MB the same for raw appends",
		"weir/parquet and weir/file compare the best Weir rate of the dimension")
	r.Seconds = time.Since(t0).Seconds()
	return r, nil
}

// ingestDeployment runs the 1- and 4-client cases of one dimension against a fresh Weir
// deployed as dep, adding rows to t, figures and targets to r, and the best rate to best.
func ingestDeployment(ctx context.Context, o Options, r *Report, t, cpuTable *Table, dep string, dim int, perRound int64, rounds int, best map[int]float64) error {
	var tgt ingestTarget
	if dep == "standalone" {
		dir, cleanup, err := o.scratch("ingest")
		if err != nil {
			return err
		}
		defer cleanup()
		tgt, err = startStandalone(ctx, o, dir)
		if err != nil {
			return err
		}
	} else {
		o.step("starting coordinator, data node and proxy processes")
		c, err := startCluster(ctx, o, clusterConfig{Name: "ingest", DataNodes: 1})
		if err != nil {
			return err
		}
		tgt = processes{c}
	}
	defer tgt.Close()
	for _, clients := range []int{1, 4} {
		f, err := ingestOne(ctx, o, tgt, ingestCase{dim: dim, clients: clients}, perRound, rounds)
		if err != nil {
			return fmt.Errorf("%d clients: %w", clients, err)
		}
		t.Add(dep, strconv.Itoa(dim), strconv.Itoa(clients), f0(f.rowsPerSec), f1(f.weirMBs), ms(f.p50), ms(f.p99),
			f1(f.cpuPerMB), f1(f.rawCPUPerMB), f1(f.rawMBs), ratio(f.weirMBs, f.rawMBs), f1(f.drainedMBs), f1(f.rawReadMBs), ratio(f.drainedMBs, f.rawReadMBs))
		key := fmt.Sprintf("ingest.%s.dim%d.clients%d.", dep, dim, clients)
		r.Figures[key+"rows_per_s"] = f.rowsPerSec
		r.Figures[key+"mb_per_s"] = f.weirMBs
		r.Figures[key+"raw_jetstream_mb_per_s"] = f.rawMBs
		r.Figures[key+"drained_mb_per_s"] = f.drainedMBs
		r.Figures[key+"raw_jetstream_read_mb_per_s"] = f.rawReadMBs
		r.Figures[key+"raw_cpu_ms_per_mb"] = f.rawCPUPerMB
		r.Figures[key+"p50_ms"] = float64(f.p50) / 1e6
		r.Figures[key+"p99_ms"] = float64(f.p99) / 1e6
		r.Figures[key+"cpu_ms_per_mb"] = f.cpuPerMB
		r.atLeast(fmt.Sprintf("%s, dim %d, %d clients: ingest / raw JetStream", dep, dim, clients), f.weirMBs/f.rawMBs, 0.5, "")
		best[dim] = max(best[dim], f.weirMBs)
		if f.cpuBy != nil {
			b := f.cpuBy
			cpuTable.Add(strconv.Itoa(dim), strconv.Itoa(clients), f1(b["proxy"]), f1(b["datanode"]), f1(b["coord"]),
				f1(b["bench (clients, etcd, NATS)"]), f1(f.cpuPerMB))
			for k, v := range b {
				r.Figures[key+"cpu_ms_per_mb."+strings.Fields(k)[0]] = v
			}
		}
	}
	return nil
}

// processes is Weir as separate processes with one data node. Its CPU time is the roles' and
// this process's (clients, etcd, NATS), so that it compares with a standalone's.
type processes struct{ *cluster }

func (p processes) Addr() string         { return p.ProxyAddr() }
func (p processes) NATSURL() string      { return p.natsURL }
func (p processes) DataNodeHTTP() string { return p.DataNode(0).HTTPAddr() }
func (p processes) CPU() time.Duration   { return p.CPUTime() + cpuTime() }

func (p processes) CPUBy() map[string]time.Duration {
	by := map[string]time.Duration{"bench (clients, etcd, NATS)": cpuTime()}
	for _, pr := range p.procs() {
		by[pr.role] += pr.CPUTime()
	}
	return by
}

func startStandalone(ctx context.Context, o Options, dir string) (ingestTarget, error) {
	return startStandaloneWith(ctx, o, dir, nil)
}

// startStandaloneWith starts a standalone on loopback ports with its data in dir, its
// defaults changed by mod.
func startStandaloneWith(ctx context.Context, o Options, dir string, mod func(*standalone.Config)) (ingestTarget, error) {
	cfg := standalone.Defaults()
	cfg.DataDir, cfg.Listen, cfg.HTTPListen = dir, "127.0.0.1:0", "127.0.0.1:0"
	if mod != nil {
		mod(&cfg)
	}
	s, err := standalone.Start(ctx, cfg, "bench", o.logger())
	if err != nil {
		return nil, err
	}
	return inProcess{s}, nil
}

// ingestOne runs one case: rounds of raw JetStream and Weir, alternating so that the
// machine's noise (other tenants, the page cache, the data node's syncs) falls on both alike,
// and returns the medians.
func ingestOne(ctx context.Context, o Options, tgt ingestTarget, c ingestCase, perRound int64, rounds int) (ingestFigures, error) {
	cl, err := dial(tgt.Addr())
	if err != nil {
		return ingestFigures{}, err
	}
	defer cl.Close()
	name := fmt.Sprintf("ingest_%d_%d", c.dim, c.clients)
	if err := cl.createCollection(ctx, name, c.dim, 1); err != nil {
		return ingestFigures{}, err
	}
	ch, err := cl.channel(ctx, name)
	if err != nil {
		return ingestFigures{}, err
	}
	w := newWorkload(name, c.dim, ingestBatch)
	n := max(int(perRound/w.vectorBytes()), 4*c.clients)
	js, err := newRawJetStream(ctx, tgt.NATSURL(), fmt.Sprintf("BENCH_RAW_%d_%d", c.dim, c.clients), w.requestBytes())
	if err != nil {
		return ingestFigures{}, err
	}
	defer js.Close()
	log, err := wal.Open(ctx, tgt.NATSURL(), wal.Config{})
	if err != nil {
		return ingestFigures{}, err
	}
	defer log.Close()

	// Warm up both paths (connections, stream files, the collection's first segment).
	if _, err := cl.insert(ctx, w, 0, c.clients, c.clients, nil); err != nil {
		return ingestFigures{}, err
	}
	if _, err := js.run(ctx, c.clients, c.clients); err != nil {
		return ingestFigures{}, err
	}
	next := c.clients
	var weirMBs, rawMBs, rawReadMBs, drained, rowsPerSec, cpu, rawCPU []float64
	var lat []time.Duration
	cpuBy := map[string][]float64{}
	bar := o.bar(int64(3*rounds*n), fmt.Sprintf("ingest dim %d, %d clients", c.dim, c.clients), "requests")
	defer bar.Finish()
	vecBytes := int64(n) * w.vectorBytes()
	for range rounds {
		c0 := tgt.CPU()
		d, err := js.run(ctx, n, c.clients, func() { _ = bar.Add(1) })
		if err != nil {
			return ingestFigures{}, err
		}
		rawCPU = append(rawCPU, float64(tgt.CPU()-c0)/1e6/(float64(vecBytes)/1e6))
		rawMBs = append(rawMBs, mbps(vecBytes, d))
		d, err = js.runConsumed(ctx, n, c.clients, func() { _ = bar.Add(1) })
		if err != nil {
			return ingestFigures{}, err
		}
		rawReadMBs = append(rawReadMBs, mbps(vecBytes, d))

		c0 = tgt.CPU()
		by0 := tgt.CPUBy()
		res, err := cl.insert(ctx, w, next, n, c.clients, func() { _ = bar.Add(1) })
		if err != nil {
			return ingestFigures{}, err
		}
		next += n
		if err := waitDrained(ctx, log, tgt.DataNodeHTTP(), ch); err != nil {
			return ingestFigures{}, err
		}
		drainedAt := time.Since(res.Start)
		cpu = append(cpu, float64(tgt.CPU()-c0)/1e6/(float64(vecBytes)/1e6))
		for k, v := range tgt.CPUBy() {
			cpuBy[k] = append(cpuBy[k], float64(v-by0[k])/1e6/(float64(vecBytes)/1e6))
		}
		weirMBs = append(weirMBs, mbps(vecBytes, res.Elapsed))
		rowsPerSec = append(rowsPerSec, float64(n*ingestBatch)/res.Elapsed.Seconds())
		drained = append(drained, mbps(vecBytes, drainedAt))
		lat = append(lat, res.Latencies...)
	}
	return ingestFigures{
		rowsPerSec: median(rowsPerSec), weirMBs: median(weirMBs), rawMBs: median(rawMBs), drainedMBs: median(drained),
		rawReadMBs: median(rawReadMBs), cpuBy: medians(cpuBy),
		p50: percentile(lat, 50), p99: percentile(lat, 99), cpuPerMB: median(cpu), rawCPUPerMB: median(rawCPU),
	}, nil
}

// drainPoll is how often waitDrained scrapes the data node. A scrape costs the node about a
// millisecond of CPU (the Go runtime's metrics included), which would show in its CPU per MB
// if it polled much more often; 10 ms is a fraction of a percent of a round's time.
const drainPoll = 10 * time.Millisecond

// waitDrained waits until the data node serving ch has consumed the channel's last message.
func waitDrained(ctx context.Context, log *wal.Log, nodeHTTP, ch string) error {
	end, err := log.LastPosition(ctx, ch)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		got, err := scrape(ctx, nodeHTTP, "weir_datanode_consumed_position", "channel")
		if err != nil {
			return err
		}
		if uint64(got[ch]) >= uint64(end) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("data node consumed %s up to %v of %d after 5 minutes", ch, got[ch], end)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(drainPoll):
		}
	}
}

// rawJetStream publishes payloads of a request's size to its own stream on Weir's NATS
// server, which has the same durability setting as Weir's channels.
type rawJetStream struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	stream  string
	subject string
	payload []byte
}

func newRawJetStream(ctx context.Context, url, name string, size int) (*rawJetStream, error) {
	nc, err := nats.Connect(url)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	subject := "bench.raw." + name
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subject}, Storage: jetstream.FileStorage,
		MaxMsgSize: -1}); err != nil {
		nc.Close()
		return nil, err
	}
	return &rawJetStream{nc: nc, js: js, stream: name, subject: subject, payload: make([]byte, size)}, nil
}

// run publishes n messages from clients goroutines, each waiting for its ack as an insert
// waits for its append, and returns the elapsed time.
func (r *rawJetStream) run(ctx context.Context, n, clients int, progress ...func()) (time.Duration, error) {
	return spread(ctx, n, clients, func(ctx context.Context, _ int) error {
		if _, err := r.js.Publish(ctx, r.subject, r.payload); err != nil {
			return fmt.Errorf("raw publish: %w", err)
		}
		for _, p := range progress {
			p()
		}
		return nil
	})
}

// runConsumed is run with a reader that consumes every message as it is stored, the way a
// data node follows its channel, and returns the time until the last one was read: the
// floor of Weir's architecture (write once to the log, read once from it) on this machine.
func (r *rawJetStream) runConsumed(ctx context.Context, n, clients int, progress ...func()) (time.Duration, error) {
	cons, err := r.js.OrderedConsumer(ctx, r.stream, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy})
	if err != nil {
		return 0, err
	}
	it, err := cons.Messages()
	if err != nil {
		return 0, err
	}
	defer it.Stop()
	read := make(chan error, 1)
	go func() {
		for range n {
			if _, err := it.Next(); err != nil {
				read <- err
				return
			}
		}
		read <- nil
	}()
	start := time.Now()
	if _, err := r.run(ctx, n, clients, progress...); err != nil {
		return 0, err
	}
	select {
	case err := <-read:
		if err != nil {
			return 0, fmt.Errorf("raw consume: %w", err)
		}
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return time.Since(start), nil
}

func (r *rawJetStream) Close() { r.nc.Close() }

// rawParquet encodes the rows of requests worth total bytes of vectors with arrow-go's
// Parquet writer directly — vectors as FixedSizeBinary, PLAIN, uncompressed, as Weir writes
// them — into a discarding writer, and returns MB/s of vectors.
func rawParquet(dim int, total int64) (float64, error) {
	w := newWorkload("raw", dim, ingestBatch)
	s := &schemapb.CollectionSchema{Name: "raw", Fields: []*schemapb.FieldSchema{
		{FieldID: 100, Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
		{FieldID: 101, Name: "vec", DataType: schemapb.DataType_FloatVector, TypeParams: []*commonpb.KeyValuePair{{Key: "dim", Value: strconv.Itoa(dim)}}},
	}}
	rows, err := batch.FromFieldData(s, w.request(0).GetFieldsData(), ingestBatch, batch.FromOptions{})
	if err != nil {
		return 0, err
	}
	defer rows.Release()
	rec := rows.Record(1)
	defer rec.Release()
	n := max(1, int(total/w.vectorBytes()))
	recs := make([]arrow.RecordBatch, n)
	for i := range recs {
		recs[i] = rec
	}
	tbl := array.NewTableFromRecords(rec.Schema(), recs)
	defer tbl.Release()
	props := parquet.NewWriterProperties(parquet.WithDictionaryDefault(false), parquet.WithStats(false),
		parquet.WithCompression(compress.Codecs.Uncompressed), parquet.WithEncoding(parquet.Encodings.Plain))
	start := time.Now()
	if err := pqarrow.WriteTable(tbl, io.Discard, 64<<10, props, pqarrow.DefaultWriterProps()); err != nil {
		return 0, err
	}
	return mbps(int64(n)*w.vectorBytes(), time.Since(start)), nil
}

// rawFileWrite writes total bytes sequentially to a file in dir in chunks of one request's
// size, with an fsync after each chunk (the durability of one acknowledged append) or, with
// once, a single fsync at the end (a file written by a sync), and returns MB/s.
func rawFileWrite(dir string, dim int, total int64, once bool) (float64, error) {
	w := newWorkload("raw", dim, ingestBatch)
	chunk := make([]byte, w.requestBytes())
	f, err := os.Create(filepath.Join(dir, "raw-write"))
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	n := max(1, int(total/int64(len(chunk))))
	start := time.Now()
	for range n {
		if _, err := f.Write(chunk); err != nil {
			return 0, err
		}
		if !once {
			if err := f.Sync(); err != nil {
				return 0, err
			}
		}
	}
	if once {
		if err := f.Sync(); err != nil {
			return 0, err
		}
	}
	return mbps(int64(n)*int64(len(chunk)), time.Since(start)), nil
}

// medians maps each series to its median.
func medians(m map[string][]float64) map[string]float64 {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]float64, len(m))
	for k, v := range m {
		out[k] = median(v)
	}
	return out
}
