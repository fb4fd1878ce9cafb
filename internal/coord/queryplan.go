package coord

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/weir-db/weir/internal/meta"
)

// QueryNodes reports the live query nodes.
type QueryNodes interface {
	LiveQueryNodes(ctx context.Context) ([]int64, error)
}

// QueryCatalog is what assigning query shards reads and writes.
type QueryCatalog interface {
	ListLoads(ctx context.Context) ([]*meta.Load, error)
	GetCollection(ctx context.Context, id int64) (*meta.Collection, error)
	ListShardAssignments(ctx context.Context, coll int64) ([]meta.ShardAssignment, error)
	AssignShard(ctx context.Context, a meta.ShardAssignment, loadRev, prev int64) (int64, error)
	UnassignShard(ctx context.Context, a meta.ShardAssignment) error
}

// shardWant is one replica of one channel a load asks for.
type shardWant struct {
	coll    int64
	ch      string
	replica int
}

// queryPlan decides shard assignments from the wanted shards (every channel of every loaded
// collection, once per replica), the current assignments and the live query nodes. It is pure
// and deterministic:
//
//   - an assignment to a live node stays, unless another replica of its channel sits on that
//     node already (the lower replica keeps it): two replicas of a channel on one node would
//     fail together;
//   - a wanted shard without one (new, or its node dead) goes to the live node with the fewest
//     shards that holds no replica of its channel (the lowest ID among equals); with no such
//     node it waits (more replicas than live nodes), and loses an assignment that shares a live
//     node with another replica of its channel;
//   - assignments no load wants any more are removed;
//   - healthy shards are not moved to balance: a move reloads a shard, and with one replica
//     the collection would stop answering meanwhile. New nodes take new shards.
//
// It returns the assignments to write (NodeID set; ModRevision the one replaced, 0 for none)
// and those to remove.
func queryPlan(want []shardWant, current []meta.ShardAssignment, live []int64) (assign, remove []meta.ShardAssignment) {
	alive := map[int64]bool{}
	for _, n := range live {
		alive[n] = true
	}
	type slot struct {
		ch      string
		replica int
	}
	wanted := map[slot]shardWant{}
	for _, w := range want {
		wanted[slot{w.ch, w.replica}] = w
	}
	load := map[int64]int{}
	onNode := map[string]map[int64]bool{} // channel → nodes holding a replica of it
	place := func(ch string, node int64) {
		load[node]++
		if onNode[ch] == nil {
			onNode[ch] = map[int64]bool{}
		}
		onNode[ch][node] = true
	}
	cur := map[slot]meta.ShardAssignment{}
	sorted := slices.Clone(current)
	slices.SortFunc(sorted, func(a, b meta.ShardAssignment) int {
		return cmp.Or(cmp.Compare(a.Channel, b.Channel), cmp.Compare(a.Replica, b.Replica))
	})
	var orphans []shardWant
	for _, a := range sorted {
		s := slot{a.Channel, a.Replica}
		w, ok := wanted[s]
		if !ok || w.coll != a.CollectionID {
			remove = append(remove, a)
			continue
		}
		cur[s] = a
		if alive[a.NodeID] && !onNode[a.Channel][a.NodeID] {
			place(a.Channel, a.NodeID)
			continue
		}
		orphans = append(orphans, w)
	}
	for _, w := range want {
		if _, ok := cur[slot{w.ch, w.replica}]; !ok {
			orphans = append(orphans, w)
		}
	}
	slices.SortFunc(orphans, func(a, b shardWant) int {
		return cmp.Or(cmp.Compare(a.ch, b.ch), cmp.Compare(a.replica, b.replica))
	})
	for _, w := range orphans {
		var best int64
		found := false
		for _, n := range live {
			if onNode[w.ch][n] {
				continue
			}
			if !found || load[n] < load[best] || (load[n] == load[best] && n < best) {
				best, found = n, true
			}
		}
		if !found {
			// No node can take it (more replicas than live nodes). An assignment it has stays
			// on a dead node harmlessly, but one sharing a live node with another replica of
			// its channel must go: the shard waits unassigned for a node.
			if a, ok := cur[slot{w.ch, w.replica}]; ok && alive[a.NodeID] {
				remove = append(remove, a)
			}
			continue
		}
		place(w.ch, best)
		a := meta.ShardAssignment{CollectionID: w.coll, Channel: w.ch, Replica: w.replica, NodeID: best}
		a.ModRevision = cur[slot{w.ch, w.replica}].ModRevision
		assign = append(assign, a)
	}
	return assign, remove
}

// AssignQueryShards runs one round of query shard assignment: every channel of every loaded
// collection, once per replica, on a live query node. Each write compares the load record and
// the assignment it replaces, so a release racing it wins.
func AssignQueryShards(ctx context.Context, cat QueryCatalog, nodes QueryNodes) ([]meta.ShardAssignment, error) {
	live, err := nodes.LiveQueryNodes(ctx)
	if err != nil {
		return nil, err
	}
	loads, err := cat.ListLoads(ctx)
	if err != nil {
		return nil, err
	}
	loadRev := map[int64]int64{}
	var want []shardWant
	for _, l := range loads {
		coll, err := cat.GetCollection(ctx, l.CollectionID)
		if err != nil {
			return nil, err
		}
		loadRev[l.CollectionID] = l.ModRevision
		for _, ch := range coll.VChannels {
			for r := range max(l.Replicas, 1) {
				want = append(want, shardWant{coll: coll.ID, ch: ch, replica: r})
			}
		}
	}
	current, err := cat.ListShardAssignments(ctx, 0)
	if err != nil {
		return nil, err
	}
	assign, remove := queryPlan(want, current, live)
	var errs []error
	for _, a := range remove {
		if err := cat.UnassignShard(ctx, a); err != nil && !errors.Is(err, meta.ErrLoadConflict) {
			errs = append(errs, err)
		}
	}
	var done []meta.ShardAssignment
	for _, a := range assign {
		if _, err := cat.AssignShard(ctx, a, loadRev[a.CollectionID], a.ModRevision); err != nil {
			if !errors.Is(err, meta.ErrLoadConflict) {
				errs = append(errs, fmt.Errorf("assign %s/%d to query node %d: %w", a.Channel, a.Replica, a.NodeID, err))
			}
			continue
		}
		done = append(done, a)
	}
	return done, errors.Join(errs...)
}
