package replay

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/dml"
	"github.com/weir-db/weir/internal/meta"
)

func TestFilterKeepsWhatNoCommittedSegmentHolds(t *testing.T) {
	f := NewFilter()
	f.Commit(meta.Segment{PartitionID: 1, Level: meta.L1, State: meta.Flushed, MaxPos: 10})
	f.Commit(meta.Segment{PartitionID: 1, Level: meta.L1, State: meta.Growing, MaxPos: 7})
	f.Commit(meta.Segment{PartitionID: 2, Level: meta.L1, State: meta.SegmentDropped, MaxPos: 50})
	f.Commit(meta.Segment{PartitionID: dml.AllPartitions, Level: meta.L0, MaxPos: 12})
	f.Commit(meta.Segment{PartitionID: 1, Level: meta.L0, MaxPos: 4})

	cases := []struct {
		name      string
		pos       uint64
		h         dml.Header
		del, rows bool
	}{
		{"insert at the highest committed position", 10, dml.Header{Kind: dml.Insert, PartitionID: 1}, false, false},
		{"insert above it", 11, dml.Header{Kind: dml.Insert, PartitionID: 1}, false, true},
		{"insert of a partition whose only segment was dropped", 3, dml.Header{Kind: dml.Insert, PartitionID: 2}, false, true},
		{"delete of all partitions below its L0", 12, dml.Header{Kind: dml.Delete, PartitionID: dml.AllPartitions}, false, false},
		{"delete of partition 1 above its L0", 5, dml.Header{Kind: dml.Delete, PartitionID: 1}, true, false},
		{"upsert whose rows are committed, delete not", 6, dml.Header{Kind: dml.Upsert, PartitionID: 1}, true, false},
		{"upsert of all partitions: delete committed, rows not", 11, dml.Header{Kind: dml.UpsertAllPartitions, PartitionID: 1}, false, true},
		{"flush marker", 100, dml.Header{Kind: dml.Flush}, false, false},
	}
	for _, c := range cases {
		del, rows := f.Keep(c.pos, c.h)
		require.Equal(t, [2]bool{c.del, c.rows}, [2]bool{del, rows}, c.name)
	}
	require.Equal(t, uint64(10), f.Inserts(1))
	require.Equal(t, uint64(12), f.Deletes(dml.AllPartitions))
}

func TestStampGrowsWithPositions(t *testing.T) {
	require.Equal(t, uint64(5), Stamp(5, 4))
	require.Equal(t, uint64(5), Stamp(4, 4))
	require.Equal(t, uint64(10), Stamp(2, 9))
}
