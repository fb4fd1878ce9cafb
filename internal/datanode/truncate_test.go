package datanode

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/wal"
)

// truncating starts a node on the collection's first channel that truncates after every sync
// and sees every record as old (its clock runs an hour ahead).
func truncating(e *env) (string, *Node) {
	e.t.Helper()
	ch := e.coll.VChannels[0]
	e.assign(ch, 1)
	cfg := testConfig(1)
	cfg.TruncateInterval = time.Nanosecond
	cfg.LogKeep = time.Nanosecond
	n := e.node(cfg)
	n.now = func() time.Time { return time.Now().Add(time.Hour) }
	require.NoError(e.t, n.Watch(e.ctx, ch))
	return ch, n
}

func (e *env) info(ch string) wal.ChannelInfo {
	e.t.Helper()
	info, err := e.log.Info(e.ctx, ch)
	require.NoError(e.t, err)
	return info
}

// TestLogIsTruncatedBelowTheCheckpointAndHolds: the owner truncates its channel's log below its
// checkpoint (keeping the checkpoint's record, which the next pipeline checks) and below every
// reader's hold that has not expired (issue 11, item 6).
func TestLogIsTruncatedBelowTheCheckpointAndHolds(t *testing.T) {
	e := newEnv(t, envOpts{})
	ch, n := truncating(e)
	hold := meta.Hold{Reader: "querynode-1", Position: 3, ExpiresAt: time.Now().Add(3 * time.Hour)}
	require.NoError(t, e.catalog.PutHold(e.ctx, ch, hold))
	expired := meta.Hold{Reader: "querynode-2", Position: 2, ExpiresAt: time.Now().Add(30 * time.Minute)} // before the node's clock
	require.NoError(t, e.catalog.PutHold(e.ctx, ch, expired))
	for range 10 {
		e.insert(ch, meta.DefaultPartition, 20)
	}
	cp := e.waitCheckpoint(ch, e.flush(ch))
	e.insert(ch, meta.DefaultPartition, 20) // another sync, another truncation
	e.waitCheckpoint(ch, e.flush(ch))
	require.Eventually(t, func() bool { return e.info(ch).First == 3 }, 10*time.Second, 5*time.Millisecond,
		"truncated up to the live hold at 3, the expired one at 2 ignored")
	require.Positive(t, testutil.ToFloat64(n.m.truncations))

	require.NoError(t, e.catalog.DeleteHold(e.ctx, ch, hold.Reader))
	last := e.insert(ch, meta.DefaultPartition, 20)
	cp = e.waitCheckpoint(ch, e.flush(ch))
	require.Greater(t, cp.Position, last)
	e.insert(ch, meta.DefaultPartition, 20)
	cp2 := e.waitCheckpoint(ch, e.flush(ch))
	require.Eventually(t, func() bool { return e.info(ch).First > 3 }, 10*time.Second, 5*time.Millisecond)
	first := e.info(ch).First
	require.LessOrEqual(t, first, cp2.Position, "the checkpoint's record stays")

	// A new pipeline resumes after the truncation, checking the checkpoint's record.
	n.Close()
	n2 := e.node(testConfig(1))
	require.NoError(t, n2.Watch(e.ctx, ch))
	e.insert(ch, meta.DefaultPartition, 5)
	e.waitCheckpoint(ch, e.flush(ch))
	require.NoError(t, n2.Err(ch))
	e.requireExactlyOnce()
}

// TestLogStaysBoundedUnderALongIngest: a long ingest into one channel, syncing every few
// messages: the log holds a bounded number of records however many are appended. The ingest
// waits for the node at every sample, as a steady state would: the node's own pace is not what
// this measures.
func TestLogStaysBoundedUnderALongIngest(t *testing.T) {
	e := newEnv(t, envOpts{})
	ch, _ := truncating(e)
	const appends, sample = 1000, 100
	var most uint64
	for i := 1; i <= appends; i++ {
		pos := e.insert(ch, meta.DefaultPartition, 4)
		if i%sample == 0 {
			e.waitCheckpoint(ch, pos-sample/2)
			most = max(most, e.info(ch).Records)
		}
	}
	e.waitCheckpoint(ch, e.flush(ch))
	info := e.info(ch)
	t.Logf("appended %d records; the log held at most %d at the samples, %d at the end (%d bytes)", info.Last, most, info.Records, info.Bytes)
	require.Less(t, most, uint64(2*sample), "the log grew with the ingest")
	e.requireExactlyOnce()
}

// TestLogKeepsWhatTheServerMayStillDeduplicate: records stored within the channel's duplicate
// window are never truncated, whatever log-keep says: after a server restart the server knows a
// retried append by its record ID only while the first copy is still in the log.
func TestLogKeepsWhatTheServerMayStillDeduplicate(t *testing.T) {
	e := newEnv(t, envOpts{})
	ch := e.coll.VChannels[0]
	e.assign(ch, 1)
	cfg := testConfig(1)
	cfg.TruncateInterval, cfg.LogKeep = time.Nanosecond, time.Nanosecond
	n := e.node(cfg)
	require.NoError(t, n.Watch(e.ctx, ch))
	for range 5 {
		e.insert(ch, meta.DefaultPartition, 20)
		e.waitCheckpoint(ch, e.flush(ch))
	}
	require.Equal(t, uint64(1), e.info(ch).First, "everything is within the two-minute duplicate window")
}
