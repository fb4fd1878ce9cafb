package s3fault

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/weir-db/weir/internal/objstore"
	"github.com/weir-db/weir/internal/testcluster"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		method, target string
		op             Op
		part           int
	}{
		{"PUT", "/b/k", PutObject, 0},
		{"PUT", "/b/dir/k", PutObject, 0},
		{"PUT", "/b/k?partNumber=2&uploadId=u", UploadPart, 2},
		{"PUT", "/b/k?uploadId=u", Other, 0},
		{"PUT", "/b", Other, 0},
		{"POST", "/b/k?uploads", CreateMultipartUpload, 0},
		{"POST", "/b/k?uploadId=u", CompleteMultipartUpload, 0},
		{"POST", "/b?delete", Other, 0},
		{"DELETE", "/b/k?uploadId=u", AbortMultipartUpload, 0},
		{"DELETE", "/b/k", DeleteObject, 0},
		{"DELETE", "/b", Other, 0},
		{"GET", "/b/k", GetObject, 0},
		{"GET", "/b/k?uploadId=u", Other, 0}, // list parts
		{"GET", "/b?list-type=2&prefix=p", ListObjects, 0},
		{"GET", "/b/", ListObjects, 0},
		{"GET", "/b?location", Other, 0},
		{"GET", "/b?uploads", Other, 0},
		{"GET", "/", Other, 0}, // list buckets
		{"HEAD", "/b/k", HeadObject, 0},
		{"HEAD", "/b", Other, 0},
	} {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			op, part := classify(httptest.NewRequest(tc.method, tc.target, nil))
			require.Equal(t, tc.op, op)
			require.Equal(t, tc.part, part)
		})
	}
}

// seen is a request as the backend received it.
type seen struct {
	host, uri, auth, body string
}

// backend is a plain HTTP server that records what reaches it and answers 200 "ok".
func backend(t testing.TB) (addr string, got func() []seen) {
	var mu sync.Mutex
	var reqs []seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		mu.Lock()
		reqs = append(reqs, seen{host: r.Host, uri: r.RequestURI, auth: r.Header.Get("Authorization"), body: string(b)})
		mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), func() []seen {
		mu.Lock()
		defer mu.Unlock()
		return append([]seen(nil), reqs...)
	}
}

// send makes one request to the proxy and returns the status, the S3 error code (if any)
// and the body.
func send(t testing.TB, p *Proxy, method, target, body string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, "http://"+p.Endpoint()+target, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x/y, SignedHeaders=host, Signature=z")
	req.Close = true // no idle connection outlives the test
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var e errorBody
	if resp.Header.Get("Content-Type") == "application/xml" && len(b) > 0 {
		require.NoError(t, xml.Unmarshal(b, &e), "%s", b)
		require.Equal(t, resp.Header.Get("X-Amz-Request-Id"), e.RequestID)
	}
	return resp.StatusCode, e.Code, string(b)
}

// TestProxyForwardsUnchanged checks that a request reaches the server with the Host header the
// client signed, its escaped path and query, headers and body as they were.
func TestProxyForwardsUnchanged(t *testing.T) {
	addr, got := backend(t)
	p := Start(t, addr)
	require.NotEqual(t, addr, p.Endpoint())
	status, _, body := send(t, p, "PUT", "/b/a%2Bb/c?partNumber=1&uploadId=x%2Fy", "part data")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "ok", body)
	require.Equal(t, []seen{{
		host: p.Endpoint(),
		uri:  "/b/a%2Bb/c?partNumber=1&uploadId=x%2Fy",
		auth: "AWS4-HMAC-SHA256 Credential=x/y, SignedHeaders=host, Signature=z",
		body: "part data",
	}}, got())
	require.Equal(t, Counts{Passed: 1}, p.Counts(UploadPart))
}

// TestRules checks Skip, Times, PartNumber, Any, Clear and the counts.
func TestRules(t *testing.T) {
	addr, got := backend(t)
	p := Start(t, addr)
	part := func(n string) string { return "/b/k?partNumber=" + n + "&uploadId=u" }

	// Skip 1, Times 2: the second and third parts fail, the fourth passes.
	p.Inject(Rule{Op: UploadPart, Skip: 1, Times: 2, Fault: SlowDown})
	for i, want := range []struct {
		status int
		code   string
	}{{200, ""}, {503, "SlowDown"}, {503, "SlowDown"}, {200, ""}} {
		status, code, _ := send(t, p, "PUT", part(strconv.Itoa(i+1)), "data")
		require.Equal(t, want.status, status, "part %d", i+1)
		require.Equal(t, want.code, code, "part %d", i+1)
	}
	require.Equal(t, Counts{Passed: 2, Injected: 2}, p.Counts(UploadPart))
	require.Len(t, got(), 2, "injected requests never reach the server")

	// PartNumber until cleared: only part 3 fails, every time; other operations pass.
	p.Inject(Rule{Op: UploadPart, PartNumber: 3, Fault: InternalError})
	for range 2 {
		status, code, _ := send(t, p, "PUT", part("3"), "data")
		require.Equal(t, http.StatusInternalServerError, status)
		require.Equal(t, "InternalError", code)
	}
	status, _, _ := send(t, p, "PUT", part("4"), "data")
	require.Equal(t, http.StatusOK, status)
	status, _, _ = send(t, p, "PUT", "/b/k", "data")
	require.Equal(t, http.StatusOK, status, "a PutObject is no UploadPart")
	p.Clear()
	status, _, _ = send(t, p, "PUT", part("3"), "data")
	require.Equal(t, http.StatusOK, status)

	// Any fails every operation; a HEAD answer has no body.
	p.Inject(Rule{Times: 1, Fault: InternalError})
	status, _, body := send(t, p, "HEAD", "/b/k", "")
	require.Equal(t, http.StatusInternalServerError, status)
	require.Empty(t, body)
	status, _, _ = send(t, p, "HEAD", "/b/k", "")
	require.Equal(t, http.StatusOK, status, "spent after Times")

	// The first rule that fails a request decides; every matching rule counts it.
	p.Inject(Rule{Op: GetObject, Times: 1, Fault: SlowDown})
	p.Inject(Rule{Op: GetObject, Skip: 1, Times: 1, Fault: InternalError})
	_, code, _ := send(t, p, "GET", "/b/k", "")
	require.Equal(t, "SlowDown", code)
	_, code, _ = send(t, p, "GET", "/b/k", "")
	require.Equal(t, "InternalError", code)
	status, _, _ = send(t, p, "GET", "/b/k", "")
	require.Equal(t, http.StatusOK, status)

	require.Equal(t, Counts{Passed: 4, Injected: 4}, p.Counts(UploadPart))
	require.Equal(t, Counts{Passed: 1}, p.Counts(PutObject))
	require.Equal(t, Counts{Passed: 1, Injected: 1}, p.Counts(HeadObject))
	require.Equal(t, Counts{Passed: 1, Injected: 2}, p.Counts(GetObject))
	require.Equal(t, Counts{Passed: 7, Injected: 7}, p.Counts(Any))
	require.Len(t, got(), 7)
}

// TestProxyWithoutServer checks that a request the server cannot take gets 502, as from a
// gateway in front of a server that is down.
func TestProxyWithoutServer(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	dead := srv.Listener.Addr().String()
	srv.Close()
	p := Start(t, dead)
	status, code, _ := send(t, p, "GET", "/b/k", "")
	require.Equal(t, http.StatusBadGateway, status)
	require.Empty(t, code)
	require.Equal(t, Counts{Passed: 1}, p.Counts(GetObject))
}

// stream writes data through PutStream.
func stream(ctx context.Context, b objstore.Bucket, key string, data []byte) error {
	return b.PutStream(ctx, key, func(w io.Writer) error {
		_, err := io.Copy(w, bytes.NewReader(data))
		return err
	})
}

// requireFault checks that err carries the S3 error of f.
func requireFault(t testing.TB, f Fault, err error) {
	t.Helper()
	var er minio.ErrorResponse
	require.ErrorAs(t, err, &er)
	require.Equal(t, f.Code, er.Code)
	require.Equal(t, f.Status, er.StatusCode)
}

// requireObject checks that key holds want.
func requireObject(t testing.TB, b objstore.Bucket, key string, want []byte) {
	t.Helper()
	got, err := b.Get(t.Context(), key)
	require.NoError(t, err)
	require.True(t, bytes.Equal(want, got), "%s holds %d bytes, want %d", key, len(got), len(want))
}

// pendingUploads lists the multipart uploads the server holds unfinished.
func pendingUploads(t testing.TB, s *testcluster.S3) []string {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	cli, err := minio.NewCore(s.Endpoint(), &minio.Options{Creds: credentials.NewStaticV4(s.AccessKey(), s.SecretKey(), ""), Region: testcluster.S3Region, Transport: tr})
	require.NoError(t, err)
	res, err := cli.ListMultipartUploads(t.Context(), s.Bucket(), "", "", "", "", 1000)
	require.NoError(t, err)
	var keys []string
	for _, u := range res.Uploads {
		keys = append(keys, u.Key)
	}
	return keys
}

// faultTimeout bounds a call that fails until the rule is cleared: minio-go tries 11 times,
// waiting up to a second between tries.
const faultTimeout = time.Minute

// TestFaultsThroughObjstore runs objstore's S3 bucket against versitygw through the proxy:
// each fault fails the call with the S3 error a client expects once minio-go's retries are
// used up, a fault shorter than the retries goes unnoticed, a failed multipart upload leaves no
// object and no upload behind, and after Clear the writes succeed.
func TestFaultsThroughObjstore(t *testing.T) {
	s := testcluster.StartS3(t)
	big := bytes.Repeat([]byte("weir"), (20<<20)/4) // two parts of objstore's 16 MiB
	open := func(t *testing.T) (*Proxy, objstore.Bucket) {
		p := Start(t, s.Endpoint())
		b, err := objstore.Open(t.Context(), s.StorageURLVia(p.Endpoint(), t.Name()))
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, b.(io.Closer).Close()) })
		return p, b
	}
	requireMissing := func(t *testing.T, b objstore.Bucket, key string) {
		_, err := b.Stat(t.Context(), key)
		require.True(t, objstore.IsNotFound(err), "%v", err)
		var keys []string
		require.NoError(t, b.List(t.Context(), "", func(o objstore.ObjectInfo) error {
			keys = append(keys, o.Key)
			return nil
		}))
		require.NotContains(t, keys, key)
	}

	t.Run("500 on PutObject until cleared", func(t *testing.T) {
		t.Parallel()
		p, b := open(t)
		p.Inject(Rule{Op: PutObject, Fault: InternalError})
		ctx, cancel := context.WithTimeout(t.Context(), faultTimeout)
		defer cancel()
		requireFault(t, InternalError, b.Put(ctx, "k", []byte("v")))
		require.Equal(t, Counts{Injected: minio.MaxRetry}, p.Counts(PutObject), "minio-go tried %d times", minio.MaxRetry)
		requireMissing(t, b, "k")

		p.Clear()
		require.NoError(t, b.Put(ctx, "k", []byte("v")))
		requireObject(t, b, "k", []byte("v"))
	})
	t.Run("503 SlowDown on GetObject", func(t *testing.T) {
		t.Parallel()
		p, b := open(t)
		ctx, cancel := context.WithTimeout(t.Context(), faultTimeout)
		defer cancel()
		require.NoError(t, b.Put(ctx, "k", []byte("v")))
		p.Inject(Rule{Op: GetObject, Fault: SlowDown})
		_, err := b.Get(ctx, "k")
		requireFault(t, SlowDown, err)
		p.Clear()
		requireObject(t, b, "k", []byte("v"))
	})
	t.Run("a fault shorter than the retries goes unnoticed", func(t *testing.T) {
		t.Parallel()
		p, b := open(t)
		p.Inject(Rule{Op: PutObject, Times: 2, Fault: SlowDown})
		ctx, cancel := context.WithTimeout(t.Context(), faultTimeout)
		defer cancel()
		require.NoError(t, b.Put(ctx, "k", []byte("v")))
		require.Equal(t, Counts{Passed: 1, Injected: 2}, p.Counts(PutObject))
	})
	// A failed multipart upload leaves neither an object nor an unfinished upload, and the
	// same upload succeeds once the rule is cleared.
	for _, tc := range []struct {
		name                          string
		rule                          Rule
		parts, complete, createUpload Counts
	}{
		{
			name:         "part 2 of a multipart upload fails",
			rule:         Rule{Op: UploadPart, PartNumber: 2, Fault: InternalError},
			parts:        Counts{Passed: 1, Injected: minio.MaxRetry},
			createUpload: Counts{Passed: 1},
		},
		{
			name:         "CompleteMultipartUpload fails",
			rule:         Rule{Op: CompleteMultipartUpload, Fault: InternalError},
			parts:        Counts{Passed: 2},
			complete:     Counts{Injected: minio.MaxRetry},
			createUpload: Counts{Passed: 1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, b := open(t)
			p.Inject(tc.rule)
			ctx, cancel := context.WithTimeout(t.Context(), faultTimeout)
			defer cancel()
			requireFault(t, tc.rule.Fault, stream(ctx, b, "big", big))
			require.Equal(t, tc.createUpload, p.Counts(CreateMultipartUpload))
			require.Equal(t, tc.parts, p.Counts(UploadPart))
			require.Equal(t, tc.complete, p.Counts(CompleteMultipartUpload))
			require.Equal(t, Counts{Passed: 1}, p.Counts(AbortMultipartUpload), "minio-go aborts the upload")
			requireMissing(t, b, "big")
			require.NotContains(t, pendingUploads(t, s), t.Name()+"/big")

			p.Clear()
			require.NoError(t, stream(ctx, b, "big", big))
			requireObject(t, b, "big", big)
		})
	}
}
