// Package tso produces Milvus hybrid timestamps without a coordinator: physical milliseconds in
// the high bits, an 18-bit logical counter in the low bits, strictly increasing per Clock.
package tso

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// LogicalBits is the width of the logical counter, as in Milvus.
const LogicalBits = 18

// Compose returns the hybrid timestamp of physical time t and logical counter l.
func Compose(t time.Time, l uint64) uint64 {
	return uint64(t.UnixMilli())<<LogicalBits | l&(1<<LogicalBits-1)
}

// Physical returns the wall-clock time of a hybrid timestamp, to the millisecond.
func Physical(ts uint64) time.Time { return time.UnixMilli(int64(ts >> LogicalBits)).UTC() }

// Clock hands out strictly increasing hybrid timestamps. When the wall clock stands still or
// steps back, the logical counter carries the order (and spills into the physical bits if more
// than 2^18 timestamps are taken in one millisecond, which keeps the order at the cost of running
// slightly ahead of the wall clock).
//
// A Clock may have a ceiling (see Window): it then hands out no timestamp above it, and a call
// that would waits until the ceiling is raised.
type Clock struct {
	now func() time.Time

	mu      sync.Mutex
	last    uint64
	ceiling uint64        // 0: none
	raised  chan struct{} // closed and replaced whenever the ceiling rises
}

// NewClock returns a clock reading now (time.Now when nil).
func NewClock(now func() time.Time) *Clock {
	if now == nil {
		now = time.Now
	}
	return &Clock{now: now, raised: make(chan struct{})}
}

// Next returns a timestamp greater than every one returned before. On a clock with a ceiling
// it waits for as long as the ceiling stays below; NextCtx bounds that wait.
func (c *Clock) Next() uint64 {
	ts, _ := c.NextCtx(context.Background())
	return ts
}

// NextCtx is Next, giving up with ctx's error while the clock is held below its ceiling.
func (c *Clock) NextCtx(ctx context.Context) (uint64, error) {
	for {
		ts := Compose(c.now(), 0)
		c.mu.Lock()
		if ts <= c.last {
			ts = c.last + 1
		}
		if c.ceiling == 0 || ts <= c.ceiling {
			c.last = ts
			c.mu.Unlock()
			return ts, nil
		}
		raised := c.raised
		c.mu.Unlock()
		select {
		case <-raised:
		case <-ctx.Done():
			return 0, fmt.Errorf("tso: no timestamp above %d can be handed out until it is saved: %w", ts-1, ctx.Err())
		}
	}
}

// Observe moves the clock past ts, so later timestamps order after an event stamped ts
// elsewhere.
func (c *Clock) Observe(ts uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ts > c.last {
		c.last = ts
	}
}

// raise lifts the ceiling to ts.
func (c *Clock) raise(ts uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ts > c.ceiling {
		c.ceiling = ts
		close(c.raised)
		c.raised = make(chan struct{})
	}
}

// BoundStore keeps a Window's bound between runs.
type BoundStore interface {
	// LoadBound returns the bound saved last, 0 if none was.
	LoadBound(ctx context.Context) (uint64, error)
	SaveBound(ctx context.Context, ts uint64) error
}

// Window keeps a Clock's timestamps monotonic across restarts, as Milvus's TSO does: before the
// clock may hand out a timestamp, a bound above it is saved (Size ahead of the wall clock), and a
// clock started again over the same store begins above the last bound saved. So a restarted
// process never hands out a timestamp at or below one it handed out before, even when the wall
// clock stepped back meanwhile; the price is that after a restart its timestamps may run up to
// Size ahead of the wall clock until the wall clock catches up.
type Window struct {
	clock *Clock
	store BoundStore
	size  time.Duration
}

// OpenWindow loads the saved bound, moves c past it, and saves the first bound, so that c can
// hand out timestamps when it returns. Run keeps the bound ahead.
func OpenWindow(ctx context.Context, c *Clock, store BoundStore, size time.Duration) (*Window, error) {
	saved, err := store.LoadBound(ctx)
	if err != nil {
		return nil, fmt.Errorf("tso: load bound: %w", err)
	}
	c.Observe(saved)
	w := &Window{clock: c, store: store, size: size}
	c.mu.Lock()
	c.ceiling = saved // nothing above it until the first bound is saved
	if c.ceiling == 0 {
		c.ceiling = 1
	}
	c.mu.Unlock()
	if err := w.extend(ctx); err != nil {
		return nil, err
	}
	return w, nil
}

// extend saves a bound Size ahead of the wall clock (and above every timestamp handed out) and
// lets the clock use it.
func (w *Window) extend(ctx context.Context) error {
	w.clock.mu.Lock()
	bound := max(Compose(w.clock.now().Add(w.size), 0), w.clock.last+1, w.clock.ceiling)
	w.clock.mu.Unlock()
	if err := w.store.SaveBound(ctx, bound); err != nil {
		return fmt.Errorf("tso: save bound: %w", err)
	}
	w.clock.raise(bound)
	return nil
}

// Run keeps the bound ahead of the wall clock, saving a new one every third of Size, until ctx
// is done. While the store is unreachable the bound stays where it is, and the clock waits at
// it once the wall clock gets there.
func (w *Window) Run(ctx context.Context, logf func(err error)) {
	t := time.NewTicker(w.size / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sctx, cancel := context.WithTimeout(ctx, w.size/3)
		err := w.extend(sctx)
		cancel()
		if err != nil && ctx.Err() == nil && logf != nil {
			logf(err)
		}
	}
}

// NewWindowedClock returns a clock kept monotonic across restarts by a window of size over store
// (OpenWindow), with its bound kept ahead in the background (Start; logf hears failed saves),
// and the function that stops that.
func NewWindowedClock(ctx context.Context, store BoundStore, size time.Duration, logf func(err error)) (*Clock, func(), error) {
	c := NewClock(nil)
	w, err := OpenWindow(ctx, c, store, size)
	if err != nil {
		return nil, nil, err
	}
	return c, w.Start(logf), nil
}

// Start runs Run in a goroutine and returns the function that stops it and waits for it.
func (w *Window) Start(logf func(err error)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx, logf) }()
	return func() { cancel(); <-done }
}
