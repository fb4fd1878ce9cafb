// Package fault is Weir's fault-injection suite: every scenario runs Weir as separate
// processes over real etcd and nats-server binaries, drives a workload that records every
// acknowledged insert, injects a fault (kill -9 at a protocol step, SIGSTOP past the session
// TTL, an A-B-A reassignment, a coordinator killed mid-rebalance, etcd and nats-server
// restarted, object storage refusing writes), flushes, and checks that every acknowledged key
// is stored exactly once, that weir inspect verify finds nothing, and that no process the run
// ever started — killed, replaced and server processes included — panicked or ended in a way
// the scenario does not expect (a lost session's status 1, a failpoint's 137). The tests
// carry the build tag "fault":
//
//	go test -tags fault -count=1 ./fault/                      # short form: each scenario once
//	WEIR_FAULT_RUNS=20 go test -tags fault -timeout 3h ./fault/ # long form, randomised timing
//
// Each run writes its figures to the file WEIR_FAULT_REPORT names (default: a temporary file);
// the published figures are in fault/REPORT.md, written with
// WEIR_FAULT_REPORT=$PWD/fault/REPORT.md.
package fault
