package inspect

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/metastore"
	"github.com/weir-db/weir/internal/objstore"
	"github.com/weir-db/weir/internal/segment"
	"github.com/weir-db/weir/internal/session"
)

var (
	// ErrReadOnly is what the catalog's store answers to any write: inspect never writes.
	ErrReadOnly = errors.New("inspect: read-only")
	// ErrNoBucket is returned by Verify when the Inspector has no object storage.
	ErrNoBucket = errors.New("inspect: verify needs object storage")
	// ErrUnknownCommand is returned by Run for a command it does not know.
	ErrUnknownCommand = errors.New("inspect: unknown command")
)

// Reader is the read half of the metastore; *metastore.Etcd and *metastore.Memory have it.
type Reader interface {
	Get(ctx context.Context, key string) (metastore.KV, error)
	Range(ctx context.Context, prefix string, opts ...metastore.RangeOption) ([]metastore.KV, int64, error)
}

// readOnly gives the catalog the store it needs while refusing every write.
type readOnly struct{ Reader }

func (readOnly) Txn(context.Context, []metastore.Cmp, []metastore.Op) (int64, error) {
	return 0, ErrReadOnly
}

var _ meta.Store = readOnly{}

// DataNodeRole is the session role of data nodes (see package role).
const DataNodeRole = "datanode"

// Config configures an Inspector.
type Config struct {
	// Root prefixes every metastore and object key (--root-path).
	Root string
	// Grace is the age below which an unreferenced file is not reported.
	Grace time.Duration
	// Now is the clock unreferenced files are aged with; nil means time.Now.
	Now func() time.Time
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.Root == "" {
		return errors.New("inspect: root path must be set")
	}
	if err := segment.ValidateRoot(c.Root); err != nil {
		return fmt.Errorf("inspect: %w", err)
	}
	if c.Grace < 0 {
		return fmt.Errorf("inspect: grace %s must not be negative", c.Grace)
	}
	return nil
}

// Inspector reads one cluster. It holds no state between calls: every call reads afresh.
type Inspector struct {
	kv      Reader
	catalog *meta.Catalog
	bucket  objstore.BucketReader // nil: Verify refuses
	log     Log                   // nil: no lag, no checkpoint-ahead check
	cfg     Config
	logger  *slog.Logger
}

// New returns an Inspector over the metastore kv, the object storage bucket (nil when only
// channels, segments and checkpoints are wanted) and the DML channels log (nil when unknown).
func New(kv Reader, bucket objstore.BucketReader, log Log, cfg Config, logger *slog.Logger) (*Inspector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Inspector{kv: kv, catalog: meta.NewCatalog(readOnly{kv}, cfg.Root, nil, logger), bucket: bucket, log: log, cfg: cfg, logger: logger}, nil
}

// channelRef is one channel and the collection it belongs to (nil when no record names it).
type channelRef struct {
	name string
	coll *meta.Collection
	// collID is the collection ID from the record or, without one, from the lease.
	collID int64
}

// snapshot is everything read from the metastore for one call.
type snapshot struct {
	colls    []*meta.Collection
	byID     map[int64]*meta.Collection
	view     *meta.View
	leases   map[string]meta.Lease
	channels []channelRef
	// sessions is the number of sessions of every role; datanodes the live data node IDs.
	sessions  int
	datanodes map[int64]bool
}

// live reports whether a collection record exists and is not dropped.
func (s *snapshot) live(id int64) bool {
	c := s.byID[id]
	return c != nil && c.State == meta.Created
}

// load reads collections, then leases, checkpoints, segments and files at one revision, then
// sessions.
func (in *Inspector) load(ctx context.Context) (*snapshot, error) {
	colls, err := in.catalog.ListCollectionRecords(ctx)
	if err != nil {
		return nil, err
	}
	view := meta.NewView(readOnly{in.kv}, in.cfg.Root, meta.ReloadFull)
	if _, err := view.Reload(ctx); err != nil {
		return nil, err
	}
	infos, _, err := session.List(ctx, in.kv, in.cfg.Root, "")
	if err != nil {
		return nil, err
	}
	s := &snapshot{colls: colls, byID: map[int64]*meta.Collection{}, view: view, leases: view.Leases(),
		sessions: len(infos), datanodes: map[int64]bool{}}
	for _, i := range infos {
		if i.Role == DataNodeRole {
			s.datanodes[i.NodeID] = true
		}
	}
	seen := map[string]bool{}
	for _, c := range colls {
		s.byID[c.ID] = c
		for _, ch := range c.VChannels {
			if !seen[ch] {
				seen[ch] = true
				s.channels = append(s.channels, channelRef{name: ch, coll: c, collID: c.ID})
			}
		}
	}
	// Leases of channels no collection record names (its record was created after the
	// snapshot of collections, or removed): still shown, sorted by name.
	for _, ch := range slices.Sorted(maps.Keys(s.leases)) {
		if !seen[ch] {
			l := s.leases[ch]
			s.channels = append(s.channels, channelRef{name: ch, coll: s.byID[l.CollectionID], collID: l.CollectionID})
		}
	}
	return s, nil
}

// ownerLive tells whether the node holding a lease has a live data node session: nil when
// unknown (no lease, or no session of any role, as in standalone).
func (s *snapshot) ownerLive(ch string) *bool {
	l, ok := s.leases[ch]
	if !ok || l.NodeID == 0 || s.sessions == 0 {
		return nil
	}
	v := s.datanodes[l.NodeID]
	return &v
}

func sortSegments(segs []meta.Segment) {
	slices.SortFunc(segs, func(a, b meta.Segment) int {
		return cmp.Or(cmp.Compare(a.CollectionID, b.CollectionID), cmp.Compare(a.ID, b.ID))
	})
}
