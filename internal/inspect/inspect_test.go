package inspect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/dml"
	"github.com/weir-db/weir/internal/inspect/inspecttest"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/metastore"
	"github.com/weir-db/weir/internal/objstore"
	"github.com/weir-db/weir/internal/tso"
)

func TestChannels(t *testing.T) {
	w := newWorld(t, true)
	rows, err := w.inspector(Config{}).Channels(w.ctx)
	require.NoError(t, err)
	require.Len(t, rows, 1)
	r := rows[0]
	require.Equal(t, w.ch.Name, r.Channel)
	require.Equal(t, w.c.Coll.ID, r.CollectionID)
	require.Equal(t, "books", r.Collection)
	require.Equal(t, int64(node), r.Node)
	require.Equal(t, w.ch.Fence.Lease().Revision, r.Lease)
	require.False(t, r.Legacy)
	require.True(t, *r.OwnerLive)
	require.Equal(t, uint64(6), r.Checkpoint)
	require.Equal(t, tso.Physical(w.ts[6]), r.CheckpointTime)
	require.Equal(t, uint64(7), *r.LastPosition)
	require.Equal(t, int64(1), *r.Lag, "position 7 is past the checkpoint")

	// Without a log the lag is unknown; a legacy lease on a node without a session shows as
	// not live; a lease no collection record names is still listed.
	w.log = nil
	_, err = w.c.Catalog.AssignChannelLegacy(w.ctx, w.ch.Name, w.c.Coll.ID, 2)
	require.NoError(t, err)
	_, err = w.c.Catalog.AssignChannel(w.ctx, "dml_999_v0", 999, node)
	require.NoError(t, err)
	rows, err = w.inspector(Config{}).Channels(w.ctx)
	require.NoError(t, err)
	require.Len(t, rows, 2)
	require.Nil(t, rows[0].LastPosition)
	require.Nil(t, rows[0].Lag)
	require.True(t, rows[0].Legacy)
	require.False(t, *rows[0].OwnerLive)
	require.Equal(t, ChannelRow{Channel: "dml_999_v0", CollectionID: 999, Node: node, Lease: rows[1].Lease, OwnerLive: rows[1].OwnerLive}, rows[1])

	var out bytes.Buffer
	require.NoError(t, WriteTable(&out, ChannelTable(rows)))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 3)
	require.Equal(t, []string{"CHANNEL", "COLLECTION", "NODE", "LEASE", "LEGACY", "LIVE", "CHECKPOINT", "CHECKPOINT_TIME", "LAST", "LAG"}, strings.Fields(lines[0]))
	f := strings.Fields(lines[1])
	require.Equal(t, []string{w.ch.Name, "books(1)", "2"}, f[:3])
	require.Equal(t, []string{"true", "no", "6"}, f[4:7])
	require.Equal(t, []string{"-", "-"}, f[8:])
	require.Equal(t, []string{"dml_999_v0", "999", "1"}, strings.Fields(lines[2])[:3])
}

func TestChannelOfAMissingStream(t *testing.T) {
	w := newWorld(t, true)
	require.NoError(t, w.log.DeleteChannel(w.ctx, w.ch.Name))
	rows, err := w.inspector(Config{}).Channels(w.ctx)
	require.NoError(t, err)
	require.Nil(t, rows[0].Lag)
}

func TestSegmentsAndCheckpoints(t *testing.T) {
	w := newWorld(t, false)
	in := w.inspector(Config{})
	segs, err := in.Segments(w.ctx)
	require.NoError(t, err)
	require.Len(t, segs, 3)
	a := segs[0]
	require.Equal(t, SegmentRow{CollectionID: w.c.Coll.ID, PartitionID: w.c.Part, Channel: w.ch.Name, ID: w.a.ID, Level: meta.L1,
		State: meta.Flushed, Rows: 6, Files: 4, Bytes: w.a.Bytes, MaxPos: 2, Lease: w.ch.Fence.Lease().Revision}, a)
	require.Equal(t, meta.L0, segs[1].Level)
	require.Equal(t, dml.AllPartitions, segs[1].PartitionID)
	require.Equal(t, meta.Growing, segs[2].State)

	cps, err := in.Checkpoints(w.ctx)
	require.NoError(t, err)
	require.Len(t, cps, 1)
	require.Equal(t, uint64(6), cps[0].Position)
	require.Equal(t, w.ts[6], cps[0].Timestamp)
	require.Equal(t, tso.Physical(w.ts[6]), cps[0].Time)
	require.WithinDuration(t, time.Now(), cps[0].UpdatedAt, time.Minute)

	var out bytes.Buffer
	require.NoError(t, WriteTable(&out, SegmentTable(segs)))
	require.Contains(t, out.String(), "COLLECTION  PARTITION  CHANNEL")
	out.Reset()
	require.NoError(t, WriteTable(&out, CheckpointTable(cps)))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	fields := strings.Fields(lines[1])
	require.Equal(t, []string{w.ch.Name, "6", strconv.FormatUint(w.ts[6], 10), tso.Physical(w.ts[6]).Format(timeLayout)}, fields[:4])
}

func TestChannelWithoutCheckpoint(t *testing.T) {
	ctx := context.Background()
	kv := metastore.NewMemory()
	defer kv.Close()
	c := inspecttest.New(ctx, t, kv, objstore.NewMemory(), 2)
	in, err := New(kv, nil, nil, Config{Root: inspecttest.Root}, nil)
	require.NoError(t, err)
	cps, err := in.Checkpoints(ctx)
	require.NoError(t, err)
	require.Equal(t, []CheckpointRow{{Channel: c.Coll.VChannels[0]}, {Channel: c.Coll.VChannels[1]}}, cps)
	var out bytes.Buffer
	_, err = in.Run(ctx, "channels", &out, false)
	require.NoError(t, err)
	require.Equal(t, []string{c.Coll.VChannels[1], "books(1)", "-", "-", "-", "-", "0", "-", "-", "-"}, strings.Fields(strings.Split(out.String(), "\n")[2]))
	_, err = in.Verify(ctx)
	require.ErrorIs(t, err, ErrNoBucket)
}

func TestRun(t *testing.T) {
	w := newWorld(t, true)
	in := w.inspector(Config{Grace: time.Hour})
	for _, cmd := range []string{"channels", "segments", "checkpoints"} {
		t.Run(cmd, func(t *testing.T) {
			var out bytes.Buffer
			n, err := in.Run(w.ctx, cmd, &out, true)
			require.NoError(t, err)
			require.Zero(t, n)
			var rows []map[string]any
			require.NoError(t, json.Unmarshal(out.Bytes(), &rows), out.String())
			require.NotEmpty(t, rows)
			out.Reset()
			_, err = in.Run(w.ctx, cmd, &out, false)
			require.NoError(t, err)
			require.Greater(t, strings.Count(out.String(), "\n"), 1)
		})
	}
	t.Run("verify", func(t *testing.T) {
		require.NoError(t, w.bucket.Delete(w.ctx, w.filesB[0].Key))
		var out bytes.Buffer
		n, err := in.Run(w.ctx, "verify", &out, true)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		var rep struct {
			Findings []Finding `json:"findings"`
			Summary  struct {
				Findings int            `json:"findings"`
				ByKind   map[string]int `json:"by_kind"`
			} `json:"summary"`
		}
		require.NoError(t, json.Unmarshal(out.Bytes(), &rep), out.String())
		require.Equal(t, MissingFile, rep.Findings[0].Kind)
		require.Equal(t, 1, rep.Summary.ByKind["missing-file"])

		out.Reset()
		n, err = in.Run(w.ctx, "verify", &out, false)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		require.Len(t, lines, 3)
		require.Equal(t, []string{"KIND", "COLLECTION", "CHANNEL", "SEGMENT", "OBJECT", "DETAIL"}, strings.Fields(lines[0]))
		require.True(t, strings.HasPrefix(lines[1], "missing-file"))
		require.Contains(t, lines[1], w.filesB[0].Key)
		require.True(t, strings.HasPrefix(lines[2], "verify: 1 findings (duplicate-key 0, missing-file 1,"), lines[2])
	})
	t.Run("unknown", func(t *testing.T) {
		_, err := in.Run(w.ctx, "nope", &bytes.Buffer{}, false)
		require.ErrorIs(t, err, ErrUnknownCommand)
	})
}

func TestVerifyTextWithNotesEndsWithTheSummary(t *testing.T) {
	w := newWorld(t, false)
	_, err := w.c.Catalog.AssignChannel(w.ctx, w.ch.Name, w.c.Coll.ID, 7)
	require.NoError(t, err)
	var out bytes.Buffer
	_, err = w.inspector(Config{Grace: time.Hour}).Run(w.ctx, "verify", &out, false)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Equal(t, "note: no DML channel log (--nats): checkpoint-ahead not checked", lines[len(lines)-2])
	require.True(t, strings.HasPrefix(lines[len(lines)-1], "verify: 1 findings"))
	require.True(t, strings.HasPrefix(lines[1], "dead-owner"))
	require.Equal(t, "-", strings.Fields(lines[1])[3], "no segment")
}

// recording counts the calls that reach the metastore, to show inspect only reads.
type recording struct {
	Reader
	calls int
}

func (r *recording) Get(ctx context.Context, key string) (metastore.KV, error) {
	r.calls++
	return r.Reader.Get(ctx, key)
}

func (r *recording) Range(ctx context.Context, prefix string, opts ...metastore.RangeOption) ([]metastore.KV, int64, error) {
	r.calls++
	return r.Reader.Range(ctx, prefix, opts...)
}

func TestInspectNeverWrites(t *testing.T) {
	w := newWorld(t, true)
	w.ch.Checkpoint(7, w.ts[7]) // a finding, so every check runs to the end
	rev, err := w.kv.Revision(w.ctx)
	require.NoError(t, err)
	objects := listAll(t, w.bucket)
	last, err := w.log.LastPosition(w.ctx, w.ch.Name)
	require.NoError(t, err)

	rec := &recording{Reader: w.kv}
	in, err := New(rec, w.bucket, NewWAL(w.log, 0), Config{Root: inspecttest.Root}, nil)
	require.NoError(t, err)
	for _, cmd := range Commands {
		_, err := in.Run(w.ctx, cmd, &bytes.Buffer{}, false)
		require.NoError(t, err)
	}
	require.Positive(t, rec.calls)
	after, err := w.kv.Revision(w.ctx)
	require.NoError(t, err)
	require.Equal(t, rev, after, "the metastore revision did not move")
	require.Equal(t, objects, listAll(t, w.bucket))
	afterLast, err := w.log.LastPosition(w.ctx, w.ch.Name)
	require.NoError(t, err)
	require.Equal(t, last, afterLast)

	_, err = readOnly{w.kv}.Txn(w.ctx, nil, nil)
	require.ErrorIs(t, err, ErrReadOnly)
}

func listAll(t *testing.T, b objstore.BucketReader) map[string]int64 {
	out := map[string]int64{}
	require.NoError(t, b.List(context.Background(), "", func(o objstore.ObjectInfo) error {
		out[o.Key] = o.Size
		return nil
	}))
	return out
}

func TestConfig(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "root path must be set"},
		{Config{Root: "a//b"}, "invalid key root"},
		{Config{Root: "weir", Grace: -time.Second}, "must not be negative"},
	} {
		_, err := New(metastore.NewMemory(), nil, nil, c.cfg, nil)
		require.ErrorContains(t, err, c.want)
	}
}

func TestMetastoreErrors(t *testing.T) {
	kv := metastore.NewMemory()
	require.NoError(t, kv.Close())
	in, err := New(kv, objstore.NewMemory(), nil, Config{Root: "weir"}, nil)
	require.NoError(t, err)
	ctx := context.Background()
	_, err = in.Channels(ctx)
	require.ErrorIs(t, err, metastore.ErrClosed)
	_, err = in.Segments(ctx)
	require.ErrorIs(t, err, metastore.ErrClosed)
	_, err = in.Checkpoints(ctx)
	require.ErrorIs(t, err, metastore.ErrClosed)
	_, err = in.Verify(ctx)
	require.ErrorIs(t, err, metastore.ErrClosed)
	for _, cmd := range Commands {
		_, err = in.Run(ctx, cmd, &bytes.Buffer{}, false)
		require.ErrorIs(t, err, metastore.ErrClosed)
	}
}

// failingReader fails ranges under one prefix, to reach the later reads of load.
type failingReader struct {
	Reader
	prefix string
}

func (f failingReader) Range(ctx context.Context, prefix string, opts ...metastore.RangeOption) ([]metastore.KV, int64, error) {
	if strings.HasPrefix(prefix, f.prefix) {
		return nil, 0, errors.New("unavailable")
	}
	return f.Reader.Range(ctx, prefix, opts...)
}

func TestLoadErrors(t *testing.T) {
	w := newWorld(t, false)
	for _, p := range []string{"weir/meta/channels/", "weir/sessions/"} {
		in, err := New(failingReader{Reader: w.kv, prefix: p}, w.bucket, nil, Config{Root: "weir"}, nil)
		require.NoError(t, err)
		_, err = in.Segments(w.ctx)
		require.ErrorContains(t, err, "unavailable")
	}
}

// failingLog fails LastPosition, as a NATS server that stopped answering would.
type failingLog struct{ Log }

func (failingLog) LastPosition(context.Context, string) (uint64, error) {
	return 0, errors.New("nats down")
}

func TestLogErrors(t *testing.T) {
	w := newWorld(t, true)
	in, err := New(w.kv, w.bucket, failingLog{}, Config{Root: "weir"}, nil)
	require.NoError(t, err)
	_, err = in.Channels(w.ctx)
	require.ErrorContains(t, err, "nats down")
	_, err = in.Verify(w.ctx)
	require.ErrorContains(t, err, "nats down")
}
