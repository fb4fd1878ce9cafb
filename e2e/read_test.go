package e2e

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/weirtest"
)

// TestQueryNodeFailover runs the read path as separate processes over real etcd and
// nats-server: two query nodes serve a collection loaded with two replicas; kill -9 of one
// leaves every search answering; with one replica, the shards of a killed node are loaded again
// on the other and count(*) is exact afterwards; with the coordinator killed, the loaded
// collection keeps serving and a query node restarted meanwhile resumes its shards (R6).
func TestQueryNodeFailover(t *testing.T) {
	c, w, coll := weirtest.StartCluster(t, "reads")
	c.Start("qn1", "querynode", 1, "--check-interval", "200ms")
	c.Start("qn2", "querynode", 2, "--check-interval", "200ms")
	for range 40 {
		require.NoError(t, w.Insert(t, 50))
	}
	w.Flush(t)
	for range 10 {
		require.NoError(t, w.Insert(t, 50)) // growing rows too
	}
	weirtest.IndexAndLoad(t, w, 2)
	requireCount := func(what string) {
		t.Helper()
		n, err := weirtest.CountStrong(w)
		require.NoError(t, err, what)
		require.Equal(t, int64(w.Live()), n, "count(*) %s", what)
	}
	requireCount("after the load")

	// Two replicas: searches keep answering through a kill -9 of either node.
	var searches, failures atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for k := int64(0); ; k = (k + 37) % 2500 {
			select {
			case <-stop:
				return
			default:
			}
			got, err := weirtest.SearchKey(w, k)
			searches.Add(1)
			if err != nil || got != k {
				failures.Add(1)
				t.Logf("search for %d: %d, %v", k, got, err)
			}
		}
	}()
	time.Sleep(300 * time.Millisecond)
	c.Procs["qn1"].Kill()
	before := searches.Load()
	require.Eventually(t, func() bool { return searches.Load() > before+200 }, 30*time.Second, 10*time.Millisecond)
	close(stop)
	wg.Wait()
	require.Zero(t, failures.Load(), "searches failed with a replica left (%d searches)", searches.Load())
	requireCount("with one query node killed")

	// One replica: the killed node's shards move to the live one.
	c.Restart("qn1")
	weirtest.LoadReplicas(t, w, 1)
	c.Procs["qn2"].Kill()
	weirtest.WaitLoaded(t, w)
	var last string
	ok := assert.Eventually(t, func() bool {
		n, err := weirtest.CountStrong(w)
		if l := fmt.Sprintf("count %d of %d, %v", n, w.Live(), err); l != last {
			t.Log(l)
			last = l
		}
		return err == nil && n == int64(w.Live())
	}, 60*time.Second, 100*time.Millisecond, "count(*) exact once qn2's shards moved to qn1")
	t.Log(last)
	for _, name := range []string{"coord", "qn1"} {
		for _, l := range strings.Split(c.Procs[name].Log(), "\n") {
			if strings.Contains(l, "query") || strings.Contains(l, "shard") || strings.Contains(l, "WARN") || strings.Contains(l, "ERROR") {
				t.Log(name, l)
			}
		}
	}
	require.True(t, ok)
	states, err := c.Catalog.ListShardStates(t.Context(), coll.ID)
	require.NoError(t, err)
	for _, s := range states {
		require.Equal(t, int64(1), s.NodeID, "every shard on qn1")
	}

	// The coordinator down: reads go on; qn1 restarted meanwhile resumes its shards.
	c.Procs["coord"].Kill()
	requireCount("with the coordinator killed")
	c.Procs["qn1"].Kill()
	c.Restart("qn1")
	weirtest.WaitLoaded(t, w)
	require.NoError(t, w.Insert(t, 50))
	requireCount("after qn1 restarted without a coordinator")
	for _, k := range []int64{0, 1999, 2499, int64(w.Acked() - 1)} {
		got, err := weirtest.SearchKey(w, k)
		require.NoError(t, err)
		require.Equal(t, k, got)
	}
	c.NoPanics()
}
