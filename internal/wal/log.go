package wal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	streamPrefix  = "WEIR_DML_"
	subjectPrefix = "weir.dml."

	// maxChannelLen keeps the stream name (prefix included) well inside
	// JetStream's limits and the store directory name inside a file name.
	maxChannelLen = 128

	// msgIDHeaderOverhead is what a Nats-Msg-Id header adds to a record on
	// the wire besides the ID itself: "NATS/1.0\r\n" "Nats-Msg-Id: " ID
	// "\r\n" "\r\n".
	msgIDHeaderOverhead = len("NATS/1.0\r\n") + len(jetstream.MsgIDHeader) + len(": \r\n\r\n")

	reconnectWait = 250 * time.Millisecond
	pingInterval  = 10 * time.Second

	// maxRetryWait caps the back-off between attempts while the server is
	// unreachable (Open, Reader).
	maxRetryWait = time.Second
)

// Log is a set of DML channels on one NATS JetStream deployment. It is safe
// for concurrent use.
type Log struct {
	cfg  Config
	log  *slog.Logger
	nc   *nats.Conn
	js   jetstream.JetStream
	done chan struct{} // closed by Close: unblocks Appends waiting for acks

	mu struct {
		sync.Mutex
		closed bool
		// channels holds the channels known to exist, each with the
		// semaphore that makes one Append's records contiguous.
		channels map[string]*channelState
		readers  map[*Reader]struct{}
	}
}

type channelState struct {
	// publishing has capacity 1. An Append holds it while it hands its
	// records to the connection (not while it waits for acks), so the
	// records of one Append get consecutive positions.
	publishing chan struct{}
}

// Open connects to the NATS server at url and returns once JetStream
// answers, retrying until ctx is done. The connection reconnects forever
// after that.
func Open(ctx context.Context, url string, cfg Config) (*Log, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := &Log{cfg: cfg, log: logger, done: make(chan struct{})}
	l.mu.channels = make(map[string]*channelState)
	l.mu.readers = make(map[*Reader]struct{})

	nc, err := nats.Connect(url,
		nats.Name("weir-wal"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(reconnectWait),
		nats.RetryOnFailedConnect(true),
		// No reconnect buffer: a publish while disconnected fails at once
		// instead of being sent after the reconnect, long after its Append
		// returned an error.
		nats.ReconnectBufSize(-1),
		nats.PingInterval(pingInterval),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err == nil {
				return // our own Close
			}
			logger.Warn("nats disconnected", "err", err)
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			logger.Info("nats reconnected", "url", c.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			logger.Warn("nats async error", "err", err)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", url, err)
	}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncTimeout(cfg.AckTimeout),
		jetstream.WithDefaultTimeout(cfg.AckTimeout),
	)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("open %s: %w", url, err)
	}
	l.nc, l.js = nc, js

	for attempt := 0; ; attempt++ {
		_, err := js.AccountInfo(ctx)
		if err == nil {
			break
		}
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			nc.Close()
			return nil, fmt.Errorf("open %s: %w", url, err)
		}
		logger.Debug("waiting for jetstream", "url", url, "err", err)
		if werr := wait(ctx, attempt); werr != nil {
			nc.Close()
			return nil, fmt.Errorf("open %s: %w (last error: %w)", url, werr, err)
		}
	}
	return l, nil
}

// wait backs off before retry number attempt+1, or returns ctx's error.
func wait(ctx context.Context, attempt int) error {
	d := min(20*time.Millisecond<<min(attempt, 10), maxRetryWait)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// CreateChannel creates the channel's stream if it does not exist.
// Creating an existing channel is not an error and leaves its stream
// configuration as it is.
func (l *Log) CreateChannel(ctx context.Context, name string) error {
	if err := validateChannel(name); err != nil {
		return err
	}
	if err := l.checkOpen(); err != nil {
		return err
	}
	_, err := l.js.CreateStream(ctx, l.streamConfig(name))
	for attempt := 0; isStoreRace(err) && attempt < createAttempts-1; attempt++ {
		if werr := wait(ctx, attempt); werr != nil {
			break
		}
		_, err = l.js.CreateStream(ctx, l.streamConfig(name))
	}
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		// The stream exists with another configuration (another replica
		// count or duplicate window). Changing the retention of a live log
		// is not CreateChannel's job; check only that it is a channel.
		var s jetstream.Stream
		s, err = l.js.Stream(ctx, streamName(name))
		if err == nil && !isChannelStream(s.CachedInfo(), name) {
			err = fmt.Errorf("stream %s exists with subjects %v", streamName(name), s.CachedInfo().Config.Subjects)
		}
	}
	if err != nil {
		return fmt.Errorf("create channel %s: %w", name, err)
	}
	l.known(name)
	return nil
}

// createAttempts bounds CreateChannel's retries of a store the server failed to create.
const createAttempts = 5

// jsErrCodeStreamCreate is nats-server's JSStreamCreateErrF, which nats.go names no constant for.
const jsErrCodeStreamCreate jetstream.ErrorCode = 10049

// isStoreRace reports the server failing to create a new stream's files: "error creating store
// for stream". nats-server, deleting an account's last stream, removes the emptied streams
// folder and the account's folder in a goroutine of its own (stream.stop in 2.15); a stream
// created meanwhile can find its parent folder gone under it. Nothing was created, and the
// next attempt finds the folders settled, so it is retried rather than handed to the caller
// (seen as a proxy insert answered Unavailable right after its channel was recreated).
func isStoreRace(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jsErrCodeStreamCreate &&
		strings.Contains(apiErr.Description, "error creating store")
}

func isChannelStream(info *jetstream.StreamInfo, name string) bool {
	subjects := info.Config.Subjects
	return len(subjects) == 1 && subjects[0] == subjectName(name)
}

// DeleteChannel deletes the channel and everything in it. Deleting a
// channel that does not exist is not an error.
func (l *Log) DeleteChannel(ctx context.Context, name string) error {
	if err := validateChannel(name); err != nil {
		return err
	}
	if err := l.checkOpen(); err != nil {
		return err
	}
	l.forgetChannel(name)
	err := l.js.DeleteStream(ctx, streamName(name))
	if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("delete channel %s: %w", name, err)
	}
	return nil
}

func (l *Log) streamConfig(name string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        streamName(name),
		Description: "weir DML channel " + name,
		Subjects:    []string{subjectName(name)},
		Retention:   jetstream.LimitsPolicy,
		// No limits, and Discard=New: were a limit ever set on the stream,
		// JetStream would refuse new records rather than drop old ones a
		// data node has not consumed yet.
		MaxMsgs:           -1,
		MaxBytes:          -1,
		MaxAge:            0,
		MaxMsgsPerSubject: -1,
		MaxMsgSize:        -1,
		Discard:           jetstream.DiscardNew,
		Storage:           jetstream.FileStorage,
		Replicas:          l.cfg.Replicas,
		Duplicates:        l.cfg.DuplicateWindow,
		// Only Truncate (a purge up to a sequence) removes records; single
		// messages are never deleted, so positions stay contiguous.
		DenyDelete: true,
	}
}

// Append stores recs at the end of channel and returns their positions in
// order. It returns only once JetStream acknowledged every record (see the
// package documentation for what an acknowledgement means on disk).
//
// The records of one Append get consecutive positions with no record of
// another Append from this Log between them, except that a record whose ID
// JetStream already holds (a retry, or the same ID twice in recs) gets the
// position of the first copy and stores nothing.
//
// When Append returns an error other than ErrInvalidChannel,
// ErrInvalidRecordID, ErrRecordTooLarge or ErrChannelNotFound, any of recs
// may have been stored (ErrClosed included: Close does not wait for acks):
// retry with the same IDs.
func (l *Log) Append(ctx context.Context, channel string, recs []Record, opts ...AppendOption) ([]Position, error) {
	if err := validateChannel(channel); err != nil {
		return nil, err
	}
	var o appendOptions
	for _, opt := range opts {
		opt(&o)
	}
	msgs, err := l.messages(channel, recs)
	if err != nil {
		return nil, fmt.Errorf("append %s: %w", channel, err)
	}
	// AckTimeout bounds the whole call, the channel lookup included.
	ctx, cancel := context.WithTimeout(ctx, l.cfg.AckTimeout)
	defer cancel()
	ch, err := l.channel(ctx, channel)
	if err != nil {
		return nil, fmt.Errorf("append %s: %w", channel, err)
	}
	if len(msgs) == 0 {
		return nil, nil
	}
	futures, err := l.publish(ctx, ch, msgs, o.before)
	if err != nil {
		return nil, fmt.Errorf("append %s: %w", channel, err)
	}
	pos := make([]Position, len(futures))
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			pos[i] = ack.Sequence
		case err := <-f.Err():
			return nil, fmt.Errorf("append %s: record %d of %d: %w", channel, i, len(futures), l.classify(ctx, channel, err))
		case <-ctx.Done():
			return nil, fmt.Errorf("append %s: %d of %d records acknowledged: %w", channel, i, len(futures), ctx.Err())
		case <-l.done:
			return nil, fmt.Errorf("append %s: %w", channel, ErrClosed)
		}
	}
	return pos, nil
}

// messages checks every record and builds its message, so that a bad
// record fails the Append before anything is published.
func (l *Log) messages(channel string, recs []Record) ([]*nats.Msg, error) {
	subject := subjectName(channel)
	// The server's own limit applies to headers and payload together.
	serverMax := l.nc.MaxPayload() // 0 until the first connect
	msgs := make([]*nats.Msg, len(recs))
	for i, r := range recs {
		m := &nats.Msg{Subject: subject, Data: r.Data}
		size := int64(len(r.Data))
		if r.ID != "" {
			if !validRecordID(r.ID) {
				return nil, fmt.Errorf("record %d id %q: %w", i, r.ID, ErrInvalidRecordID)
			}
			m.Header = nats.Header{jetstream.MsgIDHeader: []string{r.ID}}
			size += int64(msgIDHeaderOverhead + len(r.ID))
		}
		if len(r.Data) > int(l.cfg.MaxMsgSize) {
			return nil, fmt.Errorf("record %d has %d bytes, limit %d: %w", i, len(r.Data), l.cfg.MaxMsgSize, ErrRecordTooLarge)
		}
		if serverMax > 0 && size > serverMax {
			return nil, fmt.Errorf("record %d has %d bytes with headers, server limit %d: %w", i, size, serverMax, ErrRecordTooLarge)
		}
		msgs[i] = m
	}
	return msgs, nil
}

// MaxRecordBytes is the largest record Append accepts with an ID of idLen bytes: the smaller
// of Config.MaxMsgSize and what the server allows (its max_payload, 1 MB in a stock
// nats-server, less the ID header). Before the first connection it is Config.MaxMsgSize.
func (l *Log) MaxRecordBytes(idLen int) int {
	limit := int(l.cfg.MaxMsgSize)
	if serverMax := l.nc.MaxPayload(); serverMax > 0 {
		overhead := 0
		if idLen > 0 {
			overhead = msgIDHeaderOverhead + idLen
		}
		limit = min(limit, int(serverMax)-overhead)
	}
	return limit
}

// validRecordID rejects IDs that cannot travel in a header line.
func validRecordID(id string) bool {
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// AppendOption changes how Append appends.
type AppendOption func(*appendOptions)

type appendOptions struct {
	before func() error
}

// BeforePublish runs f right before Append hands its records to the server, while it holds the
// channel's publishing order: no record of another Append of this Log is published between
// f's return and this Append's records. A writer can stamp records in f (rewriting their Data
// in place) so that, within one Log, stamps grow with positions. If f fails, nothing is
// published and Append returns its error.
func BeforePublish(f func() error) AppendOption {
	return func(o *appendOptions) { o.before = f }
}

// publish hands msgs to the connection in order, after before (when set), and returns their
// ack futures.
func (l *Log) publish(ctx context.Context, ch *channelState, msgs []*nats.Msg, before func() error) ([]jetstream.PubAckFuture, error) {
	select {
	case ch.publishing <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-ch.publishing }()
	if before != nil {
		if err := before(); err != nil {
			return nil, err
		}
	}

	// PublishMsgAsync blocks once the connection has its maximum of
	// unacknowledged publishes in flight (4000). With SyncAlways every
	// ack waits for an fsync, so allow the whole Append's budget rather
	// than the 200ms default before giving up.
	stall := time.Millisecond
	if dl, ok := ctx.Deadline(); ok {
		stall = max(time.Until(dl), stall)
	}
	futures := make([]jetstream.PubAckFuture, len(msgs))
	for i, m := range msgs {
		// No retries inside nats.go: it would publish a record again (after "no responders",
		// a server still recovering) outside this channel's publishing order, after records
		// of later Appends. Append's caller retries, with the same IDs, in order.
		f, err := l.js.PublishMsgAsync(m, jetstream.WithStallWait(stall), jetstream.WithRetryAttempts(0))
		if err != nil {
			return nil, fmt.Errorf("publish record %d of %d: %w", i, len(msgs), err)
		}
		futures[i] = f
	}
	return futures, nil
}

// classify turns an ack error into ErrChannelNotFound when the channel's
// stream is gone: JetStream answers a publish to a subject no stream
// listens on with "no responders".
func (l *Log) classify(ctx context.Context, channel string, err error) error {
	if !errors.Is(err, jetstream.ErrNoStreamResponse) && !errors.Is(err, nats.ErrNoResponders) {
		return err
	}
	_, serr := l.js.Stream(ctx, streamName(channel))
	if errors.Is(serr, jetstream.ErrStreamNotFound) {
		l.forgetChannel(channel)
		return ErrChannelNotFound
	}
	return err
}

// ChannelInfo is what a channel holds.
type ChannelInfo struct {
	// First is the first position kept (Last+1 when everything was truncated, 0 in a channel
	// never written), Last the last appended (Truncate does not lower it).
	First, Last Position
	Records     uint64
	Bytes       uint64
	// DuplicateWindow is how long the server remembers record IDs: a record truncated sooner
	// after it was stored can no longer be recognised by its ID once the server restarts.
	DuplicateWindow time.Duration
}

// Info returns what a channel holds.
func (l *Log) Info(ctx context.Context, channel string) (ChannelInfo, error) {
	s, err := l.stream(ctx, channel)
	if err != nil {
		return ChannelInfo{}, fmt.Errorf("info %s: %w", channel, err)
	}
	info := s.CachedInfo()
	return ChannelInfo{First: info.State.FirstSeq, Last: info.State.LastSeq, Records: info.State.Msgs,
		Bytes: info.State.Bytes, DuplicateWindow: info.Config.Duplicates}, nil
}

// LastPosition returns the position of the last record appended to the
// channel, 0 if none ever was. Truncate does not lower it.
func (l *Log) LastPosition(ctx context.Context, channel string) (Position, error) {
	s, err := l.stream(ctx, channel)
	if err != nil {
		return 0, fmt.Errorf("last position %s: %w", channel, err)
	}
	return s.CachedInfo().State.LastSeq, nil
}

// Get returns the record at position pos: ErrOutOfRange beyond LastPosition, ErrTruncated
// when it was truncated.
func (l *Log) Get(ctx context.Context, channel string, pos Position) (Message, error) {
	s, err := l.stream(ctx, channel)
	if err != nil {
		return Message{}, fmt.Errorf("get %s at %d: %w", channel, pos, err)
	}
	if last := s.CachedInfo().State.LastSeq; pos == 0 || pos > last {
		return Message{}, fmt.Errorf("get %s at %d, last position %d: %w", channel, pos, last, ErrOutOfRange)
	}
	m, err := s.GetMsg(ctx, pos)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Message{}, fmt.Errorf("get %s at %d: %w", channel, pos, ErrTruncated)
	}
	if err != nil {
		return Message{}, fmt.Errorf("get %s at %d: %w", channel, pos, err)
	}
	return Message{Channel: channel, Pos: m.Sequence, Data: m.Data, Time: m.Time}, nil
}

// Check reports whether the channel still holds the record a names: nil when it does,
// ErrRewound when the channel ends below a.Pos or another record sits there (stored at another
// time; a Time of 0 checks the position alone), ErrTruncated when it was truncated.
func (l *Log) Check(ctx context.Context, channel string, a Anchor) error {
	m, err := l.Get(ctx, channel, a.Pos)
	switch {
	case errors.Is(err, ErrOutOfRange):
		return fmt.Errorf("%w: channel %s ends below position %d: %w", ErrRewound, channel, a.Pos, err)
	case err != nil:
		return err
	case a.Time != 0 && m.Anchor().Time != a.Time:
		return anchorMismatch(channel, a, m.Time)
	}
	return nil
}

// anchorMismatch is the ErrRewound of a record at a.Pos stored at ts instead of a.Time.
func anchorMismatch(channel string, a Anchor, ts time.Time) error {
	return fmt.Errorf("%w: the record at position %d of channel %s was stored at %s, the one read there at %s: the channel lost records and reused their positions",
		ErrRewound, a.Pos, channel, ts.UTC().Format(time.RFC3339Nano), time.Unix(0, a.Time).UTC().Format(time.RFC3339Nano))
}

// Truncate drops the records with positions below before. Positions do not
// change: the next Append continues after LastPosition. Truncating beyond
// LastPosition()+1 is ErrOutOfRange, since it would make the stream skip
// positions.
func (l *Log) Truncate(ctx context.Context, channel string, before Position) error {
	s, err := l.stream(ctx, channel)
	if err != nil {
		return fmt.Errorf("truncate %s: %w", channel, err)
	}
	state := s.CachedInfo().State
	// LastSeq only grows, so this check stays true until the purge runs.
	if before > state.LastSeq+1 {
		return fmt.Errorf("truncate %s before %d, last position %d: %w", channel, before, state.LastSeq, ErrOutOfRange)
	}
	// FirstSeq is 0 in a stream that never had a record.
	if before <= max(state.FirstSeq, 1) {
		return nil
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSequence(before)); err != nil {
		return fmt.Errorf("truncate %s before %d: %w", channel, before, err)
	}
	return nil
}

// stream fetches the channel's stream with its current info.
func (l *Log) stream(ctx context.Context, channel string) (jetstream.Stream, error) {
	if err := validateChannel(channel); err != nil {
		return nil, err
	}
	if err := l.checkOpen(); err != nil {
		return nil, err
	}
	s, err := l.js.Stream(ctx, streamName(channel))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		l.forgetChannel(channel)
		return nil, ErrChannelNotFound
	}
	if err != nil {
		return nil, err
	}
	l.known(channel)
	return s, nil
}

// Close closes every Reader of the Log and the connection. Appends still
// waiting for acks return ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.mu.closed {
		l.mu.Unlock()
		return nil
	}
	l.mu.closed = true
	close(l.done)
	readers := make([]*Reader, 0, len(l.mu.readers))
	for r := range l.mu.readers {
		readers = append(readers, r)
	}
	l.mu.Unlock()

	var errs []error
	for _, r := range readers {
		errs = append(errs, r.Close())
	}
	l.nc.Close()
	return errors.Join(errs...)
}

func (l *Log) checkOpen() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed {
		return ErrClosed
	}
	return nil
}

// channel returns the state of a channel, asking the server whether it
// exists the first time.
func (l *Log) channel(ctx context.Context, name string) (*channelState, error) {
	l.mu.Lock()
	if l.mu.closed {
		l.mu.Unlock()
		return nil, ErrClosed
	}
	ch, ok := l.mu.channels[name]
	l.mu.Unlock()
	if ok {
		return ch, nil
	}
	if _, err := l.stream(ctx, name); err != nil {
		return nil, err
	}
	return l.known(name), nil
}

func (l *Log) known(name string) *channelState {
	l.mu.Lock()
	defer l.mu.Unlock()
	ch, ok := l.mu.channels[name]
	if !ok {
		ch = &channelState{publishing: make(chan struct{}, 1)}
		l.mu.channels[name] = ch
	}
	return ch
}

func (l *Log) forgetChannel(name string) {
	l.mu.Lock()
	delete(l.mu.channels, name)
	l.mu.Unlock()
}

func (l *Log) addReader(r *Reader) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed {
		return ErrClosed
	}
	l.mu.readers[r] = struct{}{}
	return nil
}

func (l *Log) removeReader(r *Reader) {
	l.mu.Lock()
	delete(l.mu.readers, r)
	l.mu.Unlock()
}

func streamName(channel string) string  { return streamPrefix + channel }
func subjectName(channel string) string { return subjectPrefix + channel }

// validateChannel accepts names of letters, digits, '_' and '-': they are
// valid in a stream name, a subject token and a directory name.
func validateChannel(name string) error {
	if name == "" || len(name) > maxChannelLen {
		return fmt.Errorf("%w: %q must have 1 to %d characters", ErrInvalidChannel, name, maxChannelLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
		if !ok {
			return fmt.Errorf("%w: %q has %q at %d", ErrInvalidChannel, name, c, i)
		}
	}
	return nil
}
