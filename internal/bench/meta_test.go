package bench

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMetaQuick(t *testing.T) {
	r, err := Meta(context.Background(), Options{Quick: true, Dir: t.TempDir()})
	require.NoError(t, err)
	require.Len(t, r.Tables, 3)

	fencing := r.Tables[0]
	require.Len(t, fencing.Rows, 2)
	for i, n := range []string{"1", "16"} {
		require.Equal(t, n, fencing.Rows[i][0])
		require.Positive(t, r.Figures["meta.fenced_commits_per_s."+n])
		require.Positive(t, r.Figures["meta.unfenced_commits_per_s."+n])
		require.Contains(t, r.Figures, "meta.fencing_cost_pct."+n)
		require.Positive(t, r.Figures["meta.fenced_cpu_us_per_commit."+n])
	}
	// The cost of fencing is a difference of two noisy rates: it may be below zero, but the
	// target must be there and carry the figure.
	require.Len(t, r.Targets, 2)
	for _, tg := range r.Targets {
		require.Contains(t, tg.Name, "cost of fencing")
		require.Equal(t, "%", tg.Unit)
		require.Equal(t, tg.Got < 5, tg.Met)
	}
	require.Equal(t, r.Figures["meta.fencing_cost_pct.16"], r.Targets[1].Got)

	bare := r.Tables[1]
	require.Len(t, bare.Rows, 2, "with and without the else-branch")
	require.Contains(t, r.Figures, "meta.bare_compare_cost_pct.else")
	require.Contains(t, r.Figures, "meta.bare_compare_cost_pct.no_else")

	txns := r.Tables[2]
	require.Len(t, txns.Rows, 2)
	require.Positive(t, r.Figures["meta.etcd_txns_setup"])
	// 16 MB is one sync buffer per channel at most: the flush syncs each channel once, two
	// transactions each, plus the flush record.
	require.GreaterOrEqual(t, r.Figures["meta.etcd_txns_ingest"], 5.0)
	require.GreaterOrEqual(t, r.Figures["meta.datanode_syncs_ingest"], 2.0)
	require.Positive(t, r.Figures["meta.etcd_txns_per_gb"])
	requireRoundTrip(t, r)
}
