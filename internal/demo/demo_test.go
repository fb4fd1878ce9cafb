package demo

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDemoLoadsFlushesAndReports(t *testing.T) {
	cfg := Defaults()
	cfg.Rows, cfg.Deletes, cfg.Batch = 5000, 50, 500
	var progress bytes.Buffer
	cfg.Progress = &progress
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := Run(ctx, cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.Equal(t, "5000", res.RowCount, "every inserted row is counted in committed segment meta")
	require.Equal(t, 2, res.Segments, "one flushed segment per shard")
	require.GreaterOrEqual(t, res.Files, 6, "insert, stats and delete files")
	require.Positive(t, res.DiskBytes)
	require.Equal(t, int64(5000*128*4), res.VectorBytes)
	require.Positive(t, res.RowsPerSecond())
	require.Contains(t, progress.String(), "inserting")

	var out bytes.Buffer
	res.Print(&out)
	require.Equal(t, 300, res.Searches)
	require.Equal(t, 1.0, res.Recall, "FLAT is exact")
	require.Equal(t, int64(4950), res.Count)
	require.Contains(t, progress.String(), "searching")
	for _, want := range []string{"5000 rows of 128-dim", "rows/s", "MB/s of vectors", "50 keys", "GetFlushState", "row_count 5000 in 2 segments",
		"FLAT", "GetLoadState reported loaded", "300 top-10 searches at Strong", "recall@10 1.0000", "count(*)   4950 rows"} {
		require.Contains(t, out.String(), want)
	}
}

func TestValidate(t *testing.T) {
	require.NoError(t, Defaults().Validate())
	for _, edit := range []func(*Config){
		func(c *Config) { c.Rows = 0 },
		func(c *Config) { c.Dim = 1 },
		func(c *Config) { c.Deletes = c.Rows + 1 },
	} {
		c := Defaults()
		edit(&c)
		require.Error(t, c.Validate())
		_, err := Run(context.Background(), c, slog.New(slog.DiscardHandler))
		require.Error(t, err)
	}
}
