// Package tso produces Milvus hybrid timestamps without a coordinator: physical milliseconds in
// the high bits, an 18-bit logical counter in the low bits, strictly increasing per Clock.
package tso

import (
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
type Clock struct {
	now func() time.Time

	mu   sync.Mutex
	last uint64
}

// NewClock returns a clock reading now (time.Now when nil).
func NewClock(now func() time.Time) *Clock {
	if now == nil {
		now = time.Now
	}
	return &Clock{now: now}
}

// Next returns a timestamp greater than every one returned before.
func (c *Clock) Next() uint64 {
	ts := Compose(c.now(), 0)
	c.mu.Lock()
	defer c.mu.Unlock()
	if ts <= c.last {
		ts = c.last + 1
	}
	c.last = ts
	return ts
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
