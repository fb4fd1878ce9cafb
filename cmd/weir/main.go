// Command weir is Weir's single binary: it picks a role with a subcommand, parses flags and an
// optional YAML config file, wires the role's components, runs until SIGINT or SIGTERM, and
// exits.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/weir-db/weir/internal/coord"
	"github.com/weir-db/weir/internal/datanode"
	"github.com/weir-db/weir/internal/demo"
	"github.com/weir-db/weir/internal/querynode"
	"github.com/weir-db/weir/internal/role"
	"github.com/weir-db/weir/internal/standalone"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "weir:", err)
		os.Exit(1)
	}
}

// globals are the flags every subcommand has.
type globals struct {
	config    string
	logLevel  string
	logFormat string
}

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "weir",
		Short:         "Weir: a Milvus-compatible vector database whose write path needs no coordinator",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.PersistentFlags().StringVar(&g.config, "config", "", "YAML file whose keys are flag names (flags given on the command line win)")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	root.AddCommand(newStandalone(g), newDemo(g), newRun(g), newInspect(g), newBench(g))
	return root
}

func newStandalone(g *globals) *cobra.Command {
	cfg := standalone.Defaults()
	cmd := &cobra.Command{
		Use:   "standalone",
		Short: "Run every role in one process over embedded etcd, NATS JetStream and local object storage",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop, logger, err := g.setUp(cmd, "")
			if err != nil {
				return err
			}
			defer stop()
			s, err := standalone.Start(ctx, cfg, version, logger)
			if err != nil {
				return err
			}
			<-ctx.Done()
			logger.Info("shutting down")
			if err := s.Close(); err != nil {
				return fmt.Errorf("shutdown: %w", err)
			}
			logger.Info("stopped")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "directory for etcd, NATS and object data")
	f.StringVar(&cfg.Listen, "listen", cfg.Listen, "Milvus gRPC listen address")
	f.StringVar(&cfg.HTTPListen, "http-listen", cfg.HTTPListen, "HTTP listen address for /healthz and /metrics")
	f.StringVar(&cfg.WALSync, "wal-sync", cfg.WALSync, `when an append is acknowledged: "always" (after fsync) or "interval" (JetStream's periodic fsync)`)
	f.StringVar(&cfg.RootPath, "root-path", cfg.RootPath, "prefix of every metastore and object key")
	dataNodeFlags(f, &cfg.DataNode)
	return cmd
}

func newDemo(g *globals) *cobra.Command {
	cfg := demo.Defaults()
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Start an embedded standalone in a temporary directory, load a generated data set, flush, and report",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The report is the output; Weir's own log lines would bury it.
			ctx, stop, logger, err := g.setUp(cmd, "warn")
			if err != nil {
				return err
			}
			defer stop()
			cfg.Progress = os.Stderr
			res, err := demo.Run(ctx, cfg, logger)
			if err != nil {
				return err
			}
			res.Print(cmd.OutOrStdout())
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Rows, "rows", cfg.Rows, "rows to insert")
	f.IntVar(&cfg.Dim, "dim", cfg.Dim, "dimension of the float vectors")
	f.IntVar(&cfg.Batch, "batch", cfg.Batch, "rows per insert request")
	f.IntVar(&cfg.Shards, "shards", cfg.Shards, "shards (DML channels) of the collection")
	f.IntVar(&cfg.Clients, "clients", cfg.Clients, "concurrent insert clients")
	f.IntVar(&cfg.Deletes, "deletes", cfg.Deletes, "rows to delete after the load")
	f.StringVar(&cfg.Dir, "data-dir", "", "keep the data in this directory (default: a temporary one, removed afterwards)")
	return cmd
}

func newRun(g *globals) *cobra.Command {
	run := &cobra.Command{
		Use:   "run",
		Short: "Run one role (coord, datanode, proxy or querynode) against external etcd, NATS JetStream and object storage",
	}
	for _, name := range []string{"coord", "datanode", "proxy", "querynode"} {
		cfg := role.Defaults()
		dcfg := datanode.Defaults()
		ccfg := coord.Defaults()
		qcfg := querynode.Defaults()
		cmd := &cobra.Command{
			Use: name,
			Short: map[string]string{"coord": "Assign channels, reload meta, answer recovery targets, collect garbage", "datanode": "Consume DML channels into Parquet segments", "proxy": "Serve the Milvus API",
				"querynode": "Serve searches and queries of loaded collections' shards"}[name],
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				ctx, stop, logger, err := g.setUp(cmd, "")
				if err != nil {
					return err
				}
				defer stop()
				cfg.Version = version
				switch name {
				case "coord":
					return role.RunCoord(ctx, cfg, ccfg, logger)
				case "datanode":
					return role.RunDataNode(ctx, cfg, dcfg, logger)
				case "querynode":
					return role.RunQueryNode(ctx, cfg, qcfg, logger)
				}
				return role.RunProxy(ctx, cfg, logger)
			},
		}
		f := cmd.Flags()
		f.StringSliceVar(&cfg.Etcd, "etcd", cfg.Etcd, "etcd client URLs, comma-separated")
		f.StringVar(&cfg.NATS, "nats", cfg.NATS, "NATS URL (JetStream enabled)")
		f.StringVar(&cfg.Storage, "storage", cfg.Storage, "object storage: file:///path or s3://bucket/prefix?endpoint=host:port&...")
		f.Int64Var(&cfg.NodeID, "node-id", cfg.NodeID, "this process's node ID, stable across restarts")
		f.StringVar(&cfg.GRPCListen, "grpc-listen", cfg.GRPCListen, "internal gRPC listen address, advertised in the session")
		f.StringVar(&cfg.HTTPListen, "http-listen", cfg.HTTPListen, "HTTP listen address for /healthz and /metrics")
		f.StringVar(&cfg.RootPath, "root-path", cfg.RootPath, "prefix of every metastore and object key")
		f.DurationVar(&cfg.SessionTTL, "session-ttl", cfg.SessionTTL, "session lease TTL: a process silent this long counts as dead")
		switch name {
		case "proxy":
			f.StringVar(&cfg.Listen, "listen", cfg.Listen, "Milvus gRPC listen address")
			f.DurationVar(&cfg.MetaCacheTTL, "meta-cache-ttl", cfg.MetaCacheTTL, "how long inserts reuse a collection's metastore record (0 disables); another proxy's drop may go unseen this long")
			f.IntVar(&cfg.WALReplicas, "wal-replicas", cfg.WALReplicas, "replicas of the JetStream stream of each new channel: 1, or 3 or 5 on a JetStream cluster")
		case "datanode":
			dataNodeFlags(f, &dcfg)
			f.StringVar(&dcfg.Protocol, "protocol", dcfg.Protocol, `"current", or "legacy" to behave as the previous release (every meta write through the coordinator)`)
		case "querynode":
			f.Int64Var(&qcfg.MemoryLimit, "memory-limit", qcfg.MemoryLimit, "bytes of rows the query node holds at most; a load that would pass it fails (0: no limit)")
			f.DurationVar(&qcfg.CheckInterval, "check-interval", qcfg.CheckInterval, "how often assignments and newly committed files are read (at most 1s)")
			f.DurationVar(&qcfg.HoldTTL, "hold-ttl", qcfg.HoldTTL, "how long the node's hold on a channel's log lasts unless renewed")
		case "coord":
			f.DurationVar(&ccfg.ReloadInterval, "reload-interval", ccfg.ReloadInterval, "how often committed meta is re-read")
			f.DurationVar(&ccfg.AssignInterval, "assign-interval", ccfg.AssignInterval, "how often channel assignment is checked")
			f.DurationVar(&ccfg.GCInterval, "gc-interval", ccfg.GCInterval, "how often garbage is collected")
			f.DurationVar(&ccfg.GCGrace, "gc-grace", ccfg.GCGrace, "age before an unreferenced file is deleted")
			f.StringVar(&ccfg.Protocol, "protocol", ccfg.Protocol, `"current", or "legacy" to behave as the previous release (watch info without leases)`)
		}
		run.AddCommand(cmd)
	}
	return run
}

// dataNodeFlags binds the data node's tuning settings (docs/operations.md).
func dataNodeFlags(f *pflag.FlagSet, c *datanode.Config) {
	f.Int64Var(&c.MemoryLimit, "memory-limit", c.MemoryLimit, "bytes of rows the data node buffers across all channels before it syncs and stops consuming")
	f.Int64Var(&c.SyncBufferBytes, "sync-buffer-bytes", c.SyncBufferBytes, "bytes buffered for one segment that trigger a sync")
	f.IntVar(&c.IndexWorkers, "index-workers", c.IndexWorkers, "vector index builds of the node's flushed segments run at once (0: none)")
	f.Int64Var(&c.IndexMemoryLimit, "index-memory-limit", c.IndexMemoryLimit, "bytes the running index builds hold together at most (estimated); a larger build is refused and its segment searched exactly")
	f.DurationVar(&c.SyncStaleAge, "sync-stale-age", c.SyncStaleAge, "age of the oldest buffered row that triggers a sync")
	f.Int64Var(&c.SealBytes, "seal-bytes", c.SealBytes, "segment size at which it is sealed")
	f.Int64Var(&c.SealRows, "seal-rows", c.SealRows, "segment row count at which it is sealed")
	f.DurationVar(&c.SealAge, "seal-age", c.SealAge, "segment age at which it is sealed")
	f.DurationVar(&c.SealIdle, "seal-idle", c.SealIdle, "time without inserts after which a segment of at least seal-idle-min-bytes is sealed")
	f.Int64Var(&c.SealIdleMinBytes, "seal-idle-min-bytes", c.SealIdleMinBytes, "smallest segment sealed for being idle")
	f.DurationVar(&c.TruncateInterval, "truncate-interval", c.TruncateInterval, "how often a channel's log is truncated below its checkpoint and readers' holds")
	f.DurationVar(&c.LogKeep, "log-keep", c.LogKeep, "age a record must reach before it can be truncated (never less than the channel's duplicate window plus a minute)")
}

// setUp is what every command does first: apply the config file, build the logger (at
// defaultLevel when set and --log-level was not given), and return a context that ends on
// SIGINT or SIGTERM.
func (g *globals) setUp(cmd *cobra.Command, defaultLevel string) (context.Context, context.CancelFunc, *slog.Logger, error) {
	if err := applyConfigFile(cmd, g.config); err != nil {
		return nil, nil, nil, err
	}
	level := g.logLevel
	if defaultLevel != "" && !cmd.Flags().Changed("log-level") {
		level = defaultLevel
	}
	logger, err := newLogger(level, g.logFormat)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	return ctx, stop, logger, nil
}

func newLogger(level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: expected text or json, got %q", format)
}

// applyConfigFile sets every flag named in the YAML file at path that was not given on the
// command line. A key that names no flag is an error, so a typo never goes unnoticed.
func applyConfigFile(cmd *cobra.Command, path string) error {
	if path == "" {
		return nil
	}
	values, err := readConfigFile(path)
	if err != nil {
		return err
	}
	var errs []error
	for key, val := range values {
		fl := cmd.Flags().Lookup(key)
		if fl == nil {
			errs = append(errs, fmt.Errorf("config %s: unknown key %q (keys are flag names of %q)", path, key, cmd.CommandPath()))
			continue
		}
		if fl.Changed {
			continue
		}
		if err := cmd.Flags().Set(fl.Name, val); err != nil {
			errs = append(errs, fmt.Errorf("config %s: key %q: %w", path, key, err))
		}
	}
	return errors.Join(errs...)
}
