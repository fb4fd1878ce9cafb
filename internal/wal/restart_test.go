package wal

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRestartKeepsData restarts the server on the same Dir and port under
// both durability settings: the data, the positions and the dedup state
// survive, and one Log and one Reader ride through the restart.
func TestRestartKeepsData(t *testing.T) {
	for _, sync := range []Durability{SyncAlways, SyncInterval} {
		t.Run(string(sync), func(t *testing.T) {
			dir := t.TempDir()
			cfg := EmbeddedConfig{Dir: dir, Sync: sync, Logger: testLogger(t)}
			e, err := StartEmbedded(cfg)
			require.NoError(t, err)
			cfg.Port = portOf(t, e.ClientURL())

			l := openLog(t, e.ClientURL(), Config{AckTimeout: 2 * time.Second, Logger: testLogger(t)})
			ctx := testCtx(t)
			create(t, l, "ch")
			first := records("a", 50, true)
			pos, err := l.Append(ctx, "ch", first)
			require.NoError(t, err)
			require.Equal(t, seq(1, 50), pos)

			r, err := l.Read(ctx, "ch", 0)
			require.NoError(t, err)
			defer func() { require.NoError(t, r.Close()) }()
			readN(t, r, 1, 20)

			e.Shutdown()

			// With the server down an Append fails within its timeout.
			start := time.Now()
			_, err = l.Append(ctx, "ch", records("down", 1, true))
			require.Error(t, err)
			require.Less(t, time.Since(start), 3*time.Second)

			e, err = StartEmbedded(cfg)
			require.NoError(t, err)
			defer e.Shutdown()

			// The same Log reconnects; the retried IDs are still known.
			var again []Position
			require.Eventually(t, func() bool {
				again, err = l.Append(ctx, "ch", first[40:])
				return err == nil
			}, 10*time.Second, 50*time.Millisecond, "append after restart: %v", err)
			require.Equal(t, seq(41, 50), again)

			pos, err = l.Append(ctx, "ch", records("b", 10, true))
			require.NoError(t, err)
			require.Equal(t, seq(51, 60), pos)

			// The Reader continues at 21 with nothing skipped or repeated.
			msgs := readN(t, r, 21, 40)
			require.Equal(t, "a-20", string(msgs[0].Data))
			require.Equal(t, "b-9", string(msgs[39].Data))

			// A new Log reads everything back.
			l2 := openLog(t, e.ClientURL(), Config{})
			last, err := l2.LastPosition(ctx, "ch")
			require.NoError(t, err)
			require.Equal(t, Position(60), last)
			r2, err := l2.Read(ctx, "ch", 1)
			require.NoError(t, err)
			defer func() { require.NoError(t, r2.Close()) }()
			all := readN(t, r2, 1, 60)
			for i, m := range all[:50] {
				require.Equal(t, string(first[i].Data), string(m.Data))
			}
			ctxShort, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancel()
			_, err = r2.Next(ctxShort)
			require.ErrorIs(t, err, context.DeadlineExceeded)

			// Close the readers while the server runs, so they delete
			// their consumers.
			require.NoError(t, r.Close())
			require.NoError(t, r2.Close())
		})
	}
}

// TestReaderFollowsThroughRestart keeps a Next waiting while the server
// restarts, and makes the Reader recreate its consumer while the server is
// down: it delivers every position once, in order.
func TestReaderFollowsThroughRestart(t *testing.T) {
	cfg := EmbeddedConfig{Dir: t.TempDir(), Logger: testLogger(t)}
	e, err := StartEmbedded(cfg)
	require.NoError(t, err)
	cfg.Port = portOf(t, e.ClientURL())
	l := openLog(t, e.ClientURL(), Config{AckTimeout: time.Second, Logger: testLogger(t)})
	ctx := testCtx(t)
	create(t, l, "ch")
	_, err = l.Append(ctx, "ch", records("a", 10, true))
	require.NoError(t, err)

	r, err := l.Read(ctx, "ch", 0)
	require.NoError(t, err)
	defer func() { require.NoError(t, r.Close()) }()
	readN(t, r, 1, 10)

	type result struct {
		msgs []Message
		err  error
	}
	done := make(chan result, 1)
	go func() {
		var res result
		for range 20 {
			m, err := r.Next(ctx)
			if err != nil {
				res.err = err
				break
			}
			res.msgs = append(res.msgs, m)
		}
		done <- res
	}()

	e.Shutdown()
	// As if the consumer failed while the server is down: Next has to
	// recreate it and retries until the server is back.
	r.forget()
	e, err = StartEmbedded(cfg)
	require.NoError(t, err)
	defer e.Shutdown()

	require.Eventually(t, func() bool {
		_, err = l.Append(ctx, "ch", records("b", 20, true))
		return err == nil
	}, 10*time.Second, 50*time.Millisecond, "append after restart: %v", err)

	res := <-done
	require.NoError(t, res.err)
	require.NoError(t, r.Close())
	require.Len(t, res.msgs, 20)
	for i, m := range res.msgs {
		require.Equal(t, Position(11+i), m.Pos)
		require.Equal(t, fmt.Sprintf("b-%d", i), string(m.Data))
	}
}
