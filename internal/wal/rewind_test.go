package wal

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/wal/waltest"
)

// lostTail is a server whose channel "ch" held positions 1..10 and lost 6..10, as a crash
// under JetStream's default sync_interval loses what it had not fsynced. It returns the
// server (restarted on the same store and port), a Log on it, and the anchors of the ten
// records as they were first stored.
func lostTail(t *testing.T) (*Embedded, *Log, []Anchor) {
	t.Helper()
	cfg, e, l := tenRecords(t)
	r, err := l.Read(testCtx(t), "ch", 1)
	require.NoError(t, err)
	var anchors []Anchor
	for _, m := range readN(t, r, 1, 10) {
		anchors = append(anchors, m.Anchor())
	}
	require.NoError(t, r.Close())
	e.Shutdown()
	require.NoError(t, waltest.LoseTail(cfg.Dir, "ch", 5))
	e = restart(t, cfg)
	last, err := lastPosition(t, l)
	require.NoError(t, err)
	require.Equal(t, Position(5), last, "the server lost positions 6..10")
	return e, l, anchors
}

// tenRecords starts a server with channel "ch" holding records a-0..a-9 at positions 1..10.
func tenRecords(t *testing.T) (EmbeddedConfig, *Embedded, *Log) {
	t.Helper()
	cfg := EmbeddedConfig{Dir: t.TempDir(), Logger: testLogger(t)}
	e, err := StartEmbedded(cfg)
	require.NoError(t, err)
	cfg.Port = portOf(t, e.ClientURL())
	l := openLog(t, e.ClientURL(), Config{AckTimeout: 2 * time.Second, Logger: testLogger(t)})
	create(t, l, "ch")
	_, err = l.Append(testCtx(t), "ch", records("a", 10, true))
	require.NoError(t, err)
	return cfg, e, l
}

// restart starts the server of cfg again, for the test to keep until it ends.
func restart(t *testing.T, cfg EmbeddedConfig) *Embedded {
	t.Helper()
	e, err := StartEmbedded(cfg)
	require.NoError(t, err)
	t.Cleanup(e.Shutdown)
	return e
}

func lastPosition(t *testing.T, l *Log) (Position, error) {
	var last Position
	var err error
	require.Eventually(t, func() bool {
		// Each try bounded: a request sent while the connection comes back can go unanswered.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		last, err = l.LastPosition(ctx, "ch")
		return err == nil
	}, 20*time.Second, 20*time.Millisecond)
	return last, err
}

// TestFollowRefusesALogThatMovedBackward: a consumer that read up to position 10 resumes after
// the server lost positions 6..10. Before new records arrive the channel ends below what was
// read; after, positions 6..10 hold other records. Either way Follow must fail with ErrRewound
// instead of resuming at 11 and skipping the new records at 6..10 (issue 11, item 2).
func TestFollowRefusesALogThatMovedBackward(t *testing.T) {
	_, l, anchors := lostTail(t)
	_, err := l.Follow(testCtx(t), "ch", anchors[9])
	require.ErrorIs(t, err, ErrRewound, "the channel ends at 5, below 10")

	pos, err := l.Append(testCtx(t), "ch", records("b", 7, true))
	require.NoError(t, err)
	require.Equal(t, seq(6, 12), pos, "new records reuse the lost positions")
	r, err := l.Follow(testCtx(t), "ch", anchors[9])
	require.NoError(t, err)
	defer r.Close()
	_, err = r.Next(testCtx(t))
	require.ErrorIs(t, err, ErrRewound, "position 10 holds another record")

	// An anchor the channel still holds resumes right after it.
	r2, err := l.Follow(testCtx(t), "ch", anchors[4])
	require.NoError(t, err)
	defer r2.Close()
	m := readN(t, r2, 6, 1)[0]
	require.Equal(t, "b-0", string(m.Data))
}

// TestReaderRefusesALogThatMovedBackwardUnderIt: the same loss while a Reader is open. It
// recreates its consumer when the server comes back, and must notice then.
func TestReaderRefusesALogThatMovedBackwardUnderIt(t *testing.T) {
	cfg, e, l := tenRecords(t)
	r, err := l.Follow(testCtx(t), "ch", Anchor{})
	require.NoError(t, err)
	defer r.Close()
	readN(t, r, 1, 10)
	e.Shutdown()
	require.NoError(t, waltest.LoseTail(cfg.Dir, "ch", 5))
	restart(t, cfg)
	_, err = r.Next(testCtx(t))
	require.ErrorIs(t, err, ErrRewound)
}

// TestFollowStartsExactlyAfterItsAnchor: Follow never skips ahead: an anchor that was truncated
// away is ErrTruncated, not a silent start at the first record kept.
func TestFollowStartsExactlyAfterItsAnchor(t *testing.T) {
	_, l := newLog(t)
	create(t, l, "ch")
	_, err := l.Append(testCtx(t), "ch", records("a", 10, true))
	require.NoError(t, err)
	r, err := l.Follow(testCtx(t), "ch", Anchor{Pos: 3})
	require.NoError(t, err)
	readN(t, r, 4, 7)
	require.NoError(t, r.Close())

	require.NoError(t, l.Truncate(testCtx(t), "ch", 6))
	r, err = l.Follow(testCtx(t), "ch", Anchor{Pos: 3})
	require.NoError(t, err)
	defer r.Close()
	_, err = r.Next(testCtx(t))
	require.ErrorIs(t, err, ErrTruncated)
	r2, err := l.Follow(testCtx(t), "ch", Anchor{})
	require.NoError(t, err)
	defer r2.Close()
	_, err = r2.Next(testCtx(t))
	require.ErrorIs(t, err, ErrTruncated, "from the start, while the start was truncated")
}

// TestGetTellsARecordFromItsReplacement: Get returns the record at a position with the time it
// was stored, so a record that replaced a lost one is told from it (what weir inspect checks a
// checkpoint with).
func TestGetTellsARecordFromItsReplacement(t *testing.T) {
	_, l, anchors := lostTail(t)
	m, err := l.Get(testCtx(t), "ch", 5)
	require.NoError(t, err)
	require.Equal(t, anchors[4], m.Anchor(), "position 5 survived")
	require.Equal(t, "a-4", string(m.Data))
	_, err = l.Get(testCtx(t), "ch", 6)
	require.ErrorIs(t, err, ErrOutOfRange)
	_, err = l.Append(testCtx(t), "ch", records("b", 1, true))
	require.NoError(t, err)
	m, err = l.Get(testCtx(t), "ch", 6)
	require.NoError(t, err)
	require.NotEqual(t, anchors[5], m.Anchor(), "a new record at a lost position")
	require.NoError(t, l.Truncate(testCtx(t), "ch", 3))
	_, err = l.Get(testCtx(t), "ch", 2)
	require.ErrorIs(t, err, ErrTruncated)
}
