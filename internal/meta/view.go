package meta

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/weir-db/weir/internal/metastore"
)

// ReloadMode is how View.Reload reads segment meta.
type ReloadMode int

const (
	// ReloadChanged reads the channels, then only the segment and file keys changed since the
	// view's revision (a range with a minimum mod revision): its cost grows with the changes,
	// not with the number of segments. The default, and what BRIEF invariant 6 asks.
	ReloadChanged ReloadMode = iota
	// ReloadGated reads the channels, then every segment and file key, but only when the
	// store's revision advanced.
	ReloadGated
	// ReloadFull reads everything every time.
	ReloadFull
)

func (m ReloadMode) String() string {
	return [...]string{"changed-keys", "revision-gated", "full"}[m]
}

// View is an in-memory copy of what data nodes committed — channel leases and checkpoints,
// segment records and their files — refreshed by periodic reloads instead of an etcd Watch
// (the MEP rejects Watch). It is what the coordinator answers recovery targets from.
//
// Keys under segments/ and segment-files/ are written by data nodes and deleted only by the
// coordinator's garbage collector, which removes them from its view itself (Forget): a range
// with a minimum mod revision shows changed and new keys but not deleted ones.
type View struct {
	kv   Store
	keys keys
	mode ReloadMode

	// reloading serialises reloads: each applies what it read at its own revision, and a reload
	// that read earlier but applied later would put older records back beside newer files (a
	// query node reloads from its loop and from a load that retries).
	reloading sync.Mutex

	mu       sync.RWMutex
	rev      int64
	leases   map[string]Lease
	cps      map[string]Checkpoint
	epochs   map[string]int64         // channel → mod revision of its epoch key (the current claim)
	segments map[int64]*Segment       // by segment ID
	files    map[int64]map[int64]File // segment ID → file ID → file
}

// ReloadStats describes one reload.
type ReloadStats struct {
	Mode     ReloadMode
	Revision int64
	// Skipped is true when the store had not changed since the last reload.
	Skipped  bool
	Channels int
	// Keys is the number of segment and file keys read.
	Keys     int
	Duration time.Duration
}

// NewView returns an empty view over kv under root; call Reload to fill it.
func NewView(kv Store, root string, mode ReloadMode) *View {
	return &View{kv: kv, keys: keys{root}, mode: mode, leases: map[string]Lease{}, cps: map[string]Checkpoint{}, epochs: map[string]int64{},
		segments: map[int64]*Segment{}, files: map[int64]map[int64]File{}}
}

// Revision is the metastore revision the view reflects.
func (v *View) Revision() int64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.rev
}

// Reload refreshes the view: channel leases and checkpoints first, then segment meta only when
// the store's revision advanced, read at that same revision so the view is one snapshot.
func (v *View) Reload(ctx context.Context) (ReloadStats, error) {
	v.reloading.Lock()
	defer v.reloading.Unlock()
	t0 := time.Now()
	st := ReloadStats{Mode: v.mode}
	chKVs, rev, err := v.kv.Range(ctx, v.keys.channels())
	if err != nil {
		return st, fmt.Errorf("reload channels: %w", err)
	}
	leases, cps, epochs, err := decodeChannels(chKVs, v.keys.channels())
	if err != nil {
		return st, err
	}
	st.Revision, st.Channels = rev, len(leases)+len(cps)
	v.mu.RLock()
	prev := v.rev
	v.mu.RUnlock()

	full := v.mode == ReloadFull || prev == 0
	if !full && rev == prev {
		st.Skipped, st.Duration = true, time.Since(t0)
		v.mu.Lock()
		v.leases, v.cps, v.epochs = leases, cps, epochs
		v.mu.Unlock()
		return st, nil
	}
	if v.mode == ReloadGated {
		full = true
	}
	segKVs, fileKVs, err := v.read(ctx, rev, prev, full)
	if err != nil {
		return st, fmt.Errorf("reload segments: %w", err)
	}
	st.Keys = len(segKVs) + len(fileKVs)
	segs := make([]*Segment, 0, len(segKVs))
	for _, kv := range segKVs {
		s, err := decodeSegment(kv)
		if err != nil {
			return st, err
		}
		segs = append(segs, s)
	}
	files := make([]File, 0, len(fileKVs))
	for _, kv := range fileKVs {
		var f File
		if err := json.Unmarshal(kv.Value, &f); err != nil {
			return st, fmt.Errorf("meta: decode file %s: %w", kv.Key, err)
		}
		files = append(files, f)
	}

	v.mu.Lock()
	defer v.mu.Unlock()
	v.leases, v.cps, v.epochs = leases, cps, epochs
	if full {
		v.segments, v.files = map[int64]*Segment{}, map[int64]map[int64]File{}
	}
	for _, s := range segs {
		v.segments[s.ID] = s
	}
	for _, f := range files {
		if v.files[f.SegmentID] == nil {
			v.files[f.SegmentID] = map[int64]File{}
		}
		v.files[f.SegmentID][f.ID] = f
	}
	v.rev = rev
	st.Duration = time.Since(t0)
	return st, nil
}

// pointReads is the most changed segments a reload fetches one by one; above it, ranges with
// a minimum mod revision return them all.
const pointReads = 2000

// read returns segment and file keys at revision rev: all of them when full, else those
// changed after prev. etcd answers a range with a minimum mod revision by reading every key
// under the prefix and filtering, so a changed-keys reload asks for the changed segment keys
// alone (served from etcd's in-memory index), then, in parallel, each changed segment's record
// and its new files. A file is only ever written in the transaction that updates its
// segment's record, so the files of unchanged segments need no look.
func (v *View) read(ctx context.Context, rev, prev int64, full bool) (segs, files []metastore.KV, err error) {
	at := metastore.AtRevision(rev)
	if full {
		if segs, _, err = v.kv.Range(ctx, v.keys.segments(), at); err != nil {
			return nil, nil, err
		}
		files, _, err = v.kv.Range(ctx, v.keys.files(), at)
		return segs, files, err
	}
	since := metastore.WithMinModRev(prev + 1)
	changed, _, err := v.kv.Range(ctx, v.keys.segments(), at, since, metastore.WithKeysOnly())
	if err != nil || len(changed) == 0 {
		return nil, nil, err
	}
	if len(changed) > pointReads {
		if segs, _, err = v.kv.Range(ctx, v.keys.segments(), at, since); err != nil {
			return nil, nil, err
		}
		files, _, err = v.kv.Range(ctx, v.keys.files(), at, since)
		return segs, files, err
	}
	segs = make([]metastore.KV, len(changed))
	perSeg := make([][]metastore.KV, len(changed))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i, k := range changed {
		g.Go(func() error {
			kvs, _, err := v.kv.Range(gctx, k.Key, metastore.ExactKey(), at)
			if err != nil {
				return err
			}
			if len(kvs) != 1 {
				return fmt.Errorf("meta: changed key %s vanished at revision %d", k.Key, rev)
			}
			segs[i] = kvs[0]
			s, err := decodeSegment(kvs[0])
			if err != nil {
				return err
			}
			perSeg[i], _, err = v.kv.Range(gctx, v.keys.segmentFiles(s.CollectionID, s.ID), at, since)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	for _, fs := range perSeg {
		files = append(files, fs...)
	}
	return segs, files, nil
}

func decodeChannels(kvs []metastore.KV, prefix string) (map[string]Lease, map[string]Checkpoint, map[string]int64, error) {
	leases, cps, epochs := map[string]Lease{}, map[string]Checkpoint{}, map[string]int64{}
	for _, kv := range kvs {
		rest := strings.TrimPrefix(kv.Key, prefix)
		ch, kind, ok := strings.Cut(rest, "/")
		if !ok {
			continue
		}
		switch kind {
		case "lease":
			var l Lease
			if err := json.Unmarshal(kv.Value, &l); err != nil {
				return nil, nil, nil, fmt.Errorf("meta: decode lease %s: %w", kv.Key, err)
			}
			l.Channel, l.Revision = ch, kv.ModRevision
			leases[ch] = l
		case "checkpoint":
			var cp Checkpoint
			if err := json.Unmarshal(kv.Value, &cp); err != nil {
				return nil, nil, nil, fmt.Errorf("meta: decode checkpoint %s: %w", kv.Key, err)
			}
			cp.ModRevision = kv.ModRevision
			cps[ch] = cp
		case "epoch":
			epochs[ch] = kv.ModRevision
		}
	}
	return leases, cps, epochs, nil
}

// Forget removes a segment and its files from the view, after the garbage collector deleted
// their keys (a changed-keys reload cannot see deletions).
func (v *View) Forget(segmentID int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.segments, segmentID)
	delete(v.files, segmentID)
}

// Leases returns every channel lease.
func (v *View) Leases() map[string]Lease {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return maps.Clone(v.leases)
}

// Writing returns the fencing tokens under which files may be being written and committed
// now: every channel's lease revision and current claim (epoch) revision. A data node names
// its files by its token (segment keys), and every commit is fenced by the current one, so a
// file of any other token (older than the view) can never be referenced.
func (v *View) Writing() map[int64]bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	out := make(map[int64]bool, len(v.leases)+len(v.epochs))
	for _, l := range v.leases {
		out[l.Revision] = true
	}
	for _, e := range v.epochs {
		out[e] = true
	}
	return out
}

// Checkpoint returns a channel's checkpoint (zero when it has none).
func (v *View) Checkpoint(ch string) Checkpoint {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.cps[ch]
}

// Segments returns copies of the segment records of a collection (every collection when coll
// is 0), in ID order.
func (v *View) Segments(coll int64) []Segment {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.segmentsLocked(coll)
}

func (v *View) segmentsLocked(coll int64) []Segment {
	var out []Segment
	for _, s := range v.segments {
		if coll == 0 || s.CollectionID == coll {
			out = append(out, *s)
		}
	}
	slices.SortFunc(out, func(a, b Segment) int { return cmpInt(a.ID, b.ID) })
	return out
}

// Snapshot is one consistent state of a View: everything in it was read by the same reload.
type Snapshot struct {
	Revision    int64
	Leases      map[string]Lease
	Checkpoints map[string]Checkpoint
	// Segments of the collection asked for (every collection for 0), in ID order.
	Segments []Segment
	// Files of those segments by segment ID, each in ID order.
	Files map[int64][]File
}

// Snapshot returns the view's state under one lock, for answers that combine several parts
// of it: read part by part, a reload in between could pair a newer checkpoint with older
// segments.
func (v *View) Snapshot(coll int64) Snapshot {
	v.mu.RLock()
	defer v.mu.RUnlock()
	s := Snapshot{Revision: v.rev, Leases: maps.Clone(v.leases), Checkpoints: maps.Clone(v.cps),
		Segments: v.segmentsLocked(coll), Files: map[int64][]File{}}
	for _, seg := range s.Segments {
		s.Files[seg.ID] = v.filesLocked(seg.ID)
	}
	return s
}

// Files returns the files of a segment in ID order.
func (v *View) Files(segmentID int64) []File {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.filesLocked(segmentID)
}

func (v *View) filesLocked(segmentID int64) []File {
	out := slices.Collect(maps.Values(v.files[segmentID]))
	slices.SortFunc(out, func(a, b File) int { return cmpInt(a.ID, b.ID) })
	return out
}

// Equal reports whether two views hold the same leases, checkpoints, segments and files.
func (v *View) Equal(o *View) bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	o.mu.RLock()
	defer o.mu.RUnlock()
	if !maps.Equal(v.leases, o.leases) || !maps.Equal(v.cps, o.cps) || !maps.Equal(v.epochs, o.epochs) || len(v.segments) != len(o.segments) || len(v.files) != len(o.files) {
		return false
	}
	for id, s := range v.segments {
		os, ok := o.segments[id]
		if !ok || *os != *s {
			return false
		}
	}
	for id, fs := range v.files {
		if !maps.Equal(fs, o.files[id]) {
			return false
		}
	}
	return true
}
