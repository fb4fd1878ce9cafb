package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Key     string
	Size    int64
	ModTime time.Time
}

var (
	// ErrNotFound reports that no object exists under the key.
	ErrNotFound = errors.New("objstore: object not found")
	// ErrInvalidKey reports a key or list prefix that breaks the key rules in doc.go.
	ErrInvalidKey = errors.New("objstore: invalid key")
	// ErrInvalidRange reports a GetRange with a negative offset or length, or an
	// offset past the end of the object.
	ErrInvalidRange = errors.New("objstore: invalid range")

	// errUploadEnded fails the writes of an S3 PutStream whose upload
	// returned before them.
	errUploadEnded = errors.New("objstore: upload ended")
)

// ctxWriter fails writes once its context is done, so that a stream whose
// context ends stops at its next write instead of running to completion.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// IsNotFound reports whether err means that the object does not exist.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// BucketReader is the read half (used by readers such as the garbage collector's listing and inspect).
type BucketReader interface {
	// Get returns the whole object.
	Get(ctx context.Context, key string) ([]byte, error)
	// GetRange returns up to length bytes starting at off; the result is
	// shorter only when the object ends first. off == size gives an empty
	// result, off > size gives ErrInvalidRange.
	GetRange(ctx context.Context, key string, off, length int64) ([]byte, error)
	// Stat returns the object's size and modification time.
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	// List calls fn for every object whose key starts with prefix,
	// recursively, in key order; it stops and returns fn's error.
	List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error
}

// Bucket is a BucketReader that can also write.
type Bucket interface {
	BucketReader
	// Put stores data under key, replacing any previous object; it is
	// atomic: a reader sees the whole object or nothing.
	Put(ctx context.Context, key string, data []byte) error
	// PutStream stores under key the bytes write writes to w, atomically
	// like Put, without holding the object in memory: Local writes them to
	// its staged file as they come, S3 uploads them in parts. When write
	// returns an error nothing is stored and PutStream returns an error
	// wrapping it. w is valid only until write returns; its writes fail
	// once ctx is done.
	PutStream(ctx context.Context, key string, write func(w io.Writer) error) error
	// Delete removes the object; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

const (
	// maxKeyLen is the S3 limit on key length (the prefix of an S3 bucket
	// counts against it too); enforcing it everywhere keeps Local and Memory
	// from accepting keys that S3 would refuse.
	maxKeyLen = 1024
	// maxElemLen is the usual file-name limit (NAME_MAX); enforcing it
	// everywhere keeps S3 and Memory from accepting keys Local would refuse.
	maxElemLen = 255
	// tmpDirName is the folder inside a Local root where Put stages its
	// files. It is reserved as a first key element in every implementation
	// so that the key rules stay identical and no key can reach it.
	tmpDirName = ".objstore-tmp"
)

// validateKey enforces the key rules listed in doc.go.
func validateKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	if err := checkChars(key); err != nil {
		return err
	}
	return checkElems(key, strings.Split(key, "/"))
}

// validatePrefix accepts what validateKey accepts, the empty prefix, a
// prefix ending in '/', and a last element that is only the start of a name
// ("." or "" included); every complete element must follow the key rules.
func validatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if err := checkChars(prefix); err != nil {
		return err
	}
	elems := strings.Split(prefix, "/")
	last := elems[len(elems)-1]
	if len(last) > maxElemLen {
		return fmt.Errorf("%w: %q: element longer than %d bytes", ErrInvalidKey, prefix, maxElemLen)
	}
	if len(elems) == 1 {
		return nil
	}
	return checkElems(prefix, elems[:len(elems)-1])
}

func checkChars(s string) error {
	switch {
	case len(s) > maxKeyLen:
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidKey, maxKeyLen)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: %q: not valid UTF-8", ErrInvalidKey, s)
	case strings.HasPrefix(s, "/"):
		return fmt.Errorf("%w: %q: leading '/'", ErrInvalidKey, s)
	case strings.ContainsRune(s, '\\'):
		return fmt.Errorf("%w: %q: backslash", ErrInvalidKey, s)
	case strings.ContainsRune(s, 0):
		return fmt.Errorf("%w: %q: NUL byte", ErrInvalidKey, s)
	}
	return nil
}

func checkElems(s string, elems []string) error {
	for i, e := range elems {
		switch {
		case e == "":
			return fmt.Errorf("%w: %q: empty element", ErrInvalidKey, s)
		case e == "." || e == "..":
			return fmt.Errorf("%w: %q: %q element", ErrInvalidKey, s, e)
		case len(e) > maxElemLen:
			return fmt.Errorf("%w: %q: element longer than %d bytes", ErrInvalidKey, s, maxElemLen)
		case i == 0 && e == tmpDirName:
			return fmt.Errorf("%w: %q: %q is reserved", ErrInvalidKey, s, tmpDirName)
		}
	}
	return nil
}

// clipRange turns a GetRange request on an object of the given size into
// the half-open interval [start, end) it returns.
func clipRange(size, off, length int64) (start, end int64, err error) {
	if off < 0 || length < 0 || off > size {
		return 0, 0, fmt.Errorf("%w: offset %d length %d on %d bytes", ErrInvalidRange, off, length, size)
	}
	// Compare against the remaining bytes instead of adding, so that a huge
	// length ("to the end") cannot overflow.
	if length > size-off {
		return off, size, nil
	}
	return off, off + length, nil
}
