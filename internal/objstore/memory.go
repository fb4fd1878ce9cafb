package objstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
)

// Memory is a Bucket held in memory, for unit tests of the packages that use
// object storage. It keeps the same key rules and errors as Local and S3.
type Memory struct {
	mu struct {
		sync.Mutex
		objects map[string]memObject
	}
}

type memObject struct {
	data    []byte
	modTime time.Time
}

var _ Bucket = (*Memory)(nil)

// NewMemory returns an empty in-memory bucket.
func NewMemory() *Memory {
	m := &Memory{}
	m.mu.objects = make(map[string]memObject)
	return m
}

// Put stores a copy of data, so the caller may reuse its slice.
func (m *Memory) Put(ctx context.Context, key string, data []byte) error {
	if err := checkCall(ctx, key); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	m.store(key, slices.Clone(data))
	return nil
}

// store keeps data (which it owns) as the object at key.
func (m *Memory) store(key string, data []byte) {
	if data == nil {
		data = []byte{}
	}
	m.mu.Lock()
	m.mu.objects[key] = memObject{data: data, modTime: time.Now()}
	m.mu.Unlock()
}

// PutStream stores what write writes once it returns without error.
func (m *Memory) PutStream(ctx context.Context, key string, write func(io.Writer) error) error {
	if err := checkCall(ctx, key); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	var buf bytes.Buffer
	if err := write(ctxWriter{ctx: ctx, w: &buf}); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	m.store(key, buf.Bytes())
	return nil
}

// Get returns a copy of the object, so the caller may modify it.
func (m *Memory) Get(ctx context.Context, key string) ([]byte, error) {
	obj, err := m.lookup(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return slices.Clone(obj.data), nil
}

// GetRange returns a copy of the requested bytes.
func (m *Memory) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	obj, err := m.lookup(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("get range %s: %w", key, err)
	}
	start, end, err := clipRange(int64(len(obj.data)), off, length)
	if err != nil {
		return nil, fmt.Errorf("get range %s: %w", key, err)
	}
	return slices.Clone(obj.data[start:end:end]), nil
}

// Stat returns the object's size and the time of its last Put.
func (m *Memory) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	obj, err := m.lookup(ctx, key)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("stat %s: %w", key, err)
	}
	return ObjectInfo{Key: key, Size: int64(len(obj.data)), ModTime: obj.modTime}, nil
}

// List calls fn on a snapshot taken under the lock, so fn may call back
// into the bucket without deadlocking.
func (m *Memory) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	if err := validatePrefix(prefix); err != nil {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	var infos []ObjectInfo
	m.mu.Lock()
	for k, obj := range m.mu.objects {
		if strings.HasPrefix(k, prefix) {
			infos = append(infos, ObjectInfo{Key: k, Size: int64(len(obj.data)), ModTime: obj.modTime})
		}
	}
	m.mu.Unlock()
	slices.SortFunc(infos, func(a, b ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	for _, info := range infos {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("list %s: %w", prefix, err)
		}
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

// Delete removes the object if it exists.
func (m *Memory) Delete(ctx context.Context, key string) error {
	if err := checkCall(ctx, key); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	m.mu.Lock()
	delete(m.mu.objects, key)
	m.mu.Unlock()
	return nil
}

func (m *Memory) lookup(ctx context.Context, key string) (memObject, error) {
	if err := checkCall(ctx, key); err != nil {
		return memObject{}, err
	}
	m.mu.Lock()
	obj, ok := m.mu.objects[key]
	m.mu.Unlock()
	if !ok {
		return memObject{}, ErrNotFound
	}
	return obj, nil
}

// checkCall does the checks every single-key call starts with: a cancelled
// context does no work, and a bad key is refused before touching storage.
func checkCall(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return validateKey(key)
}
