//go:build fault

package fault

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"
)

// row is one scenario's line of the report.
type row struct {
	runs, acked, lost, duplicated, panics, unexpected int
	recover                                           time.Duration // worst time from the fault to the flush completing
}

var report = struct {
	sync.Mutex
	rows map[string]*row
}{rows: map[string]*row{}}

// outcome is what one run of a scenario found.
type outcome struct {
	acked, lost, dup, panics, unexpected int
	recovered                            time.Duration
}

func record(name string, o outcome) {
	report.Lock()
	defer report.Unlock()
	r := report.rows[name]
	if r == nil {
		r = &row{}
		report.rows[name] = r
	}
	r.runs++
	r.acked += o.acked
	r.lost += o.lost
	r.duplicated += o.dup
	r.panics += o.panics
	r.unexpected += o.unexpected
	r.recover = max(r.recover, o.recovered)
}

func writeReport() error {
	report.Lock()
	defer report.Unlock()
	if len(report.rows) == 0 {
		return nil
	}
	// A partial run (-run) must not overwrite the published report: it goes to a temporary
	// file unless WEIR_FAULT_REPORT names one.
	path := os.Getenv("WEIR_FAULT_REPORT")
	if path == "" {
		path = filepath.Join(os.TempDir(), "weir-fault-report.md")
	}
	defer fmt.Fprintln(os.Stderr, "fault: report written to", path)
	var b strings.Builder
	b.WriteString("# Fault suite report\n\n")
	b.WriteString(provenance(time.Now()))
	fmt.Fprintf(&b, "\n%d run(s) per scenario. Each run: 2 data nodes, 1 coordinator and 1 proxy (`weir run`, separate processes) over a real etcd, "+
		"a real nats-server (sync_interval always) and a local folder, except the S3 scenarios (versitygw behind the s3fault proxy) and "+
		"the replicated one (3-member etcd cluster, 3-node JetStream cluster, --wal-replicas 3).\n\n", runs())
	b.WriteString("| scenario | runs | acknowledged rows (inserts + deletes) | lost | duplicated | panics | unexpected exits | worst time to recover |\n|---|---|---|---|---|---|---|---|\n")
	names := make([]string, 0, len(report.rows))
	for n := range report.rows {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		r := report.rows[n]
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %s |\n", n, r.runs, r.acked, r.lost, r.duplicated, r.panics, r.unexpected, r.recover.Round(10*time.Millisecond))
	}
	b.WriteString("\nTime to recover: from the fault to the flush that follows it reporting flushed. Panics: processes whose log shows " +
		"\"panic:\", \"fatal error:\" or \"DATA RACE\". Unexpected exits: processes that ended neither as the test asked (SIGKILL, " +
		"SIGTERM) nor as the scenario expects (a lost session: status 1; a failpoint's exit: 137). Every process a run started is " +
		"checked, killed and replaced ones and every etcd, nats-server and versitygw process included.\n")
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// provenance says how, where and from which commit the report was produced.
func provenance(now time.Time) string {
	return fmt.Sprintf("Produced %s by %s at commit %s, on %s (/proc/cpuinfo), %s.\n",
		now.UTC().Format("2006-01-02 15:04 UTC"), command(), commit(), machine(), runtime.Version())
}

// command is the go test command line that ran this binary, as far as the binary can tell:
// its build flags (-tags, -race) from its build information and the test flags that were set.
func command() string {
	parts := []string{"go", "test"}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch {
			case s.Key == "-tags" && s.Value != "":
				parts = append(parts, "-tags", s.Value)
			case s.Key == "-race" && s.Value == "true":
				parts = append(parts, "-race")
			}
		}
	}
	flag.Visit(func(f *flag.Flag) {
		switch name := strings.TrimPrefix(f.Name, "test."); name {
		case "run", "skip", "count", "timeout", "v", "short", "failfast":
			parts = append(parts, "-"+name+"="+f.Value.String())
		}
	})
	parts = append(parts, "./fault/")
	n, ok := os.LookupEnv("WEIR_FAULT_RUNS")
	if !ok {
		return "`" + strings.Join(parts, " ") + "` (WEIR_FAULT_RUNS unset: the short form)"
	}
	return "`WEIR_FAULT_RUNS=" + n + " " + strings.Join(parts, " ") + "`"
}

// commit is the short hash of the checked-out commit, with "+dirty" when tracked files differ
// from it.
func commit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown (git rev-parse: " + err.Error() + ")"
	}
	c := strings.TrimSpace(string(out))
	status, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output()
	switch {
	case err != nil:
		c += " (git status: " + err.Error() + ")"
	case len(strings.TrimSpace(string(status))) > 0:
		c += "+dirty"
	}
	return c
}

// machine is the CPU model and count from /proc/cpuinfo.
func machine() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return fmt.Sprintf("%d CPUs (no /proc/cpuinfo: %v)", runtime.NumCPU(), err)
	}
	defer f.Close()
	model, n := "unknown CPU", 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		switch key = strings.TrimSpace(key); {
		case !ok:
		case key == "processor":
			n++
		case key == "model name" && n == 1:
			model = strings.TrimSpace(value)
		}
	}
	return fmt.Sprintf("%d CPUs, %s", n, model)
}
