// Package fault is Weir's fault-injection suite. Every scenario runs Weir as separate
// processes (a proxy, a coordinator, two data nodes) over real etcd and nats-server binaries,
// drives a workload of inserts and deletes that records every acknowledged one, injects one
// fault, flushes, and checks that every acknowledged key and delete is stored exactly once,
// that `weir inspect verify` finds nothing, and that no process the run ever started — killed,
// replaced and server processes included — panicked or ended in a way the scenario does not
// expect. Each scenario asserts that its fault happened (the killed pid is gone, the process
// ended at its failpoint, s3fault counted its injections, the channels' leases changed).
//
// The faults:
//   - SIGKILL sent by the test at moments the process does not choose: data nodes at random
//     moments several times a run (restarted as a supervisor would), etcd, nats-server
//     (which fsyncs every message), a coordinator during a rebalance, and, on a three-member
//     etcd cluster and a three-node JetStream cluster with streams of three replicas, one
//     NATS node and one etcd member;
//   - a data node ending itself with status 137 (as kill -9) at a failpoint after a sync's
//     files, after its segment meta, after its checkpoint;
//   - SIGSTOP past the session TTL, an A-B-A reassignment, etcd paused past the session TTL
//     (every session expires, the channels move);
//   - etcd and nats-server restarted with SIGTERM, the coordinator down for the whole run, a
//     rolling upgrade from the legacy protocol;
//   - object storage: versitygw (a real S3 server) behind the s3fault proxy answering 500
//     InternalError, then 503 SlowDown, for every request, and failing a multipart upload's
//     second part, then its completion (sync files over 16 MiB); and a failpoint refusing
//     object writes before any request.
//
// The tests carry the build tag "fault":
//
//	go test -tags fault -count=1 ./fault/                      # short form: each scenario once
//	WEIR_FAULT_RUNS=20 go test -tags fault -timeout 3h ./fault/ # long form, randomised timing
//
// Every run logs its random seed; WEIR_FAULT_SEED repeats a run's choices (victims, delays).
// Each run writes its figures to the file WEIR_FAULT_REPORT names (default: a temporary file),
// headed by how it was produced (command, machine, Go version, commit); the published figures
// are in fault/REPORT.md, written with WEIR_FAULT_REPORT=$PWD/fault/REPORT.md.
package fault
