package wal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	// readerHeartbeat is how often an idle server confirms a pull request
	// is alive; two missed heartbeats make the Reader recreate its
	// consumer.
	readerHeartbeat = 2 * time.Second
	readerExpiry    = 30 * time.Second
	// readerInactive is how long the server keeps the consumer of a Reader
	// that stopped pulling (its process died) before deleting it.
	readerInactive = time.Minute
	// readerBatch and readerMinBytes bound what one pull request buffers.
	readerBatch    = 256
	readerMinBytes = 8 << 20
	// readerRequestTimeout bounds creating a consumer, deleteTimeout the
	// best-effort delete of one.
	readerRequestTimeout = 5 * time.Second
	deleteTimeout        = 2 * time.Second
)

// Reader returns a channel's records in position order. Next must not be
// called concurrently; Close may be called from any goroutine.
//
// A Reader reads through an ephemeral JetStream pull consumer that it
// recreates, starting after the last position it returned, whenever the
// connection comes back or the consumer fails (missed heartbeats, deleted
// by a server restart). That is what ordered consumers of nats.go do; the
// Reader does it itself so that every wait honours the caller's context.
type Reader struct {
	l       *Log
	log     *slog.Logger
	channel string
	stream  string
	status  chan nats.Status // CONNECTED events, closed by Close
	wg      sync.WaitGroup   // the watch goroutine

	// Owned by the goroutine calling Next.
	next    Position // the position Next returns next
	started bool     // Next returned a message: the next one must be at next
	strict  bool     // the first message too must be at next (Follow)
	dseq    uint64   // delivery sequence of the consumer's last message
	// anchor is the last record returned (or the one Follow was given): every consumer
	// starts at it, and its first delivery must be that very record, or the channel moved
	// backward under the Reader. verify is set while that delivery is awaited.
	anchor Anchor
	verify bool

	mu struct {
		sync.Mutex
		closed bool
		// stale is set on reconnect: the consumer may be gone with the
		// server's memory, so Next recreates it.
		stale bool
		cons  jetstream.Consumer
		iter  jetstream.MessagesContext
		// cancelWait interrupts Next's current wait, for a consumer to
		// be created or for a message.
		cancelWait context.CancelFunc
	}
}

// Read returns a Reader whose first message has a position >= from (0 and
// 1 both mean the first record). Positions already truncated are skipped
// at the start; after that Next returns every position exactly once, in
// order, and ErrTruncated if the Reader's next position was truncated away
// under it, or ErrRewound if the channel moved backward under it (see
// Follow). It is for tools that read what a channel holds; a consumer that
// must not miss a record uses Follow.
func (l *Log) Read(ctx context.Context, channel string, from Position) (*Reader, error) {
	return l.reader(ctx, channel, max(from, 1), Anchor{}, false)
}

// Follow returns a Reader of the records after the one after names, which
// the caller read before (a consumer's checkpoint): Next returns after.Pos+1
// first, then every later position, each exactly once and in order.
//
// A channel can move backward: a server that crashed under JetStream's
// default sync_interval, or whose volume was restored from a backup, loses
// the records acknowledged last, and new appends then reuse their positions.
// A consumer that resumed after them would skip the new records silently.
// Follow checks, when it starts and whenever the Reader recreates its
// consumer (a reconnect, a server restart), that the channel still holds
// the last record the Reader returned (at first: after) at its position
// with the time it was stored, and fails with ErrRewound when it does not.
// A position Follow needs that was truncated fails with ErrTruncated.
func (l *Log) Follow(ctx context.Context, channel string, after Anchor) (*Reader, error) {
	return l.reader(ctx, channel, after.Pos+1, after, true)
}

func (l *Log) reader(ctx context.Context, channel string, from Position, anchor Anchor, strict bool) (*Reader, error) {
	if err := validateChannel(channel); err != nil {
		return nil, err
	}
	if err := l.checkOpen(); err != nil {
		return nil, err
	}
	r := &Reader{
		l:       l,
		log:     l.log.With("channel", channel),
		channel: channel,
		stream:  streamName(channel),
		next:    from,
		strict:  strict,
		anchor:  anchor,
	}
	// Listen before creating the consumer: a reconnect in between could
	// lose it unnoticed.
	r.status = l.nc.StatusChanged(nats.CONNECTED)
	r.wg.Add(1)
	go r.watch()
	err := r.open(ctx)
	if err == nil {
		err = l.addReader(r) // fails if the Log closed meanwhile
	}
	if err != nil {
		_ = r.Close()
		return nil, fmt.Errorf("read %s from %d: %w", channel, from, err)
	}
	return r, nil
}

// watch marks the consumer stale on every reconnect.
func (r *Reader) watch() {
	defer r.wg.Done()
	for range r.status {
		r.mu.Lock()
		r.mu.stale = true
		if r.mu.cancelWait != nil {
			r.mu.cancelWait()
		}
		r.mu.Unlock()
	}
}

// open creates a consumer and its message iterator. Once the Reader has an
// anchor (a record returned, or Follow's), the consumer starts at it, after a
// check that the channel still reaches it; Next then checks that the first
// record delivered is the anchor itself. Otherwise it starts at r.next.
func (r *Reader) open(ctx context.Context) error {
	// A request written just before the connection broke gets no answer:
	// bound it so that Next retries instead.
	ctx, cancel := context.WithTimeout(ctx, readerRequestTimeout)
	defer cancel()
	start := r.next
	if r.anchor.Pos > 0 {
		s, err := r.l.stream(ctx, r.channel)
		if err != nil {
			return err
		}
		if last := s.CachedInfo().State.LastSeq; last < r.anchor.Pos {
			return fmt.Errorf("%w: channel %s ends at position %d, below position %d already read", ErrRewound, r.channel, last, r.anchor.Pos)
		}
		start = r.anchor.Pos
	}
	r.verify = r.anchor.Pos > 0
	cons, err := r.l.js.CreateConsumer(ctx, r.stream, jetstream.ConsumerConfig{
		Description:       "weir wal reader",
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       start,
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: readerInactive,
		Replicas:          1,
		MemoryStorage:     true,
	})
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		r.l.forgetChannel(r.channel)
		return ErrChannelNotFound
	}
	if err != nil {
		return err
	}
	// One pull request asks for at most readerBatch records and about
	// maxBytes bytes; maxBytes must admit the largest record the server
	// accepts or a pull for it would never complete.
	maxBytes := max(readerMinBytes, int(r.l.nc.MaxPayload())+64<<10)
	iter, err := cons.Messages(
		jetstream.PullMaxMessagesWithBytesLimit(readerBatch, maxBytes),
		jetstream.PullExpiry(readerExpiry),
		jetstream.PullHeartbeat(readerHeartbeat),
	)
	if err != nil {
		r.deleteConsumer(cons)
		return err
	}
	r.mu.Lock()
	if r.mu.closed {
		r.mu.Unlock()
		iter.Stop()
		r.deleteConsumer(cons)
		return ErrClosed
	}
	r.mu.cons, r.mu.iter = cons, iter
	r.mu.Unlock()
	r.dseq = 0
	return nil
}

// deleteConsumer removes a consumer the Reader no longer uses. It is best
// effort: the server deletes it anyway after readerInactive.
func (r *Reader) deleteConsumer(cons jetstream.Consumer) {
	if !r.l.nc.IsConnected() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), deleteTimeout)
	defer cancel()
	name := cons.CachedInfo().Name
	if err := r.l.js.DeleteConsumer(ctx, r.stream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		r.log.Debug("delete reader consumer", "consumer", name, "err", err)
	}
}

// Next returns the next message, blocking until one is stored, ctx is done
// or the Reader is closed. It rides out server restarts and reconnects.
func (r *Reader) Next(ctx context.Context) (Message, error) {
	for attempt := 0; ; {
		if err := ctx.Err(); err != nil {
			return Message{}, err
		}
		iter, wctx, cancel, err := r.prepare(ctx)
		if err != nil {
			return Message{}, err
		}
		if iter == nil {
			err := r.open(wctx)
			cancel()
			switch {
			case err == nil:
				attempt = 0
				continue
			case errors.Is(err, ErrChannelNotFound), errors.Is(err, ErrClosed), errors.Is(err, ErrRewound):
				return Message{}, fmt.Errorf("next %s: %w", r.channel, err)
			case ctx.Err() != nil:
				return Message{}, ctx.Err()
			}
			r.log.Debug("recreate reader consumer", "pos", r.next, "err", err)
			if err := wait(ctx, attempt); err != nil {
				return Message{}, err
			}
			attempt++
			continue
		}

		m, err := iter.Next(jetstream.NextContext(wctx))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return Message{}, ctx.Err()
			}
			if r.isClosed() {
				return Message{}, fmt.Errorf("next %s: %w", r.channel, ErrClosed)
			}
			// The wait was interrupted by a reconnect, the consumer was
			// deleted or heartbeats stopped: start a new consumer.
			r.log.Debug("reader consumer failed", "pos", r.next, "err", err)
			r.forget()
			continue
		}
		md, err := m.Metadata()
		if err != nil || md.Sequence.Consumer != r.dseq+1 {
			// A gap in delivery means the consumer lost messages (it was
			// recreated by the server); restart from r.next.
			r.log.Debug("reader consumer out of sequence", "pos", r.next, "err", err)
			r.forget()
			continue
		}
		r.dseq = md.Sequence.Consumer
		pos := md.Sequence.Stream
		if r.verify {
			if err := r.checkAnchor(pos, md.Timestamp); err != nil {
				return Message{}, err
			}
			r.verify = false
			continue
		}
		if pos < r.next {
			// A consumer starts at the anchor, which the check above swallows: a position
			// delivered again can only be the log's doing.
			return Message{}, fmt.Errorf("next %s: position %d delivered again after %d: %w", r.channel, pos, r.next-1, ErrRewound)
		}
		if (r.started || r.strict) && pos != r.next {
			return Message{}, fmt.Errorf("next %s: expected position %d, first kept is %d: %w", r.channel, r.next, pos, ErrTruncated)
		}
		r.started = true
		r.next = pos + 1
		msg := Message{Channel: r.channel, Pos: pos, Data: m.Data(), Time: md.Timestamp}
		r.anchor = msg.Anchor()
		return msg, nil
	}
}

// checkAnchor checks the first record a new consumer delivered, at pos and
// stored at ts, against the Reader's anchor.
func (r *Reader) checkAnchor(pos Position, ts time.Time) error {
	switch {
	case pos > r.anchor.Pos:
		return fmt.Errorf("next %s: position %d, already read, was truncated (first kept is %d): %w", r.channel, r.anchor.Pos, pos, ErrTruncated)
	case pos < r.anchor.Pos:
		return fmt.Errorf("next %s: consumer started at %d delivered %d: %w", r.channel, r.anchor.Pos, pos, ErrRewound)
	case r.anchor.Time != 0 && ts.UnixNano() != r.anchor.Time:
		return fmt.Errorf("next: %w", anchorMismatch(r.channel, r.anchor, ts))
	}
	return nil
}

// prepare returns the current iterator (nil when Next must create one)
// and a context for the step's wait, which a reconnect or Close cancels.
func (r *Reader) prepare(ctx context.Context) (jetstream.MessagesContext, context.Context, context.CancelFunc, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.closed {
		return nil, nil, nil, fmt.Errorf("next %s: %w", r.channel, ErrClosed)
	}
	if r.mu.stale {
		r.mu.stale = false
		if r.mu.iter != nil {
			// The server may have lost the consumer with its memory.
			r.log.Debug("reader reconnected", "pos", r.next)
			r.forgetLocked()
		}
	}
	wctx, cancel := context.WithCancel(ctx)
	r.mu.cancelWait = cancel
	return r.mu.iter, wctx, cancel, nil
}

func (r *Reader) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.closed
}

// forget stops the iterator and leaves the consumer to the server, which
// deletes it once it has been inactive for readerInactive: after a failure
// a delete is as likely to fail, and it would delay the recovery.
func (r *Reader) forget() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forgetLocked()
}

func (r *Reader) forgetLocked() {
	if r.mu.iter != nil {
		r.mu.iter.Stop() // no I/O: closes a channel
	}
	r.mu.cons, r.mu.iter = nil, nil
}

// Close stops the Reader and deletes its consumer. A Next blocked in
// another goroutine returns ErrClosed.
func (r *Reader) Close() error {
	r.mu.Lock()
	if r.mu.closed {
		r.mu.Unlock()
		return nil
	}
	r.mu.closed = true
	if r.mu.cancelWait != nil {
		r.mu.cancelWait()
	}
	cons := r.mu.cons
	r.forgetLocked()
	r.mu.Unlock()

	r.l.nc.RemoveStatusListener(r.status)
	r.wg.Wait()
	r.l.removeReader(r)
	if cons != nil {
		r.deleteConsumer(cons)
	}
	return nil
}
