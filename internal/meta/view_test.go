package meta

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/weir-db/weir/internal/metastore"
)

// TestViewStaysEqualToAFreshLoad is invariant 6's correctness half: after any sequence of data
// node writes (new segments, new files, state changes, checkpoints, lease moves), a view kept
// up to date by changed-keys reloads equals a view loaded from scratch.
func TestViewStaysEqualToAFreshLoad(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		ctx := context.Background()
		kv := metastore.NewMemory()
		defer kv.Close()
		c := NewCatalog(kv, "weir", NewIDAllocator(kv, "weir", 10), nil)
		chans := []string{"dml_1_v0", "dml_1_v1"}
		fences := map[string]*Fence{}
		for _, ch := range chans {
			l, err := c.AssignChannel(ctx, ch, 1, 1)
			require.NoError(rt, err)
			fences[ch] = c.Fence(l)
		}
		live := NewView(kv, "weir", ReloadChanged)
		segs := map[int64]*Segment{}
		cps := map[string]int64{}
		nextFile := int64(1000)
		steps := rapid.IntRange(1, 40).Draw(rt, "steps")
		for i := 0; i < steps; i++ {
			ch := rapid.SampledFrom(chans).Draw(rt, "channel")
			f := fences[ch]
			switch rapid.IntRange(0, 4).Draw(rt, "op") {
			case 0, 1: // a sync of a new or existing segment
				id := rapid.Int64Range(1, 8).Draw(rt, "segment")
				s := segs[id]
				prev := int64(0)
				if s == nil {
					s = &Segment{ID: id, CollectionID: 1, PartitionID: 2, Channel: ch, Level: L1, State: Growing}
				} else {
					prev = s.ModRevision
				}
				if s.Channel != ch {
					continue
				}
				nextFile++
				s.Rows += 10
				s.Files++
				s.MaxPos += 3
				if rapid.Bool().Draw(rt, "seal") {
					s.State = Flushed
				}
				ops, err := f.SegmentOps(s, []File{{ID: nextFile, SegmentID: id, Kind: InsertFile, Key: fmt.Sprint("k", nextFile), Rows: 10}})
				require.NoError(rt, err)
				rev, err := f.Commit(ctx, []metastore.Cmp{f.SegmentCmp(s, prev)}, ops)
				require.NoError(rt, err)
				s.ModRevision = rev
				segs[id] = s
			case 2: // a checkpoint
				op, err := f.CheckpointOp(Checkpoint{Position: uint64(i + 1)})
				require.NoError(rt, err)
				rev, err := f.Commit(ctx, []metastore.Cmp{f.CheckpointCmp(cps[ch])}, []metastore.Op{op})
				require.NoError(rt, err)
				cps[ch] = rev
			case 3: // the channel moves to another node
				l, err := c.AssignChannel(ctx, ch, 1, rapid.Int64Range(1, 3).Draw(rt, "node"))
				require.NoError(rt, err)
				fences[ch] = c.Fence(l)
			case 4: // the coordinator reloads
				_, err := live.Reload(ctx)
				require.NoError(rt, err)
			}
		}
		st, err := live.Reload(ctx)
		require.NoError(rt, err)
		fresh := NewView(kv, "weir", ReloadChanged)
		_, err = fresh.Reload(ctx)
		require.NoError(rt, err)
		require.True(rt, live.Equal(fresh), "incremental view differs from a fresh load (last reload %+v)", st)
		require.Len(rt, fresh.Segments(0), len(segs))
	})
}

func TestReloadSkipsWhenNothingChangedAndReadsOnlyChanges(t *testing.T) {
	ctx := context.Background()
	kv := metastore.NewMemory()
	defer kv.Close()
	c := NewCatalog(kv, "weir", NewIDAllocator(kv, "weir", 10), nil)
	l, err := c.AssignChannel(ctx, "ch", 1, 1)
	require.NoError(t, err)
	f := c.Fence(l)
	for id := int64(1); id <= 50; id++ {
		s := &Segment{ID: id, CollectionID: 1, Channel: "ch", Level: L1, State: Flushed, Rows: 1}
		ops, err := f.SegmentOps(s, []File{{ID: 1000 + id, SegmentID: id, Kind: InsertFile, Key: "k"}})
		require.NoError(t, err)
		_, err = f.Commit(ctx, nil, ops)
		require.NoError(t, err)
	}
	for _, mode := range []ReloadMode{ReloadChanged, ReloadGated, ReloadFull} {
		t.Run(mode.String(), func(t *testing.T) {
			v := NewView(kv, "weir", mode)
			st, err := v.Reload(ctx)
			require.NoError(t, err)
			require.Equal(t, 100, st.Keys, "the first reload reads everything")
			st, err = v.Reload(ctx)
			require.NoError(t, err)
			if mode == ReloadFull {
				require.Equal(t, 100, st.Keys)
			} else {
				require.True(t, st.Skipped, "nothing changed: only the channels are read")
				require.Zero(t, st.Keys)
			}
			s := &Segment{ID: 7, CollectionID: 1, Channel: "ch", Level: L1, State: Flushed, Rows: 2}
			ops, err := f.SegmentOps(s, nil)
			require.NoError(t, err)
			_, err = f.Commit(ctx, nil, ops)
			require.NoError(t, err)
			st, err = v.Reload(ctx)
			require.NoError(t, err)
			want := map[ReloadMode]int{ReloadChanged: 1, ReloadGated: 100, ReloadFull: 100}[mode]
			require.Equal(t, want, st.Keys)
			require.Equal(t, int64(2), v.Segments(1)[6].Rows)
			require.Len(t, v.Files(7), 1)
			require.Equal(t, l.Revision, v.Leases()["ch"].Revision)
			v.Forget(7)
			require.Len(t, v.Segments(0), 49)
			require.Equal(t, Checkpoint{}, v.Checkpoint("ch"))
			require.Positive(t, v.Revision())
		})
	}
}

// blockingStore makes the first segment range after arm wait until release is closed.
type blockingStore struct {
	Store
	armed   atomic.Bool
	blocked chan struct{}
	release chan struct{}
}

func (b *blockingStore) Range(ctx context.Context, prefix string, opts ...metastore.RangeOption) ([]metastore.KV, int64, error) {
	if strings.HasSuffix(prefix, "/meta/segments/") && b.armed.CompareAndSwap(true, false) {
		close(b.blocked)
		<-b.release
	}
	return b.Store.Range(ctx, prefix, opts...)
}

// TestConcurrentReloadsApplyInOrder: a reload that read early and applies late must not put an
// older segment record back beside newer files. Reload A reads the channels, then blocks before
// reading segments; a sync commits; reload B (started after) must not apply before A does.
func TestConcurrentReloadsApplyInOrder(t *testing.T) {
	ctx := context.Background()
	kv := metastore.NewMemory()
	defer kv.Close()
	c := NewCatalog(kv, "weir", NewIDAllocator(kv, "weir", 10), nil)
	l, err := c.AssignChannel(ctx, "ch", 1, 1)
	require.NoError(t, err)
	f := c.Fence(l)
	sync := func(s *Segment, prev, file int64) int64 {
		ops, err := f.SegmentOps(s, []File{{ID: file, SegmentID: s.ID, Kind: InsertFile, Key: fmt.Sprint("k", file), Rows: 10, MaxPos: s.MaxPos}})
		require.NoError(t, err)
		rev, err := f.Commit(ctx, []metastore.Cmp{f.SegmentCmp(s, prev)}, ops)
		require.NoError(t, err)
		return rev
	}
	seg := &Segment{ID: 7, CollectionID: 1, PartitionID: 2, Channel: "ch", Level: L1, State: Growing, MaxPos: 10, Rows: 10, Files: 1}
	rev := sync(seg, 0, 100)
	bs := &blockingStore{Store: kv, blocked: make(chan struct{}), release: make(chan struct{})}
	v := NewView(bs, "weir", ReloadChanged)
	_, err = v.Reload(ctx)
	require.NoError(t, err)

	seg.MaxPos, seg.Rows, seg.Files = 20, 20, 2
	rev = sync(seg, rev, 101)
	bs.armed.Store(true)
	aDone := make(chan error, 1)
	go func() { _, err := v.Reload(ctx); aDone <- err }() // A: reads up to the second sync
	<-bs.blocked
	seg.MaxPos, seg.Rows, seg.Files = 30, 30, 3
	sync(seg, rev, 102) // a third sync after A's read
	bDone := make(chan error, 1)
	go func() { _, err := v.Reload(ctx); bDone <- err }() // B: reads everything
	select {
	case <-bDone:
		t.Fatal("a second reload applied while the first was still reading")
	case <-time.After(100 * time.Millisecond):
	}
	close(bs.release)
	require.NoError(t, <-aDone)
	require.NoError(t, <-bDone)
	snap := v.Snapshot(1)
	require.Len(t, snap.Segments, 1)
	require.Equal(t, uint64(30), snap.Segments[0].MaxPos, "the segment record matches its files")
	require.Len(t, snap.Files[7], 3)
	fresh := NewView(kv, "weir", ReloadChanged)
	_, err = fresh.Reload(ctx)
	require.NoError(t, err)
	require.True(t, v.Equal(fresh))
}
