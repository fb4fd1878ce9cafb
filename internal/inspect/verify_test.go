package inspect

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/dml"
	"github.com/weir-db/weir/internal/inspect/inspecttest"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/objstore"
	"github.com/weir-db/weir/internal/segment"
	"github.com/weir-db/weir/internal/wal"
)

func TestCleanStateHasNoFindings(t *testing.T) {
	for _, withWAL := range []bool{false, true} {
		t.Run(map[bool]string{false: "without WAL", true: "with WAL"}[withWAL], func(t *testing.T) {
			w := newWorld(t, withWAL)
			// A young unreferenced file (a sync between its file write and its commit) and a
			// foreign object under the insert prefix are not findings.
			require.NoError(t, w.bucket.Put(w.ctx, segment.InsertKey(inspecttest.Root, w.c.Coll.ID, w.c.Part, w.b.ID, 999, 1), []byte("in flight")))
			require.NoError(t, w.bucket.Put(w.ctx, inspecttest.Root+"/insert/README", []byte("not a segment file")))
			rep := w.verify(Config{})
			require.Empty(t, rep.Findings)
			s := rep.Summary
			require.Equal(t, 0, s.Findings)
			require.Equal(t, 1, s.Collections)
			require.Equal(t, 3, s.Segments)
			require.Equal(t, 8, s.Files, "A: 2 syncs × (insert + stats), B: insert + stats, L0: 2 delete files")
			require.Equal(t, int64(7+2), s.Rows, "7 inserted rows and 2 deletes")
			require.Equal(t, 10, s.Objects)
			require.Equal(t, 1, s.Channels)
			for _, k := range Kinds {
				require.Contains(t, s.ByKind, k)
			}
			if withWAL {
				require.Equal(t, 6, s.Messages, "positions 1 to the checkpoint")
				require.Empty(t, s.Notes)
			} else {
				require.Equal(t, []string{"no DML channel log (--nats): checkpoint-ahead not checked"}, s.Notes)
			}
			require.Equal(t, "verify: 0 findings (duplicate-key 0, missing-file 0, unreferenced-file 0, checkpoint-ahead 0, dead-owner 0, meta-mismatch 0, corrupt-file 0, log-rewound 0) in 1 collections, 3 segments, 8 files, 9 rows", s.String())
		})
	}
}

func TestDuplicateKeys(t *testing.T) {
	t.Run("one message stored twice", func(t *testing.T) {
		w := newWorld(t, false)
		// A replay that did not drop position 2 stores its rows again in a new segment.
		c := w.ch.Segment(w.c.Part, meta.L1)
		w.ch.SyncInsert(c, []int64{4, 5, 6}, w.ts[2], 2, 2)
		rep := w.verify(Config{})
		require.Equal(t, []Kind{DuplicateKey}, kinds(rep))
		f := rep.Findings[0]
		require.Equal(t, c.ID, f.Segment)
		require.Equal(t, w.ch.Name, f.Channel)
		require.Equal(t, w.c.Coll.ID, f.Collection)
		require.Contains(t, f.Detail, "3 keys stored in segment")
		require.Contains(t, f.Detail, "same timestamp")
		require.Contains(t, f.Detail, "(e.g. 4, 5, 6)")
	})
	t.Run("a key inserted again without a delete", func(t *testing.T) {
		w := newWorld(t, false)
		w.ch.SyncInsert(w.b, []int64{1}, w.ts[7], 7, 7)
		rep := w.verify(Config{})
		require.Equal(t, []Kind{DuplicateKey}, kinds(rep))
		require.Contains(t, rep.Findings[0].Detail, "1 keys stored in segment")
		require.Contains(t, rep.Findings[0].Detail, "later timestamp")
	})
	t.Run("twice in one segment", func(t *testing.T) {
		w := newWorld(t, false)
		w.ch.SyncInsert(w.b, []int64{5}, w.ts[5], 5, 5)
		rep := w.verify(Config{})
		require.Equal(t, []Kind{DuplicateKey}, kinds(rep))
		require.Contains(t, rep.Findings[0].Detail, "twice in segment")
	})
	t.Run("dropped segments hold no live copy", func(t *testing.T) {
		w := newWorld(t, false)
		c := w.ch.Segment(w.c.Part, meta.L1)
		w.ch.SyncInsert(c, []int64{4, 5, 6}, w.ts[2], 2, 2)
		c.State = meta.SegmentDropped
		w.ch.Commit(c, nil)
		require.Empty(t, w.verify(Config{}).Findings)
	})
}

func TestDuplicateVarCharKeys(t *testing.T) {
	w := newWorld(t, false)
	v := w.c.Another("titles", 1, true)
	ch := v.Own(v.Coll.VChannels[0], node)
	a, l0, b := ch.Segment(v.Part, meta.L1), ch.Segment(dml.AllPartitions, meta.L0), ch.Segment(v.Part, meta.L1)
	ch.SyncInsert(a, []int64{1, 2}, w.ts[1], 1, 1)
	ch.SyncDelete(l0, []int64{2}, w.ts[2], 2) // upsert of key 2: not a duplicate
	ch.SyncInsert(b, []int64{2}, w.ts[3], 3, 3)
	ch.Checkpoint(3, w.ts[3])
	rep := w.verify(Config{})
	require.Empty(t, rep.Findings)
	require.Equal(t, 2, rep.Summary.Collections)
	require.Equal(t, int64(9+3+1), rep.Summary.Rows)

	ch.SyncInsert(b, []int64{1}, w.ts[1], 1, 1) // key 1 replayed
	rep = w.verify(Config{})
	require.Equal(t, []Kind{DuplicateKey}, kinds(rep))
	require.Equal(t, v.Coll.ID, rep.Findings[0].Collection)
	require.Contains(t, rep.Findings[0].Detail, `same timestamp and no delete between: most likely one message stored twice (e.g. "pk-1")`)
}

func TestDuplicateRule(t *testing.T) {
	const p1, p2 = 10, 20
	ins := func(ts uint64, seg, part int64) keyEvent { return keyEvent{ts: ts, seg: seg, part: part} }
	del := func(ts uint64, part int64) keyEvent { return keyEvent{ts: ts, seg: 99, part: part, del: true} }
	for _, c := range []struct {
		name string
		evs  []keyEvent
		want []dupPair
	}{
		{"one copy", []keyEvent{ins(1, 1, p1)}, nil},
		{"same message twice", []keyEvent{ins(5, 2, p1), ins(5, 1, p1)}, []dupPair{{1, 2, true}}},
		{"upsert: delete then insert", []keyEvent{ins(1, 1, p1), del(2, dml.AllPartitions), ins(3, 2, p1)}, nil},
		{"delete of the copy's partition", []keyEvent{ins(1, 1, p1), del(2, p1), ins(3, 2, p1)}, nil},
		{"delete of another partition", []keyEvent{ins(1, 1, p1), del(2, p2), ins(3, 2, p1)}, []dupPair{{1, 2, false}}},
		{"same key in two partitions", []keyEvent{ins(1, 1, p1), ins(2, 2, p2)}, []dupPair{{1, 2, false}}},
		{"a delete applies only to rows stamped before it", []keyEvent{ins(5, 1, p1), del(5, dml.AllPartitions), ins(5, 2, p1)}, []dupPair{{1, 2, true}}},
		{"deleted after both copies", []keyEvent{ins(1, 1, p1), ins(2, 2, p1), del(3, dml.AllPartitions)}, []dupPair{{1, 2, false}}},
		{"three copies", []keyEvent{ins(1, 1, p1), ins(1, 2, p1), ins(1, 3, p1)}, []dupPair{{1, 2, true}, {1, 3, true}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.want, duplicates(c.evs))
		})
	}
}

func TestDuplicateStringKeysAreQuoted(t *testing.T) {
	k := newKeyIndex()
	k.add(fileRead{strs: []string{"a", "b"}, ts: []uint64{1, 1}}, 7, 1, false)
	k.add(fileRead{strs: []string{"b"}, ts: []uint64{2}}, 8, 1, false)
	r := &Report{}
	k.report(3, map[int64]string{8: "dml_3_v0"}, r)
	require.Len(t, r.Findings, 1)
	require.Equal(t, Finding{Kind: DuplicateKey, Collection: 3, Channel: "dml_3_v0", Segment: 8,
		Detail: `1 keys stored in segment 7 and again in segment 8 at a later timestamp with no delete between: inserted twice by a client (Milvus allows it), or stored twice (e.g. "b")`}, r.Findings[0])
}

func TestMissingFile(t *testing.T) {
	w := newWorld(t, false)
	gone := w.filesA[1][0]
	require.NoError(t, w.bucket.Delete(w.ctx, gone.Key))
	rep := w.verify(Config{})
	require.Equal(t, []Kind{MissingFile}, kinds(rep))
	f := rep.Findings[0]
	require.Equal(t, gone.Key, f.Object)
	require.Equal(t, w.a.ID, f.Segment)
	require.Contains(t, f.Detail, "3 rows")
	require.Equal(t, 1, rep.Summary.ByKind[MissingFile])
}

func TestCorruptFile(t *testing.T) {
	for _, i := range []int{0, 1} { // insert, stats
		w := newWorld(t, false)
		f := w.filesA[0][i]
		require.NoError(t, w.bucket.Put(w.ctx, f.Key, bytes.Repeat([]byte("x"), int(f.Bytes))))
		rep := w.verify(Config{})
		require.Equal(t, []Kind{CorruptFile}, kinds(rep))
		require.Equal(t, f.Key, rep.Findings[0].Object)
	}
	w := newWorld(t, false)
	f := w.filesL0[0][0]
	require.NoError(t, w.bucket.Put(w.ctx, f.Key, []byte("x")))
	require.Equal(t, []Kind{CorruptFile}, kinds(w.verify(Config{})))
}

func TestUnreferencedFile(t *testing.T) {
	w := newWorld(t, false)
	orphan := segment.InsertKey(inspecttest.Root, w.c.Coll.ID, w.c.Part, w.b.ID, 1, 123) // revision 1: no current lease or claim
	require.NoError(t, w.bucket.Put(w.ctx, orphan, []byte("a stale owner's file")))
	// A file of the channel's current claim may still be committed, however old: never a
	// finding (garbage collection keeps it too); nor one of a claim newer than what verify read.
	current := segment.InsertKey(inspecttest.Root, w.c.Coll.ID, w.c.Part, w.b.ID, w.ch.Token(), 124)
	require.NoError(t, w.bucket.Put(w.ctx, current, []byte("a sync still committing")))
	newer := segment.InsertKey(inspecttest.Root, w.c.Coll.ID, w.c.Part, w.b.ID, 1<<40, 125)
	require.NoError(t, w.bucket.Put(w.ctx, newer, []byte("a pipeline that claimed after verify's read")))
	// A file of the pipeline before the current claim (the lease's own revision here: this
	// world claimed once) is a finding once past the grace.
	before := segment.InsertKey(inspecttest.Root, w.c.Coll.ID, w.c.Part, w.b.ID, w.ch.Fence.Lease().Revision-1, 126)
	require.NoError(t, w.bucket.Put(w.ctx, before, []byte("a fenced pipeline's file")))
	// Another root's files are not this cluster's.
	require.NoError(t, w.bucket.Put(w.ctx, segment.InsertKey(inspecttest.Root+"/other", 1, 1, 1, 1, 1), []byte("x")))
	later := time.Now().Add(2 * time.Hour)
	for _, c := range []struct {
		name  string
		grace time.Duration
		now   time.Time
		found bool
	}{
		{"younger than grace", time.Hour, time.Now(), false},
		{"older than grace", time.Hour, later, true},
		{"grace 0", 0, time.Now(), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			rep := w.verify(Config{Grace: c.grace, Now: func() time.Time { return c.now }})
			if !c.found {
				require.Empty(t, rep.Findings)
				return
			}
			require.Equal(t, []Kind{UnreferencedFile, UnreferencedFile}, kinds(rep))
			require.ElementsMatch(t, []string{orphan, before}, []string{rep.Findings[0].Object, rep.Findings[1].Object})
			f := rep.Findings[slices.IndexFunc(rep.Findings, func(f Finding) bool { return f.Object == orphan })]
			require.Equal(t, w.b.ID, f.Segment)
			require.Equal(t, w.c.Coll.ID, f.Collection)
			require.Contains(t, f.Detail, "old (grace "+c.grace.String()+")")
		})
	}
}

func TestDeadOwner(t *testing.T) {
	t.Run("lease on a node without a session", func(t *testing.T) {
		w := newWorld(t, false)
		_, err := w.c.Catalog.AssignChannel(w.ctx, w.ch.Name, w.c.Coll.ID, 2)
		require.NoError(t, err)
		rep := w.verify(Config{})
		require.Equal(t, []Kind{DeadOwner}, kinds(rep))
		require.Equal(t, w.ch.Name, rep.Findings[0].Channel)
		require.Contains(t, rep.Findings[0].Detail, "data node 2")
	})
	t.Run("no sessions at all: unknown, not a finding", func(t *testing.T) {
		w := newWorld(t, false)
		_, err := w.kv.Delete(w.ctx, inspecttest.Root+"/sessions/datanode/1")
		require.NoError(t, err)
		rep := w.verify(Config{})
		require.Empty(t, rep.Findings)
		require.Contains(t, rep.Summary.Notes, "no sessions registered (standalone, or every process is down): dead-owner not checked")
	})
}

func TestMetaMismatch(t *testing.T) {
	for _, c := range []struct {
		name    string
		breakIt func(w *world)
		want    []string
	}{
		{"segment rows", func(w *world) { w.a.Rows++; w.ch.Commit(w.a, nil) }, []string{"segment record says 7 rows, its insert files hold 6"}},
		{"segment files", func(w *world) { w.a.Files = 3; w.ch.Commit(w.a, nil) }, []string{"segment record counts 3 files, 4 file records exist"}},
		{"segment bytes", func(w *world) { w.l0.Bytes++; w.ch.Commit(w.l0, nil) }, []string{"bytes, its files have"}},
		{"L0 rows", func(w *world) { w.l0.Rows = 5; w.ch.Commit(w.l0, nil) }, []string{"segment record says 5 rows, its delete files hold 2"}},
		{"file rows", func(w *world) {
			f := w.filesB[0]
			f.Rows = 2
			w.b.Rows = 2
			w.ch.Commit(w.b, []meta.File{f})
		}, []string{"says 2 rows, the file holds 1"}},
		{"file size", func(w *world) {
			f := w.filesB[1]
			f.Bytes++
			w.b.Bytes++
			w.ch.Commit(w.b, []meta.File{f})
		}, []string{"bytes, the object has"}},
		{"file record of another segment", func(w *world) {
			f := w.filesB[1]
			f.SegmentID = w.a.ID
			w.ch.Commit(w.b, []meta.File{f})
		}, []string{"segment record counts 4 files, 5 file records exist", "has the key of a stats file of segment"}},
		{"kind unfit for the level", func(w *world) {
			f := w.filesB[1]
			f.Kind = meta.DeleteFile
			w.ch.Commit(w.b, []meta.File{f})
		}, []string{"is a delete file in an L1 segment"}},
		{"key of another segment", func(w *world) {
			f := w.filesB[1]
			f.Key = w.filesA[0][1].Key
			w.ch.Commit(w.b, []meta.File{f})
		}, []string{"has the key of a stats file of segment"}},
		{"key that is no segment key", func(w *world) {
			f := w.filesB[1]
			f.Key = inspecttest.Root + "/stats/nonsense"
			require.NoError(w.t, w.bucket.Put(w.ctx, f.Key, []byte("x")))
			w.ch.Commit(w.b, []meta.File{f})
		}, []string{"not a segment file key"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t, false)
			c.breakIt(w)
			rep := w.verify(Config{})
			require.NotEmpty(t, rep.Findings)
			var details []string
			for _, f := range rep.Findings {
				if f.Kind == MetaMismatch {
					details = append(details, f.Detail)
				}
			}
			all := strings.Join(details, "\n")
			for _, want := range c.want {
				require.Contains(t, all, want)
			}
		})
	}
}

func TestCheckpointAhead(t *testing.T) {
	t.Run("checkpoint past data no segment holds", func(t *testing.T) {
		w := newWorld(t, true)
		// The checkpoint passes position 7 although its rows were never committed.
		w.ch.Checkpoint(7, w.ts[7])
		rep := w.verify(Config{})
		require.Equal(t, []Kind{CheckpointAhead}, kinds(rep))
		f := rep.Findings[0]
		require.Equal(t, w.ch.Name, f.Channel)
		require.Contains(t, f.Detail, "checkpoint 7 passes 1 messages")
		require.Contains(t, f.Detail, "insert of 2 rows in partition")
		require.Contains(t, f.Detail, "at position 7, committed segments hold up to 5")
		require.Equal(t, 7, rep.Summary.Messages)
	})
	t.Run("a delete no L0 segment of its scope holds", func(t *testing.T) {
		w := newWorld(t, true)
		w.append(w.c.DeleteMessage(w.c.Part, []int64{1}, w.ts[7]+1)) // position 8, scope: one partition
		w.ch.Checkpoint(8, w.ts[7]+1)
		rep := w.verify(Config{})
		require.Equal(t, []Kind{CheckpointAhead}, kinds(rep))
		require.Contains(t, rep.Findings[0].Detail, "passes 2 messages")
	})
	t.Run("an upsert whose delete no L0 segment holds", func(t *testing.T) {
		w := newWorld(t, true)
		// Position 8 upserts key 1: its rows are committed, its delete is not.
		w.append(w.c.UpsertMessage(w.c.Part, []int64{1}, w.ts[7]+1))
		w.ch.SyncInsert(w.b, []int64{7, 8}, w.ts[7], 7, 7)
		w.ch.SyncInsert(w.b, []int64{1}, w.ts[7]+1, 8, 8)
		w.ch.Checkpoint(8, w.ts[7]+1)
		rep := w.verify(Config{})
		// Key 1 is then stored twice with no delete between: a duplicate as well.
		require.Equal(t, []Kind{DuplicateKey, CheckpointAhead}, kinds(rep))
		require.Contains(t, rep.Findings[1].Detail, "upsert of 1 rows in partition")
		require.Contains(t, rep.Findings[1].Detail, "at position 8, committed segments hold up to 0")
	})
	t.Run("an upsert of every partition whose delete the all-partitions L0 segment holds", func(t *testing.T) {
		w := newWorld(t, true)
		// Position 8 upserts key 1 of a collection with a partition key: its delete is held
		// by the L0 segment of every partition, not by one of its rows' partition.
		w.append(w.c.UpsertAllPartitionsMessage(w.c.Part, []int64{1}, w.ts[7]+1))
		w.ch.SyncInsert(w.b, []int64{7, 8}, w.ts[7], 7, 7)
		w.ch.SyncInsert(w.b, []int64{1}, w.ts[7]+1, 8, 8)
		w.ch.SyncDelete(w.l0, []int64{1}, w.ts[7]+1, 8)
		w.ch.Checkpoint(8, w.ts[7]+1)
		require.Empty(t, w.verify(Config{}).Findings)
	})
	t.Run("a segment commit still pending is not a finding", func(t *testing.T) {
		// Between a sync's segment commit and its checkpoint commit the checkpoint trails
		// what segments hold: normal.
		w := newWorld(t, true)
		w.ch.SyncInsert(w.b, []int64{7, 8}, w.ts[7], 7, 7)
		require.Empty(t, w.verify(Config{}).Findings)
	})
	t.Run("checkpoint beyond the end of the channel", func(t *testing.T) {
		w := newWorld(t, true)
		w.ch.Checkpoint(100, w.ts[7])
		rep := w.verify(Config{})
		require.Equal(t, []Kind{CheckpointAhead, LogRewound, CheckpointAhead}, kinds(rep))
		require.Contains(t, rep.Findings[0].Detail, "beyond the channel's last position 7")
		require.Contains(t, rep.Findings[1].Detail, "ends at position 7, below its checkpoint 100")
		require.Contains(t, rep.Findings[2].Detail, "passes 1 messages")
	})
	t.Run("channel missing from the log", func(t *testing.T) {
		w := newWorld(t, true)
		require.NoError(t, w.log.DeleteChannel(w.ctx, w.ch.Name))
		rep := w.verify(Config{})
		require.Equal(t, []Kind{CheckpointAhead}, kinds(rep))
		require.Contains(t, rep.Findings[0].Detail, "does not exist in the log")
	})
	t.Run("a corrupt record is an error", func(t *testing.T) {
		w := newWorld(t, true)
		w.append([]byte("garbage"))
		w.ch.Checkpoint(8, w.ts[7])
		_, err := w.inspector(Config{}).Verify(w.ctx)
		require.ErrorIs(t, err, dml.ErrCorrupt)
		require.ErrorContains(t, err, "position 8")
	})
}

// TestLogRewound: the record at the checkpoint is not the one the data node consumed there (the
// channel lost its tail and reused the position), or was truncated: verify says so.
func TestLogRewound(t *testing.T) {
	t.Run("the record the data node consumed", func(t *testing.T) {
		w := newWorld(t, true)
		m, err := w.log.Get(w.ctx, w.ch.Name, 6)
		require.NoError(t, err)
		w.ch.CheckpointAt(6, w.ts[6], m.Anchor().Time)
		require.Empty(t, w.verify(Config{}).Findings)
	})
	t.Run("another record at the checkpoint's position", func(t *testing.T) {
		w := newWorld(t, true)
		m, err := w.log.Get(w.ctx, w.ch.Name, 6)
		require.NoError(t, err)
		w.ch.CheckpointAt(6, w.ts[6], m.Anchor().Time-1)
		rep := w.verify(Config{})
		require.Equal(t, []Kind{LogRewound}, kinds(rep))
		require.Contains(t, rep.Findings[0].Detail, "lost records and reused their positions")
	})
	t.Run("a segment above the checkpoint holds a record the log no longer has", func(t *testing.T) {
		w := newWorld(t, true)
		m, err := w.log.Get(w.ctx, w.ch.Name, 7)
		require.NoError(t, err)
		w.b.MaxLogTime = m.Anchor().Time
		w.ch.SyncInsert(w.b, []int64{7, 8}, w.ts[7], 7, 7)
		require.Empty(t, w.verify(Config{}).Findings, "the record it committed is there")
		w.b.MaxLogTime = m.Anchor().Time + 1 // as if another record had taken position 7
		w.ch.SyncInsert(w.b, []int64{9}, w.ts[7], 7, 7)
		rep := w.verify(Config{})
		require.Contains(t, kinds(rep), LogRewound)
		require.Contains(t, rep.Findings[len(rep.Findings)-1].Detail, "which segment")
	})
	t.Run("a segment of an earlier release above a rewound one", func(t *testing.T) {
		// The highest segment has no log time (written before Weir kept it): it can only be
		// checked for being there. The highest segment that has one is checked as well.
		w := newWorld(t, true)
		w.append(w.c.InsertMessage(w.c.Part, []int64{9}, w.ts[7]+1)) // position 8
		m, err := w.log.Get(w.ctx, w.ch.Name, 7)
		require.NoError(t, err)
		w.b.MaxLogTime = m.Anchor().Time + 1 // as if another record had taken position 7
		w.ch.SyncInsert(w.b, []int64{7, 8}, w.ts[7], 7, 7)
		old := w.ch.Segment(w.c.Part, meta.L1)
		w.ch.SyncInsert(old, []int64{9}, w.ts[7]+1, 8, 8)
		rep := w.verify(Config{})
		require.Contains(t, kinds(rep), LogRewound)
		i := slices.IndexFunc(rep.Findings, func(f Finding) bool { return f.Kind == LogRewound })
		require.Equal(t, w.b.ID, rep.Findings[i].Segment)
	})
	t.Run("a segment holds a position beyond the channel's end", func(t *testing.T) {
		w := newWorld(t, true)
		w.ch.SyncInsert(w.b, []int64{9}, w.ts[7], 9, 9)
		rep := w.verify(Config{})
		require.Contains(t, kinds(rep), LogRewound)
	})
	t.Run("the record at the checkpoint was truncated", func(t *testing.T) {
		w := newWorld(t, true)
		m, err := w.log.Get(w.ctx, w.ch.Name, 6)
		require.NoError(t, err)
		w.ch.CheckpointAt(6, w.ts[6], m.Anchor().Time)
		require.NoError(t, w.log.Truncate(w.ctx, w.ch.Name, 7))
		rep := w.verify(Config{})
		require.Equal(t, []Kind{LogRewound}, kinds(rep))
		require.Contains(t, rep.Findings[0].Detail, "was truncated")
	})
}

func TestWALScanGivesUpOnATruncatedChannel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l := startWAL(t, ctx)
	require.NoError(t, l.CreateChannel(ctx, "ch"))
	for range 3 {
		_, err := l.Append(ctx, "ch", []wal.Record{{Data: []byte("x")}})
		require.NoError(t, err)
	}
	w := NewWAL(l, 200*time.Millisecond)
	var got []uint64
	require.NoError(t, w.Scan(ctx, "ch", 2, func(pos uint64, _ []byte) error { got = append(got, pos); return nil }))
	require.Equal(t, []uint64{1, 2}, got)
	require.NoError(t, w.Scan(ctx, "ch", 0, func(uint64, []byte) error { t.Fatal("nothing to read"); return nil }))
	stop := errors.New("stop")
	require.ErrorIs(t, w.Scan(ctx, "ch", 3, func(uint64, []byte) error { return stop }), stop)

	require.NoError(t, l.Truncate(ctx, "ch", 3)) // position 3 is kept
	got = nil
	require.NoError(t, w.Scan(ctx, "ch", 2, func(pos uint64, _ []byte) error { got = append(got, pos); return nil }))
	require.Empty(t, got, "positions 1 and 2 were truncated")

	require.NoError(t, l.Truncate(ctx, "ch", 4)) // nothing is kept
	err := w.Scan(ctx, "ch", 3, func(uint64, []byte) error { return nil })
	require.ErrorContains(t, err, "no record within 200ms")
	require.ErrorIs(t, w.Scan(ctx, "missing", 3, func(uint64, []byte) error { return nil }), wal.ErrChannelNotFound)
}

func TestDroppedCollectionsAreSkipped(t *testing.T) {
	w := newWorld(t, false)
	// A second collection, dropped, whose files the collector has begun to delete (files
	// first, then meta); its channel still leased to a node long gone.
	old := w.c.Another("old", 1, false)
	ch := old.Own(old.Coll.VChannels[0], 3)
	seg := ch.Segment(old.Part, meta.L1)
	files := ch.SyncInsert(seg, []int64{1, 2, 3}, w.ts[1], 1, 1)
	ch.SyncInsert(seg, []int64{1, 2, 3}, w.ts[1], 1, 1)
	_, err := old.Catalog.DropCollection(w.ctx, meta.DefaultDatabase, "old")
	require.NoError(t, err)
	require.NoError(t, w.bucket.Delete(w.ctx, files[0].Key))
	rep := w.verify(Config{Grace: time.Nanosecond, Now: func() time.Time { return time.Now().Add(time.Hour) }})
	require.Empty(t, rep.Findings, "its remaining files are referenced; nothing else of it is checked")
	require.Equal(t, 1, rep.Summary.Collections)
	require.Equal(t, 1, rep.Summary.Channels)
	require.Equal(t, 8+3, rep.Summary.Objects)

	rows, err := w.inspector(Config{}).Channels(w.ctx)
	require.NoError(t, err)
	require.Len(t, rows, 2)
	require.Equal(t, meta.Dropped, rows[1].CollectionState)
	require.Zero(t, rows[1].Node, "the drop released the channel's lease")
	require.Nil(t, rows[1].OwnerLive)
}

// failingBucket fails the calls its fields name.
type failingBucket struct {
	objstore.BucketReader
	stat, get, list bool
}

var errStorage = errors.New("storage down")

func (b failingBucket) Stat(ctx context.Context, key string) (objstore.ObjectInfo, error) {
	if b.stat {
		return objstore.ObjectInfo{}, errStorage
	}
	return b.BucketReader.Stat(ctx, key)
}

func (b failingBucket) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	if b.get {
		return nil, errStorage
	}
	return b.BucketReader.GetRange(ctx, key, off, n)
}

func (b failingBucket) List(ctx context.Context, prefix string, fn func(objstore.ObjectInfo) error) error {
	if b.list {
		return errStorage
	}
	return b.BucketReader.List(ctx, prefix, fn)
}

func TestStorageErrorsAreErrorsNotFindings(t *testing.T) {
	w := newWorld(t, false)
	for _, b := range []failingBucket{{stat: true}, {get: true}, {list: true}} {
		b.BucketReader = w.bucket
		in, err := New(w.kv, b, nil, Config{Root: inspecttest.Root, Grace: time.Hour}, nil)
		require.NoError(t, err)
		_, err = in.Verify(w.ctx)
		require.ErrorIs(t, err, errStorage)
	}
}
