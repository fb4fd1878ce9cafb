// Package testcluster runs real etcd and nats-server binaries, and Weir's own binary, as
// child processes of a test, so that tests can crash, stop, pause and restart each process of
// a cluster the way an operator's machines do.
//
// The server binaries are the versions Weir embeds (EtcdVersion, NATSVersion). Binaries
// takes them from WEIR_ETCD_BIN and WEIR_NATS_BIN when set; otherwise it builds them with the
// go command into a cache directory (WEIR_TEST_BIN_DIR, by default weir-test-bin beside the
// Go build cache) and reuses them from then on. The first build takes a few minutes on two
// cores; .ci/run does it once before the tests (cmd/prebuild) so that no test waits for it.
//
// Every process runs on loopback ports, writes its output to a log file in the test's
// temporary directory, is shown (its tail) when the test fails, and is killed when the test
// ends. The package is Linux-only: it relies on flock, SIGSTOP and the parent-death signal.
package testcluster
