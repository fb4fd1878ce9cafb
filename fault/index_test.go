//go:build fault

package fault

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/indexbuild"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/objstore"
	"github.com/weir-db/weir/internal/vindex"
	"github.com/weir-db/weir/internal/weirtest"
)

// heldBuild restarts data node 1 with its index builds held 4 s before they commit, defines an
// HNSW index, flushes enough rows for every channel to have a segment to index, and returns once
// node 1 wrote an index file it has not committed yet: a build in progress, for the fault to hit.
func heldBuild(r *run) (idx *meta.Index) {
	_, err := r.c.Procs["dn1"].Stop(15 * time.Second)
	require.NoError(r, err)
	delete(r.c.Procs, "dn1")
	r.c.StartEnv("dn1-slow", "datanode", 1, []string{"WEIR_FAILPOINTS=indexbuild/before-commit=sleep(4000)"}, "--sync-stale-age", "1s")
	r.c.WaitAssigned(r.coll.VChannels, 1, 2)
	idx, _, err = r.c.Catalog.CreateIndex(context.Background(), &meta.Index{CollectionID: r.coll.ID, FieldID: r.coll.Schema.GetFields()[1].GetFieldID(),
		Name: "vec", Params: []meta.Param{{Key: "index_type", Value: "HNSW"}, {Key: "metric_type", Value: "L2"}, {Key: "params", Value: `{"M": 8, "efConstruction": 40}`}}})
	require.NoError(r, err)
	r.w.WaitAcked(r, 4*indexbuild.MinRows*len(r.coll.VChannels))
	r.w.Flush(r.T)
	leases, err := r.c.Catalog.ListLeases(context.Background())
	require.NoError(r, err)
	tokens := map[int64]bool{}
	for _, ch := range r.coll.VChannels {
		if l := leases[ch]; l.NodeID == 1 {
			ep, err := r.c.Catalog.ReadEpoch(context.Background(), ch)
			require.NoError(r, err)
			tokens[ep] = true
		}
	}
	require.NotEmpty(r, tokens, "node 1 owns a channel")
	require.Eventually(r, func() bool {
		for _, k := range indexFiles(r) {
			fk, _ := vindex.ParseFileKey(k)
			if tokens[fk.Token] {
				return true
			}
		}
		return false
	}, 60*time.Second, 20*time.Millisecond, "node 1 never wrote an index file")
	return idx
}

// indexFiles lists the index files in the cluster's bucket.
func indexFiles(r *run) []string {
	var keys []string
	err := r.c.Bucket.List(context.Background(), vindex.Prefix("weir"), func(o objstore.ObjectInfo) error {
		keys = append(keys, o.Key)
		return nil
	})
	require.NoError(r, err)
	return keys
}

// requireIndexesFinished waits until every flushed segment the index needs has its record, each
// naming a file that checks out, then restarts the coordinator with a short grace period and
// waits until garbage collection leaves exactly the files the records name (the killed or moved
// build's file among those it deletes).
func requireIndexesFinished(r *run, idx *meta.Index) (orphans int) {
	ctx := context.Background()
	var recs []*meta.SegmentIndex
	require.Eventually(r, func() bool {
		segs, err := r.c.Catalog.ListSegments(ctx, r.coll.ID)
		require.NoError(r, err)
		recs, err = r.c.Catalog.ListSegmentIndexes(ctx, r.coll.ID)
		require.NoError(r, err)
		have := map[int64]bool{}
		for _, rec := range recs {
			have[rec.SegmentID] = true
		}
		for _, s := range segs {
			if s.Level == meta.L1 && s.State == meta.Flushed && s.Rows >= indexbuild.MinRows && !have[s.ID] {
				return false
			}
		}
		return true
	}, 2*time.Minute, 100*time.Millisecond, "flushed segments without their index")
	var want []string
	for _, rec := range recs {
		require.Equal(r, idx.ID, rec.IndexID)
		b, err := r.c.Bucket.Get(ctx, rec.Key)
		require.NoError(r, err, "record of segment %d names a missing file", rec.SegmentID)
		h, _, err := vindex.ReadHeader(b)
		require.NoError(r, err)
		require.Equal(r, rec.SegmentID, h.Segment)
		want = append(want, rec.Key)
	}
	slices.Sort(want)
	orphans = len(indexFiles(r)) - len(want)
	_, err := r.c.Procs["coord"].Stop(15 * time.Second)
	require.NoError(r, err)
	// The shortest grace period a coordinator takes is a minute: the orphan goes about a minute
	// after it was written.
	r.c.Start("coord", "coord", 1, "--assign-interval", "200ms", "--reload-interval", "200ms", "--gc-grace", "1m", "--gc-interval", "500ms")
	require.Eventually(r, func() bool {
		got := indexFiles(r)
		slices.Sort(got)
		return slices.Equal(got, want)
	}, 3*time.Minute, 200*time.Millisecond, "index files other than the records' left after garbage collection")
	r.Logf("%d segment indexes, one record each; %d orphan index files collected", len(recs), orphans)
	return orphans
}

// TestIndexBuildOwnerKilled: the test sends SIGKILL to the data node while one of its index
// builds has written its file and not committed it; the node is started again, the channel's
// owner builds the index again: one record per segment, and garbage collection removes the
// killed build's file.
func TestIndexBuildOwnerKilled(t *testing.T) {
	scenario(t, "index build: owner SIGKILLed mid-build", func(r *run) {
		idx := heldBuild(r)
		p := r.c.Procs["dn1-slow"]
		p.Kill()
		requireKilled(r.T, p)
		r.Logf("SIGKILL to dn1 (pid %d) mid-build", p.PID())
		delete(r.c.Procs, "dn1-slow")
		r.c.Start("dn1", "datanode", 1, "--sync-stale-age", "1s")
		require.Positive(r, requireIndexesFinished(r, idx), "the killed build's file was left, then collected")
	})
}

// TestIndexBuildLeaseMoved: the data node is paused (SIGSTOP) past its session while a build
// waits to commit, its channels move to the other node, which builds their indexes; resumed, the
// paused node finds its session lost and exits without committing anything.
func TestIndexBuildLeaseMoved(t *testing.T) {
	scenario(t, "index build: lease moved mid-build", func(r *run) {
		idx := heldBuild(r)
		p := r.c.Procs["dn1-slow"]
		r.c.Expect("dn1-slow", weirtest.SessionLost)
		require.NoError(r, p.Pause())
		r.c.WaitAssigned(r.coll.VChannels, 2)
		require.NoError(r, p.Resume())
		r.c.WaitExit("dn1-slow", weirtest.SessionLost, 30*time.Second)
		delete(r.c.Procs, "dn1-slow")
		requireIndexesFinished(r, idx)
		recs, err := r.c.Catalog.ListSegmentIndexes(context.Background(), r.coll.ID)
		require.NoError(r, err)
		for _, rec := range recs {
			require.Equal(r, int64(2), rec.Node, fmt.Sprintf("segment %d: built by the node that owns its channel now", rec.SegmentID))
		}
	})
}
