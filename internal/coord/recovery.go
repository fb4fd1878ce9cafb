package coord

import (
	"context"
	"errors"
	"slices"

	"github.com/weir-db/weir/internal/meta"
)

// SegmentRecovery is a segment and the files a query node loads for it.
type SegmentRecovery struct {
	meta.Segment
	Files []meta.File
}

// ChannelRecovery is the recovery target of one channel: the flushed segments to load, the
// growing ones whose committed files to load, the channel's L0 delete segments, and the
// checkpoint to tail the channel from for everything newer.
type ChannelRecovery struct {
	Channel    string
	Collection int64
	Checkpoint meta.Checkpoint
	Lease      meta.Lease
	Flushed    []SegmentRecovery
	Growing    []SegmentRecovery
	L0         []SegmentRecovery
}

// RecoveryInfo is the recovery target of a collection or a channel, as of one metastore
// revision.
type RecoveryInfo struct {
	Revision int64
	Channels []ChannelRecovery
}

// ErrNotReady means the coordinator has not loaded the metastore yet.
var ErrNotReady = errors.New("coord: view not loaded yet")

// RecoveryInfo answers from the reloaded view: the target of every channel of a collection, or
// of one channel when ch is set.
func (c *Coordinator) RecoveryInfo(ctx context.Context, collection int64, ch string) (RecoveryInfo, error) {
	c.mu.Lock()
	ready := c.reloaded
	c.mu.Unlock()
	if !ready {
		return RecoveryInfo{}, ErrNotReady
	}
	return recoveryFrom(c.view, collection, ch), nil
}

// recoveryFrom builds recovery targets from one snapshot of a view, so that every checkpoint
// and segment in the answer comes from the same reload (a checkpoint newer than the segments
// beside it would tell a reader to skip rows). The same function serves the coordinator and
// the tests that compare it with a fresh full load.
func recoveryFrom(v *meta.View, collection int64, ch string) RecoveryInfo {
	snap := v.Snapshot(collection)
	info := RecoveryInfo{Revision: snap.Revision}
	byCh := map[string]*ChannelRecovery{}
	get := func(name string, coll int64) *ChannelRecovery {
		if r := byCh[name]; r != nil {
			return r
		}
		r := &ChannelRecovery{Channel: name, Collection: coll, Checkpoint: snap.Checkpoints[name], Lease: snap.Leases[name]}
		byCh[name] = r
		return r
	}
	for _, s := range snap.Segments {
		if ch != "" && s.Channel != ch {
			continue
		}
		r := get(s.Channel, s.CollectionID)
		sr := SegmentRecovery{Segment: s, Files: snap.Files[s.ID]}
		switch {
		case s.State == meta.SegmentDropped:
		case s.Level == meta.L0:
			r.L0 = append(r.L0, sr)
		case s.State == meta.Flushed:
			r.Flushed = append(r.Flushed, sr)
		default:
			r.Growing = append(r.Growing, sr)
		}
	}
	// Channels with a lease but no segment yet still have a checkpoint to tail from.
	for name, l := range snap.Leases {
		if (ch == "" || name == ch) && (collection == 0 || l.CollectionID == collection) {
			get(name, l.CollectionID)
		}
	}
	for _, r := range byCh {
		info.Channels = append(info.Channels, *r)
	}
	slices.SortFunc(info.Channels, func(a, b ChannelRecovery) int {
		switch {
		case a.Channel < b.Channel:
			return -1
		case a.Channel > b.Channel:
			return 1
		}
		return 0
	})
	return info
}
