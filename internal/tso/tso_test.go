package tso

import (
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
