// Command prebuild builds the etcd, nats-server and versitygw binaries of multi-process tests
// into a cache directory, with the code Binaries and VersityBinary use, and prints shell
// exports that point the tests at them (.ci/run evaluates them).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/weir-db/weir/internal/testcluster"
)

func main() {
	dir := flag.String("dir", "", "cache directory for the binaries (default: "+testcluster.EnvBinDir+" or the default cache)")
	flag.Parse()
	if err := run(*dir, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "prebuild:", err)
		os.Exit(1)
	}
}

// run builds into dir and writes the exports to stdout, its log to stderr.
func run(dir string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if dir == "" {
		dir = os.Getenv(testcluster.EnvBinDir)
	}
	if dir == "" {
		var err error
		if dir, err = testcluster.DefaultBinDir(); err != nil {
			return err
		}
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	start := time.Now()
	etcd, nats, err := testcluster.Build(ctx, log, dir)
	if err != nil {
		return err
	}
	versity, err := testcluster.BuildVersity(ctx, log, dir)
	if err != nil {
		return err
	}
	log.Info("test server binaries ready", "etcd", etcd, "nats", nats, "versitygw", versity, "took", time.Since(start).Round(time.Second))
	for _, e := range [][2]string{{testcluster.EnvEtcdBin, etcd}, {testcluster.EnvNATSBin, nats}, {testcluster.EnvVersityBin, versity}} {
		if _, err := fmt.Fprintf(stdout, "export %s=%s\n", e[0], shellQuote(e[1])); err != nil {
			return err
		}
	}
	return nil
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
