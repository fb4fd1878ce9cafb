package tso

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestComposeAndPhysical(t *testing.T) {
	at := time.Date(2026, 11, 28, 5, 0, 0, 123_000_000, time.UTC)
	ts := Compose(at, 7)
	require.Equal(t, uint64(7), ts&(1<<LogicalBits-1))
	require.Equal(t, at, Physical(ts))
}

func TestClockIsStrictlyIncreasingWhenTimeStandsStillOrStepsBack(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewClock(func() time.Time { return now })
	a := c.Next()
	b := c.Next()
	require.Equal(t, a+1, b, "same millisecond: the logical counter orders")
	now = now.Add(-time.Second) // the wall clock steps back
	require.Greater(t, c.Next(), b)
	now = now.Add(time.Hour)
	require.Equal(t, Compose(now, 0), c.Next(), "a later wall clock is used as is")
	c.Observe(Compose(now.Add(time.Minute), 5))
	require.Equal(t, Compose(now.Add(time.Minute), 6), c.Next())
	c.Observe(1) // observing the past changes nothing
	require.Equal(t, Compose(now.Add(time.Minute), 7), c.Next())
}

func TestClockConcurrentUnique(t *testing.T) {
	c := NewClock(nil)
	var mu sync.Mutex
	seen := map[uint64]bool{}
	dups := 0
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				ts := c.Next()
				mu.Lock()
				if seen[ts] {
					dups++ // asserted after Wait: a failing require here would leave mu locked
				}
				seen[ts] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.Zero(t, dups)
	require.Len(t, seen, 8000)
}

// memBound is a BoundStore in memory; down makes it fail.
type memBound struct {
	mu    sync.Mutex
	bound uint64
	down  bool
}

func (m *memBound) LoadBound(context.Context) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.bound, nil
}

func (m *memBound) SaveBound(_ context.Context, ts uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return errors.New("store down")
	}
	m.bound = ts
	return nil
}

// TestWindowKeepsTimestampsMonotonicAcrossRestarts: a clock restarted over the same store hands
// out timestamps above every one of its previous run, even when the wall clock stepped back an
// hour between the runs (issue 11, item 9).
func TestWindowKeepsTimestampsMonotonicAcrossRestarts(t *testing.T) {
	ctx := context.Background()
	store := &memBound{}
	wall := time.UnixMilli(1_700_000_000_000)
	c1 := NewClock(func() time.Time { return wall })
	_, err := OpenWindow(ctx, c1, store, 3*time.Second)
	require.NoError(t, err)
	var last uint64
	for range 1000 {
		last = c1.Next()
	}
	require.Greater(t, store.bound, last, "the bound is saved ahead of what is handed out")

	c2 := NewClock(func() time.Time { return wall.Add(-time.Hour) })
	_, err = OpenWindow(ctx, c2, store, 3*time.Second)
	require.NoError(t, err)
	require.Greater(t, c2.Next(), last)
}

// TestWindowHoldsTheClockAtItsBound: the clock hands out nothing above the saved bound; while the
// store cannot save a new one, a caller waits (and gives up with its context), and once a bound
// is saved the clock goes on.
func TestWindowHoldsTheClockAtItsBound(t *testing.T) {
	ctx := context.Background()
	store := &memBound{}
	var mu sync.Mutex
	wall := time.UnixMilli(1_700_000_000_000)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return wall }
	c := NewClock(now)
	w, err := OpenWindow(ctx, c, store, 30*time.Millisecond)
	require.NoError(t, err)
	mu.Lock()
	wall = wall.Add(time.Second) // past the bound
	mu.Unlock()
	store.mu.Lock()
	store.down = true
	store.mu.Unlock()
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = c.NextCtx(short)
	require.ErrorIs(t, err, context.DeadlineExceeded, "no timestamp above an unsaved bound")

	store.mu.Lock()
	store.down = false
	store.mu.Unlock()
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); w.Run(rctx, nil) }()
	ts, err := c.NextCtx(ctx)
	stop()
	<-done
	require.NoError(t, err)
	require.LessOrEqual(t, ts, store.bound)
}
