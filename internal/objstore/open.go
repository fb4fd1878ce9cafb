package objstore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Open builds a Bucket from a URL: file:///abs/path, or s3://bucket/prefix?endpoint=host:port&secure=false&region=...&access_key=...&secret_key=...&create_bucket=true
// (credentials fall back to AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY). A bare path without scheme is a local dir.
//
// For s3 URLs, secure defaults to true, endpoint to s3.amazonaws.com and
// create_bucket to false; an unknown or repeated parameter is an error, so
// that a typo cannot silently fall back to a default. Errors never repeat
// the URL, which may hold a secret key.
func Open(ctx context.Context, rawURL string) (Bucket, error) {
	loc, err := parseURL(rawURL, os.Getenv)
	if err != nil {
		return nil, err
	}
	if loc.s3 != nil {
		return NewS3(ctx, *loc.s3)
	}
	return NewLocal(loc.dir)
}

// ErrReadOnly is what OpenReader returns for a URL that would make it write: a local
// folder that does not exist, or an s3 URL that asks to create its bucket.
var ErrReadOnly = errors.New("storage opened read-only")

// OpenReader opens the bucket at rawURL for reading only, and writes nothing doing so:
// unlike Open it neither creates a local folder (it must exist) nor clears its staged files,
// and it refuses an s3 URL with create_bucket. It is what read-only tools (weir inspect) use.
func OpenReader(ctx context.Context, rawURL string) (BucketReader, error) {
	loc, err := parseURL(rawURL, os.Getenv)
	if err != nil {
		return nil, err
	}
	if loc.s3 != nil {
		if loc.s3.CreateBucket {
			return nil, fmt.Errorf("%w: an s3 URL must not set create_bucket", ErrReadOnly)
		}
		return NewS3(ctx, *loc.s3)
	}
	root, err := filepath.Abs(loc.dir)
	if err != nil {
		return nil, fmt.Errorf("open local bucket %s: %w", loc.dir, err)
	}
	if st, err := os.Stat(root); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%w: local bucket directory %s does not exist", ErrReadOnly, loc.dir)
	}
	return &Local{root: root, tmp: filepath.Join(root, tmpDirName)}, nil
}

// location is a parsed storage URL: a local directory or an S3 bucket.
type location struct {
	dir string
	s3  *S3Config
}

func parseURL(raw string, getenv func(string) string) (location, error) {
	if raw == "" {
		return location{}, errors.New("storage url: empty")
	}
	if !strings.Contains(raw, "://") {
		lower := strings.ToLower(raw)
		if strings.HasPrefix(lower, "file:") || strings.HasPrefix(lower, "s3:") {
			return location{}, errors.New("storage url: want file:///path or s3://bucket/prefix")
		}
		return location{dir: raw}, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // url.Error repeats the URL, secrets included
		}
		return location{}, fmt.Errorf("storage url: %w", err)
	}
	if u.Fragment != "" {
		return location{}, errors.New("storage url: unexpected fragment '#'")
	}
	if u.User != nil {
		return location{}, errors.New("storage url: credentials go in access_key and secret_key parameters, not before '@'")
	}
	switch u.Scheme {
	case "file":
		return parseFileURL(u)
	case "s3":
		return parseS3URL(u, getenv)
	default:
		return location{}, fmt.Errorf("storage url: unsupported scheme %q (want file or s3)", u.Scheme)
	}
}

func parseFileURL(u *url.URL) (location, error) {
	if u.Host != "" && u.Host != "localhost" {
		return location{}, fmt.Errorf("storage url: file url has host %q; want file:///absolute/path", u.Host)
	}
	if u.RawQuery != "" {
		return location{}, errors.New("storage url: file url takes no parameters")
	}
	if u.Path == "" || u.Path == "/" {
		return location{}, errors.New("storage url: file url needs a directory other than /")
	}
	return location{dir: u.Path}, nil
}

func parseS3URL(u *url.URL, getenv func(string) string) (location, error) {
	if u.Host == "" {
		return location{}, errors.New("storage url: s3 url needs a bucket: s3://bucket/prefix")
	}
	if u.Port() != "" {
		return location{}, fmt.Errorf("storage url: s3 bucket %q has a port; give the service as endpoint=host:port", u.Host)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return location{}, fmt.Errorf("storage url: parameters: %w", err)
	}
	cfg := S3Config{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/"), Secure: true}
	for name, values := range q {
		if len(values) != 1 {
			return location{}, fmt.Errorf("storage url: parameter %s given %d times", name, len(values))
		}
		v := values[0]
		switch name {
		case "endpoint":
			cfg.Endpoint = v
		case "region":
			cfg.Region = v
		case "access_key":
			cfg.AccessKey = v
		case "secret_key":
			cfg.SecretKey = v
		case "secure", "create_bucket":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return location{}, fmt.Errorf("storage url: parameter %s=%q: want true or false", name, v)
			}
			if name == "secure" {
				cfg.Secure = b
			} else {
				cfg.CreateBucket = b
			}
		default:
			return location{}, fmt.Errorf("storage url: unknown parameter %q (known: endpoint, secure, region, access_key, secret_key, create_bucket)", name)
		}
	}
	if !q.Has("access_key") {
		cfg.AccessKey = getenv("AWS_ACCESS_KEY_ID")
	}
	if !q.Has("secret_key") {
		cfg.SecretKey = getenv("AWS_SECRET_ACCESS_KEY")
	}
	if err := cfg.Validate(); err != nil {
		return location{}, fmt.Errorf("storage url: %w", err)
	}
	return location{s3: &cfg}, nil
}
