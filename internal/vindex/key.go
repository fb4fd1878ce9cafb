package vindex

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// FileKey is what an index file's object key says: the segment it indexes (beside whose files
// it lies), the index definition it was built for, and the writer's fencing token and sequence
// number, which make the key unique per build attempt (no two attempts write one key), as for
// segment files:
//
//	{root}/index/{collection}/{partition}/{segment}/{index}/{token}-{seq}.widx
type FileKey struct {
	Root       string
	Collection int64
	Partition  int64
	Segment    int64
	Index      int64
	Token      int64 // the writer's claim of the channel
	Seq        uint64
}

// FileExt ends every index file's key.
const FileExt = ".widx"

const kindElem = "index"

// ErrBadKey is a key that is not an index file's.
var ErrBadKey = errors.New("vindex: not an index file key")

// Key returns the object key k describes.
func (k FileKey) Key() string {
	var b strings.Builder
	if k.Root != "" {
		b.WriteString(k.Root)
		b.WriteByte('/')
	}
	b.WriteString(kindElem)
	for _, id := range []int64{k.Collection, k.Partition, k.Segment, k.Index} {
		b.WriteByte('/')
		b.WriteString(strconv.FormatInt(id, 10))
	}
	fmt.Fprintf(&b, "/%d-%d%s", k.Token, k.Seq, FileExt)
	return b.String()
}

// Prefix is the list prefix of every index file under root.
func Prefix(root string) string {
	if root == "" {
		return kindElem + "/"
	}
	return root + "/" + kindElem + "/"
}

// ParseFileKey parses a key built by FileKey.Key; it refuses every other key, so that a garbage
// collector can tell index files from foreign objects.
func ParseFileKey(key string) (FileKey, error) {
	elems := strings.Split(key, "/")
	if len(elems) < 6 {
		return FileKey{}, fmt.Errorf("%w: %q", ErrBadKey, key)
	}
	n := len(elems) - 6
	k := FileKey{Root: strings.Join(elems[:n], "/")}
	if elems[n] != kindElem {
		return FileKey{}, fmt.Errorf("%w: %q", ErrBadKey, key)
	}
	for i, p := range []*int64{&k.Collection, &k.Partition, &k.Segment, &k.Index} {
		v, err := strconv.ParseInt(elems[n+1+i], 10, 64)
		if err != nil {
			return FileKey{}, fmt.Errorf("%w: %q: %w", ErrBadKey, key, err)
		}
		*p = v
	}
	name, ok := strings.CutSuffix(elems[n+5], FileExt)
	i := strings.LastIndexByte(name, '-')
	if !ok || i < 0 {
		return FileKey{}, fmt.Errorf("%w: %q", ErrBadKey, key)
	}
	tok, err1 := strconv.ParseInt(name[:i], 10, 64)
	seq, err2 := strconv.ParseUint(name[i+1:], 10, 64)
	if err1 != nil || err2 != nil {
		return FileKey{}, fmt.Errorf("%w: %q", ErrBadKey, key)
	}
	k.Token, k.Seq = tok, seq
	if k.Key() != key { // not canonical: "+1", "01", an empty root element
		return FileKey{}, fmt.Errorf("%w: %q: not canonical", ErrBadKey, key)
	}
	return k, nil
}
