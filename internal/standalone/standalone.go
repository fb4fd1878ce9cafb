// Package standalone runs every Weir role in one process over embedded servers: etcd for the
// metastore, NATS JetStream for the DML channels, and a local folder for object storage. The
// roles talk to those servers exactly as they do in a cluster; only the servers are embedded.
package standalone

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"google.golang.org/grpc"

	"github.com/weir-db/weir/internal/coord"
	"github.com/weir-db/weir/internal/datanode"
	"github.com/weir-db/weir/internal/health"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/metastore"
	"github.com/weir-db/weir/internal/objstore"
	"github.com/weir-db/weir/internal/proxy"
	"github.com/weir-db/weir/internal/querynode"
	"github.com/weir-db/weir/internal/tso"
	"github.com/weir-db/weir/internal/wal"
)

// Config holds standalone's settings. YAML keys are the command-line flag names.
type Config struct {
	DataDir    string `yaml:"data-dir"`
	Listen     string `yaml:"listen"`
	HTTPListen string `yaml:"http-listen"`
	// WALSync is when an append is acknowledged: "always" (after fsync) or "interval"
	// (JetStream's periodic fsync; see docs/operations.md).
	WALSync string `yaml:"wal-sync"`
	// RootPath prefixes every metastore key and object key, so several Weir clusters can
	// share one etcd and one bucket.
	RootPath string `yaml:"root-path"`
	// AssignInterval is how often the coordinator assigns channels (of new collections, or
	// whose owner died); standalone checks often so a new collection is served at once.
	AssignInterval time.Duration    `yaml:"assign-interval"`
	DataNode       datanode.Config  `yaml:"datanode"`
	QueryNode      querynode.Config `yaml:"querynode"`
}

// Defaults returns the default configuration.
func Defaults() Config {
	return Config{
		DataDir:        "./weir-data",
		Listen:         ":19530",
		HTTPListen:     ":9091",
		WALSync:        string(wal.SyncAlways),
		RootPath:       "weir",
		AssignInterval: 100 * time.Millisecond,
		DataNode:       datanode.Defaults(),
		QueryNode:      queryNodeDefaults(),
	}
}

// queryNodeDefaults are the query node's defaults, checking every 200 ms: standalone's one
// query node serves everything, so a load or a handoff is seen sooner for little cost.
func queryNodeDefaults() querynode.Config {
	c := querynode.Defaults()
	c.CheckInterval = 200 * time.Millisecond
	return c
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	switch {
	case c.DataDir == "":
		return errors.New("standalone: data-dir must be set")
	case c.Listen == "":
		return errors.New("standalone: listen must be set")
	case c.HTTPListen == "":
		return errors.New("standalone: http-listen must be set")
	case c.WALSync != string(wal.SyncAlways) && c.WALSync != string(wal.SyncInterval):
		return fmt.Errorf("standalone: wal-sync must be %q or %q, got %q", wal.SyncAlways, wal.SyncInterval, c.WALSync)
	case c.RootPath == "":
		return errors.New("standalone: root-path must be set")
	case c.QueryNode.Validate() != nil:
		return c.QueryNode.Validate()
	case c.AssignInterval <= 0:
		return errors.New("standalone: assign-interval must be positive")
	}
	return c.DataNode.Validate()
}

// Standalone is a running single-process Weir.
type Standalone struct {
	cfg    Config
	logger *slog.Logger

	health   *health.Server
	grpcLn   net.Listener
	grpcSrv  *grpc.Server
	etcd     *metastore.Embedded
	nats     *wal.Embedded
	store    *metastore.Etcd
	node     *datanode.Node
	log      *wal.Log
	proxy    *proxy.Server
	query    *querynode.Node
	closers  []func() error
	grpcDone chan error
}

// Start brings every component up and returns once Weir serves requests. /healthz answers 503
// from the moment Start begins until it returns. On error everything started is stopped.
func Start(ctx context.Context, cfg Config, version string, logger *slog.Logger) (_ *Standalone, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Standalone{cfg: cfg, logger: logger}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	t0 := time.Now()
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("standalone: create data dir: %w", err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	promauto.With(reg).NewGaugeVec(prometheus.GaugeOpts{
		Name: "weir_build_info", Help: "Weir's version; always 1.",
	}, []string{"version", "role"}).WithLabelValues(version, "standalone").Set(1)
	if err := s.startHTTP(reg); err != nil {
		return nil, err
	}

	s.etcd, err = metastore.StartEmbedded(ctx, metastore.EmbeddedConfig{
		Dir: filepath.Join(cfg.DataDir, "etcd"), Name: "weir", Logger: logger,
	})
	if err != nil {
		return nil, fmt.Errorf("standalone: start embedded etcd: %w", err)
	}
	s.closers = append(s.closers, s.etcd.Close)

	s.nats, err = wal.StartEmbedded(wal.EmbeddedConfig{
		Dir: filepath.Join(cfg.DataDir, "nats"), Sync: wal.Durability(cfg.WALSync), Logger: logger.With("component", "nats"),
	})
	if err != nil {
		return nil, fmt.Errorf("standalone: start embedded nats: %w", err)
	}
	s.closers = append(s.closers, func() error { s.nats.Shutdown(); return nil })

	bucket, err := objstore.NewLocal(filepath.Join(cfg.DataDir, "objects"))
	if err != nil {
		return nil, fmt.Errorf("standalone: open object storage: %w", err)
	}

	s.store, err = metastore.Dial(ctx, metastore.Config{Endpoints: s.etcd.Endpoints(), Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("standalone: connect to embedded etcd: %w", err)
	}
	s.closers = append(s.closers, s.store.Close)

	s.log, err = wal.Open(ctx, s.nats.ClientURL(), wal.Config{Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("standalone: connect to embedded nats: %w", err)
	}
	s.closers = append(s.closers, s.log.Close)
	// The data node reads over a connection of its own, as it does in a cluster: on the
	// proxy's connection, every append's acknowledgement would queue behind the delivery of
	// the message before it to the data node (a NATS connection has one reader), which
	// doubled the latency of an insert in `weir bench ingest`.
	nodeLog, err := wal.Open(ctx, s.nats.ClientURL(), wal.Config{Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("standalone: connect to embedded nats: %w", err)
	}
	s.closers = append(s.closers, nodeLog.Close)

	ids := meta.NewIDAllocator(s.store, cfg.RootPath, 1000)
	catalog := meta.NewCatalog(s.store, cfg.RootPath, ids, logger)
	dcfg := cfg.DataNode
	dcfg.ObjectRoot = cfg.RootPath
	s.node, err = datanode.New(dcfg, catalog, ids, nodeLog, bucket, reg, logger.With("role", "datanode"))
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() error { s.node.Close(); return nil })
	ccfg := coord.Defaults()
	ccfg.RootPath, ccfg.AssignInterval = cfg.RootPath, cfg.AssignInterval
	co, err := coord.New(ccfg, catalog, meta.NewView(s.store, cfg.RootPath, meta.ReloadChanged),
		localNodes{id: dcfg.NodeID, node: s.node}, bucket, reg, logger.With("role", "coord"))
	if err != nil {
		return nil, err
	}
	co.SetLog(s.log)

	// The query node reads the channels over a connection of its own too.
	qnLog, err := wal.Open(ctx, s.nats.ClientURL(), wal.Config{Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("standalone: connect to embedded nats: %w", err)
	}
	s.closers = append(s.closers, qnLog.Close)
	qcfg := cfg.QueryNode
	qcfg.NodeID, qcfg.RootPath = dcfg.NodeID, cfg.RootPath
	s.query = querynode.New(qcfg, querynode.Deps{Catalog: catalog, Store: s.store, Log: qnLog, Bucket: bucket}, reg, logger.With("role", "querynode"))
	qctx, stopQuery := context.WithCancel(context.Background())
	queryDone := make(chan struct{})
	go func() { defer close(queryDone); s.query.Run(qctx) }()
	s.closers = append(s.closers, func() error { stopQuery(); <-queryDone; return nil })
	local := localQueryNodes{id: qcfg.NodeID, node: s.query}
	co.SetQuery(catalog, local)

	if _, err := co.Assign(ctx); err != nil {
		return nil, fmt.Errorf("standalone: assign channels: %w", err)
	}
	cctx, stopCoord := context.WithCancel(context.Background())
	coordDone := make(chan struct{})
	go func() { defer close(coordDone); co.Run(cctx) }()
	s.closers = append(s.closers, func() error { stopCoord(); <-coordDone; return nil })

	// The proxy's timestamps stay monotonic across restarts (a bound saved ahead in etcd).
	clock, stopClock, err := tso.NewWindowedClock(ctx, catalog.TSBound(dcfg.NodeID), proxy.TimestampWindow,
		func(err error) { logger.Warn("save timestamp bound", "err", err) })
	if err != nil {
		return nil, fmt.Errorf("standalone: proxy timestamps: %w", err)
	}
	s.closers = append(s.closers, func() error { stopClock(); return nil })
	s.proxy = proxy.New(proxy.Config{Version: version}, proxy.Deps{Catalog: catalog, Channels: s.log, IDs: ids, Clock: clock}, logger.With("role", "proxy"))
	s.proxy.SetQueryNodes(local)
	if err := s.startGRPC(); err != nil {
		return nil, err
	}
	s.proxy.SetReady(true)
	s.health.SetReady(true)
	logger.Info("weir standalone ready", "listen", s.grpcLn.Addr().String(), "http", s.health.Addr(),
		"data_dir", cfg.DataDir, "etcd", s.etcd.Endpoints(), "nats", s.nats.ClientURL(),
		"wal_sync", cfg.WALSync, "startup", time.Since(t0).Round(time.Millisecond))
	return s, nil
}

func (s *Standalone) startHTTP(reg *prometheus.Registry) (err error) {
	if s.health, err = health.Listen(s.cfg.HTTPListen, reg); err != nil {
		return fmt.Errorf("standalone: listen http: %w", err)
	}
	return nil
}

func (s *Standalone) startGRPC() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("standalone: listen grpc: %w", err)
	}
	s.grpcLn = ln
	s.grpcSrv = proxy.NewGRPCServer(s.proxy, s.logger)
	s.grpcDone = make(chan error, 1)
	go func() { s.grpcDone <- s.grpcSrv.Serve(ln) }()
	return nil
}

// Addr is the Milvus gRPC address.
func (s *Standalone) Addr() string { return s.grpcLn.Addr().String() }

// HTTPAddr is the address of /healthz and /metrics.
func (s *Standalone) HTTPAddr() string { return s.health.Addr() }

// EtcdEndpoints are the embedded etcd's client URLs (for `weir inspect` and tests).
func (s *Standalone) EtcdEndpoints() []string { return s.etcd.Endpoints() }

// QueryNode is the in-process query node (for benchmarks that measure it alone).
func (s *Standalone) QueryNode() *querynode.Node { return s.query }

// NATSURL is the embedded NATS server's client URL.
func (s *Standalone) NATSURL() string { return s.nats.ClientURL() }

// Close stops serving and shuts every component down in reverse start order: in-flight RPCs
// finish first, then the clients close, then the embedded servers flush and stop.
func (s *Standalone) Close() error {
	if s.health != nil {
		s.health.SetReady(false)
	}
	var errs []error
	if s.grpcSrv != nil {
		stopped := make(chan struct{})
		go func() { s.grpcSrv.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(10 * time.Second):
			s.grpcSrv.Stop()
		}
		<-s.grpcDone
	}
	for i := len(s.closers) - 1; i >= 0; i-- {
		if err := s.closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	s.closers = nil
	if s.health != nil {
		if err := s.health.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
