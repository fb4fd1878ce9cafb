// Package bench is `weir bench`: benchmarks of Weir's write path that print every figure beside
// a baseline measured in the same run on the same machine (raw JetStream appends, raw Parquet
// encoding, raw file writes, the same etcd transaction without its fence), so that the ratio
// means something on a noisy machine where the absolute figure does not.
//
// Each benchmark returns a Report: tables for people, key figures and targets for tools. The
// command prints the tables and writes each report as JSON; BENCHMARKS.md holds the latest.
package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Options apply to every benchmark.
type Options struct {
	// Quick shrinks every benchmark to a size that finishes in seconds: for the smoke test
	// and a first look, not for figures worth recording.
	Quick bool
	// Dir is a scratch folder for the servers' data; the benchmark removes what it made.
	Dir string
	// Progress receives progress bars; nil shows none.
	Progress io.Writer
	// Logger receives Weir's own log lines.
	Logger *slog.Logger
	// Executable is the weir binary that benchmarks running separate processes start; empty
	// means this process's own executable.
	Executable string
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

// scratch makes a folder for one benchmark's servers under o.Dir.
func (o Options) scratch(name string) (string, func(), error) {
	dir, err := os.MkdirTemp(o.Dir, "weir-bench-"+name+"-")
	if err != nil {
		return "", nil, err
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

// Benchmark is one sub-benchmark of `weir bench`.
type Benchmark struct {
	Name  string
	Short string
	Run   func(ctx context.Context, o Options) (*Report, error)
}

// All returns the benchmarks in the order `weir bench` runs them.
func All() []Benchmark {
	return []Benchmark{
		{Name: "ingest", Short: "inserts through the Milvus gRPC API vs raw JetStream, Parquet and fsync'd file writes", Run: Ingest},
		{Name: "flush", Short: "time from Flush to GetFlushState true with 16 MB and 256 MB buffered per channel", Run: Flush},
		{Name: "meta", Short: "fenced segment-meta commits vs the same transaction unfenced; etcd transactions per GB", Run: Meta},
		{Name: "reload", Short: "coordinator reload at 1k/10k/100k segments, 0.1% changed: full, revision-gated, changed keys", Run: Reload},
		{Name: "recovery", Short: "kill -9 of a data node with 64 MB and 1 GB unflushed: time until its channels are caught up", Run: Recovery},
		{Name: "search", Short: "exact search vs a raw scan, Strong search when idle, load vs raw read + decode, searches from 1/4/16 clients; then ann", Run: Search},
		{Name: "ann", Short: "vector indexes (HNSW, IVF_FLAT, IVF_SQ8, exact) beside hnswlib and faiss on MNIST and 1M clustered vectors, then builds (part of search)", Run: ANN},
		{Name: "exact", Short: "exact search beside a raw scan of the same rows, on the ann section's data (part of ann)", Run: Exact},
		{Name: "builds", Short: "ingest alone vs ingest while the data node builds an HNSW index (part of ann)", Run: Builds},
	}
}

// Lookup returns the benchmark called name.
func Lookup(name string) (Benchmark, bool) {
	for _, b := range All() {
		if b.Name == name {
			return b, true
		}
	}
	return Benchmark{}, false
}

// Report is what one benchmark measured.
type Report struct {
	Name    string    `json:"name"`
	Title   string    `json:"title"`
	Quick   bool      `json:"quick"`
	Machine Machine   `json:"machine"`
	Started time.Time `json:"started"`
	Seconds float64   `json:"seconds"`
	Tables  []Table   `json:"tables"`
	// Figures are the key numbers by name, for tools that compare runs.
	Figures map[string]float64 `json:"figures"`
	Targets []Target           `json:"targets,omitempty"`
	Notes   []string           `json:"notes,omitempty"`
}

func newReport(name, title string, o Options) *Report {
	return &Report{Name: name, Title: title, Quick: o.Quick, Machine: ThisMachine(), Started: time.Now().UTC(), Figures: map[string]float64{}}
}

// Table is a table of formatted cells.
type Table struct {
	Title   string     `json:"title"`
	Columns []string   `json:"columns"`
	Rows    [][]string `json:"rows"`
}

// Add appends a row.
func (t *Table) Add(cells ...string) { t.Rows = append(t.Rows, cells) }

// Target is one of the targets and whether this run met it.
type Target struct {
	Name string  `json:"name"`
	Want string  `json:"want"`
	Got  float64 `json:"got"`
	Unit string  `json:"unit,omitempty"`
	Met  bool    `json:"met"`
}

// atLeast and atMost record a target.
func (r *Report) atLeast(name string, got, want float64, unit string) {
	r.Targets = append(r.Targets, Target{Name: name, Want: "≥ " + trim(want) + unit, Got: got, Unit: unit, Met: got >= want})
}

func (r *Report) atMost(name string, got, want float64, unit string) {
	r.Targets = append(r.Targets, Target{Name: name, Want: "< " + trim(want) + unit, Got: got, Unit: unit, Met: got < want})
}

func trim(f float64) string {
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", f), "0"), ".")
}

// Print writes the report's tables, targets and notes.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "\n== %s: %s (%.0f s", r.Name, r.Title, r.Seconds)
	if r.Quick {
		fmt.Fprint(w, ", quick sizes: not figures to record")
	}
	fmt.Fprintln(w, ")")
	for _, t := range r.Tables {
		fmt.Fprintf(w, "\n%s\n", t.Title)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, strings.Join(t.Columns, "\t")+"\t")
		for _, row := range t.Rows {
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
		tw.Flush()
	}
	if len(r.Targets) > 0 {
		fmt.Fprintln(w, "\ntargets")
		for _, t := range r.Targets {
			mark := "met"
			if !t.Met {
				mark = "MISSED"
			}
			fmt.Fprintf(w, "  %-6s %s: %s%s (want %s)\n", mark, t.Name, trim(t.Got), t.Unit, t.Want)
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

// Markdown writes the report's tables, targets and notes as Markdown, for BENCHMARKS.md.
func (r *Report) Markdown(w io.Writer) {
	fmt.Fprintf(w, "### %s: %s\n\n", r.Name, r.Title)
	for _, t := range r.Tables {
		fmt.Fprintf(w, "%s\n\n| %s |\n|%s\n", t.Title, strings.Join(t.Columns, " | "), strings.Repeat("---|", len(t.Columns)))
		for _, row := range t.Rows {
			fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
		}
		fmt.Fprintln(w)
	}
	for _, t := range r.Targets {
		mark := "met"
		if !t.Met {
			mark = "**missed**"
		}
		fmt.Fprintf(w, "- %s: %s%s (want %s), %s\n", t.Name, trim(t.Got), t.Unit, t.Want, mark)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
	fmt.Fprintln(w)
}

// WriteJSON writes the report to dir/<name>.json.
func (r *Report) WriteJSON(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, r.Name+".json")
	return path, os.WriteFile(path, append(b, '\n'), 0o644)
}

// Machine describes where figures came from.
type Machine struct {
	CPU      string `json:"cpu"`
	CPUs     int    `json:"cpus"`
	MemBytes int64  `json:"mem_bytes"`
	OS       string `json:"os"`
	Arch     string `json:"arch"`
	Go       string `json:"go"`
}

// String describes the machine in one line.
func (m Machine) String() string {
	return fmt.Sprintf("%s, %d CPUs, %.1f GiB, %s/%s, %s", m.CPU, m.CPUs, float64(m.MemBytes)/(1<<30), m.OS, m.Arch, m.Go)
}

// ThisMachine reads the CPU model and memory size from /proc where there is one.
func ThisMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), OS: runtime.GOOS, Arch: runtime.GOARCH, Go: runtime.Version()}
	m.CPU = procField("/proc/cpuinfo", "model name")
	if v := procField("/proc/meminfo", "MemTotal"); v != "" {
		var kb int64
		if _, err := fmt.Sscanf(v, "%d kB", &kb); err == nil {
			m.MemBytes = kb << 10
		}
	}
	return m
}

func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// bar returns a progress bar over max units, invisible without o.Progress.
func (o Options) bar(max int64, desc, unit string) *progressbar.ProgressBar {
	w := o.Progress
	if w == nil {
		w = io.Discard
	}
	return progressbar.NewOptions64(max, progressbar.OptionSetWriter(w), progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString(unit),
		progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionSetVisibility(o.Progress != nil),
		progressbar.OptionClearOnFinish())
}

// step prints a one-line progress message for phases without a count.
func (o Options) step(format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "  "+format+"\n", args...)
	}
}

// percentile returns the p-th percentile (0..100) of ds, which it sorts.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(float64(len(ds)-1) * p / 100)
	return ds[i]
}

// median returns the median of xs, which it sorts.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// Formatting helpers for table cells.
func mbps(bytes int64, d time.Duration) float64 { return float64(bytes) / 1e6 / d.Seconds() }
func f1(v float64) string                       { return fmt.Sprintf("%.1f", v) }
func f2(v float64) string                       { return fmt.Sprintf("%.2f", v) }
func f0(v float64) string                       { return fmt.Sprintf("%.0f", v) }
func ms(d time.Duration) string                 { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }
func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a/b)
}
