package testcluster

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/stretchr/testify/require"
)

// Credentials and region of the test S3 server: its root account, the only one.
const (
	S3AccessKey = "weir-test-access-key"
	S3SecretKey = "weir-test-secret-key"
	S3Region    = "us-east-1" // versitygw's default
	// S3DefaultBucket is the bucket StartS3 creates unless S3Bucket names another.
	S3DefaultBucket = "weir-test"
)

// S3 is a versitygw S3 server over a local directory (its posix backend), running as a child
// process on a loopback port, with one bucket created. Stop, Kill, Restart, Pause, Resume,
// Process and Log act on its process; Restart returns once it answers a signed request.
//
// Quirks of versitygw's posix backend that tests meet:
//   - A bucket is a directory under the root and an object a file under it, the key split at
//     '/' into directories, so a key cannot also be a "directory" of another: with "a" stored,
//     "a/b" is refused, and the other way round (S3 itself allows both).
//   - Object metadata (ETags, content type) lives in a sidecar directory beside the root
//     instead of extended attributes, which tmpfs before Linux 6.6 and some overlay file
//     systems do not offer to users; without --sidecar the gateway refuses to start there.
//   - Multipart uploads in progress are files under the bucket's .sgwtmp directory, which
//     listings leave out.
//   - Without --keep-alive it closes the connection after each request.
type S3 struct {
	root     string
	endpoint string
	bucket   string
	child
	// client probes readiness and creates the bucket; its transport is closed at the end.
	client *minio.Client
}

// S3Option changes how StartS3 runs versitygw.
type S3Option func(*s3Config)

type s3Config struct {
	bucket string
}

// S3Bucket names the bucket StartS3 creates instead of S3DefaultBucket.
func S3Bucket(name string) S3Option {
	return func(c *s3Config) { c.bucket = name }
}

// StartS3 runs versitygw on a free loopback port over a fresh directory, waits until it
// answers a signed request, creates the bucket and returns. It is killed when the test ends.
func StartS3(t testing.TB, opts ...S3Option) *S3 {
	t.Helper()
	bin := VersityBinary(t)
	cfg := options(opts)
	if cfg.bucket == "" {
		cfg.bucket = S3DefaultBucket
	}
	dir := t.TempDir()
	s := &S3{root: filepath.Join(dir, "root"), bucket: cfg.bucket}
	meta := filepath.Join(dir, "meta")
	for _, d := range []string{s.root, meta} {
		require.NoError(t, os.Mkdir(d, 0o755))
	}
	s.child = child{
		name: "versitygw",
		bin:  bin,
		// The root account's keys; versitygw also reads them from ROOT_ACCESS_KEY_ID and
		// ROOT_SECRET_ACCESS_KEY, which win when set, so those are set too.
		env: []string{
			"ROOT_ACCESS_KEY=" + S3AccessKey, "ROOT_SECRET_KEY=" + S3SecretKey,
			"ROOT_ACCESS_KEY_ID=" + S3AccessKey, "ROOT_SECRET_ACCESS_KEY=" + S3SecretKey,
		},
		logPath: filepath.Join(dir, "versitygw.log"),
		ready:   s.ready,
	}
	s.child.cleanup(t)
	transport := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(transport.CloseIdleConnections)
	startWithFreePorts(t, &s.child, 1, func(ports []int) error {
		s.endpoint = "127.0.0.1:" + strconv.Itoa(ports[0])
		s.child.args = []string{"--port", s.endpoint, "--region", S3Region, "--keep-alive", "posix", "--sidecar", meta, s.root}
		var err error
		s.client, err = minio.New(s.endpoint, &minio.Options{
			Creds:      credentials.NewStaticV4(S3AccessKey, S3SecretKey, ""),
			Region:     S3Region,
			Transport:  transport,
			MaxRetries: 1, // the readiness probe retries itself
		})
		return err
	})
	ctx, cancel := context.WithTimeout(t.Context(), startTimeout)
	defer cancel()
	require.NoError(t, s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: S3Region}), "create bucket %s", s.bucket)
	return s
}

// ready succeeds once versitygw answers a signed request (list buckets).
func (s *S3) ready(ctx context.Context) error {
	_, err := s.client.ListBuckets(ctx)
	return err
}

// Endpoint is the server's host:port, for objstore's endpoint parameter.
func (s *S3) Endpoint() string { return s.endpoint }

// AccessKey is the access key of the server's root account.
func (s *S3) AccessKey() string { return S3AccessKey }

// SecretKey is the secret key of the server's root account.
func (s *S3) SecretKey() string { return S3SecretKey }

// Bucket is the bucket StartS3 created.
func (s *S3) Bucket() string { return s.bucket }

// Dir is the gateway's root directory: one directory per bucket, one file per object.
func (s *S3) Dir() string { return s.root }

// StorageURL is the storage URL of the bucket under prefix ("" for its root), in the form
// objstore.Open takes: s3://bucket/prefix?endpoint=host:port&secure=false&region=...&access_key=...&secret_key=...
func (s *S3) StorageURL(prefix string) string { return s.StorageURLVia(s.endpoint, prefix) }

// StorageURLVia is StorageURL with another endpoint in front of the server, such as an
// s3fault proxy: requests are signed for that endpoint and forwarded unchanged.
func (s *S3) StorageURLVia(endpoint, prefix string) string {
	q := url.Values{
		"endpoint":   {endpoint},
		"secure":     {"false"},
		"region":     {S3Region}, // spares the client a location request per bucket
		"access_key": {S3AccessKey},
		"secret_key": {S3SecretKey},
	}
	u := url.URL{Scheme: "s3", Host: s.bucket, Path: "/" + strings.Trim(prefix, "/"), RawQuery: q.Encode()}
	return u.String()
}
