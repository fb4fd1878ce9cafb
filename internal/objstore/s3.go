package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// S3Config says where an S3 bucket is and how to reach it.
type S3Config struct {
	// Endpoint is host[:port] of the S3 service, "s3.amazonaws.com" when
	// empty. A leading "http://" or "https://" decides Secure.
	Endpoint string `yaml:"endpoint"`
	Bucket   string `yaml:"bucket"`
	// Prefix is prepended (with a '/') to every key, so that several
	// deployments can share one bucket; empty means the bucket's root.
	Prefix string `yaml:"prefix"`
	// AccessKey and SecretKey sign requests; both empty means anonymous.
	AccessKey string `yaml:"access_key"`
	SecretKey string `yaml:"secret_key"`
	Region    string `yaml:"region"`
	// Secure selects HTTPS.
	Secure bool `yaml:"secure"`
	// CreateBucket creates the bucket at NewS3 when it does not exist,
	// instead of failing.
	CreateBucket bool `yaml:"create_bucket"`
}

const defaultS3Endpoint = "s3.amazonaws.com"

// Validate checks the fields that need no network: the bucket name, the
// prefix (which must follow the key rules) and the endpoint's form.
func (c S3Config) Validate() error {
	if c.Bucket == "" {
		return errors.New("s3 config: bucket is empty")
	}
	if err := s3utils.CheckValidBucketName(c.Bucket); err != nil {
		return fmt.Errorf("s3 config: bucket %q: %w", c.Bucket, err)
	}
	if p := strings.Trim(c.Prefix, "/"); p != "" {
		if err := validateKey(p); err != nil {
			return fmt.Errorf("s3 config: prefix %q: %w", c.Prefix, err)
		}
	}
	if _, _, err := c.endpoint(); err != nil {
		return fmt.Errorf("s3 config: %w", err)
	}
	return nil
}

// endpoint returns the host[:port] to dial and whether to use HTTPS.
func (c S3Config) endpoint() (string, bool, error) {
	host, secure := c.Endpoint, c.Secure
	switch {
	case host == "":
		return defaultS3Endpoint, secure, nil
	case strings.HasPrefix(host, "http://"):
		host, secure = strings.TrimPrefix(host, "http://"), false
	case strings.HasPrefix(host, "https://"):
		host, secure = strings.TrimPrefix(host, "https://"), true
	}
	host = strings.TrimSuffix(host, "/")
	if host == "" || strings.ContainsAny(host, "/?#@") || strings.Contains(host, "://") {
		return "", false, fmt.Errorf("endpoint %q: want host[:port]", c.Endpoint)
	}
	return host, secure, nil
}

// S3 is a Bucket in an S3-compatible object store, reached with minio-go.
type S3 struct {
	client    *minio.Client
	transport *http.Transport
	bucket    string
	prefix    string // "" or ending in '/'
}

var _ Bucket = (*S3)(nil)

// NewS3 connects to the bucket and checks that it exists (creating it when
// cfg.CreateBucket is set), so that a wrong endpoint, credentials or bucket
// name fails at start-up rather than at the first write.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	host, secure, _ := cfg.endpoint()
	// Our own transport, so that Close can release its idle connections.
	transport, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, fmt.Errorf("open s3 bucket %s: %w", cfg.Bucket, err)
	}
	client, err := minio.New(host, &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:    secure,
		Region:    cfg.Region,
		Transport: transport,
	})
	if err != nil {
		return nil, fmt.Errorf("open s3 bucket %s: %w", cfg.Bucket, err)
	}
	s := &S3{client: client, transport: transport, bucket: cfg.Bucket}
	if p := strings.Trim(cfg.Prefix, "/"); p != "" {
		s.prefix = p + "/"
	}
	if err := s.ensureBucket(ctx, cfg); err != nil {
		transport.CloseIdleConnections()
		return nil, fmt.Errorf("open s3 bucket %s: %w", cfg.Bucket, err)
	}
	return s, nil
}

func (s *S3) ensureBucket(ctx context.Context, cfg S3Config) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return withContext(ctx, err)
	}
	if ok {
		return nil
	}
	if !cfg.CreateBucket {
		return errors.New("bucket does not exist (set create_bucket to create it)")
	}
	err = s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: cfg.Region})
	if err != nil && minio.ToErrorResponse(err).Code != "BucketAlreadyOwnedByYou" {
		return withContext(ctx, err)
	}
	return nil
}

// Close releases idle connections. The S3 must not be used afterwards.
func (s *S3) Close() error {
	s.transport.CloseIdleConnections()
	return nil
}

// objectName maps a key to the S3 object name, after checking the key.
func (s *S3) objectName(ctx context.Context, key string) (string, error) {
	if err := checkCall(ctx, key); err != nil {
		return "", err
	}
	name := s.prefix + key
	if len(name) > maxKeyLen {
		return "", fmt.Errorf("%w: longer than %d bytes with prefix %q", ErrInvalidKey, maxKeyLen, s.prefix)
	}
	return name, nil
}

// Put uploads the object. S3 makes an object visible only once its upload
// (single or multipart) completes, which gives Put its atomicity.
func (s *S3) Put(ctx context.Context, key string, data []byte) error {
	name, err := s.objectName(ctx, key)
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := s.putObject(ctx, name, bytes.NewReader(data), int64(len(data)), 0); err != nil {
		return fmt.Errorf("put %s: %w", key, mapS3Error(ctx, err))
	}
	return nil
}

// streamPartSize is the part size of PutStream's multipart uploads and
// about the most it holds in memory: minio-go's default for an upload of
// unknown length is over 500 MiB a part.
const streamPartSize = 16 << 20

// PutStream uploads what write writes, through a pipe: write runs in its own
// goroutine, which PutStream waits for. An object that fits in one part goes
// up in one PUT, as Put sends it; a larger one as a multipart upload, which
// S3 shows only once complete and which minio-go aborts when it fails.
func (s *S3) PutStream(ctx context.Context, key string, write func(io.Writer) error) error {
	name, err := s.objectName(ctx, key)
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	pr, pw := io.Pipe()
	w := &pipeWriter{w: ctxWriter{ctx: ctx, w: pw}}
	wrote := make(chan error, 1)
	go func() {
		err := write(w)
		_ = pw.CloseWithError(err) // never fails; nil gives the upload EOF
		wrote <- err
	}()
	uerr := s.upload(ctx, name, pr)
	_ = pr.CloseWithError(errUploadEnded) // never fails; stops a write still under way
	werr := <-wrote
	switch {
	case werr != nil && !w.broken:
		return fmt.Errorf("put %s: %w", key, werr) // write's own failure, which ended the upload
	case uerr != nil:
		return fmt.Errorf("put %s: %w", key, mapS3Error(ctx, uerr))
	case werr != nil:
		return fmt.Errorf("put %s: %w", key, werr)
	}
	return nil
}

// upload stores what r holds up to its EOF under name.
func (s *S3) upload(ctx context.Context, name string, r io.Reader) error {
	// Up to one part is read into memory to tell a small object from a large
	// one. bytes.Buffer doubles to at most twice the part size here, a
	// short copy; the object's size is unknown until EOF.
	var head bytes.Buffer
	if _, err := head.ReadFrom(io.LimitReader(r, streamPartSize+1)); err != nil {
		return err
	}
	if head.Len() <= streamPartSize {
		return s.putObject(ctx, name, bytes.NewReader(head.Bytes()), int64(head.Len()), 0)
	}
	return s.putObject(ctx, name, io.MultiReader(&head, r), -1, streamPartSize)
}

// pipeWriter records whether a write failed, which means the upload ended
// first (with its own error) or the context ended.
type pipeWriter struct {
	w      io.Writer
	broken bool // read only after the writing goroutine returned
}

func (p *pipeWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	if err != nil {
		p.broken = true
	}
	return n, err
}

// putObject sends r, of size bytes (-1: unknown, then in parts of partSize).
func (s *S3) putObject(ctx context.Context, name string, r io.Reader, size int64, partSize uint64) error {
	opts := minio.PutObjectOptions{
		ContentType: "application/octet-stream",
		PartSize:    partSize,
		// Content-MD5 on the PUT (and on every part of a multipart upload)
		// lets the server verify the bytes it stores, on any transport.
		// With it the payload need not be signed, which keeps minio-go from
		// sending aws-chunked bodies over plain HTTP: some S3-compatible
		// servers (gofakes3 among them, for parts) store the chunk framing
		// as data, and minio-go sends an empty one without Content-Length.
		SendContentMd5:       true,
		DisableContentSha256: true,
	}
	_, err := s.client.PutObject(ctx, s.bucket, name, r, size, opts)
	return err
}

// Get downloads the whole object.
func (s *S3) Get(ctx context.Context, key string) ([]byte, error) {
	name, err := s.objectName(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	data, err := s.read(ctx, name, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return data, nil
}

// GetRange sends one GET with a Range header.
func (s *S3) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	name, err := s.objectName(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("get range %s: %w", key, err)
	}
	if off < 0 || length < 0 {
		return nil, fmt.Errorf("get range %s: %w: offset %d length %d", key, ErrInvalidRange, off, length)
	}
	if length == 0 {
		// HTTP cannot express an empty range; the object must still exist
		// and off must still be inside it.
		return s.emptyRange(ctx, key, name, off)
	}
	// The range end is inclusive; clamp it so that a length meaning "to the
	// end" cannot overflow. S3 itself clips an end past the object.
	end := off + min(length, maxInt64-off) - 1
	var opts minio.GetObjectOptions
	if err := opts.SetRange(off, end); err != nil {
		return nil, fmt.Errorf("get range %s: %w", key, err)
	}
	data, err := s.read(ctx, name, opts)
	if err != nil {
		if isInvalidRange(err) {
			// S3 refuses a range starting at the end of the object, which
			// this package defines as an empty read.
			return s.emptyRange(ctx, key, name, off)
		}
		return nil, fmt.Errorf("get range %s: %w", key, err)
	}
	return data, nil
}

const maxInt64 = 1<<63 - 1

func (s *S3) emptyRange(ctx context.Context, key, name string, off int64) ([]byte, error) {
	info, err := s.client.StatObject(ctx, s.bucket, name, minio.StatObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("get range %s: %w", key, mapS3Error(ctx, err))
	}
	if _, _, err := clipRange(info.Size, off, 0); err != nil {
		return nil, fmt.Errorf("get range %s: %w", key, err)
	}
	return []byte{}, nil
}

func isInvalidRange(err error) bool {
	var er minio.ErrorResponse
	return errors.As(err, &er) && (er.Code == minio.InvalidRange || er.StatusCode == http.StatusRequestedRangeNotSatisfiable)
}

// read runs one GET and reads its body. minio.Object is avoided on purpose:
// its Stat sends a HEAD and its Read a separate GET, and an overwrite
// between the two would mix two versions of the object.
func (s *S3) read(ctx context.Context, name string, opts minio.GetObjectOptions) ([]byte, error) {
	body, info, _, err := minio.Core{Client: s.client}.GetObject(ctx, s.bucket, name, opts)
	if err != nil {
		return nil, mapS3Error(ctx, err)
	}
	// Read-only: a Close error cannot lose data, the read result stands.
	defer func() { _ = body.Close() }()
	// info.Size is the Content-Length, the size of the range if one was
	// asked; MinRead spare bytes let ReadFrom see EOF without reallocating.
	buf := bytes.NewBuffer(make([]byte, 0, info.Size+bytes.MinRead))
	if _, err := buf.ReadFrom(body); err != nil {
		return nil, mapS3Error(ctx, err)
	}
	return buf.Bytes(), nil
}

// Stat sends a HEAD request. A HEAD answer has no body to tell a missing
// bucket from a missing key, so here (unlike Get and List) a deleted bucket
// also reads as ErrNotFound.
func (s *S3) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	name, err := s.objectName(ctx, key)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("stat %s: %w", key, err)
	}
	info, err := s.client.StatObject(ctx, s.bucket, name, minio.StatObjectOptions{})
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("stat %s: %w", key, mapS3Error(ctx, err))
	}
	return ObjectInfo{Key: key, Size: info.Size, ModTime: info.LastModified}, nil
}

// Delete removes the object; S3 itself treats a missing key as success.
func (s *S3) Delete(ctx context.Context, key string) error {
	name, err := s.objectName(ctx, key)
	if err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	err = s.client.RemoveObject(ctx, s.bucket, name, minio.RemoveObjectOptions{})
	if err != nil {
		if err = mapS3Error(ctx, err); !IsNotFound(err) {
			return fmt.Errorf("delete %s: %w", key, err)
		}
	}
	return nil
}

// List pages through a recursive ListObjectsV2, which S3 returns in key
// (UTF-8 byte) order. Objects whose names are not valid keys (for example
// the "dir/" markers some consoles create) are skipped, since Get would
// refuse them.
func (s *S3) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	if err := validatePrefix(prefix); err != nil {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	// Cancelling stops minio-go's pager when fn ends the walk early.
	listCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	noOwner := false
	opts := minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true, FetchOwner: &noOwner}
	for obj := range s.client.ListObjectsIter(listCtx, s.bucket, opts) {
		if obj.Err != nil {
			return fmt.Errorf("list %s: %w", prefix, mapS3Error(ctx, obj.Err))
		}
		key, ok := strings.CutPrefix(obj.Key, s.prefix)
		if !ok || validateKey(key) != nil {
			continue
		}
		// A page arrives whole; stop inside it once the caller gives up.
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("list %s: %w", prefix, err)
		}
		if err := fn(ObjectInfo{Key: key, Size: obj.Size, ModTime: obj.LastModified}); err != nil {
			return err
		}
	}
	// minio-go ends the iteration silently when the context is cancelled,
	// which must not pass for a complete listing.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	return nil
}

// mapS3Error turns a missing object into ErrNotFound and makes a
// cancelled or expired context visible to errors.Is.
func mapS3Error(ctx context.Context, err error) error {
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		// A missing bucket is also a 404, but it is a broken deployment, not
		// a missing object: reporting it as ErrNotFound could make a reader
		// conclude that files were never written.
		if er.Code == minio.NoSuchKey || (er.StatusCode == http.StatusNotFound && er.Code != minio.NoSuchBucket) {
			return ErrNotFound
		}
	}
	return withContext(ctx, err)
}

func withContext(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w: %w", cerr, err)
	}
	return err
}
