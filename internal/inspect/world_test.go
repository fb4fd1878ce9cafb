package inspect

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/weir-db/weir/internal/dml"
	"github.com/weir-db/weir/internal/inspect/inspecttest"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/metastore"
	"github.com/weir-db/weir/internal/objstore"
	"github.com/weir-db/weir/internal/wal"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// world is a consistent cluster state, built as a data node builds it, that each test breaks
// in one way. Channel positions (and, with a WAL, the records at them):
//
//	1 insert 1,2,3 → segment A      4 delete 5 (upsert) → L0
//	2 insert 4,5,6 → segment A      5 insert 5 (upsert) → segment B
//	3 delete 2     → L0             6 flush marker; checkpoint 6
//	7 insert 7,8 (buffered, past the checkpoint: not yet in any segment)
type world struct {
	t      *testing.T
	ctx    context.Context
	kv     *metastore.Memory
	bucket *objstore.Memory
	c      *inspecttest.Cluster
	ch     *inspecttest.Channel
	log    *wal.Log // nil without a WAL
	ts     [8]uint64
	// a, b (L1) and l0 are the committed segments; files* their files by sync.
	a, b, l0 *meta.Segment
	filesA   [][]meta.File
	filesB   []meta.File
	filesL0  [][]meta.File
}

const node = 1

func newWorld(t *testing.T, withWAL bool) *world {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	w := &world{t: t, ctx: ctx, kv: metastore.NewMemory(), bucket: objstore.NewMemory()}
	t.Cleanup(func() { w.kv.Close() })
	w.c = inspecttest.New(ctx, t, w.kv, w.bucket, 1)
	w.c.RegisterDataNode(node)
	name := w.c.Coll.VChannels[0]
	for i := range w.ts {
		w.ts[i] = inspecttest.Timestamp(uint64(i) * 10)
	}
	if withWAL {
		w.log = startWAL(t, ctx)
		require.NoError(t, w.log.CreateChannel(ctx, name))
		p := w.c.Part
		w.append(w.c.InsertMessage(p, []int64{1, 2, 3}, w.ts[1]))
		w.append(w.c.InsertMessage(p, []int64{4, 5, 6}, w.ts[2]))
		w.append(w.c.DeleteMessage(dml.AllPartitions, []int64{2}, w.ts[3]))
		w.append(w.c.DeleteMessage(dml.AllPartitions, []int64{5}, w.ts[4]))
		w.append(w.c.InsertMessage(p, []int64{5}, w.ts[5]))
		w.append(w.c.FlushMessage(w.ts[6]))
		w.append(w.c.InsertMessage(p, []int64{7, 8}, w.ts[7]))
	}
	w.ch = w.c.Own(name, node)
	w.a = w.ch.Segment(w.c.Part, meta.L1)
	w.l0 = w.ch.Segment(dml.AllPartitions, meta.L0)
	w.b = w.ch.Segment(w.c.Part, meta.L1)
	w.filesA = append(w.filesA, w.ch.SyncInsert(w.a, []int64{1, 2, 3}, w.ts[1], 1, 1))
	w.a.State = meta.Flushed
	w.filesA = append(w.filesA, w.ch.SyncInsert(w.a, []int64{4, 5, 6}, w.ts[2], 2, 2))
	w.filesL0 = append(w.filesL0, w.ch.SyncDelete(w.l0, []int64{2}, w.ts[3], 3))
	w.filesL0 = append(w.filesL0, w.ch.SyncDelete(w.l0, []int64{5}, w.ts[4], 4))
	w.filesB = w.ch.SyncInsert(w.b, []int64{5}, w.ts[5], 5, 5)
	w.ch.Checkpoint(6, w.ts[6])
	return w
}

func (w *world) append(data []byte) uint64 {
	w.t.Helper()
	pos, err := w.log.Append(w.ctx, w.c.Coll.VChannels[0], []wal.Record{{Data: data}})
	require.NoError(w.t, err)
	return pos[0]
}

func startWAL(t *testing.T, ctx context.Context) *wal.Log {
	t.Helper()
	srv, err := wal.StartEmbedded(wal.EmbeddedConfig{Dir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown)
	l, err := wal.Open(ctx, srv.ClientURL(), wal.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	return l
}

// inspector returns an Inspector over the world with grace 1h and a clock now.
func (w *world) inspector(cfg Config) *Inspector {
	w.t.Helper()
	if cfg.Root == "" {
		cfg.Root = inspecttest.Root
	}
	var log Log
	if w.log != nil {
		log = NewWAL(w.log, 0)
	}
	in, err := New(w.kv, w.bucket, log, cfg, slog.New(slog.DiscardHandler))
	require.NoError(w.t, err)
	return in
}

func (w *world) verify(cfg Config) *Report {
	w.t.Helper()
	if cfg.Grace == 0 && cfg.Now == nil {
		cfg.Grace = time.Hour
	}
	rep, err := w.inspector(cfg).Verify(w.ctx)
	require.NoError(w.t, err)
	return rep
}

func kinds(r *Report) []Kind {
	out := []Kind{}
	for _, f := range r.Findings {
		out = append(out, f.Kind)
	}
	return out
}
