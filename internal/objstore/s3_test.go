package objstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"
)

// newFakeS3 serves an in-memory S3 (gofakes3) on a loopback port and returns
// its host:port. Clients reach it through minio-go over real HTTP.
func newFakeS3(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func testS3Config(endpoint, bucket, prefix string) S3Config {
	return S3Config{
		Endpoint:     endpoint,
		Bucket:       bucket,
		Prefix:       prefix,
		AccessKey:    "weir-test",
		SecretKey:    "weir-test-secret",
		Region:       "us-east-1",
		CreateBucket: true,
	}
}

// newTestS3 opens a bucket on the fake server (creating it) and closes it
// when the test ends, before the server shuts down.
func newTestS3(t testing.TB, endpoint, bucket, prefix string) *S3 {
	t.Helper()
	s, err := NewS3(context.Background(), testS3Config(endpoint, bucket, prefix))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

func TestS3PrefixIsolatesAndIsStoredInFront(t *testing.T) {
	ctx := t.Context()
	fake := newFakeS3(t)
	one := newTestS3(t, fake, "shared", "/deploy/one/")
	oneX := newTestS3(t, fake, "shared", "deploy/onex")
	root := newTestS3(t, fake, "shared", "")

	require.NoError(t, one.Put(ctx, "seg/1", []byte("one")))
	require.NoError(t, oneX.Put(ctx, "seg/1", []byte("onex")))

	require.Equal(t, []string{"seg/1"}, listKeys(t, one, ""))
	require.Equal(t, []string{"seg/1"}, listKeys(t, oneX, ""))
	require.Equal(t, []string{"deploy/one/seg/1", "deploy/onex/seg/1"}, listKeys(t, root, ""))
	got, err := root.Get(ctx, "deploy/one/seg/1")
	require.NoError(t, err)
	require.Equal(t, "one", string(got))

	require.NoError(t, one.Delete(ctx, "seg/1"))
	got, err = oneX.Get(ctx, "seg/1")
	require.NoError(t, err, "a delete under one prefix must not touch another")
	require.Equal(t, "onex", string(got))
}

func TestS3KeyTooLongWithPrefix(t *testing.T) {
	s := newTestS3(t, newFakeS3(t), "bkt", strings.Repeat("p/", 150)+"p")
	key := strings.Repeat("abcdefg/", 100) + "x" // 801 bytes: valid alone
	require.NoError(t, validateKey(key))
	require.ErrorIs(t, s.Put(t.Context(), key, []byte("x")), ErrInvalidKey)
	_, err := s.Get(t.Context(), key)
	require.ErrorIs(t, err, ErrInvalidKey)
}

func TestS3ListSkipsForeignObjects(t *testing.T) {
	ctx := t.Context()
	s := newTestS3(t, newFakeS3(t), "bkt", "p")
	// Objects another tool could have written: a console's folder marker
	// and names our key rules refuse.
	for _, name := range []string{"p/folder/", "p/a//b", "p/back\\slash"} {
		_, err := s.client.PutObject(ctx, "bkt", name, bytes.NewReader([]byte("x")), 1, minio.PutObjectOptions{})
		require.NoError(t, err, name)
	}
	require.NoError(t, s.Put(ctx, "folder/real", []byte("x")))
	require.Equal(t, []string{"folder/real"}, listKeys(t, s, ""))
}

func TestS3MissingBucket(t *testing.T) {
	ctx := t.Context()
	fake := newFakeS3(t)

	cfg := testS3Config(fake, "absent", "")
	cfg.CreateBucket = false
	_, err := NewS3(ctx, cfg)
	require.ErrorContains(t, err, "create_bucket", "a missing bucket must fail at open")

	cfg.CreateBucket = true
	s, err := NewS3(ctx, cfg)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	cfg.CreateBucket = false
	again, err := NewS3(ctx, cfg)
	require.NoError(t, err, "the bucket created before must now be found")
	require.NoError(t, again.Close())
	cfg.CreateBucket = true
	again, err = NewS3(ctx, cfg)
	require.NoError(t, err, "create_bucket on an existing bucket")
	require.NoError(t, again.Close())
}

// A bucket that disappears is a broken deployment, not a missing object:
// readers such as the garbage collector must not take it for ErrNotFound.
func TestS3DeletedBucketIsNotNotFound(t *testing.T) {
	ctx := t.Context()
	s := newTestS3(t, newFakeS3(t), "doomed", "")
	require.NoError(t, s.client.RemoveBucket(ctx, "doomed"))
	_, err := s.Get(ctx, "k")
	require.Error(t, err)
	require.False(t, IsNotFound(err), "Get: %v", err)
	err = s.List(ctx, "", func(ObjectInfo) error { return nil })
	require.Error(t, err)
	require.False(t, IsNotFound(err), "List: %v", err)
	err = s.Put(ctx, "k", []byte("x"))
	require.Error(t, err)
	require.False(t, IsNotFound(err), "Put: %v", err)
	err = s.Delete(ctx, "k")
	require.Error(t, err, "Delete must not hide a missing bucket")
	require.False(t, IsNotFound(err), "Delete: %v", err)
}

// A request cancelled while the server works on it returns an error that
// wraps context.Canceled, whatever minio-go made of it.
func TestS3CancelInFlight(t *testing.T) {
	fake := gofakes3.New(s3mem.New()).Server()
	arrived := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/slow") {
			arrived <- struct{}{}
			<-r.Context().Done() // answer only when the client gives up
			return
		}
		fake.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s := newTestS3(t, srv.Listener.Addr().String(), "bkt", "")

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		<-arrived
		cancel()
	}()
	_, err := s.Get(ctx, "slow")
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, IsNotFound(err))
	require.ErrorContains(t, err, "get slow")
}

// Objects above minio-go's 16 MiB part size go up as a multipart upload,
// which S3 also publishes only when complete.
func TestS3MultipartPut(t *testing.T) {
	ctx := t.Context()
	s := newTestS3(t, newFakeS3(t), "bkt", "")
	data := make([]byte, 17<<20)
	_, _ = rand.Read(data)
	require.NoError(t, s.Put(ctx, "huge", data))
	got, err := s.Get(ctx, "huge")
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got), "17 MiB object differs after a multipart round trip")
}

func TestS3EndpointScheme(t *testing.T) {
	ctx := t.Context()
	fake := newFakeS3(t)
	cfg := testS3Config("http://"+fake+"/", "bkt", "")
	cfg.Secure = true // the scheme wins
	s, err := NewS3(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	require.NoError(t, s.Put(ctx, "k", []byte("v")))
}

func TestS3ConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     S3Config
		wantErr string
	}{
		{"minimal", S3Config{Bucket: "weir"}, ""},
		{"full", S3Config{Endpoint: "https://minio.local:9000", Bucket: "weir-data", Prefix: "/a/b/"}, ""},
		{"no bucket", S3Config{Endpoint: "h:1"}, "bucket is empty"},
		{"bad bucket", S3Config{Bucket: "x"}, `bucket "x"`},
		{"bad prefix", S3Config{Bucket: "weir", Prefix: "a//b"}, "prefix"},
		{"prefix with dotdot", S3Config{Bucket: "weir", Prefix: "../up"}, "prefix"},
		{"endpoint with path", S3Config{Bucket: "weir", Endpoint: "http://host:9000/path"}, "want host[:port]"},
		{"endpoint other scheme", S3Config{Bucket: "weir", Endpoint: "ftp://host"}, "want host[:port]"},
		{"endpoint only scheme", S3Config{Bucket: "weir", Endpoint: "https://"}, "want host[:port]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
			_, err = NewS3(t.Context(), tt.cfg)
			require.ErrorContains(t, err, tt.wantErr, "NewS3 must validate")
		})
	}
}

func TestS3Endpoint(t *testing.T) {
	tests := []struct {
		endpoint, host string
		secureIn       bool
		secure         bool
	}{
		{"", defaultS3Endpoint, true, true},
		{"minio:9000", "minio:9000", false, false},
		{"minio:9000", "minio:9000", true, true},
		{"http://minio:9000", "minio:9000", true, false},
		{"https://minio:9000/", "minio:9000", false, true},
	}
	for _, tt := range tests {
		host, secure, err := S3Config{Endpoint: tt.endpoint, Secure: tt.secureIn}.endpoint()
		require.NoError(t, err)
		require.Equal(t, tt.host, host, tt.endpoint)
		require.Equal(t, tt.secure, secure, tt.endpoint)
	}
}

// A wrong endpoint fails at NewS3, within the caller's deadline, instead
// of at the first write.
func TestS3UnreachableEndpointFailsAtOpen(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.Listener.Addr().String()
	srv.Close() // nothing listens on addr any more
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := NewS3(ctx, testS3Config(addr, "bkt", ""))
	require.ErrorContains(t, err, "open s3 bucket bkt")
	require.ErrorIs(t, err, context.DeadlineExceeded)
}
