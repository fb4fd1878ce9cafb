package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
)

// Builds measures what index builds cost ingestion on their own (`weir bench builds`); `ann`
// ends with the same section.
func Builds(ctx context.Context, o Options) (*Report, error) {
	return sectionReport(ctx, o, "builds", "ingest beside index builds", ingestBesideBuilds)
}

// ingestBesideBuilds measures what index builds cost ingestion: the rate of inserting and
// flushing rows on a standalone alone, then the same while its data node builds an HNSW index of
// other segments (one build worker). The bar: ingestion keeps at least 80% of its rate.
// Each ingest is 2,000,000 rows, about 10 s at this machine's rate: at 500,000 (2.5 s) one run
// measured 0.79 and a second-long stall either way moved the ratio by a tenth. The build (of
// 600,000 rows, about 3 minutes) outlasts the second ingest.
func ingestBesideBuilds(ctx context.Context, o Options, r *Report) error {
	dim, rows, built := 128, 2_000_000, 600_000
	if o.Quick {
		rows, built = 20_000, 40_000
	}
	dir, cleanup, err := o.scratch("builds")
	if err != nil {
		return err
	}
	defer cleanup()
	tgt, err := startStandaloneWith(ctx, o, dir, nil)
	if err != nil {
		return err
	}
	defer tgt.Close()
	cl, err := dial(tgt.Addr())
	if err != nil {
		return err
	}
	defer cl.Close()

	// ingest inserts rows into a new 1-channel collection from 4 clients and flushes: rows/s
	// until GetFlushState says flushed (the data node's share of the work included).
	ingest := func(name string) (float64, error) {
		if err := cl.createCollection(ctx, name, dim, 1); err != nil {
			return 0, err
		}
		w := newWorkload(name, dim, min(rows, ingestBatch))
		t0 := time.Now()
		if _, err := cl.insert(ctx, w, 0, rows/w.rows, 4, nil); err != nil {
			return 0, err
		}
		if _, err := cl.flushAndWait(ctx, name); err != nil {
			return 0, err
		}
		return float64(rows) / time.Since(t0).Seconds(), nil
	}
	o.step("builds: ingest of %d × %d alone", rows, dim)
	alone, err := ingest("ingest_alone")
	if err != nil {
		return err
	}
	o.step("builds: %d rows to index (HNSW, M 16, efConstruction 200)", built)
	if err := cl.fill(ctx, "to_index", dim, built); err != nil {
		return err
	}
	st, err := cl.CreateIndex(ctx, &milvuspb.CreateIndexRequest{CollectionName: "to_index", FieldName: "vec",
		ExtraParams: []*commonpb.KeyValuePair{{Key: "index_type", Value: "HNSW"}, {Key: "metric_type", Value: "L2"},
			{Key: "params", Value: `{"M": 16, "efConstruction": 200}`}}})
	if err := check(st, err, "create index"); err != nil {
		return err
	}
	pending := func() (int64, error) {
		d, err := cl.DescribeIndex(ctx, &milvuspb.DescribeIndexRequest{CollectionName: "to_index"})
		if err := check(d.GetStatus(), err, "describe index"); err != nil {
			return 0, err
		}
		return d.GetIndexDescriptions()[0].GetPendingIndexRows(), nil
	}
	time.Sleep(200 * time.Millisecond) // the data node's next scan starts the build
	o.step("builds: ingest of %d × %d beside the build", rows, dim)
	beside, err := ingest("ingest_beside")
	if err != nil {
		return err
	}
	left, err := pending()
	if err != nil {
		return err
	}
	t := Table{Title: fmt.Sprintf("ingest beside index builds: %d × %d rows inserted (4 clients) and flushed, 1 channel", rows, dim),
		Columns: []string{"", "rows/s", "ratio"}}
	t.Add("alone", f0(alone), "")
	t.Add("while the data node builds an HNSW index (1 worker, nice 10, paced)", f0(beside), ratio(beside, alone))
	r.Tables = append(r.Tables, t)
	r.Figures["builds.ingest_alone_rows_per_s"] = alone
	r.Figures["builds.ingest_beside_rows_per_s"] = beside
	if left == 0 {
		r.Notes = append(r.Notes, "the index build finished before the second ingest did: the ratio understates what a build costs")
	}
	r.atLeast("ingest beside index builds / alone", beside/alone, 0.8, "")
	return nil
}
