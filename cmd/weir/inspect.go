package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/weir-db/weir/internal/inspect"
	"github.com/weir-db/weir/internal/metastore"
	"github.com/weir-db/weir/internal/objstore"
	"github.com/weir-db/weir/internal/wal"
)

// exit ends the process; tests replace it. `weir inspect` needs it because main maps every
// error to status 1, and inspect reports usage and connection errors with status 2.
var exit = os.Exit

// exitError is an error with the exit status `weir inspect` ends with: 1 when verify found
// inconsistencies (main exits 1 on any error), 2 for usage and connection errors.
type exitError struct {
	code  int
	err   error
	usage bool // print a pointer to --help
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// ExitCode is the status the process exits with.
func (e *exitError) ExitCode() int { return e.code }

func usageError(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...), usage: true}
}

type inspectFlags struct {
	etcd           []string
	storage        string
	nats           string
	rootPath       string
	json           bool
	grace          time.Duration
	connectTimeout time.Duration
}

func newInspect(g *globals) *cobra.Command {
	f := inspectFlags{etcd: []string{"http://127.0.0.1:2379"}, rootPath: "weir", grace: time.Hour, connectTimeout: 5 * time.Second}
	cmd := &cobra.Command{
		Use:   "inspect [flags] channels|segments|checkpoints|verify",
		Short: "Read-only view of the metastore and object storage; verify checks that they agree",
		Long: `Inspect reads the metastore (and object storage, and the DML channels when given) and writes
nothing.

  channels     per channel: collection, owner node, lease revision, legacy flag, whether the
               owner's session is live, checkpoint, and lag behind the channel (needs --nats)
  segments     per segment: collection, partition, channel, level, state, rows, files, bytes,
               highest position, lease
  checkpoints  per channel: position, timestamp, update time
  verify       reads every file committed meta references and reports duplicate-key,
               missing-file, corrupt-file, unreferenced-file (older than --grace),
               checkpoint-ahead (needs --nats), dead-owner and meta-mismatch findings, one a
               line, then a summary line (docs/operations.md explains each)

Exit status: 0 clean, 1 when verify found something, 2 on a usage or connection error.`,
		// Arguments are checked in RunE, so that a wrong one exits with status 2.
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return exitWith(cmd, runInspect(cmd, g, &f, args))
		},
	}
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return exitWith(c, &exitError{code: 2, err: err, usage: true})
	})
	fl := cmd.Flags()
	fl.StringSliceVar(&f.etcd, "etcd", f.etcd, "etcd client URLs, comma-separated")
	fl.StringVar(&f.storage, "storage", "", "object storage, required by verify: file:///path or s3://bucket/prefix?endpoint=host:port&...")
	fl.StringVar(&f.nats, "nats", "", "NATS URL of the DML channels: enables lag in channels and the checkpoint-ahead check of verify")
	fl.StringVar(&f.rootPath, "root-path", f.rootPath, "prefix of every metastore and object key")
	fl.BoolVar(&f.json, "json", false, "print one JSON document instead of a table")
	fl.DurationVar(&f.grace, "grace", f.grace, "verify: unreferenced files younger than this are not reported (a sync may still be committing them)")
	fl.DurationVar(&f.connectTimeout, "connect-timeout", f.connectTimeout, "how long to wait for etcd and NATS to answer")
	return cmd
}

// exitWith turns err into the command's outcome: nil; an error for main to print and exit 1
// with; or, for status 2, the message printed here and exit(2).
func exitWith(cmd *cobra.Command, err error) error {
	if err == nil {
		return nil
	}
	var ee *exitError
	if !errors.As(err, &ee) {
		ee = &exitError{code: 2, err: err}
	}
	if ee.code == 1 {
		return ee
	}
	fmt.Fprintln(cmd.ErrOrStderr(), "weir:", ee.err)
	if ee.usage {
		fmt.Fprintf(cmd.ErrOrStderr(), "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	exit(ee.code)
	return ee
}

func runInspect(cmd *cobra.Command, g *globals, f *inspectFlags, args []string) error {
	if len(args) != 1 || !slices.Contains(inspect.Commands, args[0]) {
		return usageError("inspect: want one of %s, got %q", strings.Join(inspect.Commands, ", "), strings.Join(args, " "))
	}
	what := args[0]
	ctx, stop, logger, err := g.setUp(cmd, "warn")
	if err != nil {
		return &exitError{code: 2, err: err, usage: true}
	}
	defer stop()
	if what == "verify" && f.storage == "" {
		return usageError("inspect verify: --storage is required")
	}
	if f.connectTimeout <= 0 {
		return usageError("inspect: --connect-timeout must be positive")
	}

	kv, err := metastore.Dial(ctx, metastore.Config{Endpoints: f.etcd, DialTimeout: f.connectTimeout, Logger: logger})
	if err != nil {
		return err
	}
	defer kv.Close()
	var bucket objstore.BucketReader
	if f.storage != "" {
		if bucket, err = openStorage(ctx, f.storage); err != nil {
			return err
		}
	}
	var log inspect.Log
	if f.nats != "" {
		octx, cancel := context.WithTimeout(ctx, f.connectTimeout)
		l, err := wal.Open(octx, f.nats, wal.Config{Logger: logger})
		cancel()
		if err != nil {
			return err
		}
		defer l.Close()
		log = inspect.NewWAL(l, 0)
	}
	in, err := inspect.New(kv, bucket, log, inspect.Config{Root: f.rootPath, Grace: f.grace}, logger)
	if err != nil {
		return &exitError{code: 2, err: err, usage: true}
	}
	n, err := in.Run(ctx, what, cmd.OutOrStdout(), f.json)
	if err != nil {
		return err
	}
	if n > 0 {
		return &exitError{code: 1, err: fmt.Errorf("verify: %d findings", n)}
	}
	return nil
}

// openStorage opens object storage without writing to it; a URL that would need a write is
// a usage error.
func openStorage(ctx context.Context, raw string) (objstore.BucketReader, error) {
	b, err := objstore.OpenReader(ctx, raw)
	if errors.Is(err, objstore.ErrReadOnly) {
		return nil, usageError("inspect: --storage: %v (inspect never writes)", err)
	}
	return b, err
}
