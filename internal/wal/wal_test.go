package wal

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"log/slog"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{}, true},
		{"replicas 3", Config{Replicas: 3}, true},
		{"replicas 6", Config{Replicas: 6}, false},
		{"negative replicas", Config{Replicas: -1}, false},
		{"negative ack timeout", Config{AckTimeout: -time.Second}, false},
		{"negative max size", Config{MaxMsgSize: -1}, false},
		{"negative duplicate window", Config{DuplicateWindow: -time.Second}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Defaults()
			err := cfg.Validate()
			if tt.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidConfig)
			_, err = Open(context.Background(), "nats://127.0.0.1:1", tt.cfg)
			require.ErrorIs(t, err, ErrInvalidConfig)
		})
	}

	var cfg Config
	cfg.Defaults()
	require.Equal(t, Config{Replicas: 1, AckTimeout: 10 * time.Second, MaxMsgSize: 8 << 20, DuplicateWindow: 2 * time.Minute}, cfg)
}

func TestEmbeddedConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  EmbeddedConfig
		ok   bool
	}{
		{"defaults", EmbeddedConfig{Dir: "d"}, true},
		{"no dir", EmbeddedConfig{}, false},
		{"bad port", EmbeddedConfig{Dir: "d", Port: 70000}, false},
		{"bad sync", EmbeddedConfig{Dir: "d", Sync: "sometimes"}, false},
		{"negative interval", EmbeddedConfig{Dir: "d", SyncInterval: -time.Second}, false},
		{"payload too big", EmbeddedConfig{Dir: "d", MaxPayload: 128 << 20}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Defaults()
			err := cfg.Validate()
			if tt.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidConfig)
			_, err = StartEmbedded(tt.cfg)
			require.ErrorIs(t, err, ErrInvalidConfig)
		})
	}

	cfg := EmbeddedConfig{Dir: "d"}
	cfg.Defaults()
	require.Equal(t, EmbeddedConfig{Dir: "d", Host: "127.0.0.1", Sync: SyncInterval, MaxPayload: 8 << 20}, cfg)
}

func TestStartEmbeddedPortInUse(t *testing.T) {
	e := startServer(t, EmbeddedConfig{})
	start := time.Now()
	_, err := StartEmbedded(EmbeddedConfig{Dir: t.TempDir(), Port: portOf(t, e.ClientURL())})
	require.ErrorIs(t, err, errNotReady)
	require.Less(t, time.Since(start), 5*time.Second)
}

func TestCreateChannelIdempotent(t *testing.T) {
	e, l := newLog(t)
	ctx := testCtx(t)
	create(t, l, "ch")
	pos, err := l.Append(ctx, "ch", records("a", 3, false))
	require.NoError(t, err)
	require.Equal(t, seq(1, 3), pos)

	// Again, from the same Log and from a Log with another stream config:
	// the channel and its records stay.
	create(t, l, "ch")
	other := openLog(t, e.ClientURL(), Config{DuplicateWindow: time.Minute})
	create(t, other, "ch")
	last, err := other.LastPosition(ctx, "ch")
	require.NoError(t, err)
	require.Equal(t, Position(3), last)
}

func TestCreateChannelOverForeignStream(t *testing.T) {
	e, l := newLog(t)
	ctx := testCtx(t)
	nc, err := nats.Connect(e.ClientURL())
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: streamName("ch"), Subjects: []string{"other.subject"}})
	require.NoError(t, err)

	err = l.CreateChannel(ctx, "ch")
	require.ErrorContains(t, err, "exists with subjects")
}

func TestInvalidChannel(t *testing.T) {
	_, l := newLog(t)
	ctx := testCtx(t)
	names := []string{"", "a.b", "a b", "a*", "a>", "é", strings.Repeat("x", maxChannelLen+1)}
	ops := map[string]func(name string) error{
		"create":   func(n string) error { return l.CreateChannel(ctx, n) },
		"delete":   func(n string) error { return l.DeleteChannel(ctx, n) },
		"append":   func(n string) error { _, err := l.Append(ctx, n, records("a", 1, false)); return err },
		"last":     func(n string) error { _, err := l.LastPosition(ctx, n); return err },
		"read":     func(n string) error { _, err := l.Read(ctx, n, 0); return err },
		"truncate": func(n string) error { return l.Truncate(ctx, n, 1) },
	}
	for op, f := range ops {
		for _, name := range names {
			t.Run(fmt.Sprintf("%s/%q", op, name), func(t *testing.T) {
				require.ErrorIs(t, f(name), ErrInvalidChannel)
			})
		}
	}
	for _, name := range []string{"a", "by-dev-rootcoord-dml_0", "CH_9", strings.Repeat("x", maxChannelLen)} {
		t.Run("valid/"+name[:min(len(name), 20)], func(t *testing.T) {
			require.NoError(t, l.CreateChannel(ctx, name))
		})
	}
}

func TestChannelNotFound(t *testing.T) {
	_, l := newLog(t)
	ctx := testCtx(t)
	_, err := l.Append(ctx, "missing", records("a", 1, false))
	require.ErrorIs(t, err, ErrChannelNotFound)
	_, err = l.Read(ctx, "missing", 0)
	require.ErrorIs(t, err, ErrChannelNotFound)
	_, err = l.LastPosition(ctx, "missing")
	require.ErrorIs(t, err, ErrChannelNotFound)
	require.ErrorIs(t, l.Truncate(ctx, "missing", 1), ErrChannelNotFound)
}

func TestDeleteChannel(t *testing.T) {
	e, l := newLog(t)
	ctx := testCtx(t)
	create(t, l, "ch")
	_, err := l.Append(ctx, "ch", records("a", 5, false))
	require.NoError(t, err)
	r, err := l.Read(ctx, "ch", 1)
	require.NoError(t, err)
	defer func() { require.NoError(t, r.Close()) }()
	readN(t, r, 1, 5)

	// Deleted by another process while this Log knows the channel.
	other := openLog(t, e.ClientURL(), Config{})
	require.NoError(t, other.DeleteChannel(ctx, "ch"))
	require.NoError(t, other.DeleteChannel(ctx, "ch"), "deleting a missing channel")

	_, err = l.Append(ctx, "ch", records("b", 1, false))
	require.ErrorIs(t, err, ErrChannelNotFound)
	_, err = l.LastPosition(ctx, "ch")
	require.ErrorIs(t, err, ErrChannelNotFound)
	_, err = r.Next(ctx)
	require.ErrorIs(t, err, ErrChannelNotFound)

	// Recreated, it starts over at position 1.
	create(t, l, "ch")
	pos, err := l.Append(ctx, "ch", records("c", 2, false))
	require.NoError(t, err)
	require.Equal(t, seq(1, 2), pos)
	require.NoError(t, l.DeleteChannel(ctx, "ch"))
	_, err = l.Append(ctx, "ch", records("d", 1, false))
	require.ErrorIs(t, err, ErrChannelNotFound)
}

func TestAppendContiguous(t *testing.T) {
	_, l := newLog(t)
	ctx := testCtx(t)
	create(t, l, "ch")

	last, err := l.LastPosition(ctx, "ch")
	require.NoError(t, err)
	require.Zero(t, last)

	pos, err := l.Append(ctx, "ch", nil)
	require.NoError(t, err)
	require.Empty(t, pos)

	pos, err = l.Append(ctx, "ch", records("a", 100, false))
	require.NoError(t, err)
	require.Equal(t, seq(1, 100), pos)
	pos, err = l.Append(ctx, "ch", records("b", 1, false))
	require.NoError(t, err)
	require.Equal(t, []Position{101}, pos)

	last, err = l.LastPosition(ctx, "ch")
	require.NoError(t, err)
	require.Equal(t, Position(101), last)
}

// TestAppendBatchesDoNotInterleave runs Appends concurrently: each batch
// gets consecutive positions and together they fill 1..N.
func TestAppendBatchesDoNotInterleave(t *testing.T) {
	_, l := newLog(t)
	ctx := testCtx(t)
	create(t, l, "ch")
	const writers, batches, size = 8, 10, 20
	var wg sync.WaitGroup
	results := make(chan []Position, writers*batches)
	errs := make(chan error, writers*batches)
	for w := range writers {
		wg.Go(func() {
			for b := range batches {
				pos, err := l.Append(ctx, "ch", records(fmt.Sprintf("w%d-b%d", w, b), size, false))
				errs <- err
				results <- pos
			}
		})
	}
	wg.Wait()
	close(results)
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	seen := map[Position]bool{}
	for pos := range results {
		require.Len(t, pos, size)
		require.Equal(t, seq(pos[0], pos[0]+size-1), pos)
		for _, p := range pos {
			require.False(t, seen[p])
			seen[p] = true
		}
	}
	require.Len(t, seen, writers*batches*size)
	for p := Position(1); p <= writers*batches*size; p++ {
		require.True(t, seen[p], "position %d", p)
	}
}

func TestRead(t *testing.T) {
	_, l := newLog(t)
	ctx := testCtx(t)
	create(t, l, "ch")
	_, err := l.Append(ctx, "ch", records("a", 10, false))
	require.NoError(t, err)
	tests := []struct {
		name  string
		from  Position
		first Position
	}{
		{"from zero", 0, 1},
		{"from one", 1, 1},
		{"from the middle", 6, 6},
		{"from the last", 10, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := l.Read(ctx, "ch", tt.from)
			require.NoError(t, err)
			defer func() { require.NoError(t, r.Close()) }()
			msgs := readN(t, r, tt.first, int(10-tt.first+1))
			for _, m := range msgs {
				require.Equal(t, "ch", m.Channel)
				require.Equal(t, fmt.Sprintf("a-%d", m.Pos-1), string(m.Data))
				require.WithinDuration(t, time.Now(), m.Time, time.Minute)
			}
			short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			_, err = r.Next(short)
			require.ErrorIs(t, err, context.DeadlineExceeded, "nothing after the last record")
		})
	}
}

// TestReadTailFollow appends while a Next waits: the waiting Next returns
// the new record.
func TestReadTailFollow(t *testing.T) {
	_, l := newLog(t)
	ctx := testCtx(t)
	create(t, l, "ch")
	_, err := l.Append(ctx, "ch", records("a", 2, false))
	require.NoError(t, err)

	// Read from beyond the end: the first message is the next appended.
	r, err := l.Read(ctx, "ch", 3)
	require.NoError(t, err)
	defer func() { require.NoError(t, r.Close()) }()
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = r.Next(short)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	got := make(chan Message, 1)
	errc := make(chan error, 1)
	go func() {
		m, err := r.Next(ctx)
		errc <- err
		got <- m
	}()
	pos, err := l.Append(ctx, "ch", []Record{{Data: []byte("late")}})
	require.NoError(t, err)
	require.NoError(t, <-errc)
	m := <-got
	require.Equal(t, pos[0], m.Pos)
	require.Equal(t, "late", string(m.Data))
}

func TestReaderCloseAndContext(t *testing.T) {
	_, l := newLog(t)
	ctx := testCtx(t)
	create(t, l, "ch")
	r, err := l.Read(ctx, "ch", 0)
	require.NoError(t, err)

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = r.Next(canceled)
	require.ErrorIs(t, err, context.Canceled)

	// Close unblocks a waiting Next.
	errc := make(chan error, 1)
	go func() {
		_, err := r.Next(ctx)
		errc <- err
	}()
	require.NoError(t, r.Close())
	require.ErrorIs(t, <-errc, ErrClosed)
	_, err = r.Next(ctx)
	require.ErrorIs(t, err, ErrClosed)
	require.NoError(t, r.Close(), "second close")
}

func TestTruncate(t *testing.T) {
	_, l := newLog(t)
	ctx := testCtx(t)
	create(t, l, "ch")
	require.NoError(t, l.Truncate(ctx, "ch", 1), "an empty channel")
	require.ErrorIs(t, l.Truncate(ctx, "ch", 2), ErrOutOfRange)
	_, err := l.Append(ctx, "ch", records("a", 10, false))
	require.NoError(t, err)

	require.NoError(t, l.Truncate(ctx, "ch", 6))
	require.NoError(t, l.Truncate(ctx, "ch", 3), "truncating again below the first kept")
	require.NoError(t, l.Truncate(ctx, "ch", 0))

	r, err := l.Read(ctx, "ch", 2)
	require.NoError(t, err)
	msgs := readN(t, r, 6, 5)
	require.Equal(t, "a-5", string(msgs[0].Data))
	require.NoError(t, r.Close())

	last, err := l.LastPosition(ctx, "ch")
	require.NoError(t, err)
	require.Equal(t, Position(10), last)

	require.ErrorIs(t, l.Truncate(ctx, "ch", 12), ErrOutOfRange)

	// Everything: positions continue after the last.
	require.NoError(t, l.Truncate(ctx, "ch", 11))
	last, err = l.LastPosition(ctx, "ch")
	require.NoError(t, err)
	require.Equal(t, Position(10), last)
	pos, err := l.Append(ctx, "ch", records("b", 2, false))
	require.NoError(t, err)
	require.Equal(t, seq(11, 12), pos)
	r, err = l.Read(ctx, "ch", 0)
	require.NoError(t, err)
	defer func() { require.NoError(t, r.Close()) }()
	readN(t, r, 11, 2)
}

// TestReaderTruncatedUnderIt truncates past a Reader's position: when the
// Reader has to go back to the server it reports ErrTruncated rather than
// skipping.
func TestReaderTruncatedUnderIt(t *testing.T) {
	_, l := newLog(t)
	ctx := testCtx(t)
	create(t, l, "ch")
	_, err := l.Append(ctx, "ch", records("a", 10, false))
	require.NoError(t, err)
	r, err := l.Read(ctx, "ch", 0)
	require.NoError(t, err)
	defer func() { require.NoError(t, r.Close()) }()
	readN(t, r, 1, 3)

	require.NoError(t, l.Truncate(ctx, "ch", 8))
	r.forget() // as a reconnect would: the next Next creates a consumer at 4
	_, err = r.Next(ctx)
	require.ErrorIs(t, err, ErrTruncated)
}

// TestReaderRecreatesDeletedConsumer deletes the Reader's consumer on the
// server: the Reader goes on from where it was.
func TestReaderRecreatesDeletedConsumer(t *testing.T) {
	_, l := newLog(t)
	ctx := testCtx(t)
	create(t, l, "ch")
	_, err := l.Append(ctx, "ch", records("a", 5, false))
	require.NoError(t, err)
	r, err := l.Read(ctx, "ch", 0)
	require.NoError(t, err)
	defer func() { require.NoError(t, r.Close()) }()
	readN(t, r, 1, 2)

	r.mu.Lock()
	name := r.mu.cons.CachedInfo().Name
	r.mu.Unlock()
	require.NoError(t, l.js.DeleteConsumer(ctx, streamName("ch"), name))
	_, err = l.Append(ctx, "ch", records("b", 5, false))
	require.NoError(t, err)
	msgs := readN(t, r, 3, 8)
	require.Equal(t, "b-4", string(msgs[7].Data))
}

func TestDedupOnRetry(t *testing.T) {
	_, l := newLog(t)
	ctx := testCtx(t)
	create(t, l, "ch")
	recs := records("a", 5, true)
	pos, err := l.Append(ctx, "ch", recs)
	require.NoError(t, err)
	require.Equal(t, seq(1, 5), pos)

	// A retry of the whole batch stores nothing and returns the positions
	// of the first copies.
	pos, err = l.Append(ctx, "ch", recs)
	require.NoError(t, err)
	require.Equal(t, seq(1, 5), pos)

	// A retry of a partly stored batch stores only the rest.
	more := append(append([]Record{}, recs[3:]...), records("b", 2, true)...)
	pos, err = l.Append(ctx, "ch", more)
	require.NoError(t, err)
	require.Equal(t, []Position{4, 5, 6, 7}, pos)

	// The same ID twice in one Append is stored once.
	pos, err = l.Append(ctx, "ch", []Record{{ID: "c", Data: []byte("c")}, {ID: "c", Data: []byte("c")}})
	require.NoError(t, err)
	require.Equal(t, []Position{8, 8}, pos)

	// Records without IDs are never deduplicated.
	anon := []Record{{Data: []byte("x")}}
	_, err = l.Append(ctx, "ch", anon)
	require.NoError(t, err)
	_, err = l.Append(ctx, "ch", anon)
	require.NoError(t, err)

	r, err := l.Read(ctx, "ch", 0)
	require.NoError(t, err)
	defer func() { require.NoError(t, r.Close()) }()
	msgs := readN(t, r, 1, 10)
	var data []string
	for _, m := range msgs {
		data = append(data, string(m.Data))
	}
	require.Equal(t, []string{"a-0", "a-1", "a-2", "a-3", "a-4", "b-0", "b-1", "c", "x", "x"}, data)
}

func TestRecordTooLarge(t *testing.T) {
	e := startServer(t, EmbeddedConfig{MaxPayload: 64 << 10})
	tests := []struct {
		name string
		cfg  Config
		rec  Record
	}{
		{"over MaxMsgSize", Config{MaxMsgSize: 1024}, Record{Data: make([]byte, 1025)}},
		{"over server max payload", Config{}, Record{Data: make([]byte, 64<<10+1)}},
		{"over server max payload with its id", Config{}, Record{ID: strings.Repeat("i", 100), Data: make([]byte, 64<<10-50)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := openLog(t, e.ClientURL(), tt.cfg)
			ctx := testCtx(t)
			name := fmt.Sprintf("ch%d", len(tt.rec.Data)+len(tt.rec.ID))
			create(t, l, name)
			batch := []Record{{Data: []byte("ok")}, tt.rec, {Data: []byte("ok")}}
			_, err := l.Append(ctx, name, batch)
			require.ErrorIs(t, err, ErrRecordTooLarge)
			last, err := l.LastPosition(ctx, name)
			require.NoError(t, err)
			require.Zero(t, last, "nothing of the batch is stored")
		})
	}

	// The largest record that fits, ID header included, is stored and
	// read back; one more byte is refused.
	l := openLog(t, e.ClientURL(), Config{})
	ctx := testCtx(t)
	create(t, l, "fits")
	big := Record{ID: "id", Data: make([]byte, 64<<10-msgIDHeaderOverhead-len("id"))}
	big.Data[len(big.Data)-1] = 7
	tooBig := Record{ID: "id2", Data: make([]byte, len(big.Data))}
	_, err := l.Append(ctx, "fits", []Record{tooBig})
	require.ErrorIs(t, err, ErrRecordTooLarge)
	pos, err := l.Append(ctx, "fits", []Record{big})
	require.NoError(t, err)
	require.Equal(t, []Position{1}, pos)
	r, err := l.Read(ctx, "fits", 0)
	require.NoError(t, err)
	defer func() { require.NoError(t, r.Close()) }()
	require.Equal(t, big.Data, readN(t, r, 1, 1)[0].Data)
}

func TestInvalidRecordID(t *testing.T) {
	_, l := newLog(t)
	ctx := testCtx(t)
	create(t, l, "ch")
	_, err := l.Append(ctx, "ch", []Record{{ID: "ok"}, {ID: "bad\r\nid"}})
	require.ErrorIs(t, err, ErrInvalidRecordID)
	last, err := l.LastPosition(ctx, "ch")
	require.NoError(t, err)
	require.Zero(t, last)
}

func TestAppendHonoursContext(t *testing.T) {
	_, l := newLog(t)
	ctx := testCtx(t)
	create(t, l, "ch")
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	_, err := l.Append(canceled, "ch", records("a", 3, false))
	require.ErrorIs(t, err, context.Canceled)
}

// TestAppendLargeBatch publishes more records than nats.go keeps in
// flight (4000) in one Append under SyncAlways, where acks are slow.
func TestAppendLargeBatch(t *testing.T) {
	e := startServer(t, EmbeddedConfig{Sync: SyncAlways})
	l := openLog(t, e.ClientURL(), Config{})
	ctx := testCtx(t)
	create(t, l, "ch")
	pos, err := l.Append(ctx, "ch", records("a", 5000, false))
	require.NoError(t, err)
	require.Equal(t, seq(1, 5000), pos)
}

func TestClose(t *testing.T) {
	_, l := newLog(t)
	ctx := testCtx(t)
	create(t, l, "ch")
	r, err := l.Read(ctx, "ch", 0)
	require.NoError(t, err)

	require.NoError(t, l.Close())
	require.NoError(t, l.Close(), "second close")
	_, err = r.Next(ctx)
	require.ErrorIs(t, err, ErrClosed)

	_, err = l.Append(ctx, "ch", records("a", 1, false))
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, l.CreateChannel(ctx, "ch"), ErrClosed)
	require.ErrorIs(t, l.DeleteChannel(ctx, "ch"), ErrClosed)
	_, err = l.LastPosition(ctx, "ch")
	require.ErrorIs(t, err, ErrClosed)
	_, err = l.Read(ctx, "ch", 0)
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, l.Truncate(ctx, "ch", 1), ErrClosed)
}

func TestOpenWaitsForServer(t *testing.T) {
	port := freePort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)

	short, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := Open(short, url, Config{})
	require.ErrorIs(t, err, context.DeadlineExceeded)

	type result struct {
		l   *Log
		err error
	}
	done := make(chan result, 1)
	go func() {
		l, err := Open(testCtx(t), url, Config{})
		done <- result{l, err}
	}()
	startServer(t, EmbeddedConfig{Port: port})
	res := <-done
	require.NoError(t, res.err)
	defer func() { require.NoError(t, res.l.Close()) }()
	create(t, res.l, "ch")
}

func TestOpenBadURL(t *testing.T) {
	_, err := Open(context.Background(), "http://[::1", Config{})
	require.Error(t, err)
}

func TestOpenWithoutJetStream(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true})
	require.NoError(t, err)
	srv.Start()
	defer func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	}()
	require.True(t, srv.ReadyForConnections(10*time.Second))

	_, err = Open(testCtx(t), srv.ClientURL(), Config{})
	require.Error(t, err)
	require.True(t, errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount), "%v", err)
}

func TestServerLogger(t *testing.T) {
	var buf strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	sl := serverLogger{l: logger, fatal: make(chan string, 1)}
	sl.Noticef("n %d", 1)
	sl.Warnf("w %d", 2)
	sl.Errorf("e %d", 3)
	sl.Fatalf("f %d", 4)
	sl.Debugf("d %d", 5)
	sl.Tracef("t %d", 6)
	require.Equal(t, "f 4", <-sl.fatal)
	sl.Fatalf("f %d", 7) // a second fatal message does not block
	out := buf.String()
	for _, want := range []string{"level=DEBUG msg=\"nats server\" detail=\"n 1\"", "level=WARN", "detail=\"w 2\"", "level=ERROR msg=\"nats server\" detail=\"e 3\"", "nats server fatal", "level=DEBUG msg=\"nats server\" detail=\"d 5\"", "nats server trace"} {
		require.Contains(t, out, want)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// stealSubject deletes the channel's stream behind the Log's back and
// subscribes to its subject without ever answering, so that the Log's
// publishes are received but never acknowledged.
func stealSubject(t *testing.T, url, channel string) {
	t.Helper()
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	require.NoError(t, js.DeleteStream(testCtx(t), streamName(channel)))
	_, err = nc.Subscribe(subjectName(channel), func(*nats.Msg) {})
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
}

func TestAppendWithoutAckTimesOut(t *testing.T) {
	e := startServer(t, EmbeddedConfig{})
	l := openLog(t, e.ClientURL(), Config{AckTimeout: 300 * time.Millisecond})
	ctx := testCtx(t)
	create(t, l, "ch")
	stealSubject(t, e.ClientURL(), "ch")

	start := time.Now()
	_, err := l.Append(ctx, "ch", records("a", 3, true))
	require.Error(t, err)
	require.True(t, errors.Is(err, context.DeadlineExceeded) || errors.Is(err, jetstream.ErrAsyncPublishTimeout), "%v", err)
	require.Less(t, time.Since(start), 2*time.Second)
}

func TestCloseUnblocksAppend(t *testing.T) {
	e := startServer(t, EmbeddedConfig{})
	ctx := testCtx(t)
	l, err := Open(ctx, e.ClientURL(), Config{})
	require.NoError(t, err)
	create(t, l, "ch")
	stealSubject(t, e.ClientURL(), "ch")

	errc := make(chan error, 1)
	go func() {
		_, err := l.Append(ctx, "ch", records("a", 3, true))
		errc <- err
	}()
	require.Eventually(t, func() bool { return l.js.PublishAsyncPending() == 3 }, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, l.Close())
	require.ErrorIs(t, <-errc, ErrClosed)
}

// TestReadLargeRecords reads records of the server's maximum size: a pull
// request must have room for one.
func TestReadLargeRecords(t *testing.T) {
	_, l := newLog(t)
	ctx := testCtx(t)
	create(t, l, "ch")
	size := int(l.nc.MaxPayload()) - msgIDHeaderOverhead - len("big-0")
	recs := records("big", 3, true)
	for i := range recs {
		recs[i].Data = make([]byte, size)
		recs[i].Data[0] = byte(i)
	}
	_, err := l.Append(ctx, "ch", recs)
	require.NoError(t, err)
	r, err := l.Read(ctx, "ch", 0)
	require.NoError(t, err)
	defer func() { require.NoError(t, r.Close()) }()
	for i, m := range readN(t, r, 1, 3) {
		require.Len(t, m.Data, size)
		require.Equal(t, byte(i), m.Data[0])
	}
}

// TestMaxRecordBytesFollowsTheServer: the largest record Append takes is what the server's
// max_payload leaves beside the record's ID header: a record of exactly that size is stored,
// one byte more is refused before anything is published.
func TestMaxRecordBytesFollowsTheServer(t *testing.T) {
	e := startServer(t, EmbeddedConfig{MaxPayload: 1 << 20})
	l := openLog(t, e.ClientURL(), Config{})
	create(t, l, "ch")
	id := "proxy-1.0123456789abcdef-1-0-0"
	limit := l.MaxRecordBytes(len(id))
	require.Less(t, limit, 1<<20)
	require.Equal(t, 1<<20, l.MaxRecordBytes(0), "no ID, no header")
	_, err := l.Append(testCtx(t), "ch", []Record{{ID: id, Data: make([]byte, limit)}})
	require.NoError(t, err)
	_, err = l.Append(testCtx(t), "ch", []Record{{ID: id + "x", Data: make([]byte, limit)}})
	require.ErrorIs(t, err, ErrRecordTooLarge)
}

// TestAppendDoesNotRetryBehindTheCallersBack: nats.go would publish a record again by itself
// after "no responders" (a stream gone, a server still recovering), outside the channel's
// publishing order: a retry could then land after records appended later, under a stamp older
// than theirs. Append fails at once instead and leaves the retry to its caller (found by
// review; nats.go's own retries take 2 × 250 ms).
func TestAppendDoesNotRetryBehindTheCallersBack(t *testing.T) {
	_, l := newLog(t)
	create(t, l, "ch")
	_, err := l.Append(testCtx(t), "ch", records("a", 1, true))
	require.NoError(t, err)
	other := openLog(t, l.nc.ConnectedUrl(), Config{})
	require.NoError(t, other.DeleteChannel(testCtx(t), "ch")) // l still knows the channel
	start := time.Now()
	_, err = l.Append(testCtx(t), "ch", records("b", 1, true))
	require.ErrorIs(t, err, ErrChannelNotFound)
	require.Less(t, time.Since(start), 400*time.Millisecond, "nats.go retried the publish")
}

// storeRaceJS fails the first fails stream creations as nats-server 2.15 does when a stream's
// folder is removed under it by the cleanup of the account's previous last stream (a race in
// the server, seen about once in a hundred runs of the proxy's recreated-channel test, too rare
// to provoke on demand), then passes creations to the real server.
type storeRaceJS struct {
	jetstream.JetStream
	fails, calls int
	desc         string // the error's description; "" is the store race's
}

func (j *storeRaceJS) CreateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	j.calls++
	if j.calls <= j.fails {
		return nil, &jetstream.APIError{Code: 500, ErrorCode: jsErrCodeStreamCreate, Description: cmp.Or(j.desc, "error creating store for stream")}
	}
	return j.JetStream.CreateStream(ctx, cfg)
}

// TestCreateChannelRetriesStoreRace checks that CreateChannel rides out the server failing to
// create a new stream's store, and gives up after createAttempts.
func TestCreateChannelRetriesStoreRace(t *testing.T) {
	_, l := newLog(t)
	ctx := testCtx(t)
	js := &storeRaceJS{JetStream: l.js, fails: 2}
	l.js = js
	require.NoError(t, l.CreateChannel(ctx, "ch"))
	require.Equal(t, 3, js.calls)
	_, err := l.Append(ctx, "ch", records("a", 1, false))
	require.NoError(t, err)

	js.calls, js.fails = 0, createAttempts
	err = l.CreateChannel(ctx, "other")
	require.ErrorContains(t, err, "error creating store for stream")
	require.Equal(t, createAttempts, js.calls)

	// Another failure to create a stream is the caller's: not retried.
	js.calls, js.fails, js.desc = 0, 1, "insufficient resources"
	err = l.CreateChannel(ctx, "third")
	require.ErrorContains(t, err, "insufficient resources")
	require.Equal(t, 1, js.calls)
}
