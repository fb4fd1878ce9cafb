package bench

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/testcluster"
)

// TestIngestQuick runs the ingest benchmark at its quick size and checks that it measured
// what it reports: every case has a rate, a baseline and latencies; the targets are judged
// from the figures; the JSON report reads back.
func TestIngestQuick(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := Ingest(ctx, Options{Quick: true, Dir: t.TempDir(), Executable: testcluster.BuildWeir(t)})
	require.NoError(t, err)
	require.Len(t, r.Tables, 3)
	require.Len(t, r.Tables[0].Rows, 8, "standalone and processes × dims 128 and 768 × 1 and 4 clients")
	require.Len(t, r.Tables[1].Rows, 4, "CPU by process: processes × dims × clients")
	for _, p := range []string{"proxy", "datanode", "bench"} {
		require.Positive(t, r.Figures["ingest.processes.dim128.clients4.cpu_ms_per_mb."+p], p)
	}
	for _, dim := range []string{"128", "768"} {
		for _, c := range []string{"standalone.dim" + dim + ".clients1", "standalone.dim" + dim + ".clients4", "processes.dim" + dim + ".clients1", "processes.dim" + dim + ".clients4"} {
			key := "ingest." + c + "."
			for _, f := range []string{"rows_per_s", "mb_per_s", "raw_jetstream_mb_per_s", "drained_mb_per_s", "p50_ms", "p99_ms", "cpu_ms_per_mb"} {
				require.Positive(t, r.Figures[key+f], key+f)
			}
			require.LessOrEqual(t, r.Figures[key+"p50_ms"], r.Figures[key+"p99_ms"])
			// Draining includes the inserts, so it cannot be faster than them.
			require.LessOrEqual(t, r.Figures[key+"drained_mb_per_s"], r.Figures[key+"mb_per_s"]*1.0001)
		}
		require.Positive(t, r.Figures["ingest.dim"+dim+".raw_parquet_mb_per_s"])
		require.Positive(t, r.Figures["ingest.dim"+dim+".raw_file_fsync_mb_per_s"])
	}
	require.Len(t, r.Targets, 10)
	for _, tg := range r.Targets {
		require.Positive(t, tg.Got, tg.Name)
	}
	requireRoundTrip(t, r)
}
