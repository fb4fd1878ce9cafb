package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/grpc/metadata"

	"github.com/weir-db/weir/internal/apierr"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/readapi"
	"github.com/weir-db/weir/internal/tso"
	"github.com/weir-db/weir/internal/wal"
)

// Catalog is what the proxy needs of the collection catalog.
type Catalog interface {
	CreateCollection(ctx context.Context, c *meta.Collection) (*meta.Collection, bool, error)
	GetCollectionByName(ctx context.Context, db, name string) (*meta.Collection, error)
	GetCollection(ctx context.Context, id int64) (*meta.Collection, error)
	ListCollections(ctx context.Context, db string) ([]*meta.Collection, error)
	DropCollection(ctx context.Context, db, name string) (*meta.Collection, error)
	CreatePartition(ctx context.Context, collID int64, name string) (*meta.Partition, error)
	ListPartitions(ctx context.Context, collID int64) ([]*meta.Partition, error)
	DropPartition(ctx context.Context, collID int64, name string) error

	// Write path: segment meta and checkpoints written by data nodes, flush markers written
	// by proxies.
	ListSegments(ctx context.Context, coll int64) ([]*meta.Segment, error)
	ReadCheckpoint(ctx context.Context, ch string) (meta.Checkpoint, error)
	SaveFlush(ctx context.Context, coll int64, fm meta.FlushMarkers) error
	ReadFlush(ctx context.Context, coll int64, ts uint64) (meta.FlushMarkers, error)
	ReadFlushToken(ctx context.Context, token int64) (int64, meta.FlushMarkers, error)

	// What the read path's API needs (index definitions).
	readapi.Catalog
}

// Channels creates DML channels and appends to them.
type Channels interface {
	CreateChannel(ctx context.Context, name string) error
	DeleteChannel(ctx context.Context, name string) error
	Append(ctx context.Context, channel string, recs []wal.Record, opts ...wal.AppendOption) ([]wal.Position, error)
	// MaxRecordBytes is the largest record Append takes with an ID of idLen bytes: what the
	// server in front of the channels allows.
	MaxRecordBytes(idLen int) int
}

// IDAllocator hands out unique IDs (auto-generated primary keys).
type IDAllocator interface {
	Alloc(ctx context.Context, n int64) (int64, error)
}

// Deps are the services a proxy uses.
type Deps struct {
	Catalog  Catalog
	Channels Channels
	IDs      IDAllocator
	// Clock stamps mutations; nil means a new tso.Clock.
	Clock *tso.Clock
}

// Config holds the proxy's settings.
type Config struct {
	// Version is Weir's own version, reported in Connect's server info.
	Version string `yaml:"-"`
	// Identifier tells clients apart in logs; 0 picks one from the clock.
	NodeID int64 `yaml:"-"`
	// MaxMessageBytes bounds one encoded DML message; 0 means DefaultMaxMessageBytes. A
	// channel's rows are split into as many messages as it takes. The WAL server's own limit
	// (NATS max_payload: 1 MB in a stock nats-server) lowers it further: see messageLimit.
	MaxMessageBytes int `yaml:"max-message-bytes"`
	// AppendAttempts is how often an append whose outcome is unknown is tried, with the same
	// record IDs, before the request fails as retriable; 0 means DefaultAppendAttempts.
	AppendAttempts int `yaml:"append-attempts"`
	// MetaCacheTTL is how long inserts reuse a collection's metastore record; 0 means
	// DefaultMetaCacheTTL and a negative value disables the cache. Another proxy's drop of a
	// collection or partition can go unnoticed by this one for this long (see targetCache).
	MetaCacheTTL time.Duration `yaml:"meta-cache-ttl"`
}

// Defaults of Config's zero fields.
const (
	// DefaultMaxMessageBytes is half the WAL's default record limit (8 MiB, NATS's
	// max_payload in the embedded server). A server that allows less (a stock nats-server
	// allows 1 MB) gets messages sized to what it allows.
	DefaultMaxMessageBytes = 4 << 20
	// maxRecordIDBytes bounds the record IDs appendAll makes ("{node}.{16 hex}-{seq}-{channel}-
	// {message}"), which travel in a header beside the message.
	maxRecordIDBytes = 80
	// DefaultAppendAttempts tries an append four times (backing off 0.1, 0.2, 0.4 s).
	DefaultAppendAttempts = 4
	// DefaultMetaCacheTTL saves two metastore reads on all but one insert per second and
	// collection, and bounds how long a drop through another proxy can go unseen.
	DefaultMetaCacheTTL = time.Second
	// TimestampWindow is how far ahead of the wall clock a proxy saves the bound of its
	// timestamps (tso.Window), Milvus's TSO window: a restarted proxy's timestamps run at most
	// this far ahead, and a metastore outage longer than this holds the proxy's mutations.
	TimestampWindow = 3 * time.Second
)

// MilvusVersion is the Milvus API version Weir serves. Build metadata after '+' names Weir, so
// clients that compare versions treat Weir as that Milvus release.
const MilvusVersion = "v2.6.0"

// Server implements milvuspb.MilvusServiceServer. RPCs Weir does not serve yet answer gRPC
// Unimplemented through the embedded UnimplementedMilvusServiceServer.
type Server struct {
	// The read path's methods (index definitions, and loading, search and query as they
	// come) are package readapi's; what neither serves answers Unimplemented.
	*readapi.Service

	cfg      Config
	catalog  Catalog
	channels Channels
	ids      IDAllocator
	clock    *tso.Clock
	logger   *slog.Logger
	nextConn atomic.Int64
	ready    atomic.Bool

	// recordPrefix starts every WAL record ID this server gives out: the node ID and a
	// random part drawn at start, so that neither another proxy nor this one restarted within
	// JetStream's duplicate window can reuse an ID (a reused ID would be dropped as a
	// duplicate: silent data loss). requests numbers the mutations it served.
	recordPrefix string
	requests     atomic.Uint64

	cache *targetCache
}

var _ milvuspb.MilvusServiceServer = (*Server)(nil)

// New returns a proxy over the given services. It reports healthy once SetReady is called.
func New(cfg Config, d Deps, logger *slog.Logger) *Server {
	if d.Clock == nil {
		d.Clock = tso.NewClock(nil)
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if cfg.MetaCacheTTL == 0 {
		cfg.MetaCacheTTL = DefaultMetaCacheTTL
	}
	if cfg.AppendAttempts <= 0 {
		cfg.AppendAttempts = DefaultAppendAttempts
	}
	s := &Server{cfg: cfg, catalog: d.Catalog, channels: d.Channels, ids: d.IDs, clock: d.Clock, logger: logger,
		cache: newTargetCache(cfg.MetaCacheTTL)}
	s.Service = readapi.New(d.Catalog, func(ctx context.Context, db, name string) (*meta.Collection, error) {
		return s.lookup(ctx, db, name, 0)
	})
	s.nextConn.Store(time.Now().UnixMilli())
	s.recordPrefix = fmt.Sprintf("%d.%016x", cfg.NodeID, rand.Uint64())
	return s
}

// SetReady marks the proxy as ready (or not) to serve.
func (s *Server) SetReady(ok bool) { s.ready.Store(ok) }

// database resolves the database of a request: its db_name, else the "dbname" header the Go SDK
// sends, else the default database. Weir has one database, "default".
func database(ctx context.Context, reqDB string) (string, error) {
	db := reqDB
	if db == "" {
		if md, ok := metadata.FromIncomingContext(ctx); ok {
			if v := md.Get("dbname"); len(v) > 0 {
				db = v[0]
			}
		}
	}
	if db == "" || db == meta.DefaultDatabase {
		return meta.DefaultDatabase, nil
	}
	return "", apierr.Milvus(apierr.NoDatabase, db).With("Weir has only the database %q", meta.DefaultDatabase)
}

func (s *Server) serverInfo() *commonpb.ServerInfo {
	return &commonpb.ServerInfo{
		BuildTags:  fmt.Sprintf("%s+weir.%s", MilvusVersion, strings.TrimPrefix(s.cfg.Version, "v")),
		GoVersion:  runtime.Version(),
		DeployMode: "weir",
		Reserved:   map[string]string{"weir_version": s.cfg.Version},
	}
}

// Connect is the SDK's handshake: it returns server info and an identifier for the connection.
func (s *Server) Connect(ctx context.Context, req *milvuspb.ConnectRequest) (*milvuspb.ConnectResponse, error) {
	if _, err := database(ctx, ""); err != nil {
		return &milvuspb.ConnectResponse{Status: apierr.Status(err)}, nil
	}
	id := s.nextConn.Add(1)
	s.logger.Debug("client connected", "identifier", id, "sdk", req.GetClientInfo().GetSdkType(),
		"sdk_version", req.GetClientInfo().GetSdkVersion(), "host", req.GetClientInfo().GetHost())
	return &milvuspb.ConnectResponse{Status: apierr.OK(), ServerInfo: s.serverInfo(), Identifier: id}, nil
}

// GetVersion returns the Milvus API version Weir serves, with Weir's version as build metadata.
func (s *Server) GetVersion(context.Context, *milvuspb.GetVersionRequest) (*milvuspb.GetVersionResponse, error) {
	return &milvuspb.GetVersionResponse{Status: apierr.OK(), Version: s.serverInfo().BuildTags}, nil
}

// CheckHealth reports whether the proxy is ready to serve.
func (s *Server) CheckHealth(context.Context, *milvuspb.CheckHealthRequest) (*milvuspb.CheckHealthResponse, error) {
	if !s.ready.Load() {
		err := apierr.New(apierr.ServiceNotReady, "weir is starting")
		return &milvuspb.CheckHealthResponse{Status: apierr.OK(), IsHealthy: false, Reasons: []string{err.Error()}}, nil
	}
	return &milvuspb.CheckHealthResponse{Status: apierr.OK(), IsHealthy: true}, nil
}
