package objstore

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseURL(t *testing.T) {
	env := map[string]string{"AWS_ACCESS_KEY_ID": "env-ak", "AWS_SECRET_ACCESS_KEY": "env-sk"}
	getenv := func(k string) string { return env[k] }
	tests := []struct {
		name    string
		url     string
		dir     string
		s3      *S3Config
		wantErr string
	}{
		{name: "bare relative path", url: "./weir-data", dir: "./weir-data"},
		{name: "bare absolute path", url: "/var/lib/weir", dir: "/var/lib/weir"},
		{name: "bare path with odd characters", url: "data dir/50%?x#y", dir: "data dir/50%?x#y"},
		{name: "file url", url: "file:///var/lib/weir", dir: "/var/lib/weir"},
		{name: "file url localhost", url: "file://localhost/var/lib/weir", dir: "/var/lib/weir"},
		{name: "file url escaped", url: "file:///data/my%20dir", dir: "/data/my dir"},
		{name: "scheme case", url: "FILE:///x", dir: "/x"},
		{
			name: "s3 all parameters",
			url:  "s3://weir-bucket/deploy/one/?endpoint=127.0.0.1:9000&secure=false&region=eu-west-1&access_key=ak&secret_key=s%2Fk&create_bucket=true",
			s3: &S3Config{
				Endpoint: "127.0.0.1:9000", Bucket: "weir-bucket", Prefix: "deploy/one",
				AccessKey: "ak", SecretKey: "s/k", Region: "eu-west-1", Secure: false, CreateBucket: true,
			},
		},
		{
			name: "s3 defaults and env credentials",
			url:  "s3://weir-bucket",
			s3:   &S3Config{Bucket: "weir-bucket", AccessKey: "env-ak", SecretKey: "env-sk", Secure: true},
		},
		{
			name: "s3 explicit empty credentials beat env",
			url:  "S3://weir-bucket/p?access_key=&secret_key=",
			s3:   &S3Config{Bucket: "weir-bucket", Prefix: "p", Secure: true},
		},
		{name: "empty", url: "", wantErr: "empty"},
		{name: "file without slashes", url: "file:/var/lib/weir", wantErr: "want file:///path or s3://bucket/prefix"},
		{name: "s3 without slashes", url: "s3:bucket", wantErr: "want file:///path or s3://bucket/prefix"},
		{name: "file url with host", url: "file://relative/path", wantErr: `file url has host "relative"`},
		{name: "file url root", url: "file:///", wantErr: "needs a directory"},
		{name: "file url no path", url: "file://", wantErr: "needs a directory"},
		{name: "file url parameters", url: "file:///x?sync=true", wantErr: "takes no parameters"},
		{name: "unknown scheme", url: "gs://bucket/x", wantErr: `unsupported scheme "gs"`},
		{name: "bad escape", url: "s3://bucket/%zz", wantErr: "invalid URL escape"},
		{name: "fragment", url: "s3://weir-bucket/p#frag", wantErr: "fragment"},
		{name: "user info", url: "s3://ak:sk@weir-bucket/p", wantErr: "access_key and secret_key parameters"},
		{name: "s3 no bucket", url: "s3:///prefix", wantErr: "needs a bucket"},
		{name: "s3 bucket with port", url: "s3://weir-bucket:9000/p", wantErr: "endpoint=host:port"},
		{name: "s3 invalid bucket", url: "s3://ab/p", wantErr: `bucket "ab"`},
		{name: "s3 invalid prefix", url: "s3://weir-bucket/a//b", wantErr: "prefix"},
		{name: "s3 dotdot prefix", url: "s3://weir-bucket/a/../b", wantErr: "prefix"},
		{name: "s3 unknown parameter", url: "s3://weir-bucket?endpiont=x", wantErr: `unknown parameter "endpiont"`},
		{name: "s3 repeated parameter", url: "s3://weir-bucket?region=a&region=b", wantErr: "region given 2 times"},
		{name: "s3 bad bool", url: "s3://weir-bucket?secure=maybe", wantErr: `secure="maybe": want true or false`},
		{name: "s3 bad create_bucket", url: "s3://weir-bucket?create_bucket=2", wantErr: "create_bucket"},
		{name: "s3 bad query escape", url: "s3://weir-bucket?region=%zz", wantErr: "invalid URL escape"},
		{name: "s3 bad endpoint", url: "s3://weir-bucket?endpoint=http://h:1/path", wantErr: "want host[:port]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc, err := parseURL(tt.url, getenv)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.True(t, strings.HasPrefix(err.Error(), "storage url"), "error %q names what was wrong", err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.dir, loc.dir)
			require.Equal(t, tt.s3, loc.s3)
		})
	}
}

// A storage URL sits in flags and logs; its errors must not repeat a secret.
func TestParseURLErrorsHideSecret(t *testing.T) {
	for _, raw := range []string{
		"s3://weir-bucket?secret_key=TOPSECRET&bogus=1",
		"s3://weir-bucket?secret_key=TOPSECRET&secure=nope",
		"s3://weir-bucket/%zz?secret_key=TOPSECRET",
		"s3://weir-bucket:1?secret_key=TOPSECRET",
		"s3://ak:TOPSECRET@weir-bucket",
		"s3://weir-bucket?secret_key=TOPSECRET#x",
		"s3://weir bucket?secret_key=TOPSECRET",
	} {
		_, err := parseURL(raw, func(string) string { return "" })
		require.Error(t, err, raw)
		require.NotContains(t, err.Error(), "TOPSECRET")
	}
}

func TestOpen(t *testing.T) {
	ctx := t.Context()
	t.Run("file url", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "store")
		b, err := Open(ctx, "file://"+dir)
		require.NoError(t, err)
		require.IsType(t, &Local{}, b)
		require.NoError(t, b.Put(ctx, "k", []byte("v")))
		require.FileExists(t, filepath.Join(dir, "k"))
	})
	t.Run("bare path", func(t *testing.T) {
		t.Chdir(t.TempDir())
		b, err := Open(ctx, "weir-data")
		require.NoError(t, err)
		require.NoError(t, b.Put(ctx, "k", []byte("v")))
		require.FileExists(t, filepath.Join("weir-data", "k"))
	})
	t.Run("s3 url", func(t *testing.T) {
		fake := newFakeS3(t)
		t.Setenv("AWS_ACCESS_KEY_ID", "env-ak")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "env-sk")
		b, err := Open(ctx, "s3://opened/pre?endpoint="+fake+"&secure=false&create_bucket=true")
		require.NoError(t, err)
		s, ok := b.(*S3)
		require.True(t, ok, "Open returned %T", b)
		t.Cleanup(func() { require.NoError(t, s.Close()) })
		require.Equal(t, "pre/", s.prefix)
		require.NoError(t, b.Put(ctx, "k", []byte("v")))
		got, err := b.Get(ctx, "k")
		require.NoError(t, err)
		require.Equal(t, "v", string(got))
	})
	t.Run("s3 missing bucket", func(t *testing.T) {
		fake := newFakeS3(t)
		_, err := Open(ctx, "s3://absent?endpoint="+fake+"&secure=false")
		require.ErrorContains(t, err, "create_bucket")
	})
	t.Run("bad url", func(t *testing.T) {
		_, err := Open(ctx, "ftp://x")
		require.ErrorContains(t, err, "unsupported scheme")
	})
	t.Run("file url to a file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "f")
		require.NoError(t, os.WriteFile(file, nil, 0o600))
		_, err := Open(ctx, "file://"+file)
		require.Error(t, err)
	})
}

// TestOpenReaderWritesNothing checks what read-only tools rely on: opening a local bucket for
// reading leaves its folder as it was (no staging folder, no clean-up), a missing folder is
// refused rather than created, an s3 URL asking to create its bucket is refused, and what a
// writer stored can be read.
func TestOpenReaderWritesNothing(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	r, err := OpenReader(ctx, "file://"+dir)
	require.NoError(t, err)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "opening for reading created nothing")

	w, err := NewLocal(dir)
	require.NoError(t, err)
	require.NoError(t, w.Put(ctx, "a/b", []byte("x")))
	got, err := r.Get(ctx, "a/b")
	require.NoError(t, err)
	require.Equal(t, []byte("x"), got)

	missing := filepath.Join(dir, "missing")
	_, err = OpenReader(ctx, missing)
	require.ErrorIs(t, err, ErrReadOnly)
	require.NoDirExists(t, missing)
	_, err = OpenReader(ctx, "s3://bkt/p?endpoint=127.0.0.1:1&create_bucket=true")
	require.ErrorIs(t, err, ErrReadOnly)
}
