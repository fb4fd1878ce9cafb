package inspect

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/tso"
	"github.com/weir-db/weir/internal/wal"
)

// ChannelRow is one DML channel: its owner and how far its checkpoint trails the channel.
type ChannelRow struct {
	Channel         string     `json:"channel"`
	CollectionID    int64      `json:"collection_id"`
	Collection      string     `json:"collection"`                 // "" when no record names it
	CollectionState meta.State `json:"collection_state,omitempty"` // created or dropped
	Node            int64      `json:"node"`                       // 0: no lease
	Lease           int64      `json:"lease"`                      // the lease revision (fencing token)
	Legacy          bool       `json:"legacy"`
	// OwnerLive is whether the lease's node has a live data node session; null when unknown
	// (no lease, or no sessions at all, as in standalone).
	OwnerLive      *bool     `json:"owner_live"`
	Checkpoint     uint64    `json:"checkpoint"`
	CheckpointTime time.Time `json:"checkpoint_time,omitzero"`
	// LastPosition and Lag (last position minus checkpoint) are null without a Log or when the
	// channel has no stream.
	LastPosition *uint64 `json:"last_position"`
	Lag          *int64  `json:"lag"`
}

// SegmentRow is one segment record.
type SegmentRow struct {
	CollectionID int64             `json:"collection_id"`
	PartitionID  int64             `json:"partition_id"`
	Channel      string            `json:"channel"`
	ID           int64             `json:"id"`
	Level        meta.Level        `json:"level"`
	State        meta.SegmentState `json:"state"`
	Rows         int64             `json:"rows"`
	Files        int               `json:"files"`
	Bytes        int64             `json:"bytes"`
	MaxPos       uint64            `json:"max_pos"`
	Lease        int64             `json:"lease"`
}

// CheckpointRow is one channel's checkpoint; Position 0 means none.
type CheckpointRow struct {
	Channel   string    `json:"channel"`
	Position  uint64    `json:"position"`
	Timestamp uint64    `json:"timestamp"`
	Time      time.Time `json:"time,omitzero"` // the physical part of Timestamp
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// Channels returns every channel of every collection record (in collection ID, then shard
// order), then leased channels no record names.
func (in *Inspector) Channels(ctx context.Context) ([]ChannelRow, error) {
	s, err := in.load(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]ChannelRow, 0, len(s.channels))
	for _, ref := range s.channels {
		r := ChannelRow{Channel: ref.name, CollectionID: ref.collID, OwnerLive: s.ownerLive(ref.name)}
		if ref.coll != nil {
			r.Collection, r.CollectionState = ref.coll.Name, ref.coll.State
		}
		if l, ok := s.leases[ref.name]; ok {
			r.Node, r.Lease, r.Legacy = l.NodeID, l.Revision, l.Legacy
		}
		cp := s.view.Checkpoint(ref.name)
		r.Checkpoint = cp.Position
		if cp.Timestamp != 0 {
			r.CheckpointTime = tso.Physical(cp.Timestamp)
		}
		if in.log != nil {
			last, err := in.log.LastPosition(ctx, ref.name)
			switch {
			case errors.Is(err, wal.ErrChannelNotFound):
			case err != nil:
				return nil, fmt.Errorf("channel %s: %w", ref.name, err)
			default:
				lag := int64(last) - int64(cp.Position)
				r.LastPosition, r.Lag = &last, &lag
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// Segments returns every segment record, by collection then segment ID.
func (in *Inspector) Segments(ctx context.Context) ([]SegmentRow, error) {
	s, err := in.load(ctx)
	if err != nil {
		return nil, err
	}
	segs := s.view.Segments(0)
	sortSegments(segs)
	out := make([]SegmentRow, 0, len(segs))
	for _, g := range segs {
		out = append(out, SegmentRow{CollectionID: g.CollectionID, PartitionID: g.PartitionID, Channel: g.Channel,
			ID: g.ID, Level: g.Level, State: g.State, Rows: g.Rows, Files: g.Files, Bytes: g.Bytes, MaxPos: g.MaxPos, Lease: g.Lease})
	}
	return out, nil
}

// Checkpoints returns the checkpoint of every channel Channels lists.
func (in *Inspector) Checkpoints(ctx context.Context) ([]CheckpointRow, error) {
	s, err := in.load(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]CheckpointRow, 0, len(s.channels))
	for _, ref := range s.channels {
		cp := s.view.Checkpoint(ref.name)
		r := CheckpointRow{Channel: ref.name, Position: cp.Position, Timestamp: cp.Timestamp, UpdatedAt: cp.UpdatedAt}
		if cp.Timestamp != 0 {
			r.Time = tso.Physical(cp.Timestamp)
		}
		out = append(out, r)
	}
	return out, nil
}

// Table is a result that prints as an aligned table.
type Table interface {
	Header() []string
	Cells() [][]string
}

// ChannelTable, SegmentTable and CheckpointTable print rows as tables.
type (
	ChannelTable    []ChannelRow
	SegmentTable    []SegmentRow
	CheckpointTable []CheckpointRow
)

// Header implements Table.
func (ChannelTable) Header() []string {
	return []string{"CHANNEL", "COLLECTION", "NODE", "LEASE", "LEGACY", "LIVE", "CHECKPOINT", "CHECKPOINT_TIME", "LAST", "LAG"}
}

// Cells implements Table.
func (t ChannelTable) Cells() [][]string {
	out := make([][]string, 0, len(t))
	for _, r := range t {
		coll := strconv.FormatInt(r.CollectionID, 10)
		if r.Collection != "" {
			coll = fmt.Sprintf("%s(%d)", r.Collection, r.CollectionID)
		}
		if r.CollectionState == meta.Dropped {
			coll += " dropped"
		}
		node, lease, legacy := "-", "-", "-"
		if r.Node != 0 {
			node, lease, legacy = strconv.FormatInt(r.Node, 10), strconv.FormatInt(r.Lease, 10), strconv.FormatBool(r.Legacy)
		}
		live := "-"
		if r.OwnerLive != nil {
			live = map[bool]string{true: "yes", false: "no"}[*r.OwnerLive]
		}
		last, lag := "-", "-"
		if r.LastPosition != nil {
			last, lag = strconv.FormatUint(*r.LastPosition, 10), strconv.FormatInt(*r.Lag, 10)
		}
		out = append(out, []string{r.Channel, coll, node, lease, legacy, live, strconv.FormatUint(r.Checkpoint, 10), timeCell(r.CheckpointTime), last, lag})
	}
	return out
}

// Header implements Table.
func (SegmentTable) Header() []string {
	return []string{"COLLECTION", "PARTITION", "CHANNEL", "SEGMENT", "LEVEL", "STATE", "ROWS", "FILES", "BYTES", "MAX_POS", "LEASE"}
}

// Cells implements Table.
func (t SegmentTable) Cells() [][]string {
	out := make([][]string, 0, len(t))
	for _, r := range t {
		out = append(out, []string{i64(r.CollectionID), i64(r.PartitionID), r.Channel, i64(r.ID), string(r.Level), string(r.State),
			i64(r.Rows), strconv.Itoa(r.Files), i64(r.Bytes), strconv.FormatUint(r.MaxPos, 10), i64(r.Lease)})
	}
	return out
}

// Header implements Table.
func (CheckpointTable) Header() []string {
	return []string{"CHANNEL", "POSITION", "TIMESTAMP", "TIME", "UPDATED_AT"}
}

// Cells implements Table.
func (t CheckpointTable) Cells() [][]string {
	out := make([][]string, 0, len(t))
	for _, r := range t {
		out = append(out, []string{r.Channel, strconv.FormatUint(r.Position, 10), strconv.FormatUint(r.Timestamp, 10), timeCell(r.Time), timeCell(r.UpdatedAt)})
	}
	return out
}

// timeLayout shows milliseconds, the precision of hybrid timestamps, at a fixed width.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

func i64(v int64) string { return strconv.FormatInt(v, 10) }

func timeCell(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(timeLayout)
}
