package segment

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Kind is the kind of a segment file, and the first element of its key after the root.
type Kind uint8

// The kinds of segment files.
const (
	KindInsert Kind = iota + 1 // rows of an L1 segment
	KindStats                  // primary-key statistics of one sync of an L1 segment
	KindDelete                 // deletes of a channel's L0 segment
)

var kindNames = map[Kind]string{KindInsert: "insert", KindStats: "stats", KindDelete: "delete"}

// String returns the key element of k ("insert", "stats", "delete").
func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// FileExt ends the name of every segment file.
const FileExt = ".parquet"

// KeyInfo is what a segment file's key says about the file.
type KeyInfo struct {
	Root       string // "" when the key has no root
	Kind       Kind
	Collection int64
	Partition  int64 // -1 in an L0 delete key that covers every partition
	Segment    int64
	Lease      int64  // the writer's fencing token: its claim of the channel (or the lease it holds)
	Seq        uint64 // the writer's sequence number within the lease
}

// Key returns the object key that k describes; ParseKey(k.Key()) == k for every key ParseKey accepts.
func (k KeyInfo) Key() string {
	var b strings.Builder
	b.Grow(len(k.Root) + 80)
	if k.Root != "" {
		b.WriteString(k.Root)
		b.WriteByte('/')
	}
	b.WriteString(k.Kind.String())
	for _, id := range []int64{k.Collection, k.Partition, k.Segment} {
		b.WriteByte('/')
		b.WriteString(strconv.FormatInt(id, 10))
	}
	b.WriteByte('/')
	b.WriteString(strconv.FormatInt(k.Lease, 10))
	b.WriteByte('-')
	b.WriteString(strconv.FormatUint(k.Seq, 10))
	b.WriteString(FileExt)
	return b.String()
}

// InsertKey returns the key of an insert file of an L1 segment. Lease and seq make it unique per
// write attempt: lease is the writer's fencing token (the etcd revision of its claim of the
// channel, or of its lease when it never claims), which no other writer has, and a writer never
// reuses a seq under its token, so two attempts never write the same key (BRIEF invariant 4).
func InsertKey(root string, collection, partition, segment, lease int64, seq uint64) string {
	return KeyInfo{root, KindInsert, collection, partition, segment, lease, seq}.Key()
}

// StatsKey returns the key of the stats file written by the same sync as an insert file.
func StatsKey(root string, collection, partition, segment, lease int64, seq uint64) string {
	return KeyInfo{root, KindStats, collection, partition, segment, lease, seq}.Key()
}

// DeleteKey returns the key of a delete file of an L0 segment; partition is -1 when the segment
// holds deletes of every partition.
func DeleteKey(root string, collection, partition, segment, lease int64, seq uint64) string {
	return KeyInfo{root, KindDelete, collection, partition, segment, lease, seq}.Key()
}

// KindPrefix returns the list prefix of every file of one kind under root.
func KindPrefix(root string, kind Kind) string {
	if root == "" {
		return kind.String() + "/"
	}
	return root + "/" + kind.String() + "/"
}

// CollectionPrefix returns the list prefix of every file of one kind of a collection. It ends
// with '/', so the prefix of collection 1 does not match collection 12.
func CollectionPrefix(root string, kind Kind, collection int64) string {
	return KindPrefix(root, kind) + strconv.FormatInt(collection, 10) + "/"
}

// SegmentPrefix returns the list prefix of every file of one kind of a segment.
func SegmentPrefix(root string, kind Kind, collection, partition, segment int64) string {
	return fmt.Sprintf("%s%d/%d/", CollectionPrefix(root, kind, collection), partition, segment)
}

// ParseKey parses a key built by InsertKey, StatsKey or DeleteKey. It accepts exactly the keys
// those functions return for a root that ValidateRoot accepts, so a garbage collector can tell
// segment files from foreign objects.
func ParseKey(key string) (KeyInfo, error) {
	elems := strings.Split(key, "/")
	if len(elems) < 5 {
		return KeyInfo{}, fmt.Errorf("%w: %q: too few elements", ErrBadKey, key)
	}
	n := len(elems) - 5
	var info KeyInfo
	info.Root = strings.Join(elems[:n], "/")
	if err := ValidateRoot(info.Root); err != nil {
		return KeyInfo{}, fmt.Errorf("%w: %q: %w", ErrBadKey, key, err)
	}
	for k, name := range kindNames {
		if elems[n] == name {
			info.Kind = k
		}
	}
	if info.Kind == 0 {
		return KeyInfo{}, fmt.Errorf("%w: %q: unknown kind %q", ErrBadKey, key, elems[n])
	}
	ids := []*int64{&info.Collection, &info.Partition, &info.Segment}
	for i, p := range ids {
		v, err := parseInt(elems[n+1+i])
		if err != nil {
			return KeyInfo{}, fmt.Errorf("%w: %q: %w", ErrBadKey, key, err)
		}
		*p = v
	}
	name, ok := strings.CutSuffix(elems[n+4], FileExt)
	if !ok {
		return KeyInfo{}, fmt.Errorf("%w: %q: name does not end in %s", ErrBadKey, key, FileExt)
	}
	// The lease may be negative, the sequence number may not: the last '-' separates them.
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return KeyInfo{}, fmt.Errorf("%w: %q: name is not {lease}-{seq}", ErrBadKey, key)
	}
	lease, err := parseInt(name[:i])
	if err != nil {
		return KeyInfo{}, fmt.Errorf("%w: %q: lease: %w", ErrBadKey, key, err)
	}
	seq, err := strconv.ParseUint(name[i+1:], 10, 64)
	if err != nil || strconv.FormatUint(seq, 10) != name[i+1:] {
		return KeyInfo{}, fmt.Errorf("%w: %q: sequence %q is not canonical decimal", ErrBadKey, key, name[i+1:])
	}
	info.Lease, info.Seq = lease, seq
	if info.Key() != key { // an empty root element, as in "/insert/..."
		return KeyInfo{}, fmt.Errorf("%w: %q: not canonical", ErrBadKey, key)
	}
	return info, nil
}

// parseInt accepts only the canonical decimal form, so that every parsed key formats back to
// itself and no two keys name the same file.
func parseInt(s string) (int64, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || strconv.FormatInt(v, 10) != s {
		return 0, fmt.Errorf("%q is not a canonical decimal integer", s)
	}
	return v, nil
}

// ValidateRoot reports whether root can prefix segment keys: "" or '/'-separated elements that
// the object store accepts (no empty, "." or ".." element, no backslash or NUL, valid UTF-8, at
// most 255 bytes each, and at most 512 bytes in all, leaving room for the rest of the key). The
// key functions return a key valid for objstore exactly when their root passes ValidateRoot;
// check it once where the root is configured.
func ValidateRoot(root string) error {
	if root == "" {
		return nil
	}
	switch {
	case len(root) > maxRootLen:
		return fmt.Errorf("%w: longer than %d bytes", ErrBadRoot, maxRootLen)
	case !utf8.ValidString(root):
		return fmt.Errorf("%w: %q: not valid UTF-8", ErrBadRoot, root)
	case strings.ContainsAny(root, "\\\x00"):
		return fmt.Errorf("%w: %q: backslash or NUL", ErrBadRoot, root)
	}
	for i, e := range strings.Split(root, "/") {
		switch {
		case e == "" || e == "." || e == "..":
			return fmt.Errorf("%w: %q: element %q", ErrBadRoot, root, e)
		case len(e) > 255:
			return fmt.Errorf("%w: %q: element longer than 255 bytes", ErrBadRoot, root)
		case i == 0 && e == ".objstore-tmp": // the local bucket stages uploads there
			return fmt.Errorf("%w: %q: reserved first element", ErrBadRoot, root)
		}
	}
	return nil
}

// maxRootLen keeps the longest key (root + about 100 bytes of kind, IDs and name) under
// objstore's 1024-byte limit, with room for an S3 prefix.
const maxRootLen = 512
