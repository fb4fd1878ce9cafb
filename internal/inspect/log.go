package inspect

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/weir-db/weir/internal/wal"
)

// Log is what inspect reads of the DML channels.
type Log interface {
	// LastPosition returns the channel's last position (0 when empty); an error wrapping
	// wal.ErrChannelNotFound when the channel does not exist.
	LastPosition(ctx context.Context, channel string) (uint64, error)
	// Scan calls fn with every record kept at positions 1 to `to`, in order, and stops at the
	// first error fn returns. `to` must not exceed LastPosition.
	Scan(ctx context.Context, channel string, to uint64, fn func(pos uint64, data []byte) error) error
	// Check reports whether the channel still holds the record a names (wal.Log.Check).
	Check(ctx context.Context, channel string, a wal.Anchor) error
}

// DefaultIdle is how long WAL.Scan waits for a record it expects before giving up.
const DefaultIdle = 10 * time.Second

// WAL is a Log over package wal's channels.
type WAL struct {
	log *wal.Log
	// idle bounds each wait for the next record: the records up to LastPosition are stored,
	// so only a channel truncated to nothing leaves a Reader waiting.
	idle time.Duration
}

var _ Log = (*WAL)(nil)

// NewWAL returns a Log reading l; idle 0 means DefaultIdle.
func NewWAL(l *wal.Log, idle time.Duration) *WAL {
	if idle <= 0 {
		idle = DefaultIdle
	}
	return &WAL{log: l, idle: idle}
}

// LastPosition implements Log.
func (w *WAL) LastPosition(ctx context.Context, channel string) (uint64, error) {
	return w.log.LastPosition(ctx, channel)
}

// Check implements Log.
func (w *WAL) Check(ctx context.Context, channel string, a wal.Anchor) error {
	return w.log.Check(ctx, channel, a)
}

// Scan implements Log with a wal.Reader from position 1 (the first kept record).
func (w *WAL) Scan(ctx context.Context, channel string, to uint64, fn func(pos uint64, data []byte) error) error {
	if to == 0 {
		return nil
	}
	r, err := w.log.Read(ctx, channel, 1)
	if err != nil {
		return err
	}
	defer r.Close()
	for {
		nctx, cancel := context.WithTimeout(ctx, w.idle)
		m, err := r.Next(nctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("scan %s: no record within %s while positions up to %d remain (truncated?)", channel, w.idle, to)
			}
			return fmt.Errorf("scan %s: %w", channel, err)
		}
		if m.Pos > to {
			return nil // the records up to `to` were truncated
		}
		if err := fn(m.Pos, m.Data); err != nil {
			return err
		}
		if m.Pos == to {
			return nil
		}
	}
}
