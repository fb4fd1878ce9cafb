package coord

import (
	"fmt"
	"testing"

	"pgregory.net/rapid"

	"github.com/weir-db/weir/internal/meta"
)

// TestQueryPlan checks the plan's promises on random loads, assignments and live nodes: every
// wanted shard placed when enough nodes live, only on live nodes, never two replicas of a
// channel on one node, healthy assignments kept, unwanted ones removed, and a second round
// changes nothing.
func TestQueryPlan(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		nodes := rapid.IntRange(0, 5).Draw(t, "nodes")
		var live []int64
		for n := 1; n <= nodes; n++ {
			if rapid.Bool().Draw(t, "alive") {
				live = append(live, int64(n))
			}
		}
		var want []shardWant
		colls := rapid.IntRange(0, 3).Draw(t, "collections")
		replicas := map[int64]int{}
		for c := 1; c <= colls; c++ {
			r := rapid.IntRange(1, 3).Draw(t, "replicas")
			replicas[int64(c)] = r
			for s := range rapid.IntRange(1, 3).Draw(t, "shards") {
				for i := range r {
					want = append(want, shardWant{coll: int64(c), ch: fmt.Sprintf("c%d-%d", c, s), replica: i})
				}
			}
		}
		var current []meta.ShardAssignment
		rev := int64(1)
		for c := 1; c <= 4; c++ {
			for s := range 3 {
				for i := range 3 {
					if rapid.IntRange(0, 3).Draw(t, "assigned") == 0 {
						rev++
						current = append(current, meta.ShardAssignment{CollectionID: int64(c), Channel: fmt.Sprintf("c%d-%d", c, s),
							Replica: i, NodeID: rapid.Int64Range(1, 6).Draw(t, "node"), ModRevision: rev})
					}
				}
			}
		}
		assign, remove := queryPlan(want, current, live)

		// Apply the plan.
		after := map[string]meta.ShardAssignment{}
		slot := func(a meta.ShardAssignment) string { return fmt.Sprintf("%s/%d", a.Channel, a.Replica) }
		for _, a := range current {
			after[slot(a)] = a
		}
		for _, a := range remove {
			if _, wanted := wantedSlot(want, a); wanted && isLiveNode(live, a.NodeID) {
				// A wanted shard is removed only to split two replicas sharing a node.
				shared := false
				for _, b := range current {
					if b.Channel == a.Channel && b.Replica < a.Replica && b.NodeID == a.NodeID {
						shared = true
					}
				}
				if !shared {
					t.Fatalf("%s removed from live node %d", slot(a), a.NodeID)
				}
			}
			delete(after, slot(a))
		}
		isLive := map[int64]bool{}
		for _, n := range live {
			isLive[n] = true
		}
		for _, a := range assign {
			if !isLive[a.NodeID] {
				t.Fatalf("%s assigned to dead node %d", slot(a), a.NodeID)
			}
			if old, ok := after[slot(a)]; ok != (a.ModRevision != 0) || (ok && old.ModRevision != a.ModRevision) {
				t.Fatalf("%s: the write does not compare the assignment it replaces", slot(a))
			}
			if old, ok := after[slot(a)]; ok && isLive[old.NodeID] {
				// Moved off a live node: only to split two replicas sharing it.
				shared := false
				for _, b := range current {
					if b.Channel == a.Channel && b.Replica < a.Replica && b.NodeID == old.NodeID {
						shared = true
					}
				}
				if !shared {
					t.Fatalf("%s moved off live node %d", slot(a), old.NodeID)
				}
			}
			rev++
			a.ModRevision = rev
			after[slot(a)] = a
		}
		wanted := map[string]shardWant{}
		for _, w := range want {
			wanted[fmt.Sprintf("%s/%d", w.ch, w.replica)] = w
		}
		perChannel := map[string]map[int64]bool{}
		for s, a := range after {
			if _, ok := wanted[s]; !ok {
				t.Fatalf("unwanted shard %s kept", s)
			}
			if !isLive[a.NodeID] {
				continue // waiting: not enough nodes
			}
			if perChannel[a.Channel] == nil {
				perChannel[a.Channel] = map[int64]bool{}
			}
			if perChannel[a.Channel][a.NodeID] {
				t.Fatalf("two replicas of %s on node %d", a.Channel, a.NodeID)
			}
			perChannel[a.Channel][a.NodeID] = true
		}
		for s, w := range wanted {
			a, ok := after[s]
			if replicas[w.coll] <= len(live) && (!ok || !isLive[a.NodeID]) {
				t.Fatalf("shard %s not placed with %d live nodes for %d replicas", s, len(live), replicas[w.coll])
			}
		}
		// A second round over the result changes nothing.
		var cur []meta.ShardAssignment
		for _, a := range after {
			cur = append(cur, a)
		}
		a2, r2 := queryPlan(want, cur, live)
		if len(r2) != 0 {
			t.Fatalf("second round removes %v", r2)
		}
		for _, a := range a2 {
			if old, ok := after[slot(a)]; ok && isLive[old.NodeID] {
				t.Fatalf("second round moves %s off live node %d", slot(a), old.NodeID)
			}
		}
	})
}

func wantedSlot(want []shardWant, a meta.ShardAssignment) (shardWant, bool) {
	for _, w := range want {
		if w.ch == a.Channel && w.replica == a.Replica && w.coll == a.CollectionID {
			return w, true
		}
	}
	return shardWant{}, false
}

func isLiveNode(live []int64, n int64) bool {
	for _, l := range live {
		if l == n {
			return true
		}
	}
	return false
}
