//go:build fault

package fault

import (
	"fmt"
	"os"
	"path/filepath"
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
	fmt.Fprintf(&b, "# Fault suite report\n\n%s, %d run(s) per scenario, 2 data nodes, 1 coordinator, 1 proxy, real etcd and nats-server (the S3 scenarios: versitygw behind the s3fault proxy; the replicated one: 3-member etcd and JetStream clusters).\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), runs())
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
