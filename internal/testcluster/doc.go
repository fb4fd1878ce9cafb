// Package testcluster runs real etcd, nats-server and versitygw (an S3 server) binaries, and
// Weir's own binary, as child processes of a test, so that tests can crash, stop, pause and
// restart each process of a cluster the way an operator's machines do.
//
// The etcd and nats-server binaries are the versions Weir embeds (EtcdVersion, NATSVersion);
// versitygw is VersityVersion. Binaries and VersityBinary take them from WEIR_ETCD_BIN,
// WEIR_NATS_BIN and WEIR_VERSITYGW_BIN when set; otherwise they build them with the go command
// into a cache directory (WEIR_TEST_BIN_DIR, by default weir-test-bin beside the Go build
// cache) and reuse them from then on. The first build takes a few minutes on two cores;
// .ci/run does it once before the tests (cmd/prebuild) so that no test waits for it.
//
// StartEtcd and StartNATS run one server, StartEtcdCluster and StartNATSCluster a cluster of
// three or more whose members fail and restart one by one, and StartS3 a bucket in versitygw
// with the storage URL Weir's objstore.Open takes (internal/s3fault injects S3 errors in front
// of it).
//
// Every process runs on loopback ports, writes its output to a log file in the test's
// temporary directory, is shown (its tail) when the test fails, and is killed when the test
// ends. A Process says how it ended (Ending: an exit it chose, or the SIGTERM or SIGKILL the
// test sent), and a server keeps every process it ran (Processes), so that a test can check
// each one, restarted or killed ones included, for panics and unexpected exits. The package is Linux-only: it relies on flock, SIGSTOP and the parent-death signal.
package testcluster
