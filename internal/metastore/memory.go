package metastore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// WriteFault is what an injected fault does to one write on a Memory store.
type WriteFault int

const (
	// NoFault lets the write proceed normally.
	NoFault WriteFault = iota
	// FailBeforeApply drops the write and returns an error wrapping ErrOutcomeUnknown, like a
	// request lost on its way to etcd.
	FailBeforeApply
	// FailAfterApply applies the write (or evaluates its failing predicates) and then returns
	// an error wrapping ErrOutcomeUnknown, like a response lost on its way back.
	FailAfterApply
)

// errInjected is the cause wrapped next to ErrOutcomeUnknown by an injected fault.
var errInjected = errors.New("metastore: injected fault")

// Memory is an in-process Store with etcd's semantics, for unit tests of the code above it:
// the same revisions (a fresh store is at revision 1, each write that changes something adds
// one), versions, predicates, PredicateError, limits and compaction. It keeps every revision
// until Compact.
type Memory struct {
	mu struct {
		sync.Mutex
		rev       int64
		compacted int64
		keys      map[string]*memKey
		// sorted caches the keys of keys in order; nil when a key was added since.
		sorted []string
		closed bool
		fault  func(keys []string) WriteFault
	}
}

var _ Store = (*Memory)(nil)

// memKey is the history of one key, oldest first; a delete is a tombstone entry.
type memKey struct {
	revs []memRev
}

type memRev struct {
	kv      KV
	deleted bool
}

// NewMemory returns an empty store at revision 1, like a fresh etcd.
func NewMemory() *Memory {
	m := &Memory{}
	m.mu.rev = 1
	m.mu.keys = make(map[string]*memKey)
	return m
}

// InjectWriteFault makes fn decide the fate of every later Put, Delete and Txn, given the
// keys (or prefixes) it writes; nil removes it. Tests use it to exercise the handling of
// ErrOutcomeUnknown, including writes that did commit.
func (m *Memory) InjectWriteFault(fn func(keys []string) WriteFault) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mu.fault = fn
}

// Close makes later calls return ErrClosed.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mu.closed = true
	return nil
}

// ready reports why a call may not proceed; m.mu must be held.
func (m *Memory) ready(ctx context.Context) error {
	if m.mu.closed {
		return ErrClosed
	}
	return ctx.Err()
}

// at returns key's state at rev, and whether it existed then; m.mu must be held.
func (m *Memory) at(key string, rev int64) (KV, bool) {
	k := m.mu.keys[key]
	if k == nil {
		return KV{}, false
	}
	i, _ := slices.BinarySearchFunc(k.revs, rev+1, func(r memRev, target int64) int {
		return cmpInt(r.kv.ModRevision, target)
	})
	if i == 0 || k.revs[i-1].deleted {
		return KV{}, false
	}
	return k.revs[i-1].kv, true
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// keysWithPrefix returns the keys ever written under prefix, sorted; m.mu must be held.
func (m *Memory) keysWithPrefix(prefix string) []string {
	if m.mu.sorted == nil {
		m.mu.sorted = make([]string, 0, len(m.mu.keys))
		for k := range m.mu.keys {
			m.mu.sorted = append(m.mu.sorted, k)
		}
		slices.Sort(m.mu.sorted)
	}
	lo, _ := slices.BinarySearch(m.mu.sorted, prefix)
	hi := lo
	for hi < len(m.mu.sorted) && strings.HasPrefix(m.mu.sorted[hi], prefix) {
		hi++
	}
	return m.mu.sorted[lo:hi]
}

func cloneKV(kv KV) KV {
	kv.Value = slices.Clone(kv.Value)
	return kv
}

// Get implements Store.
func (m *Memory) Get(ctx context.Context, key string) (KV, error) {
	if err := checkKey(key); err != nil {
		return KV{}, fmt.Errorf("get %q: %w", key, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.ready(ctx); err != nil {
		return KV{}, fmt.Errorf("get %q: %w", key, err)
	}
	kv, ok := m.at(key, m.mu.rev)
	if !ok {
		return KV{}, fmt.Errorf("get %q: %w", key, ErrNotFound)
	}
	return cloneKV(kv), nil
}

// Range implements Store.
func (m *Memory) Range(ctx context.Context, prefix string, opts ...RangeOption) ([]KV, int64, error) {
	o := applyRangeOptions(opts)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.ready(ctx); err != nil {
		return nil, 0, fmt.Errorf("range %q: %w", prefix, err)
	}
	rev := m.mu.rev
	if o.rev > 0 {
		if err := m.checkRev(o.rev); err != nil {
			return nil, 0, fmt.Errorf("range %q: %w", prefix, err)
		}
		rev = o.rev
	}
	var kvs []KV
	for _, k := range m.keysWithPrefix(prefix) {
		if o.exact && k != prefix {
			continue
		}
		kv, ok := m.at(k, rev)
		if !ok || kv.ModRevision < o.minModRev {
			continue
		}
		if o.keysOnly {
			kv.Value = nil
		}
		kvs = append(kvs, cloneKV(kv))
	}
	return kvs, rev, nil
}

// checkRev reports whether a read at rev is possible; m.mu must be held.
func (m *Memory) checkRev(rev int64) error {
	switch {
	case rev > m.mu.rev:
		return fmt.Errorf("%w: %d, store is at %d", ErrFutureRevision, rev, m.mu.rev)
	case rev < m.mu.compacted:
		return fmt.Errorf("%w: %d, compacted up to %d", ErrCompacted, rev, m.mu.compacted)
	}
	return nil
}

// Revision implements Store.
func (m *Memory) Revision(ctx context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.ready(ctx); err != nil {
		return 0, fmt.Errorf("revision: %w", err)
	}
	return m.mu.rev, nil
}

// Put implements Store.
func (m *Memory) Put(ctx context.Context, key string, value []byte) (int64, error) {
	rev, err := m.txn(ctx, nil, []Op{Put(key, value)})
	if err != nil {
		return 0, fmt.Errorf("put %q: %w", key, err)
	}
	return rev, nil
}

// Delete implements Store.
func (m *Memory) Delete(ctx context.Context, key string) (int64, error) {
	rev, err := m.txn(ctx, nil, []Op{Delete(key)})
	if err != nil {
		return 0, fmt.Errorf("delete %q: %w", key, err)
	}
	return rev, nil
}

// Txn implements Store.
func (m *Memory) Txn(ctx context.Context, cmps []Cmp, ops []Op) (int64, error) {
	rev, err := m.txn(ctx, cmps, ops)
	var perr *PredicateError
	if err != nil && !errors.As(err, &perr) {
		return 0, fmt.Errorf("txn: %w", err)
	}
	return rev, err
}

func (m *Memory) txn(ctx context.Context, cmps []Cmp, ops []Op) (int64, error) {
	if err := CheckTxn(cmps, ops); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.ready(ctx); err != nil {
		return 0, err
	}
	fault := NoFault
	if m.mu.fault != nil {
		keys := make([]string, len(ops))
		for i, o := range ops {
			keys[i] = o.key
		}
		fault = m.mu.fault(keys)
	}
	if fault == FailBeforeApply {
		return 0, fmt.Errorf("%w: %w before apply", ErrOutcomeUnknown, errInjected)
	}
	rev, err := m.apply(cmps, ops)
	if fault == FailAfterApply {
		return 0, fmt.Errorf("%w: %w after apply", ErrOutcomeUnknown, errInjected)
	}
	return rev, err
}

// apply evaluates cmps and, when all hold, applies ops at the next revision; m.mu must be held.
func (m *Memory) apply(cmps []Cmp, ops []Op) (int64, error) {
	cur := make([]KV, len(cmps))
	ok := true
	for i, c := range cmps {
		kv, found := m.at(c.key, m.mu.rev)
		if !found {
			kv = KV{Key: c.key}
		}
		cur[i] = cloneKV(kv)
		ok = ok && c.holds(kv)
	}
	if !ok {
		return 0, newPredicateError(cmps, cur, m.mu.rev)
	}
	next := m.mu.rev + 1
	changed := false
	for _, o := range ops {
		switch o.kind {
		case opPut:
			m.put(o.key, o.value, next)
			changed = true
		case opDelete:
			changed = m.delete(o.key, next) || changed
		case opDeletePrefix:
			for _, k := range m.keysWithPrefix(o.key) {
				changed = m.delete(k, next) || changed
			}
		}
	}
	// Like etcd, a transaction that changes nothing does not advance the revision.
	if changed {
		m.mu.rev = next
	}
	return m.mu.rev, nil
}

// put records key=value at rev; m.mu must be held.
func (m *Memory) put(key string, value []byte, rev int64) {
	kv := KV{Key: key, CreateRevision: rev, ModRevision: rev, Version: 1}
	if len(value) > 0 {
		// etcd returns an empty value as nil; so does Memory.
		kv.Value = slices.Clone(value)
	}
	if prev, ok := m.at(key, rev); ok {
		kv.CreateRevision = prev.CreateRevision
		kv.Version = prev.Version + 1
	}
	k := m.mu.keys[key]
	if k == nil {
		k = &memKey{}
		m.mu.keys[key] = k
		m.mu.sorted = nil
	}
	k.revs = append(k.revs, memRev{kv: kv})
}

// delete records a tombstone for key at rev if it exists; m.mu must be held.
func (m *Memory) delete(key string, rev int64) bool {
	if _, ok := m.at(key, rev); !ok {
		return false
	}
	k := m.mu.keys[key]
	k.revs = append(k.revs, memRev{kv: KV{Key: key, ModRevision: rev}, deleted: true})
	return true
}

// Compact discards history before rev, like etcd's compaction: reads at an older revision
// then fail with ErrCompacted.
func (m *Memory) Compact(ctx context.Context, rev int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.ready(ctx); err != nil {
		return fmt.Errorf("compact %d: %w", rev, err)
	}
	if rev <= m.mu.compacted {
		return fmt.Errorf("compact %d: %w: compacted up to %d", rev, ErrCompacted, m.mu.compacted)
	}
	if err := m.checkRev(rev); err != nil {
		return fmt.Errorf("compact %d: %w", rev, err)
	}
	m.mu.compacted = rev
	for key, k := range m.mu.keys {
		// Keep the newest entry at or before rev, unless it is a tombstone, and all later ones.
		i, _ := slices.BinarySearchFunc(k.revs, rev+1, func(r memRev, target int64) int {
			return cmpInt(r.kv.ModRevision, target)
		})
		if i > 0 && !k.revs[i-1].deleted {
			i--
		}
		k.revs = slices.Clone(k.revs[i:])
		if len(k.revs) == 0 {
			delete(m.mu.keys, key)
			m.mu.sorted = nil
		}
	}
	return nil
}
