//go:build fault

package fault

import (
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/s3fault"
	"github.com/weir-db/weir/internal/weirtest"
)

// The S3 scenarios run the data nodes against versitygw, a real S3 server, through the s3fault
// proxy, which answers the requests a rule picks with S3's own errors. minio-go retries a 500
// or 503 itself (minio.MaxRetry times, a few seconds in all) before Weir sees it, so each fault
// lasts until the data nodes have logged a retry of their own (a sync's put failing with the
// injected error) and more requests than minio-go's retries were answered with it.

var (
	// onS3 is the cluster of the S3 scenarios.
	onS3 = weirtest.Setup{Servers: weirtest.Servers{S3: true}}
	// onS3Multipart makes sync files multipart uploads: objstore streams a file over 16 MiB in
	// parts of 16 MiB, and a data node cuts a sync at --sync-buffer-bytes (20 MiB here: 6,800
	// rows of 768-dim vectors per channel, stored uncompressed). Syncs wait for the buffer,
	// not the 1 s of the other scenarios.
	onS3Multipart = weirtest.Setup{Servers: weirtest.Servers{S3: true}, Shards: 2, Dim: 768,
		DataNode: []string{"--sync-buffer-bytes", "20971520", "--sync-stale-age", "10m"}}
)

// syncRetries counts the lines of log after offset in which a data node's sync retries an
// object write that failed with the S3 error f.
func syncRetries(log string, offset int, f s3fault.Fault) int {
	n := 0
	for _, line := range strings.Split(log[min(offset, len(log)):], "\n") {
		if strings.Contains(line, "sync step failed, retrying") && strings.Contains(line, "step=put") && strings.Contains(line, f.Message) {
			n++
		}
	}
	return n
}

// s3Fault injects rule until both data nodes (or, with one, any) have retried a sync's put
// that failed with the rule's fault, and more requests than minio-go retries were failed;
// then it clears the rule. It returns once the proxy has forwarded a request of operation
// done after the fault: the write that failed went through.
func s3Fault(r *run, rule s3fault.Rule, both bool, done s3fault.Op) {
	f := r.c.S3Fault
	offsets := map[string]int{}
	for _, name := range []string{"dn1", "dn2"} {
		offsets[name] = len(r.c.Procs[name].Log())
	}
	f.Inject(rule)
	require.Eventually(r, func() bool {
		retried := 0
		for name, off := range offsets {
			if syncRetries(r.c.Procs[name].Log(), off, rule.Fault) > 0 {
				retried++
			}
		}
		return f.Counts(rule.Op).Injected > minio.MaxRetry && (retried == 2 || !both && retried == 1)
	}, 90*time.Second, 50*time.Millisecond, "no sync met the fault past minio-go's retries")
	r.w.WaitAcked(r, 500) // inserts go on into the log while syncs fail
	passed := f.Counts(done).Passed
	f.Clear()
	counts := f.Counts(rule.Op)
	r.Logf("s3fault on %q: %d requests failed, %d forwarded", rule.Op, counts.Injected, counts.Passed)
	require.Eventually(r, func() bool { return f.Counts(done).Passed > passed },
		60*time.Second, 50*time.Millisecond, "no %s went through after the fault", done)
}

// TestS3InternalError: every request to object storage is answered 500 InternalError for a
// while.
func TestS3InternalError(t *testing.T) {
	scenarioWith(t, "S3 answering 500 InternalError (versitygw, s3fault)", onS3, func(r *run) {
		s3Fault(r, s3fault.Rule{Fault: s3fault.InternalError}, true, s3fault.PutObject)
	})
}

// TestS3SlowDown: every request to object storage is throttled with 503 SlowDown for a while.
func TestS3SlowDown(t *testing.T) {
	scenarioWith(t, "S3 throttling with 503 SlowDown (versitygw, s3fault)", onS3, func(r *run) {
		s3Fault(r, s3fault.Rule{Fault: s3fault.SlowDown}, true, s3fault.PutObject)
	})
}

// TestS3UploadPartFails: the second part of every multipart upload fails for a while (the
// first goes through), so minio-go aborts the upload and the sync writes the file again.
func TestS3UploadPartFails(t *testing.T) {
	scenarioWith(t, "S3 multipart UploadPart failing (versitygw, s3fault)", onS3Multipart, func(r *run) {
		s3Fault(r, s3fault.Rule{Op: s3fault.UploadPart, PartNumber: 2, Fault: s3fault.InternalError}, false, s3fault.CompleteMultipartUpload)
	})
}

// TestS3CompleteMultipartUploadFails: every part is stored but completing the upload fails for
// a while, so no object appears and the sync writes the file again.
func TestS3CompleteMultipartUploadFails(t *testing.T) {
	scenarioWith(t, "S3 CompleteMultipartUpload failing (versitygw, s3fault)", onS3Multipart, func(r *run) {
		s3Fault(r, s3fault.Rule{Op: s3fault.CompleteMultipartUpload, Fault: s3fault.InternalError}, false, s3fault.CompleteMultipartUpload)
	})
}
