package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"

	"github.com/spf13/cobra"

	"github.com/weir-db/weir/internal/bench"
)

type benchFlags struct {
	out        string
	quick      bool
	dir        string
	cpuProfile string
	memProfile string
	markdown   string
}

func newBench(g *globals) *cobra.Command {
	f := benchFlags{out: "bench-results"}
	var names []string
	for _, b := range bench.All() {
		names = append(names, fmt.Sprintf("  %-9s %s", b.Name, b.Short))
	}
	cmd := &cobra.Command{
		Use:   "bench [ingest|flush|meta|reload|recovery|search|ann]...",
		Short: "Measure Weir beside baselines measured in the same run (all benchmarks when none is named)",
		Long: "Each benchmark prints a table with every figure beside a baseline measured in the same run on\n" +
			"this machine, and the ratio between them, and writes the same report as JSON to --out.\n" +
			"BENCHMARKS.md records the latest figures and the machine they came from.\n\nBenchmarks:\n" +
			strings.Join(names, "\n"),
		Args: func(_ *cobra.Command, args []string) error {
			for _, a := range args {
				if _, ok := bench.Lookup(a); !ok {
					return fmt.Errorf("unknown benchmark %q (want one of ingest, flush, meta, reload, recovery, search, ann)", a)
				}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop, logger, err := g.setUp(cmd, "warn")
			if err != nil {
				return err
			}
			defer stop()
			if len(args) == 0 {
				for _, b := range bench.All() {
					args = append(args, b.Name)
				}
			}
			if f.cpuProfile != "" {
				pf, err := os.Create(f.cpuProfile)
				if err != nil {
					return err
				}
				defer pf.Close()
				if err := pprof.StartCPUProfile(pf); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			o := bench.Options{Quick: f.quick, Dir: f.dir, Progress: os.Stderr, Logger: logger}
			out := cmd.OutOrStdout()
			var md *os.File
			if f.markdown != "" {
				if err := os.MkdirAll(filepath.Dir(f.markdown), 0o755); err != nil {
					return err
				}
				if md, err = os.Create(f.markdown); err != nil {
					return err
				}
				defer md.Close()
				fmt.Fprintf(md, "Machine: %s\n\n", bench.ThisMachine())
			}
			var failed []string
			for _, name := range args {
				b, _ := bench.Lookup(name)
				fmt.Fprintf(os.Stderr, "weir bench %s: %s\n", b.Name, b.Short)
				r, err := b.Run(ctx, o)
				if err != nil {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					fmt.Fprintf(os.Stderr, "weir bench %s: %v\n", name, err)
					failed = append(failed, name)
					continue
				}
				r.Print(out)
				if md != nil {
					r.Markdown(md)
				}
				path, err := r.WriteJSON(f.out)
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "report: %s\n", path)
			}
			if f.memProfile != "" {
				if err := writeHeapProfile(f.memProfile); err != nil {
					return err
				}
			}
			if len(failed) > 0 {
				return fmt.Errorf("benchmarks failed: %s", strings.Join(failed, ", "))
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.out, "out", f.out, "folder the JSON reports are written to (<name>.json)")
	fl.BoolVar(&f.quick, "quick", false, "small sizes that finish in seconds: a smoke test, not figures to record")
	fl.StringVar(&f.dir, "dir", "", "scratch folder for the servers' data (default: the system's temporary folder)")
	fl.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile (pprof) of this process to this file (roles run as separate processes serve theirs at /debug/pprof/, printed at their start)")
	fl.StringVar(&f.markdown, "markdown", "", "also write the reports' tables as Markdown to this file (BENCHMARKS.md's tables come from it)")
	fl.StringVar(&f.memProfile, "memprofile", "", "write a heap profile (pprof) of this process to this file at the end")
	return cmd
}

func writeHeapProfile(path string) error {
	pf, err := os.Create(path)
	if err != nil {
		return err
	}
	defer pf.Close()
	runtime.GC()
	return pprof.WriteHeapProfile(pf)
}
