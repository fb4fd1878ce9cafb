package inspect

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"golang.org/x/sync/errgroup"

	"github.com/weir-db/weir/internal/batch"
	"github.com/weir-db/weir/internal/dml"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/objstore"
	"github.com/weir-db/weir/internal/schema"
	"github.com/weir-db/weir/internal/segment"
	"github.com/weir-db/weir/internal/wal"
)

// Kind is what a Finding is about (see the package documentation for each rule).
type Kind string

// Finding kinds.
const (
	DuplicateKey     Kind = "duplicate-key"
	MissingFile      Kind = "missing-file"
	UnreferencedFile Kind = "unreferenced-file"
	CheckpointAhead  Kind = "checkpoint-ahead"
	DeadOwner        Kind = "dead-owner"
	MetaMismatch     Kind = "meta-mismatch"
	CorruptFile      Kind = "corrupt-file"
	LogRewound       Kind = "log-rewound"
)

// Kinds lists every kind, in the order the summary counts them.
var Kinds = []Kind{DuplicateKey, MissingFile, UnreferencedFile, CheckpointAhead, DeadOwner, MetaMismatch, CorruptFile, LogRewound}

// Finding is one inconsistency.
type Finding struct {
	Kind       Kind   `json:"kind"`
	Collection int64  `json:"collection,omitempty"`
	Channel    string `json:"channel,omitempty"`
	Segment    int64  `json:"segment,omitempty"`
	Object     string `json:"object,omitempty"`
	Detail     string `json:"detail"`
}

// Summary counts what Verify found and what it read.
type Summary struct {
	Findings int          `json:"findings"`
	ByKind   map[Kind]int `json:"by_kind"`
	// Collections, Segments, Files and Rows are the live collections checked, their segment
	// records, their file records, and the rows read from their insert and delete files.
	Collections int   `json:"collections"`
	Segments    int   `json:"segments"`
	Files       int   `json:"files"`
	Rows        int64 `json:"rows"`
	// Objects is the number of objects listed; Channels the channels of live collections
	// checked; Messages the channel records read.
	Objects  int `json:"objects"`
	Channels int `json:"channels"`
	Messages int `json:"messages"`
	// Notes name the checks that could not run.
	Notes []string `json:"notes,omitempty"`
}

// String is the summary line: `verify: N findings (duplicate-key a, …) in X collections, Y
// segments, Z files, W rows`.
func (s Summary) String() string {
	parts := make([]string, len(Kinds))
	for i, k := range Kinds {
		parts[i] = fmt.Sprintf("%s %d", k, s.ByKind[k])
	}
	return fmt.Sprintf("verify: %d findings (%s) in %d collections, %d segments, %d files, %d rows",
		s.Findings, strings.Join(parts, ", "), s.Collections, s.Segments, s.Files, s.Rows)
}

// Report is what Verify returns.
type Report struct {
	Findings []Finding `json:"findings"`
	Summary  Summary   `json:"summary"`
}

func (r *Report) add(f Finding) { r.Findings = append(r.Findings, f) }

func (r *Report) finish() {
	r.Summary.Findings = len(r.Findings)
	r.Summary.ByKind = make(map[Kind]int, len(Kinds))
	for _, k := range Kinds {
		r.Summary.ByKind[k] = 0
	}
	for _, f := range r.Findings {
		r.Summary.ByKind[f.Kind]++
	}
}

// fileReaders bounds the files read at once.
const fileReaders = 8

// Verify reads the metastore, every file its meta references, the listing of object storage
// and, with a Log, the channels up to their checkpoints, and reports every inconsistency.
func (in *Inspector) Verify(ctx context.Context) (*Report, error) {
	if in.bucket == nil {
		return nil, ErrNoBucket
	}
	s, err := in.load(ctx)
	if err != nil {
		return nil, err
	}
	r := &Report{Findings: []Finding{}}
	// Every file record counts as a reference, dropped collections included: their files are
	// deleted before their meta, so this never hides a file the collector would keep.
	referenced := map[string]bool{}
	for _, g := range s.view.Segments(0) {
		for _, f := range s.view.Files(g.ID) {
			referenced[f.Key] = true
		}
	}
	for _, c := range s.colls {
		if c.State != meta.Created {
			continue
		}
		if err := in.verifyCollection(ctx, s, c, r); err != nil {
			return nil, err
		}
	}
	if err := in.verifyChannels(ctx, s, r); err != nil {
		return nil, err
	}
	if err := in.verifyObjects(ctx, referenced, s.view.Writing(), s.view.Revision(), r); err != nil {
		return nil, err
	}
	r.finish()
	return r, nil
}

// fileRead is what reading one referenced file gave.
type fileRead struct {
	missing bool
	corrupt error
	size    int64
	rows    int64
	ints    []int64
	strs    []string
	ts      []uint64
}

func (in *Inspector) verifyCollection(ctx context.Context, s *snapshot, c *meta.Collection, r *Report) error {
	pk := schema.PrimaryKey(c.Schema)
	if pk == nil {
		return fmt.Errorf("inspect: collection %d has no primary key field", c.ID)
	}
	r.Summary.Collections++
	segs := s.view.Segments(c.ID)
	files := make([][]meta.File, len(segs))
	var all []meta.File
	for i, g := range segs {
		files[i] = s.view.Files(g.ID)
		all = append(all, files[i]...)
	}
	reads, err := in.readFiles(ctx, pk.GetName(), all)
	if err != nil {
		return err
	}
	keys := newKeyIndex()
	for i, g := range segs {
		segReads := reads[:len(files[i])]
		reads = reads[len(files[i]):]
		r.Summary.Segments++
		r.Summary.Files += len(files[i])
		in.checkSegment(g, files[i], segReads, r)
		for j, f := range files[i] {
			rd := segReads[j]
			if rd.missing || rd.corrupt != nil {
				continue
			}
			switch f.Kind {
			case meta.InsertFile:
				r.Summary.Rows += rd.rows
				if g.Level == meta.L1 && g.State != meta.SegmentDropped {
					keys.add(rd, g.ID, g.PartitionID, false)
				}
			case meta.DeleteFile:
				r.Summary.Rows += rd.rows
				if g.Level == meta.L0 && g.State != meta.SegmentDropped {
					keys.add(rd, g.ID, g.PartitionID, true)
				}
			}
		}
	}
	keys.report(c.ID, segmentChannels(segs), r)
	return nil
}

func segmentChannels(segs []meta.Segment) map[int64]string {
	out := make(map[int64]string, len(segs))
	for _, g := range segs {
		out[g.ID] = g.Channel
	}
	return out
}

// readFiles reads files, a few at a time, and returns what each gave in their order.
func (in *Inspector) readFiles(ctx context.Context, pkName string, files []meta.File) ([]fileRead, error) {
	out := make([]fileRead, len(files))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(fileReaders)
	for i, f := range files {
		g.Go(func() error {
			rd, err := in.readFile(gctx, pkName, f)
			out[i] = rd
			return err
		})
	}
	return out, g.Wait()
}

// readFile reads what verify needs of one file: an insert file's primary keys and timestamps,
// a delete file's keys and timestamps, a stats file's row count. A storage error is an error;
// an object that is not a readable file of its kind is a corrupt file.
func (in *Inspector) readFile(ctx context.Context, pkName string, f meta.File) (fileRead, error) {
	info, err := in.bucket.Stat(ctx, f.Key)
	if objstore.IsNotFound(err) {
		return fileRead{missing: true}, nil
	}
	if err != nil {
		return fileRead{}, fmt.Errorf("stat %s: %w", f.Key, err)
	}
	rd := fileRead{size: info.Size}
	ra := &objectReader{ctx: ctx, bucket: in.bucket, key: f.Key}
	var ferr error
	switch f.Kind {
	case meta.InsertFile:
		ferr = readInsert(ra, info.Size, pkName, &rd)
	case meta.StatsFile:
		var st *segment.Stats
		if st, ferr = segment.ReadStats(ra, info.Size); ferr == nil {
			rd.rows = st.Rows
		}
	case meta.DeleteFile:
		var d segment.Deletes
		if d, ferr = segment.ReadDeletes(ra, info.Size); ferr == nil {
			rd.rows, rd.ints, rd.strs, rd.ts = int64(d.Len()), d.IntPKs, d.StringPKs, d.TS
		}
	default:
		ferr = fmt.Errorf("unknown file kind %q", f.Kind)
	}
	if err := ra.failure(); err != nil {
		return fileRead{}, fmt.Errorf("read %s: %w", f.Key, err)
	}
	rd.corrupt = ferr
	return rd, nil
}

func readInsert(ra io.ReaderAt, size int64, pkName string, rd *fileRead) error {
	pks, err := segment.ReadColumn(ra, size, pkName)
	if err != nil {
		return err
	}
	defer pks.Release()
	ts, err := segment.ReadColumn(ra, size, batch.TimestampColumn)
	if err != nil {
		return err
	}
	defer ts.Release()
	tsv, ok := ts.(*array.Uint64)
	if !ok || ts.Len() != pks.Len() {
		return fmt.Errorf("%w: column %s is %s of %d rows", segment.ErrFormat, batch.TimestampColumn, ts.DataType(), ts.Len())
	}
	rd.rows, rd.ts = int64(pks.Len()), append([]uint64(nil), tsv.Uint64Values()...)
	switch a := pks.(type) {
	case *array.Int64:
		rd.ints = append([]int64(nil), a.Int64Values()...)
	case *array.String:
		rd.strs = make([]string, a.Len())
		for i := range rd.strs {
			rd.strs[i] = strings.Clone(a.Value(i)) // Value aliases the Arrow buffer
		}
	default:
		return fmt.Errorf("%w: primary key column %s is %s", segment.ErrFormat, pkName, pks.DataType())
	}
	return nil
}

// objectReader reads an object by ranges, so that reading a column of a Parquet file fetches
// its footer and that column, not the vectors. It remembers a storage error, which is not the
// file's fault.
type objectReader struct {
	ctx    context.Context
	bucket objstore.BucketReader
	key    string

	mu  sync.Mutex
	err error
}

func (o *objectReader) ReadAt(p []byte, off int64) (int, error) {
	b, err := o.bucket.GetRange(o.ctx, o.key, off, int64(len(p)))
	if err != nil {
		if !errors.Is(err, objstore.ErrInvalidRange) {
			o.mu.Lock()
			o.err = err
			o.mu.Unlock()
		}
		return 0, err
	}
	n := copy(p, b)
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (o *objectReader) failure() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}

// checkSegment compares a segment record with its file records and what the files hold.
func (in *Inspector) checkSegment(g meta.Segment, files []meta.File, reads []fileRead, r *Report) {
	mismatch := func(object, format string, args ...any) {
		r.add(Finding{Kind: MetaMismatch, Collection: g.CollectionID, Channel: g.Channel, Segment: g.ID, Object: object, Detail: fmt.Sprintf(format, args...)})
	}
	if g.Files != len(files) {
		mismatch("", "segment record counts %d files, %d file records exist", g.Files, len(files))
	}
	rowKind := meta.InsertFile
	if g.Level == meta.L0 {
		rowKind = meta.DeleteFile
	}
	var rows, bytes int64
	for i, f := range files {
		rd := reads[i]
		if f.Kind == rowKind {
			rows += f.Rows
		}
		bytes += f.Bytes
		if msg := in.checkKey(g, f); msg != "" {
			mismatch(f.Key, "%s", msg)
		}
		switch {
		case rd.missing:
			r.add(Finding{Kind: MissingFile, Collection: g.CollectionID, Channel: g.Channel, Segment: g.ID, Object: f.Key,
				Detail: fmt.Sprintf("%s file %d of segment %d (%d rows) is referenced by committed meta but not in object storage", f.Kind, f.ID, g.ID, f.Rows)})
			continue
		case rd.corrupt != nil:
			r.add(Finding{Kind: CorruptFile, Collection: g.CollectionID, Channel: g.Channel, Segment: g.ID, Object: f.Key,
				Detail: fmt.Sprintf("%s file %d is not readable: %v", f.Kind, f.ID, rd.corrupt)})
			continue
		}
		if rd.size != f.Bytes {
			mismatch(f.Key, "file record %d says %d bytes, the object has %d", f.ID, f.Bytes, rd.size)
		}
		if rd.rows != f.Rows {
			mismatch(f.Key, "file record %d says %d rows, the file holds %d", f.ID, f.Rows, rd.rows)
		}
	}
	if rows != g.Rows {
		mismatch("", "segment record says %d rows, its %s files hold %d", g.Rows, rowKind, rows)
	}
	if bytes != g.Bytes {
		mismatch("", "segment record says %d bytes, its files have %d", g.Bytes, bytes)
	}
}

// checkKey reports a file record that does not fit its segment: a kind of the other level, or
// the object key of another segment or kind. (meta.View files a record under the segment its
// value names, so a record stored under another segment's prefix shows as a Files mismatch.)
func (in *Inspector) checkKey(g meta.Segment, f meta.File) string {
	want := map[meta.Level][]meta.FileKind{meta.L1: {meta.InsertFile, meta.StatsFile}, meta.L0: {meta.DeleteFile}}[g.Level]
	ok := false
	for _, k := range want {
		ok = ok || f.Kind == k
	}
	if !ok {
		return fmt.Sprintf("file record %d is a %s file in an %s segment", f.ID, f.Kind, g.Level)
	}
	k, err := segment.ParseKey(f.Key)
	if err != nil {
		return fmt.Sprintf("file record %d: %v", f.ID, err)
	}
	if k.Root != in.cfg.Root || k.Kind.String() != string(f.Kind) || k.Collection != g.CollectionID || k.Partition != g.PartitionID || k.Segment != g.ID {
		return fmt.Sprintf("file record %d of %s segment %d (collection %d, partition %d) has the key of a %s file of segment %d (collection %d, partition %d, root %q)",
			f.ID, f.Kind, g.ID, g.CollectionID, g.PartitionID, k.Kind, k.Segment, k.Collection, k.Partition, k.Root)
	}
	return ""
}

// verifyChannels checks the owners and, with a Log, the checkpoints of live collections'
// channels.
func (in *Inspector) verifyChannels(ctx context.Context, s *snapshot, r *Report) error {
	if s.sessions == 0 {
		r.Summary.Notes = append(r.Summary.Notes, "no sessions registered (standalone, or every process is down): dead-owner not checked")
	}
	if in.log == nil {
		r.Summary.Notes = append(r.Summary.Notes, "no DML channel log (--nats): checkpoint-ahead not checked")
	}
	for _, ref := range s.channels {
		if !s.live(ref.collID) {
			continue
		}
		r.Summary.Channels++
		if live := s.ownerLive(ref.name); live != nil && !*live {
			l := s.leases[ref.name]
			r.add(Finding{Kind: DeadOwner, Collection: ref.collID, Channel: ref.name,
				Detail: fmt.Sprintf("leased to data node %d (lease %d), which has no live session: nothing consumes the channel until the coordinator moves it", l.NodeID, l.Revision)})
		}
		if in.log != nil {
			if err := in.checkCheckpoint(ctx, s, ref, r); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkHighest reports a log-rewound finding when the record at the highest position a
// committed segment of the channel holds above its checkpoint is gone or is another record
// (meta.HighestAbove): the data node's replay filter would drop new records at those positions,
// so it refuses to start. A record found truncated counts only if the checkpoint, read again,
// still lies below it: the owner may have moved its checkpoint and truncated while verify read
// files.
func (in *Inspector) checkHighest(ctx context.Context, s *snapshot, ref channelRef, cp meta.Checkpoint, r *Report) error {
	var segs []*meta.Segment
	for _, g := range s.view.Segments(ref.collID) {
		if g.Channel == ref.name {
			segs = append(segs, &g)
		}
	}
	for _, hi := range meta.HighestAbove(cp.Position, segs) {
		rewound := func(format string, args ...any) {
			r.add(Finding{Kind: LogRewound, Collection: ref.collID, Channel: ref.name, Segment: hi.ID, Detail: fmt.Sprintf(format, args...)})
		}
		err := in.log.Check(ctx, ref.name, wal.Anchor{Pos: hi.MaxPos, Time: hi.MaxLogTime})
		switch {
		case errors.Is(err, wal.ErrChannelNotFound):
			if cp.Position == 0 { // otherwise checkCheckpoint reports it
				rewound("segment %d holds position %d of the channel, which does not exist in the log: the data node will not resume it", hi.ID, hi.MaxPos)
			}
			return nil
		case errors.Is(err, wal.ErrRewound):
			rewound("the record at position %d, which segment %d holds, is not the one committed (%v); the data node will not resume the channel", hi.MaxPos, hi.ID, err)
		case errors.Is(err, wal.ErrTruncated):
			now, rerr := in.catalog.ReadCheckpoint(ctx, ref.name)
			if rerr != nil {
				return fmt.Errorf("channel %s: %w", ref.name, rerr)
			}
			if now.Position < hi.MaxPos {
				rewound("segment %d holds position %d, above the checkpoint %d, which was truncated: the data node cannot check it and will not resume the channel", hi.ID, hi.MaxPos, now.Position)
			}
		case err != nil:
			return fmt.Errorf("channel %s: %w", ref.name, err)
		}
	}
	return nil
}

// checkCheckpoint applies the data node's replay invariant to one channel: every insert or
// delete at or below the checkpoint must be at or below the highest committed position of the
// segments replay would send it to.
func (in *Inspector) checkCheckpoint(ctx context.Context, s *snapshot, ref channelRef, r *Report) error {
	cp := s.view.Checkpoint(ref.name)
	if err := in.checkHighest(ctx, s, ref, cp, r); err != nil {
		return err
	}
	if cp.Position == 0 {
		return nil
	}
	ahead := func(format string, args ...any) {
		r.add(Finding{Kind: CheckpointAhead, Collection: ref.collID, Channel: ref.name, Detail: fmt.Sprintf(format, args...)})
	}
	last, err := in.log.LastPosition(ctx, ref.name)
	switch {
	case errors.Is(err, wal.ErrChannelNotFound):
		ahead("checkpoint %d, but the channel does not exist in the log", cp.Position)
		return nil
	case err != nil:
		return fmt.Errorf("channel %s: %w", ref.name, err)
	case cp.Position > last:
		ahead("checkpoint %d is beyond the channel's last position %d: the log lost records or was recreated", cp.Position, last)
		r.add(Finding{Kind: LogRewound, Collection: ref.collID, Channel: ref.name,
			Detail: fmt.Sprintf("the channel ends at position %d, below its checkpoint %d: its server lost acknowledged records; the data node will not resume it", last, cp.Position)})
	case cp.LogTime != 0:
		err := in.log.Check(ctx, ref.name, wal.Anchor{Pos: cp.Position, Time: cp.LogTime})
		switch {
		case errors.Is(err, wal.ErrTruncated):
			// Truncated below a checkpoint that moved on since the snapshot is the owner's
			// normal work; below the checkpoint as it still is, the data node cannot resume.
			now, rerr := in.catalog.ReadCheckpoint(ctx, ref.name)
			if rerr != nil {
				return fmt.Errorf("channel %s: %w", ref.name, rerr)
			}
			if now.Position == cp.Position {
				r.add(Finding{Kind: LogRewound, Collection: ref.collID, Channel: ref.name,
					Detail: fmt.Sprintf("the record at the checkpoint %d was truncated: the data node cannot check it and will not resume the channel", cp.Position)})
			}
		case errors.Is(err, wal.ErrRewound):
			r.add(Finding{Kind: LogRewound, Collection: ref.collID, Channel: ref.name,
				Detail: fmt.Sprintf("the record at the checkpoint %d is not the one the data node consumed there (%v); the data node will not resume the channel", cp.Position, err)})
		case err != nil:
			return fmt.Errorf("channel %s: %w", ref.name, err)
		}
	}
	// What replay would drop: per partition, the highest MaxPos of the channel's L1 segments
	// (inserts) and of its L0 segments (deletes, by scope), every state counted as the data
	// node counts them.
	held := map[meta.Level]map[int64]uint64{meta.L1: {}, meta.L0: {}}
	for _, g := range s.view.Segments(ref.collID) {
		if g.Channel != ref.name {
			continue
		}
		lv := meta.L1
		if g.Level == meta.L0 {
			lv = meta.L0
		}
		held[lv][g.PartitionID] = max(held[lv][g.PartitionID], g.MaxPos)
	}
	var lost int
	var first string
	err = in.log.Scan(ctx, ref.name, min(cp.Position, last), func(pos uint64, data []byte) error {
		r.Summary.Messages++
		h, err := dml.DecodeHeader(data)
		if err != nil {
			return fmt.Errorf("channel %s position %d: %w", ref.name, pos, err)
		}
		if h.CollectionID != ref.collID || h.Rows == 0 {
			return nil // a data node refuses a foreign message; an empty one commits nothing
		}
		var top uint64
		switch h.Kind {
		case dml.Insert:
			top = held[meta.L1][h.PartitionID]
		case dml.Delete:
			top = held[meta.L0][h.PartitionID]
		case dml.Upsert, dml.UpsertAllPartitions: // both halves must be held: its delete in L0, its rows in L1
			top = min(held[meta.L1][h.PartitionID], held[meta.L0][h.DeleteScope()])
		default:
			return nil
		}
		if pos > top {
			lost++
			if first == "" {
				first = fmt.Sprintf("%s of %d rows in partition %d at position %d, committed segments hold up to %d", h.Kind, h.Rows, h.PartitionID, pos, top)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if lost > 0 {
		ahead("checkpoint %d passes %d messages no committed segment holds (first: %s): replay starts after the checkpoint and never stores them", cp.Position, lost, first)
	}
	return nil
}

// verifyObjects lists every segment file in object storage and reports those no meta
// references, once older than the grace period.
func (in *Inspector) verifyObjects(ctx context.Context, referenced map[string]bool, writing map[int64]bool, viewRev int64, r *Report) error {
	now := in.cfg.Now()
	for _, kind := range []segment.Kind{segment.KindInsert, segment.KindStats, segment.KindDelete} {
		err := in.bucket.List(ctx, segment.KindPrefix(in.cfg.Root, kind), func(o objstore.ObjectInfo) error {
			r.Summary.Objects++
			k, err := segment.ParseKey(o.Key)
			if err != nil || k.Root != in.cfg.Root || referenced[o.Key] {
				return nil // not a segment file of this root, or referenced
			}
			if writing[k.Lease] || k.Lease > viewRev {
				return nil // its writer may still commit it, however old (coord.CollectGarbage)
			}
			age := now.Sub(o.ModTime)
			if age < in.cfg.Grace {
				return nil // a sync may still be committing it
			}
			r.add(Finding{Kind: UnreferencedFile, Collection: k.Collection, Segment: k.Segment, Object: o.Key,
				Detail: fmt.Sprintf("%s file of %d bytes no committed meta references, %s old (grace %s): written by a writer that can no longer commit it (a crash, a restart, a lease that moved); the coordinator deletes it after its own grace period",
					k.Kind, o.Size, age.Round(time.Second), in.cfg.Grace)})
			return nil
		})
		if err != nil {
			return fmt.Errorf("list %s files: %w", kind, err)
		}
	}
	return nil
}

// keyIndex holds, per primary key, where the collection stores and deletes it.
type keyIndex struct {
	ints map[int64][]keyEvent
	strs map[string][]keyEvent
}

type keyEvent struct {
	ts   uint64
	seg  int64
	part int64 // for a delete, its scope: a partition or dml.AllPartitions
	del  bool
}

func newKeyIndex() *keyIndex {
	return &keyIndex{ints: map[int64][]keyEvent{}, strs: map[string][]keyEvent{}}
}

func (k *keyIndex) add(rd fileRead, seg, part int64, del bool) {
	for i, pk := range rd.ints {
		k.ints[pk] = append(k.ints[pk], keyEvent{ts: rd.ts[i], seg: seg, part: part, del: del})
	}
	for i, pk := range rd.strs {
		k.strs[pk] = append(k.strs[pk], keyEvent{ts: rd.ts[i], seg: seg, part: part, del: del})
	}
}

// dupPair groups duplicates by the segment holding the live copy, the segment holding the
// new one, and whether their timestamps are equal.
type dupPair struct {
	first, second int64
	sameTs        bool
}

const dupExamples = 5

// report adds one duplicate-key finding per dupPair.
func (k *keyIndex) report(coll int64, channels map[int64]string, r *Report) {
	counts := map[dupPair]int{}
	examples := map[dupPair][]string{}
	var order []dupPair
	check := func(key string, evs []keyEvent) {
		for _, p := range duplicates(evs) {
			if counts[p] == 0 {
				order = append(order, p)
			}
			counts[p]++
			if len(examples[p]) < dupExamples {
				examples[p] = append(examples[p], key)
			}
		}
	}
	for _, pk := range sortedKeys(k.ints) {
		check(fmt.Sprint(pk), k.ints[pk])
	}
	for _, pk := range sortedKeys(k.strs) {
		check(fmt.Sprintf("%q", pk), k.strs[pk])
	}
	for _, p := range sortedPairs(order) {
		how := "at a later timestamp with no delete between: inserted twice by a client (Milvus allows it), or stored twice"
		if p.sameTs {
			how = "with the same timestamp and no delete between: most likely one message stored twice"
		}
		where := fmt.Sprintf("in segment %d and again in segment %d", p.first, p.second)
		if p.first == p.second {
			where = fmt.Sprintf("twice in segment %d", p.first)
		}
		r.add(Finding{Kind: DuplicateKey, Collection: coll, Channel: channels[p.second], Segment: p.second,
			Detail: fmt.Sprintf("%d keys stored %s %s (e.g. %s)", counts[p], where, how, strings.Join(examples[p], ", "))})
	}
}

// duplicates walks one key's events in timestamp order (a delete before an insert of the same
// timestamp, since a delete applies to rows stamped before it) and returns a pair for every
// insert made while an earlier copy was still live.
func duplicates(evs []keyEvent) []dupPair {
	inserts := 0
	for _, e := range evs {
		if !e.del {
			inserts++
		}
	}
	if inserts < 2 {
		return nil
	}
	sortEvents(evs)
	var live []keyEvent
	var out []dupPair
	for _, e := range evs {
		if e.del {
			kept := live[:0]
			for _, l := range live {
				if e.part != dml.AllPartitions && l.part != e.part {
					kept = append(kept, l)
				}
			}
			live = kept
			continue
		}
		if len(live) > 0 {
			out = append(out, dupPair{first: live[0].seg, second: e.seg, sameTs: live[0].ts == e.ts})
		}
		live = append(live, e)
	}
	return out
}

func sortEvents(evs []keyEvent) {
	slices.SortStableFunc(evs, func(a, b keyEvent) int {
		// At one timestamp a delete goes first: it applies only to rows stamped before it.
		return cmp.Or(cmp.Compare(a.ts, b.ts), cmp.Compare(rank(a.del), rank(b.del)), cmp.Compare(a.seg, b.seg))
	})
}

func rank(del bool) int {
	if del {
		return 0
	}
	return 1
}

func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K { return slices.Sorted(maps.Keys(m)) }

func sortedPairs(ps []dupPair) []dupPair {
	slices.SortFunc(ps, func(a, b dupPair) int {
		return cmp.Or(cmp.Compare(a.first, b.first), cmp.Compare(a.second, b.second), cmp.Compare(rank(a.sameTs), rank(b.sameTs)))
	})
	return ps
}
