package coord

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/weir-db/weir/internal/meta"
)

func leasesOf(m map[string]int64) map[string]meta.Lease {
	out := map[string]meta.Lease{}
	for ch, n := range m {
		out[ch] = meta.Lease{Channel: ch, NodeID: n}
	}
	return out
}

func TestPlanExamples(t *testing.T) {
	chans := map[string]int64{"a": 1, "b": 1, "c": 2, "d": 2}
	cases := []struct {
		name   string
		leases map[string]int64
		live   []int64
		want   []Move
	}{
		{"no live node", nil, nil, nil},
		{"fresh cluster spreads channels", nil, []int64{1, 2}, []Move{
			{"a", 1, 0, 1, "unassigned"}, {"b", 1, 0, 2, "unassigned"}, {"c", 2, 0, 1, "unassigned"}, {"d", 2, 0, 2, "unassigned"}}},
		{"healthy balanced assignment is kept", map[string]int64{"a": 2, "b": 1, "c": 2, "d": 1}, []int64{1, 2}, nil},
		{"dead owner's channels move", map[string]int64{"a": 1, "b": 2, "c": 1, "d": 2}, []int64{2}, []Move{
			{"a", 1, 1, 2, "owner not live"}, {"c", 2, 1, 2, "owner not live"}}},
		{"a joining node takes its share", map[string]int64{"a": 1, "b": 1, "c": 1, "d": 1}, []int64{1, 2}, []Move{
			{"d", 2, 1, 2, "rebalance"}, {"c", 2, 1, 2, "rebalance"}}},
		{"an imbalance of one is fine", map[string]int64{"a": 1, "b": 1, "c": 2}, []int64{1, 2}, []Move{
			{"d", 2, 0, 2, "unassigned"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.want, plan(chans, leasesOf(c.leases), c.live))
		})
	}
}

// TestPlanProperties: after applying a plan every channel is on a live node, loads differ by at
// most one, only channels that had to move (orphaned) or that balance requires move, and a
// second plan over the result is empty.
func TestPlanProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		nch := rapid.IntRange(0, 40).Draw(t, "channels")
		chans := map[string]int64{}
		for i := 0; i < nch; i++ {
			chans[fmt.Sprintf("ch%02d", i)] = int64(i % 3)
		}
		nodes := rapid.SliceOfNDistinct(rapid.Int64Range(1, 9), 0, 6, rapid.ID[int64]).Draw(t, "live")
		leases := map[string]meta.Lease{}
		for ch := range chans {
			if rapid.Bool().Draw(t, "leased "+ch) {
				leases[ch] = meta.Lease{Channel: ch, NodeID: rapid.Int64Range(1, 9).Draw(t, "owner "+ch)}
			}
		}
		moves := plan(chans, leases, nodes)
		if len(nodes) == 0 {
			if len(moves) != 0 {
				t.Fatal("moves without live nodes")
			}
			return
		}
		after := map[string]meta.Lease{}
		for ch, l := range leases {
			after[ch] = l
		}
		moved := map[string]bool{}
		for _, m := range moves {
			if moved[m.Channel] {
				t.Fatalf("channel %s moved twice", m.Channel)
			}
			moved[m.Channel] = true
			after[m.Channel] = meta.Lease{Channel: m.Channel, NodeID: m.To}
		}
		load := map[int64]int{}
		for _, n := range nodes {
			load[n] = 0
		}
		for ch := range chans {
			n := after[ch].NodeID
			if _, ok := load[n]; !ok {
				t.Fatalf("channel %s on node %d, which is not live", ch, n)
			}
			load[n]++
		}
		lo, hi := nch, 0
		for _, c := range load {
			lo, hi = min(lo, c), max(hi, c)
		}
		if hi-lo > 1 {
			t.Fatalf("unbalanced: %v", load)
		}
		if again := plan(chans, after, nodes); len(again) != 0 {
			t.Fatalf("plan is not stable: %v", again)
		}
	})
}
