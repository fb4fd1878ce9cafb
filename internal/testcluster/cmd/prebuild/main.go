// Command prebuild builds the etcd and nats-server binaries of multi-process tests into a
// cache directory, with the code Binaries uses, and prints shell exports that point the tests
// at them (.ci/run evaluates them).
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
	log.Info("test server binaries ready", "etcd", etcd, "nats", nats, "took", time.Since(start).Round(time.Second))
	_, err = fmt.Fprintf(stdout, "export %s=%s\nexport %s=%s\n", testcluster.EnvEtcdBin, shellQuote(etcd), testcluster.EnvNATSBin, shellQuote(nats))
	return err
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
