package coord

import (
	"cmp"
	"maps"
	"slices"

	"github.com/weir-db/weir/internal/meta"
)

// Move is one channel assignment decision: give Channel (of Collection) to node To. From is
// the node that held its lease (0 when none).
type Move struct {
	Channel    string
	Collection int64
	From, To   int64
	Reason     string
}

// plan decides channel moves from the channels that should be served (channel → collection),
// the current leases and the live data nodes. It is pure and deterministic:
//
//   - a channel without a lease, or whose lease names a node that is not live, goes to the
//     live node with the fewest channels (the lowest ID among equals);
//   - then, while one node holds two or more channels more than another, one channel moves
//     from the most loaded node to the least loaded (a node that joined takes its share);
//   - a healthy, balanced assignment produces no move, so a restarted coordinator releases
//     nothing.
//
// With no live node nothing moves: channels wait, and nothing already acknowledged is at risk
// because the WAL holds it.
func plan(channels map[string]int64, leases map[string]meta.Lease, live []int64) []Move {
	if len(live) == 0 {
		return nil
	}
	load := map[int64][]string{}
	for _, n := range live {
		load[n] = nil
	}
	var moves []Move
	var orphans []string
	for _, ch := range slices.Sorted(maps.Keys(channels)) {
		l, ok := leases[ch]
		if _, alive := load[l.NodeID]; ok && alive {
			load[l.NodeID] = append(load[l.NodeID], ch)
			continue
		}
		orphans = append(orphans, ch)
	}
	least := func() int64 {
		return slices.MinFunc(live, func(a, b int64) int {
			return cmp.Or(cmp.Compare(len(load[a]), len(load[b])), cmp.Compare(a, b))
		})
	}
	most := func() int64 {
		return slices.MaxFunc(live, func(a, b int64) int {
			return cmp.Or(cmp.Compare(len(load[a]), len(load[b])), cmp.Compare(b, a))
		})
	}
	for _, ch := range orphans {
		to := least()
		reason := "unassigned"
		if _, ok := leases[ch]; ok {
			reason = "owner not live"
		}
		moves = append(moves, Move{Channel: ch, Collection: channels[ch], From: leases[ch].NodeID, To: to, Reason: reason})
		load[to] = append(load[to], ch)
	}
	for {
		hi, lo := most(), least()
		if len(load[hi])-len(load[lo]) <= 1 {
			return moves
		}
		// Move the channel the busiest node got last (sorted name order): deterministic.
		chs := load[hi]
		ch := chs[len(chs)-1]
		load[hi] = chs[:len(chs)-1]
		load[lo] = append(load[lo], ch)
		moves = append(moves, Move{Channel: ch, Collection: channels[ch], From: hi, To: lo, Reason: "rebalance"})
	}
}
