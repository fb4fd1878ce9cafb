// Package role runs one Weir role — coordinator, data node or proxy — as its own process
// against external etcd, NATS JetStream and object storage: what `weir run` starts. Each role
// registers a session, serves /healthz and /metrics, and stops cleanly when its context ends or
// its session is lost.
package role

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"google.golang.org/grpc"

	"github.com/weir-db/weir/internal/health"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/metastore"
	"github.com/weir-db/weir/internal/objstore"
	"github.com/weir-db/weir/internal/proxy"
	"github.com/weir-db/weir/internal/session"
	"github.com/weir-db/weir/internal/wal"
)

// Config is what every role needs. YAML keys are the flag names of `weir run`.
type Config struct {
	Etcd       []string      `yaml:"etcd"`
	NATS       string        `yaml:"nats"`
	Storage    string        `yaml:"storage"`
	NodeID     int64         `yaml:"node-id"`
	Listen     string        `yaml:"listen"`      // the proxy's Milvus gRPC address
	GRPCListen string        `yaml:"grpc-listen"` // internal gRPC; advertised in the session
	HTTPListen string        `yaml:"http-listen"`
	RootPath   string        `yaml:"root-path"`
	SessionTTL time.Duration `yaml:"session-ttl"`
	// MetaCacheTTL is the proxy's proxy.Config.MetaCacheTTL, except that 0 disables the cache.
	MetaCacheTTL time.Duration `yaml:"meta-cache-ttl"`
	// WALReplicas is the replica count of the JetStream streams the proxy creates for new
	// channels: 1 for a single nats-server, 3 (or 5) for a JetStream cluster, where a stream
	// then survives the loss of a minority of servers.
	WALReplicas int    `yaml:"wal-replicas"`
	Version     string `yaml:"-"`
}

// Defaults returns the defaults of `weir run`.
func Defaults() Config {
	return Config{Etcd: []string{"http://127.0.0.1:2379"}, NATS: "nats://127.0.0.1:4222", Storage: "file:///var/lib/weir/objects",
		NodeID: 1, Listen: ":19530", GRPCListen: "127.0.0.1:0", HTTPListen: ":9091", RootPath: "weir", SessionTTL: session.DefaultTTL,
		MetaCacheTTL: proxy.DefaultMetaCacheTTL, WALReplicas: 1}
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	switch {
	case len(c.Etcd) == 0:
		return errors.New("role: --etcd must name at least one endpoint")
	case c.NodeID <= 0:
		return fmt.Errorf("role: --node-id must be positive, got %d", c.NodeID)
	case c.RootPath == "":
		return errors.New("role: --root-path must be set")
	case c.SessionTTL < time.Second:
		return fmt.Errorf("role: --session-ttl must be at least 1s, got %s", c.SessionTTL)
	case c.WALReplicas < 1 || c.WALReplicas > 5:
		return fmt.Errorf("role: --wal-replicas must be 1 to 5 (JetStream's limit), got %d", c.WALReplicas)
	}
	return nil
}

// base holds what every role has: the metastore, the catalog, metrics, the HTTP server, the
// internal gRPC server and the session.
type base struct {
	cfg     Config
	role    string
	logger  *slog.Logger
	store   *metastore.Etcd
	catalog *meta.Catalog
	ids     *meta.IDAllocator
	reg     *prometheus.Registry
	grpc    *grpc.Server
	grpcLn  net.Listener
	health  *health.Server
	session *session.Session
	closers []func()
}

func newBase(ctx context.Context, cfg Config, role string, logger *slog.Logger) (*base, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &base{cfg: cfg, role: role, logger: logger.With("role", role, "node", cfg.NodeID), reg: prometheus.NewRegistry()}
	b.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	promauto.With(b.reg).NewGaugeVec(prometheus.GaugeOpts{Name: "weir_build_info", Help: "Weir's version; always 1."},
		[]string{"version", "role"}).WithLabelValues(cfg.Version, role).Set(1)
	var err error
	if b.health, err = health.Listen(cfg.HTTPListen, b.reg); err != nil {
		return nil, fmt.Errorf("role: listen http: %w", err)
	}
	b.closers = append(b.closers, func() { _ = b.health.Close() })
	if b.store, err = metastore.Dial(ctx, metastore.Config{Endpoints: cfg.Etcd, Logger: logger}); err != nil {
		b.close()
		return nil, fmt.Errorf("role: connect to etcd %v: %w", cfg.Etcd, err)
	}
	b.closers = append(b.closers, func() { _ = b.store.Close() })
	b.ids = meta.NewIDAllocator(b.store, cfg.RootPath, 1000)
	b.catalog = meta.NewCatalog(b.store, cfg.RootPath, b.ids, b.logger)
	return b, nil
}

// openData connects to what a data-holding role reads and writes: the DML channels (closed
// with the role) and object storage.
func (b *base) openData(ctx context.Context) (*wal.Log, objstore.Bucket, error) {
	log, err := wal.Open(ctx, b.cfg.NATS, wal.Config{Logger: b.logger})
	if err != nil {
		return nil, nil, fmt.Errorf("role: connect to nats %s: %w", b.cfg.NATS, err)
	}
	b.closers = append(b.closers, func() { _ = log.Close() })
	bucket, err := objstore.Open(ctx, b.cfg.Storage)
	if err != nil {
		return nil, nil, fmt.Errorf("role: open storage: %w", err)
	}
	return log, bucket, nil
}

// serveGRPC starts the internal gRPC server, with the services register adds.
func (b *base) serveGRPC(srv *grpc.Server) error {
	ln, err := net.Listen("tcp", b.cfg.GRPCListen)
	if err != nil {
		return fmt.Errorf("role: listen grpc: %w", err)
	}
	b.grpc, b.grpcLn = srv, ln
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	b.closers = append(b.closers, func() { srv.GracefulStop(); <-done })
	return nil
}

// register writes the role's session; it blocks while a previous session of the same node ID
// has not expired yet (a restart after a crash).
func (b *base) register(ctx context.Context, grpcAddr, protocol string) error {
	s, err := session.Register(ctx, b.store.Client(), session.Config{Root: b.cfg.RootPath, TTL: b.cfg.SessionTTL, Logger: b.logger},
		session.Info{Role: b.role, NodeID: b.cfg.NodeID, GRPCAddr: grpcAddr, HTTPAddr: b.health.Addr(), Version: b.cfg.Version, Protocol: protocol, StartedAt: time.Now().UTC()})
	if err != nil {
		return err
	}
	b.session = s
	b.closers = append(b.closers, func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(cctx)
	})
	return nil
}

// wait blocks until ctx ends or the session is lost; a lost session is an error, so the process
// exits and its supervisor restarts it with a fresh session.
func (b *base) wait(ctx context.Context) error {
	b.health.SetReady(true)
	b.logger.Info("weir role ready", "http", b.health.Addr(), "grpc", addr(b.grpcLn), "etcd", b.cfg.Etcd)
	select {
	case <-ctx.Done():
		return nil
	case <-b.session.Done():
		return fmt.Errorf("role %s: session lost: %w", b.role, b.session.Err())
	}
}

func addr(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return ln.Addr().String()
}

// close stops everything in reverse start order.
func (b *base) close() {
	if b.health != nil {
		b.health.SetReady(false)
	}
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
	b.closers = nil
}
