package testcluster

import (
	"bytes"
	"context"
	"io"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/objstore"
)

// openS3 opens the bucket at url with objstore, as Weir does, and closes it at the end.
func openS3(t testing.TB, url string) objstore.Bucket {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	b, err := objstore.Open(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.(io.Closer).Close()) })
	return b
}

func listKeys(t testing.TB, b objstore.BucketReader, prefix string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	var keys []string
	require.NoError(t, b.List(ctx, prefix, func(o objstore.ObjectInfo) error {
		keys = append(keys, o.Key)
		return nil
	}))
	return keys
}

// TestS3ServesObjstore runs objstore's S3 bucket against versitygw through the URL StartS3
// hands out: small objects, a streamed object of several multipart parts, listing, deleting,
// and the objects surviving a crash of the server.
func TestS3ServesObjstore(t *testing.T) {
	s := StartS3(t)
	require.Equal(t, S3DefaultBucket, s.Bucket())
	require.True(t, strings.HasPrefix(s.Endpoint(), "127.0.0.1:"), s.Endpoint())
	u, err := url.Parse(s.StorageURL("weir/data"))
	require.NoError(t, err)
	require.Equal(t, "s3", u.Scheme)
	require.Equal(t, s.Bucket(), u.Host)
	require.Equal(t, "/weir/data", u.Path)
	require.Equal(t, url.Values{
		"endpoint": {s.Endpoint()}, "secure": {"false"}, "region": {S3Region},
		"access_key": {s.AccessKey()}, "secret_key": {s.SecretKey()},
	}, u.Query())

	b := openS3(t, s.StorageURL("weir/data"))
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	require.NoError(t, b.Put(ctx, "a/one", []byte("1")))
	require.NoError(t, b.Put(ctx, "a/two", []byte("22")))
	got, err := b.Get(ctx, "a/two")
	require.NoError(t, err)
	require.Equal(t, []byte("22"), got)

	// Larger than objstore's 16 MiB part: a multipart upload of two parts.
	big := bytes.Repeat([]byte("0123456789abcdef"), (17<<20)/16)
	require.NoError(t, b.PutStream(ctx, "big", func(w io.Writer) error {
		_, err := io.Copy(w, bytes.NewReader(big))
		return err
	}))
	info, err := b.Stat(ctx, "big")
	require.NoError(t, err)
	require.Equal(t, int64(len(big)), info.Size)
	got, err = b.Get(ctx, "big")
	require.NoError(t, err)
	require.True(t, bytes.Equal(big, got), "multipart object reads back whole")
	require.Equal(t, []string{"a/one", "a/two", "big"}, listKeys(t, b, ""))
	require.FileExists(t, filepath.Join(s.Dir(), s.Bucket(), "weir", "data", "big"), "an object is a file under the root")

	require.NoError(t, b.Delete(ctx, "a/one"))
	_, err = b.Get(ctx, "a/one")
	require.True(t, objstore.IsNotFound(err), "%v", err)
	require.Equal(t, []string{"a/two", "big"}, listKeys(t, b, ""))

	s.Kill()
	_, err = b.Get(ctx, "a/two")
	require.Error(t, err, "a killed server answers nothing")
	pid := s.Process().PID()
	s.Restart(t)
	require.NotEqual(t, pid, s.Process().PID())
	got, err = b.Get(ctx, "a/two")
	require.NoError(t, err)
	require.Equal(t, []byte("22"), got)
	require.Equal(t, []string{"a/two", "big"}, listKeys(t, b, ""))

	s.Pause()
	pctx, pcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = b.Get(pctx, "a/two")
	pcancel()
	require.ErrorIs(t, err, context.DeadlineExceeded, "a paused server answers nothing")
	s.Resume()
	_, err = b.Get(ctx, "a/two")
	require.NoError(t, err)

	s.Stop()
	_, err = s.Process().Wait(0)
	require.NoError(t, err, "Stop returns once versitygw has exited")
	require.Contains(t, s.Log(), "shutting down")
}

// TestS3KeyAndDirectory documents a quirk of versitygw's posix backend: a key cannot be
// both an object and a "directory" of another, where S3 stores both. It also runs a bucket
// named by S3Bucket through a URL without prefix.
func TestS3KeyAndDirectory(t *testing.T) {
	s := StartS3(t, S3Bucket("quirks"))
	require.Equal(t, "quirks", s.Bucket())
	b := openS3(t, s.StorageURL(""))
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	require.NoError(t, b.Put(ctx, "a", []byte("file")))
	err := b.Put(ctx, "a/b", []byte("below a file"))
	require.Equal(t, "ObjectParentIsFile", s3Code(t, err))
	require.NoError(t, b.Put(ctx, "c/d", []byte("x")))
	err = b.Put(ctx, "c", []byte("over a directory"))
	require.Equal(t, "ExistingObjectIsDirectory", s3Code(t, err))
	require.Equal(t, []string{"a", "c/d"}, listKeys(t, b, ""), "multipart staging (.sgwtmp) is not listed")
	require.DirExists(t, filepath.Join(s.Dir(), "quirks", ".sgwtmp"))
}

// s3Code is the S3 error code err carries.
func s3Code(t testing.TB, err error) string {
	t.Helper()
	var er minio.ErrorResponse
	require.ErrorAs(t, err, &er)
	return er.Code
}
