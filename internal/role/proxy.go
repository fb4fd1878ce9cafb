package role

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/proxy"
	"github.com/weir-db/weir/internal/tso"
	"github.com/weir-db/weir/internal/wal"
)

// RunProxy runs a proxy, serving the Milvus API on cfg.Listen, until ctx ends or its session
// is lost. It needs no coordinator: DDL goes through conditional catalog transactions, writes
// to the channels, flush state and statistics come from the metastore, and reads go to the
// query nodes the shard states in etcd name.
func RunProxy(ctx context.Context, cfg Config, logger *slog.Logger) error {
	b, err := newBase(ctx, cfg, "proxy", logger)
	if err != nil {
		return err
	}
	defer b.close()
	log, err := wal.Open(ctx, cfg.NATS, wal.Config{Replicas: cfg.WALReplicas, Logger: b.logger})
	if err != nil {
		return fmt.Errorf("role: connect to nats %s: %w", cfg.NATS, err)
	}
	b.closers = append(b.closers, func() { _ = log.Close() })
	cacheTTL := cfg.MetaCacheTTL
	if cacheTTL == 0 {
		cacheTTL = -1 // proxy.Config reads 0 as its default
	}
	// The proxy's timestamps stay monotonic across its restarts (a bound saved ahead in etcd).
	clock, stopClock, err := tso.NewWindowedClock(ctx, b.catalog.TSBound(cfg.NodeID), proxy.TimestampWindow,
		func(err error) { b.logger.Warn("save timestamp bound", "err", err) })
	if err != nil {
		return fmt.Errorf("role: proxy %d timestamps: %w", cfg.NodeID, err)
	}
	b.closers = append(b.closers, stopClock)
	p := proxy.New(proxy.Config{Version: cfg.Version, NodeID: cfg.NodeID, MetaCacheTTL: cacheTTL}, proxy.Deps{Catalog: b.catalog, Channels: log, IDs: b.ids, Clock: clock}, b.logger)
	// Searches and queries go to the query nodes serving each shard, found in etcd.
	qnodes := newRemoteQueryNodes(b)
	b.closers = append(b.closers, qnodes.close)
	p.SetQueryNodes(qnodes)
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("role: listen %s: %w", cfg.Listen, err)
	}
	srv := proxy.NewGRPCServer(p, b.logger)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	b.closers = append(b.closers, func() { srv.GracefulStop(); <-done })
	if err := b.register(ctx, ln.Addr().String(), meta.ProtocolCurrent); err != nil {
		return err
	}
	p.SetReady(true)
	b.logger.Info("milvus api listening", "listen", ln.Addr().String())
	return b.wait(ctx)
}
