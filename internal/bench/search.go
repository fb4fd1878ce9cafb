package bench

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"

	"github.com/weir-db/weir/internal/objstore"
	"github.com/weir-db/weir/internal/querynode"
	"github.com/weir-db/weir/internal/readapi"
	"github.com/weir-db/weir/internal/segment"
)

// Search measures the read path on a standalone: exact search on one query node beside a raw
// scan of as many vectors (the memory-bandwidth limit), a Strong search on an idle collection,
// the load of a collection beside a raw read and Parquet decode of its files, and searches
// through the gRPC API from 1, 4 and 16 clients.
func Search(ctx context.Context, o Options) (*Report, error) {
	t0 := time.Now()
	rows, small, dim := 1_000_000, 100_000, 128
	if o.Quick {
		rows, small = 50_000, 10_000
	}
	r := newReport("search", fmt.Sprintf("exact (FLAT) search, %d × %d float vectors, one query node", rows, dim), o)
	dir, cleanup, err := o.scratch("search")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	tgt, err := startStandaloneWith(ctx, o, dir, nil)
	if err != nil {
		return nil, err
	}
	defer tgt.Close()
	s := tgt.(inProcess).Standalone
	cl, err := dial(tgt.Addr())
	if err != nil {
		return nil, err
	}
	defer cl.Close()

	// One channel, so that one query node thread scans every row of a search.
	o.step("search: inserting %d rows", rows)
	if err := cl.fill(ctx, "search_big", dim, rows); err != nil {
		return nil, err
	}
	loadTime, err := cl.indexAndLoad(ctx, "search_big")
	if err != nil {
		return nil, err
	}
	fileBytes, rawLoad, err := rawLoadFiles(ctx, filepath.Join(dir, "objects"))
	if err != nil {
		return nil, err
	}
	lt := Table{Title: "load", Columns: []string{"files", "Weir: LoadCollection → loaded", "s/GB", "floor: read + Parquet decode", "s/GB", "Weir/floor"}}
	gb := float64(fileBytes) / 1e9
	lt.Add(fmt.Sprintf("%.0f MB", float64(fileBytes)/1e6), ms(loadTime), f2(loadTime.Seconds()/gb), ms(rawLoad), f2(rawLoad.Seconds()/gb), ratio(float64(loadTime), float64(rawLoad)))
	r.Tables = append(r.Tables, lt)
	r.Figures["load.s_per_gb"] = loadTime.Seconds() / gb
	r.Figures["load.floor_s_per_gb"] = rawLoad.Seconds() / gb

	// Exact search on the query node alone, one query at a time, against a raw scan.
	o.step("search: exact search on the query node")
	coll, err := cl.DescribeCollection(ctx, &milvuspb.DescribeCollectionRequest{CollectionName: "search_big"})
	if err := check(coll.GetStatus(), err, "describe"); err != nil {
		return nil, err
	}
	qn := s.QueryNode()
	rng := rand.New(rand.NewPCG(3, 3))
	query := func() []float32 {
		q := make([]float32, dim)
		for i := range q {
			q[i] = rng.Float32()*2 - 1
		}
		return q
	}
	req := &querynode.SearchRequest{ShardRequest: querynode.ShardRequest{CollectionID: coll.GetCollectionID(), Channel: coll.GetVirtualChannelNames()[0],
		Consistency: querynode.Consistency{Level: commonpb.ConsistencyLevel_Eventually}}, FieldID: coll.GetSchema().GetFields()[1].GetFieldID(), Metric: "L2", K: 10}
	var lat []time.Duration
	deadline := time.Now().Add(3 * time.Second)
	for len(lat) < 5 || time.Now().Before(deadline) {
		req.Vectors = [][]float32{query()}
		t := time.Now()
		res, err := qn.Search(ctx, req)
		if err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(t))
		if res.Fields != nil {
			res.Fields.Release()
		}
	}
	var total time.Duration
	for _, l := range lat {
		total += l
	}
	qps := float64(len(lat)) / total.Seconds()
	vecBytes := float64(rows * dim * 4)
	floats := make([]float32, rows*dim)
	for i := range floats {
		floats[i] = float32(i & 1023)
	}
	scanGBs := rawSIMDScanGBs(floats, 3)
	limit := scanGBs * 1e9 / vecBytes
	et := Table{Title: "exact search, nq 1, top 10, one thread", Columns: []string{"", "searches/s", "GB/s of vectors", "p50"}}
	et.Add("Weir query node", f1(qps), f2(qps*vecBytes/1e9), ms(percentile(lat, 50)))
	et.Add("raw scan of as many floats (one SIMD pass)", f1(limit), f2(scanGBs), "")
	r.Tables = append(r.Tables, et)
	r.Figures["exact.qps"] = qps
	r.Figures["exact.raw_scan_qps"] = limit
	r.atLeast("exact search / raw scan", qps/limit, 0.8, "")

	// Strong search on an idle collection: answers without waiting for a new message.
	o.step("search: Strong search on an idle collection")
	if err := cl.fill(ctx, "search_idle", dim, 1000); err != nil {
		return nil, err
	}
	if _, err := cl.indexAndLoad(ctx, "search_idle"); err != nil {
		return nil, err
	}
	var strong []time.Duration
	for range 200 {
		t := time.Now()
		if err := cl.search(ctx, "search_idle", query(), commonpb.ConsistencyLevel_Strong); err != nil {
			return nil, err
		}
		strong = append(strong, time.Since(t))
	}
	p50 := percentile(strong, 50)
	st := Table{Title: "Strong search, idle collection of 1,000 rows, through the gRPC API", Columns: []string{"p50", "p99"}}
	st.Add(ms(p50), ms(percentile(strong, 99)))
	r.Tables = append(r.Tables, st)
	r.Figures["strong_idle.p50_ms"] = float64(p50) / 1e6
	r.atMost("Strong search p50 on an idle collection", float64(p50)/1e6, 5, " ms")

	// Throughput through the API from several clients.
	o.step("search: %d rows, 1, 4 and 16 clients", small)
	if err := cl.fill(ctx, "search_api", dim, small); err != nil {
		return nil, err
	}
	if _, err := cl.indexAndLoad(ctx, "search_api"); err != nil {
		return nil, err
	}
	ct := Table{Title: fmt.Sprintf("searches through the gRPC API, %d rows, 2 channels, top 10, Bounded", small),
		Columns: []string{"clients", "searches/s", "p50", "p99"}}
	for _, clients := range []int{1, 4, 16} {
		var mu sync.Mutex
		var ls []time.Duration
		n := 200 * clients
		if o.Quick {
			n = 20 * clients
		}
		took, err := spread(ctx, n, clients, func(ctx context.Context, i int) error {
			q := make([]float32, dim)
			for j := range q {
				q[j] = float32(math.Sin(float64(i*dim + j)))
			}
			t := time.Now()
			if err := cl.search(ctx, "search_api", q, commonpb.ConsistencyLevel_Bounded); err != nil {
				return err
			}
			mu.Lock()
			ls = append(ls, time.Since(t))
			mu.Unlock()
			return nil
		})
		if err != nil {
			return nil, err
		}
		ct.Add(fmt.Sprint(clients), f0(float64(n)/took.Seconds()), ms(percentile(ls, 50)), ms(percentile(ls, 99)))
		r.Figures[fmt.Sprintf("api.%dclients.qps", clients)] = float64(n) / took.Seconds()
	}
	r.Tables = append(r.Tables, ct)
	r.Notes = append(r.Notes,
		"exact search runs on the query node in the same process, without the API, one query at a time on one channel: the figure is the engine's; its floor is one pass over as many float32s in memory with the same AVX2 kernel, measured in the same run, so the ratio is the engine's overhead over a pure scan (filters, visibility, heap)",
		"load: from LoadCollection to GetLoadState Loaded, beside reading every insert file of the collection from the same folder and decoding it with the same Parquet reader")
	if err := annSection(ctx, o, r); err != nil {
		return nil, err
	}
	r.Seconds = time.Since(t0).Seconds()
	return r, nil
}

// fill creates a 1-channel (2 for names ending in _api) collection of rows vectors and flushes it.
func (c *client) fill(ctx context.Context, name string, dim, rows int) error {
	shards := 1
	if strings.HasSuffix(name, "_api") {
		shards = 2
	}
	if err := c.createCollection(ctx, name, dim, shards); err != nil {
		return err
	}
	w := newWorkload(name, dim, min(rows, ingestBatch))
	if _, err := c.insert(ctx, w, 0, rows/w.rows, 4, nil); err != nil {
		return err
	}
	_, err := c.flushAndWait(ctx, name)
	return err
}

// indexAndLoad defines a FLAT index and loads the collection, returning the time from
// LoadCollection until GetLoadState reports it loaded.
func (c *client) indexAndLoad(ctx context.Context, name string) (time.Duration, error) {
	st, err := c.CreateIndex(ctx, &milvuspb.CreateIndexRequest{CollectionName: name, FieldName: "vec",
		ExtraParams: []*commonpb.KeyValuePair{{Key: "index_type", Value: "FLAT"}, {Key: "metric_type", Value: "L2"}}})
	if err := check(st, err, "create index"); err != nil {
		return 0, err
	}
	t0 := time.Now()
	st, err = c.LoadCollection(ctx, &milvuspb.LoadCollectionRequest{CollectionName: name})
	if err := check(st, err, "load"); err != nil {
		return 0, err
	}
	for {
		ls, err := c.GetLoadState(ctx, &milvuspb.GetLoadStateRequest{CollectionName: name})
		if err := check(ls.GetStatus(), err, "load state"); err != nil {
			return 0, err
		}
		if ls.GetState() == commonpb.LoadState_LoadStateLoaded {
			return time.Since(t0), nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// search runs one top-10 search of q.
func (c *client) search(ctx context.Context, name string, q []float32, level commonpb.ConsistencyLevel) error {
	req, err := readapi.FloatSearch(name, q, 10, "", "L2", level)
	if err != nil {
		return err
	}
	res, err := c.Search(ctx, req)
	if err := check(res.GetStatus(), err, "search"); err != nil {
		return err
	}
	if n := len(res.GetResults().GetScores()); n != 10 {
		return fmt.Errorf("search: %d hits, want 10", n)
	}
	return nil
}

// rawLoadFiles reads and decodes every insert file under the object folder: the floor of a
// load.
func rawLoadFiles(ctx context.Context, dir string) (int64, time.Duration, error) {
	b, err := objstore.NewLocal(dir)
	if err != nil {
		return 0, 0, err
	}
	var keys []string
	var size int64
	err = b.List(ctx, "", func(oi objstore.ObjectInfo) error {
		if strings.Contains(oi.Key, "/insert/") {
			keys = append(keys, oi.Key)
			size += oi.Size
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	t0 := time.Now()
	for _, k := range keys {
		data, err := b.Get(ctx, k)
		if err != nil {
			return 0, 0, err
		}
		tbl, err := segment.ReadInsert(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return 0, 0, err
		}
		tbl.Release()
	}
	return size, time.Since(t0), nil
}
