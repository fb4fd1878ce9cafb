package objstore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Local is a Bucket in a directory of the local filesystem: the object under
// key "a/b/c" is the file <dir>/a/b/c.
type Local struct {
	root string // absolute path of the bucket directory
	tmp  string // root/tmpDirName, where Put stages files before renaming them

	// beforeRename, when set by a test, runs between creating the parent
	// directories and the rename, the window a concurrent Delete can hit.
	beforeRename func(staged, dst string)
}

var _ Bucket = (*Local)(nil)

const (
	dirPerm = 0o750
	// staleTempAge is how old a staged file must be before NewLocal deletes
	// it. A staged file lives only while one Put writes, fsyncs and renames
	// it, so anything older was left by a crash. Waiting this long, instead
	// of wiping the folder, keeps a second Local on the same directory (two
	// roles of one process, or two processes) from deleting the file of a
	// Put in progress.
	staleTempAge = 10 * time.Minute
	// renameAttempts bounds the retries of a Put whose parent directory a
	// concurrent Delete removed while the Put created it or renamed into it.
	renameAttempts = 10
)

// NewLocal opens the bucket stored in dir, creating dir if needed, and
// deletes staged files that a crashed Put left behind.
func NewLocal(dir string) (*Local, error) {
	if dir == "" {
		return nil, errors.New("open local bucket: empty directory")
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open local bucket %s: %w", dir, err)
	}
	l := &Local{root: root, tmp: filepath.Join(root, tmpDirName)}
	if err := os.MkdirAll(l.tmp, dirPerm); err != nil {
		return nil, fmt.Errorf("open local bucket %s: %w", dir, err)
	}
	if err := l.removeStaleTemp(time.Now()); err != nil {
		return nil, fmt.Errorf("open local bucket %s: %w", dir, err)
	}
	return l, nil
}

// Dir returns the absolute path of the bucket directory.
func (l *Local) Dir() string { return l.root }

func (l *Local) removeStaleTemp(now time.Time) error {
	entries, err := os.ReadDir(l.tmp)
	if err != nil {
		return err
	}
	for _, e := range entries {
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // renamed into place by a Put of another Local meanwhile
		}
		if err != nil {
			return err
		}
		if now.Sub(info.ModTime()) < staleTempAge {
			continue
		}
		if err := os.RemoveAll(filepath.Join(l.tmp, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func (l *Local) path(key string) string {
	return filepath.Join(l.root, filepath.FromSlash(key))
}

// Put writes data to a staged file, fsyncs it, renames it into place and
// fsyncs the directories whose entries changed, so that after a crash the
// key holds either the old object or the whole new one.
func (l *Local) Put(ctx context.Context, key string, data []byte) error {
	if err := checkCall(ctx, key); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	err := l.put(key, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// streamBuffer is the write buffer of PutStream. Encoders write page headers
// of a few bytes between pages of about a MiB; buffering turns them into
// few large writes, and stays small next to what a sync holds.
const streamBuffer = 1 << 20

// PutStream is Put with the bytes written by write straight to the staged
// file, through a small buffer: an object of any size costs the same memory.
func (l *Local) PutStream(ctx context.Context, key string, write func(io.Writer) error) error {
	if err := checkCall(ctx, key); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	err := l.put(key, func(f *os.File) error {
		bw := bufio.NewWriterSize(ctxWriter{ctx: ctx, w: f}, streamBuffer)
		if err := write(bw); err != nil {
			return err
		}
		return bw.Flush()
	})
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// put stages a file filled by fill, fsyncs it and moves it to key.
func (l *Local) put(key string, fill func(*os.File) error) (err error) {
	// CreateTemp makes the file 0600: object files are private to the
	// database's user, as etcd's and NATS's files are.
	f, err := os.CreateTemp(l.tmp, "put-*")
	if err != nil {
		return err
	}
	staged := f.Name()
	renamed := false
	defer func() {
		if !renamed {
			// Best effort: the write already failed and that error is the
			// one to report; NewLocal removes the file later if this fails.
			_ = os.Remove(staged)
		}
	}()
	if err := fill(f); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}

	dst := l.path(key)
	parent := filepath.Dir(dst)
	for attempt := 1; ; attempt++ {
		err := os.MkdirAll(parent, dirPerm)
		if err == nil {
			if l.beforeRename != nil {
				l.beforeRename(staged, dst)
			}
			if err = os.Rename(staged, dst); err == nil {
				renamed = true
				break
			}
		}
		// A concurrent Delete removes the parent directories it empties;
		// that can happen while they are created or before the rename, so
		// create them again.
		if !errors.Is(err, fs.ErrNotExist) || attempt == renameAttempts {
			return err
		}
		if _, serr := os.Lstat(staged); serr != nil {
			return err // the staged file itself is gone: nothing to retry
		}
	}

	// The new entry must reach the disk, and so must the entry of every
	// directory above it up to the root: this Put, or a concurrent one
	// that has not fsynced yet, may have created them. Fsyncing a directory
	// with nothing new in it costs little.
	for dir := parent; ; dir = filepath.Dir(dir) {
		if err := syncDir(dir); err != nil {
			return err
		}
		if dir == l.root {
			return nil
		}
	}
}

// syncDir fsyncs a directory so that changes to its entries survive a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		_ = d.Close()
		return err
	}
	return d.Close()
}

// openObject opens the regular file holding key. A missing file, a path
// through a file, and a directory all mean that no object has this key.
func (l *Local) openObject(key string) (*os.File, int64, error) {
	f, err := os.Open(l.path(key))
	if err != nil {
		return nil, 0, mapNotExist(err)
	}
	info, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, 0, err
	}
	if !info.Mode().IsRegular() {
		_ = f.Close()
		return nil, 0, ErrNotFound
	}
	return f, info.Size(), nil
}

func mapNotExist(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return ErrNotFound
	}
	return err
}

// Get reads the whole object. Put replaces files by rename and never writes
// in place, so the open file cannot change while it is read.
func (l *Local) Get(ctx context.Context, key string) ([]byte, error) {
	if err := checkCall(ctx, key); err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	data, err := l.readRange(key, 0, -1)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return data, nil
}

// GetRange reads length bytes from off, fewer if the object ends first.
func (l *Local) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	if err := checkCall(ctx, key); err != nil {
		return nil, fmt.Errorf("get range %s: %w", key, err)
	}
	if length < 0 {
		// Checked here because readRange uses a negative length for "all".
		return nil, fmt.Errorf("get range %s: %w: length %d", key, ErrInvalidRange, length)
	}
	data, err := l.readRange(key, off, length)
	if err != nil {
		return nil, fmt.Errorf("get range %s: %w", key, err)
	}
	return data, nil
}

// readRange reads [off, off+length) clipped to the file; length < 0 reads
// the whole file.
func (l *Local) readRange(key string, off, length int64) (data []byte, err error) {
	f, size, err := l.openObject(key)
	if err != nil {
		return nil, err
	}
	// Read-only: a Close error cannot lose data, the read result stands.
	defer func() { _ = f.Close() }()
	start, end := int64(0), size
	if length >= 0 {
		if start, end, err = clipRange(size, off, length); err != nil {
			return nil, err
		}
	}
	data = make([]byte, end-start)
	if _, err := io.ReadFull(io.NewSectionReader(f, start, end-start), data); err != nil {
		return nil, err
	}
	return data, nil
}

// Stat returns the file's size and modification time.
func (l *Local) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	if err := checkCall(ctx, key); err != nil {
		return ObjectInfo{}, fmt.Errorf("stat %s: %w", key, err)
	}
	info, err := os.Stat(l.path(key))
	if err == nil && !info.Mode().IsRegular() {
		err = ErrNotFound
	}
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("stat %s: %w", key, mapNotExist(err))
	}
	return ObjectInfo{Key: key, Size: info.Size(), ModTime: info.ModTime()}, nil
}

// Delete removes the file, then every parent directory it left empty below
// the root, so that the tree does not fill with empty directories as the
// garbage collector deletes files.
func (l *Local) Delete(ctx context.Context, key string) error {
	if err := checkCall(ctx, key); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	p := l.path(key)
	info, err := os.Lstat(p)
	if err != nil {
		if errors.Is(mapNotExist(err), ErrNotFound) {
			return nil
		}
		return fmt.Errorf("delete %s: %w", key, err)
	}
	if info.IsDir() {
		return nil // a directory is only a key prefix, not an object
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	dir := filepath.Dir(p)
	for dir != l.root && os.Remove(dir) == nil {
		// Remove fails on a directory that is not empty (or that a
		// concurrent Delete removed first): the climb ends there.
		dir = filepath.Dir(dir)
	}
	// The deepest surviving directory holds the last entry removed; making
	// it durable makes the whole removal durable.
	if err := syncDir(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// List walks the directory tree. Entries of one directory are visited in
// the order of their keys, a directory sorting as its name plus "/", which
// makes the walk produce keys in byte order ("a.txt" < "a/b" < "a0").
func (l *Local) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	if err := validatePrefix(prefix); err != nil {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	// Only the part of the prefix up to its last '/' names a directory;
	// the rest is the start of names inside it.
	cut := strings.LastIndexByte(prefix, '/') + 1
	w := walker{ctx: ctx, prefix: prefix, fn: fn}
	return w.walk(filepath.Join(l.root, filepath.FromSlash(prefix[:cut])), prefix[:cut], prefix[cut:])
}

type walker struct {
	ctx    context.Context
	prefix string
	fn     func(ObjectInfo) error
}

// walk visits directory dir, whose key prefix is keyDir ("" or ending in
// '/'), restricted to the entries whose names start with namePrefix.
func (w *walker) walk(dir, keyDir, namePrefix string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(mapNotExist(err), ErrNotFound) {
			return nil // no such prefix, or removed by a concurrent Delete
		}
		return fmt.Errorf("list %s: %w", w.prefix, err)
	}
	type item struct {
		sortKey string
		entry   fs.DirEntry
	}
	items := make([]item, 0, len(entries))
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, namePrefix) || (keyDir == "" && name == tmpDirName) {
			continue
		}
		switch {
		case e.IsDir():
			items = append(items, item{name + "/", e})
		case e.Type().IsRegular():
			items = append(items, item{name, e})
		}
	}
	slices.SortFunc(items, func(a, b item) int { return strings.Compare(a.sortKey, b.sortKey) })
	for _, it := range items {
		if err := w.ctx.Err(); err != nil {
			return fmt.Errorf("list %s: %w", w.prefix, err)
		}
		name := it.entry.Name()
		if it.entry.IsDir() {
			if err := w.walk(filepath.Join(dir, name), keyDir+name+"/", ""); err != nil {
				return err
			}
			continue
		}
		key := keyDir + name
		if validateKey(key) != nil {
			continue // a file no Put could have written; Get would refuse it
		}
		info, err := it.entry.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted since ReadDir
		}
		if err != nil {
			return fmt.Errorf("list %s: %w", w.prefix, err)
		}
		if err := w.fn(ObjectInfo{Key: key, Size: info.Size(), ModTime: info.ModTime()}); err != nil {
			return err
		}
	}
	return nil
}
